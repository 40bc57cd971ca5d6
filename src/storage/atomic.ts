/**
 * Whole-file writes that readers and crashes only ever see complete: write a temp file in the
 * same directory, fsync it, rename (or link) it into place, fsync the directory.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { LinksError, storageError } from "../core/errors.ts";

export interface AtomicWriteOptions {
  /** File mode of the result; default 0o644. Applied with fchmod, so the umask does not narrow it. */
  mode?: number;
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Writes data to a fresh temp file next to path, fsynced and closed. Returns the temp path. */
function writeTemp(path: string, data: string | Uint8Array, mode: number): string {
  mkdirSync(dirname(path), { recursive: true });
  const temp = tempPathFor(path);
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const fd = openSync(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, mode);
  try {
    fchmodSync(fd, mode);
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } catch (e) {
    closeQuietly(fd);
    removeQuietly(temp);
    throw e;
  }
  try {
    closeSync(fd);
  } catch (e) {
    removeQuietly(temp);
    throw e;
  }
  return temp;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already failing; the original error is the one to report
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone or never made
  }
}

/** Replaces path with data, all or nothing. On failure the target is untouched and no temp remains. */
export function atomicWrite(path: string, data: string | Uint8Array, opts?: AtomicWriteOptions): void {
  let temp: string | undefined;
  try {
    temp = writeTemp(path, data, opts?.mode ?? 0o644);
    renameSync(temp, path);
    temp = undefined;
    fsyncDir(dirname(path));
  } catch (e) {
    if (temp !== undefined) removeQuietly(temp);
    throw storageError(e, `writing ${path}`);
  }
}

/**
 * Creates path with data, refusing (file_exists) when it already exists. The temp file is linked
 * into place with link(2), which fails with EEXIST rather than clobber, so of two racing creators
 * exactly one wins. There is no separate existence check: link is the only judge.
 */
export function writeNewFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts?: AtomicWriteOptions,
): void {
  const exists = () => new LinksError("file_exists", `${path} already exists`);
  let temp: string | undefined;
  try {
    temp = writeTemp(path, data, opts?.mode ?? 0o644);
    try {
      linkSync(temp, path);
    } catch (e) {
      if ((e as { code?: string }).code === "EEXIST") throw exists();
      throw e;
    }
    removeQuietly(temp);
    temp = undefined;
    fsyncDir(dirname(path));
  } catch (e) {
    if (temp !== undefined) removeQuietly(temp);
    throw storageError(e, `creating ${path}`);
  }
}
