/**
 * Making everything written to the data directory's filesystem durable in one call: syncfs(2) on
 * Linux, through bun:ffi. macOS has no syncfs: there the checkpoint calls sync(2), which writes
 * every filesystem's dirty buffers but, unlike F_FULLFSYNC, does not make the disk flush its own
 * write cache (README: "Shipping the binary").
 */
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, constants, openSync } from "node:fs";
import { storageError } from "../core/errors.ts";
import { libcPath } from "./flock.ts";

type SyncLib = { syncfs?: (fd: number) => number; sync?: () => void };
let lib: SyncLib | null = null;

function load(platform: string): SyncLib {
  lib ??= platform === "darwin"
    ? (dlopen(libcPath(), { sync: { args: [], returns: FFIType.void } }).symbols as SyncLib)
    : (dlopen(libcPath(), { syncfs: { args: [FFIType.i32], returns: FFIType.i32 } }).symbols as SyncLib);
  return lib;
}

export function syncFilesystem(path: string): void {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    const symbols = load(process.platform);
    if (symbols.syncfs) {
      if (symbols.syncfs(fd) !== 0) throw Object.assign(new Error("syncfs failed"), { code: "EIO" });
    } else symbols.sync?.();
  } catch (e) {
    throw storageError(e, `syncing the filesystem of ${path}`);
  } finally {
    closeSync(fd);
  }
}

/** The command that syncs `path`'s filesystem from a child process: coreutils' `sync -f`; BSD `sync` takes no file. */
export function syncCommand(platform: string, sync: string, path: string): string[] {
  return platform === "darwin" ? [sync] : [sync, "-f", path];
}

/**
 * The same without blocking the event loop: the sync runs in a child process (a checkpoint can
 * take a good part of a second on a busy disk). Without a `sync` command, the call is made here.
 */
export async function syncFilesystemAsync(path: string): Promise<void> {
  const sync = Bun.which("sync");
  if (!sync) return syncFilesystem(path);
  const proc = Bun.spawn(syncCommand(process.platform, sync, path), { stdout: "ignore", stderr: "pipe" });
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw storageError(Object.assign(new Error(err.trim() || `sync exited ${code}`), { code: "EIO" }), `syncing the filesystem of ${path}`);
}
