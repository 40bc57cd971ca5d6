/** syncfs(2) through bun:ffi: one call makes everything written to a filesystem durable. */
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, constants, openSync } from "node:fs";
import { storageError } from "../core/errors.ts";
import { libcPath } from "./flock.ts";

let lib: { symbols: { syncfs: (fd: number) => number } } | null = null;

export function syncFilesystem(path: string): void {
  lib ??= dlopen(libcPath(), { syncfs: { args: [FFIType.i32], returns: FFIType.i32 } });
  const fd = openSync(path, constants.O_RDONLY);
  try {
    if (lib.symbols.syncfs(fd) !== 0) throw Object.assign(new Error("syncfs failed"), { code: "EIO" });
  } catch (e) {
    throw storageError(e, `syncing the filesystem of ${path}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * The same without blocking the event loop: coreutils' `sync -f` makes the syncfs call in a
 * child process (a checkpoint can take a good part of a second on a busy disk). Without it,
 * the call is made here.
 */
export async function syncFilesystemAsync(path: string): Promise<void> {
  const sync = Bun.which("sync");
  if (!sync) return syncFilesystem(path);
  const proc = Bun.spawn([sync, "-f", path], { stdout: "ignore", stderr: "pipe" });
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw storageError(Object.assign(new Error(err.trim() || `sync -f exited ${code}`), { code: "EIO" }), `syncing the filesystem of ${path}`);
}
