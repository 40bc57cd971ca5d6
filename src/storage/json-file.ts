/** Whole JSON files: read losslessly, written through the one atomic write. */
import { readFileSync } from "node:fs";
import { parseStored, toJsonText, type JsonValue } from "../core/canonical.ts";
import { LinksError, storageError } from "../core/errors.ts";
import { atomicWrite, atomicWriteAsync, writeNewFileAtomic } from "./atomic.ts";

/** The parsed file, or null when it does not exist. A corrupt file is an error naming it. */
export function readJsonFile(path: string): JsonValue | null {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw storageError(e, `reading ${path}`);
  }
  try {
    return parseStored(bytes);
  } catch (e) {
    throw new LinksError("storage_error", `${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

export function writeJsonFile(path: string, value: unknown, opts: { exclusive?: boolean } = {}): void {
  const text = `${toJsonText(value as JsonValue)}\n`;
  if (opts.exclusive) writeNewFileAtomic(path, text);
  else atomicWrite(path, text);
}

/** writeJsonFile's replace, with the fsyncs off the event loop (see atomicWriteAsync). */
export function writeJsonFileAsync(path: string, value: unknown): Promise<void> {
  return atomicWriteAsync(path, `${toJsonText(value as JsonValue)}\n`);
}
