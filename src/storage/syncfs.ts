/** syncfs(2) through bun:ffi: one call makes everything written to a filesystem durable. */
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, constants, openSync } from "node:fs";
import { storageError } from "../core/errors.ts";

let lib: { symbols: { syncfs: (fd: number) => number } } | null = null;

export function syncFilesystem(path: string): void {
  lib ??= dlopen("libc.so.6", { syncfs: { args: [FFIType.i32], returns: FFIType.i32 } });
  const fd = openSync(path, constants.O_RDONLY);
  try {
    if (lib.symbols.syncfs(fd) !== 0) throw Object.assign(new Error("syncfs failed"), { code: "EIO" });
  } catch (e) {
    throw storageError(e, `syncing the filesystem of ${path}`);
  } finally {
    closeSync(fd);
  }
}
