/** The two file-descriptor steps every writer shares: open (creating parents) and write it all. */
import { mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/**
 * The mode of every directory the node makes in its data directory: never writable by group or
 * others, whatever the umask (with umask 000, mkdir's default would let any local user delete or
 * replace revocations.jsonl or village.json), and closed to others (private villages' bundles).
 * The group may read, as with systemd's StateDirectoryMode=0750.
 */
export const DATA_DIR_MODE = 0o750;

/** mkdir -p with DATA_DIR_MODE (the umask can only narrow it). */
export function makeDataDirs(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
}

/** open(2) that creates missing parent folders only when the open says they are missing. */
export function openCreatingParents(path: string, flags: number, mode = 0o644): number {
  try {
    return openSync(path, flags, mode);
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOENT") throw e;
    makeDataDirs(dirname(path));
    return openSync(path, flags, mode);
  }
}

/**
 * Writes all of data at the descriptor's position. A string is handed to the runtime as it is,
 * which encodes it without a Buffer per call (the group commit writes several per bundle); only
 * a short write (a full disk) goes on from the bytes.
 */
export function writeAll(fd: number, data: string | Uint8Array): void {
  let bytes: Uint8Array;
  let done: number;
  if (typeof data === "string") {
    done = writeSync(fd, data);
    if (done === Buffer.byteLength(data)) return;
    bytes = Buffer.from(data, "utf8");
  } else {
    bytes = data;
    done = 0;
  }
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}
