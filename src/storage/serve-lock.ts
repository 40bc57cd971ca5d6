/**
 * One node per data directory. `links serve` holds an exclusive flock on `<data>/serve.lock` for
 * as long as it runs and writes its pid there; a second `serve` on the same directory finds the
 * lock taken and stops at once, naming the directory and the pid. Two nodes on one directory
 * would each keep their own rate limiter (doubling every limit) and fight over the write-ahead
 * log and the query index. CLI commands never take this lock: they keep working beside a node,
 * and the per-file locks keep their writes safe.
 *
 * The kernel drops the lock when the process ends however it ends (kill -9 included), so a stale
 * file never blocks a restart; the pid in it only names the holder while the lock is held.
 */
import { closeSync, constants, ftruncateSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { LinksError, storageError } from "../core/errors.ts";
import { tryLockFd } from "./flock.ts";
import { openCreatingParents } from "./open.ts";
import type { DataPaths } from "./paths.ts";

export const SERVE_LOCK_FILE = "serve.lock";

export interface ServeLock {
  readonly path: string;
  /** lets the next node take the directory */
  release(): void;
}

export function lockDataDirForServe(paths: DataPaths, pid = process.pid): ServeLock {
  const path = join(paths.root, SERVE_LOCK_FILE);
  let fd: number;
  try {
    fd = openCreatingParents(path, constants.O_RDWR | constants.O_CREAT);
  } catch (e) {
    throw storageError(e, `opening ${path}`);
  }
  let locked = false;
  try {
    locked = tryLockFd(fd, "exclusive");
    if (!locked) {
      const holder = holderPid(path);
      throw new LinksError(
        "data_dir_in_use",
        `the data directory ${paths.root} is in use by another links serve (${holder === null ? "pid unknown" : `pid ${holder}`}, holding ${path}); ` +
          "one node per data directory: stop that one first, or give this one another --data",
      );
    }
  } catch (e) {
    closeSync(fd);
    throw e instanceof LinksError ? e : storageError(e, `locking ${path}`);
  }
  writePid(fd, pid);
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      // Emptied while still held, so the file never names a process that has let go.
      try {
        ftruncateSync(fd, 0);
      } catch {
        // the pid left behind names no holder: nothing holds the lock once the fd is closed
      }
      closeSync(fd);
    },
  };
}

/**
 * The pid only names the holder for a second node's message: on a full disk the node still starts
 * (it can serve reads), holding the lock, and that message says "pid unknown".
 */
function writePid(fd: number, pid: number): void {
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${pid}\n`, 0);
  } catch {
    // see above
  }
}

/**
 * The pid the holder wrote. The holder writes it right after it takes the lock, so a second node
 * started at the same moment may look in between: it waits a few milliseconds for it.
 */
function holderPid(path: string): number | null {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const text = readFileSync(path, "utf8").trim();
      if (/^\d{1,10}$/.test(text)) return Number(text);
    } catch {
      // read again below
    }
    Bun.sleepSync(5);
  }
  return null;
}
