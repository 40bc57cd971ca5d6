/**
 * Advisory whole-file locks with flock(2), called through bun:ffi.
 *
 * flock blocks the calling thread, which in Bun is the JS thread: while one process waits for a
 * lock, its event loop stands still. That is accepted on purpose: every critical section in this
 * program is a few small reads and writes, so the wait is bounded by another process's tiny
 * critical section, and a blocking lock keeps the code synchronous and simple.
 *
 * Locks belong to the open file description, so two opens of one file in the same process
 * exclude each other too. This module therefore queues in-process holders itself (so an async
 * holder that awaits does not deadlock a second caller) and refuses a nested sync take of a lock
 * this process already holds, which would otherwise hang forever.
 */
import { dlopen, read, type Pointer } from "bun:ffi";
import { closeSync, constants, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { LinksError, storageError } from "../core/errors.ts";
import { openCreatingParents } from "./open.ts";

export type LockMode = "exclusive" | "shared";

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EINTR = 4;
/** EWOULDBLOCK (= EAGAIN): 11 on Linux, 35 on macOS and the BSDs. */
const EWOULDBLOCK = process.platform === "linux" ? 11 : 35;

/** A C library that has flock(2), and the function that gives the address of errno in it. */
export interface LibcChoice {
  path: string;
  errno: "__errno_location" | "__error";
}

export type LinuxLibc = "glibc" | "musl";

/**
 * Which C library this process runs on, from the libraries mapped into it (/proc/self/maps):
 * musl's loader is its libc; glibc maps libc.so.6. Null when neither shows.
 */
export function libcFromMaps(maps: string): LinuxLibc | null {
  if (/\/(ld-musl|libc\.musl)-[^/\s]+\.so\.1$/m.test(maps)) return "musl";
  if (/\/libc\.so\.6$/m.test(maps)) return "glibc";
  return null;
}

/**
 * The libraries to try, in order: glibc's libc.so.6 with __errno_location; musl's libc (named
 * libc.musl-<arch>.so.1 on Alpine; "libc.so" is the name musl always resolves to itself) with
 * __errno_location; macOS's libSystem with __error. A process's own libc goes first, and a known
 * one alone: loading another C library into a process would be worse than refusing to start.
 */
export function libcCandidates(platform: string, arch: string, running: LinuxLibc | null): LibcChoice[] {
  if (platform === "darwin") return [{ path: "/usr/lib/libSystem.B.dylib", errno: "__error" }];
  if (platform !== "linux") return [];
  const muslArch = arch === "x64" ? "x86_64" : arch === "arm64" ? "aarch64" : arch;
  const glibc: LibcChoice[] = [{ path: "libc.so.6", errno: "__errno_location" }];
  const musl: LibcChoice[] = [
    { path: `libc.musl-${muslArch}.so.1`, errno: "__errno_location" },
    { path: "libc.so", errno: "__errno_location" },
  ];
  if (running === "glibc") return glibc;
  if (running === "musl") return musl;
  return [...glibc, ...musl];
}

function runningLibc(): LinuxLibc | null {
  if (process.platform !== "linux") return null;
  try {
    return libcFromMaps(readFileSync("/proc/self/maps", "utf8"));
  } catch {
    return null;
  }
}

function symbolsFor(errno: LibcChoice["errno"]) {
  return {
    flock: { args: ["i32", "i32"], returns: "i32" },
    [errno]: { args: [], returns: "ptr" },
  } as const;
}

interface Libc {
  /** the library's name as it was opened */
  path: string;
  flock(fd: number, op: number): number;
  errnoPointer(): Pointer | null;
}

let libc: Libc | null = null;

function loadLibc(): Libc {
  if (libc) return libc;
  const candidates = libcCandidates(process.platform, process.arch, runningLibc());
  const failures: string[] = [];
  for (const choice of candidates) {
    try {
      const symbols = dlopen(choice.path, symbolsFor(choice.errno)).symbols as unknown as Record<string, (...a: number[]) => unknown>;
      const flock = symbols.flock as (fd: number, op: number) => number;
      const errnoFn = symbols[choice.errno] as () => Pointer | null;
      libc = { path: choice.path, flock, errnoPointer: errnoFn };
      return libc;
    } catch (e) {
      failures.push(`${choice.path}: ${(e as Error).message}`);
    }
  }
  throw new LinksError(
    "flock_unavailable",
    `file locking needs flock(2) from the C library, which could not be loaded on this platform ` +
      `(${process.platform}/${process.arch}); links runs on Linux (glibc or musl) and macOS` +
      (failures.length > 0 ? `; tried ${failures.join("; ")}` : ""),
  );
}

/** The C library this process uses, as dlopen found it (for other calls into it, e.g. syncfs). */
export function libcPath(): string {
  return loadLibc().path;
}

function errno(lib: Libc): number {
  const p = lib.errnoPointer();
  return p === null ? 0 : read.i32(p, 0);
}

function callFlock(fd: number, op: number, what: string): void {
  const lib = loadLibc();
  for (;;) {
    if (lib.flock(fd, op) === 0) return;
    const err = errno(lib);
    if (err === EINTR) continue;
    throw new LinksError("storage_error", `flock(${what}) failed on fd ${fd}: errno ${err}`);
  }
}

/** Blocks until the lock is held; retries when a signal interrupts the wait. */
export function lockFd(fd: number, mode: LockMode): void {
  callFlock(fd, mode === "exclusive" ? LOCK_EX : LOCK_SH, mode);
}

/** Takes the lock if no one holds it; false (at once, without waiting) if another holder has it. */
export function tryLockFd(fd: number, mode: LockMode): boolean {
  const lib = loadLibc();
  for (;;) {
    if (lib.flock(fd, (mode === "exclusive" ? LOCK_EX : LOCK_SH) | LOCK_NB) === 0) return true;
    const err = errno(lib);
    if (err === EINTR) continue;
    if (err === EWOULDBLOCK) return false;
    throw new LinksError("storage_error", `flock(${mode}, non-blocking) failed on fd ${fd}: errno ${err}`);
  }
}

export function unlockFd(fd: number): void {
  callFlock(fd, LOCK_UN, "unlock");
}

/**
 * Sidecar lock file for a read-modify-write of a whole file. The file itself cannot be the lock:
 * an atomic write renames a new inode over it, so a second writer would lock the new inode while
 * the first still holds the old one, and both would proceed.
 */
export function lockPathFor(file: string): string {
  return `${file}.lock`;
}

/** Lock files this process currently holds, by absolute path. */
const held = new Set<string>();
const queues = new Map<string, Promise<void>>();

function openLockFile(lockPath: string): number {
  try {
    return openCreatingParents(lockPath, constants.O_RDWR | constants.O_CREAT);
  } catch (e) {
    throw storageError(e, `opening lock file ${lockPath}`);
  }
}

function unlockAndClose(fd: number): void {
  // Closing releases the lock as well; the explicit unlock just makes the order obvious.
  try {
    unlockFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs fn while holding a flock on lockPath (created with parent dirs, mode 0644). Throws
 * internal_error instead of hanging when this process already holds the same lock.
 */
export function withFileLockSync<T>(lockPath: string, mode: LockMode, fn: () => T): T {
  const key = resolve(lockPath);
  if (held.has(key)) {
    throw new LinksError(
      "internal_error",
      `lock ${key} is already held in this process; taking it again would deadlock`,
    );
  }
  held.add(key);
  try {
    const fd = openLockFile(key);
    try {
      lockFd(fd, mode);
      return fn();
    } finally {
      unlockAndClose(fd);
    }
  } finally {
    held.delete(key);
  }
}

/** Async variant: in-process callers queue in order, so an awaiting holder blocks no one else. */
export async function withFileLock<T>(
  lockPath: string,
  mode: LockMode,
  fn: () => T | Promise<T>,
): Promise<T> {
  const key = resolve(lockPath);
  const previous = queues.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = previous.then(() => mine);
  queues.set(key, tail);
  await previous;
  held.add(key);
  try {
    const fd = openLockFile(key);
    try {
      lockFd(fd, mode);
      return await fn();
    } finally {
      unlockAndClose(fd);
    }
  } finally {
    held.delete(key);
    if (queues.get(key) === tail) queues.delete(key);
    release();
  }
}

/**
 * Runs fn while holding an exclusive flock on lockPath, if the lock is free; resolves to
 * `{ held: false }` at once, without waiting, when another process (or this one) holds it.
 */
export async function withFileLockIfFree<T>(lockPath: string, fn: () => T | Promise<T>): Promise<{ held: true; value: T } | { held: false }> {
  const key = resolve(lockPath);
  if (held.has(key)) return { held: false };
  const fd = openLockFile(key);
  let locked = false;
  try {
    locked = tryLockFd(fd, "exclusive");
    if (!locked) return { held: false };
    held.add(key);
    return { held: true, value: await fn() };
  } finally {
    if (locked) {
      held.delete(key);
      unlockAndClose(fd);
    } else {
      closeSync(fd);
    }
  }
}
