/**
 * Whole-file writes that readers and crashes only ever see complete: write a temp file in the
 * same directory, fsync it, rename (or link) it into place, fsync the directory.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fdatasync,
  fsync,
  fsyncSync,
  linkSync,
  openSync,
  renameSync,
  unlinkSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { LinksError, storageError } from "../core/errors.ts";
import { openCreatingParents, writeAll } from "./open.ts";

export interface AtomicWriteOptions {
  /** File mode of the result; default 0o644. Applied with fchmod, so the umask does not narrow it. */
  mode?: number;
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Writes data to a fresh temp file next to path, fsynced and closed. Returns the temp path. */
function writeTemp(path: string, data: string | Uint8Array, mode: number, sync = true): string {
  const temp = tempPathFor(path);
  const fd = openCreatingParents(temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, mode);
  try {
    fchmodSync(fd, mode);
    writeAll(fd, data);
    if (sync) fsyncSync(fd);
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

/** fsync of a directory: what makes a file created or renamed in it durable. */
export function fsyncDir(dir: string): void {
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

/** fsync or fdatasync of a file or directory off the main thread (libuv's pool). */
function syncOffThread(path: string, sync: typeof fsync): Promise<void> {
  const fd = openSync(path, constants.O_RDONLY);
  return new Promise<void>((resolve, reject) => {
    sync(fd, (e) => {
      closeQuietly(fd);
      if (e) reject(e);
      else resolve();
    });
  });
}

/** fdatasync off the main thread, so a slow disk does not stall requests (appends: the group commit's log). */
export function fdatasyncFile(path: string): Promise<void> {
  return syncOffThread(path, fdatasync);
}

/**
 * atomicWrite for a server's event loop: the same temp file, fsync, rename and fsync of the
 * directory, with both fsyncs run off the main thread (a busy disk can take a fsync hundreds of
 * milliseconds, which the node's own requests must not wait for).
 */
export async function atomicWriteAsync(path: string, data: string | Uint8Array, opts?: { mode?: number }): Promise<void> {
  let temp: string | undefined;
  try {
    temp = writeTemp(path, data, opts?.mode ?? 0o644, false);
    await syncOffThread(temp, fsync);
    renameSync(temp, path);
    temp = undefined;
    await syncOffThread(dirname(path), fsync);
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

/**
 * Creates path with data, no temp file and no fsync; EEXIST becomes file_exists. Only for the
 * group commit: its write-ahead log holds the data durably and recovery rewrites a file that a
 * crash left torn, so the rename dance would buy nothing there.
 */
export function createFileUnsynced(path: string, data: string | Uint8Array): void {
  let fd: number | undefined;
  try {
    fd = openCreatingParents(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY);
  } catch (e) {
    if ((e as { code?: string }).code === "EEXIST") throw new LinksError("file_exists", `${path} already exists`);
    throw storageError(e, `creating ${path}`);
  }
  try {
    writeAll(fd, data);
    closeSync(fd);
  } catch (e) {
    // A half-written file would later pass for a stored bundle (a "duplicate"): take it back.
    closeQuietly(fd);
    removeQuietly(path);
    throw storageError(e, `creating ${path}`);
  }
}

/**
 * A file written in pieces (an output too large to build as one string) that appears at path
 * complete or not at all, like atomicWrite: pieces go to a temp file beside it, buffered;
 * commit() fsyncs it and renames it into place; abort() (or a failed write) removes it.
 */
export class AtomicFileWriter {
  private readonly temp: string;
  private fd: number | null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private static readonly FLUSH_BYTES = 1 << 20;

  constructor(readonly path: string, mode = 0o644) {
    this.temp = tempPathFor(path);
    try {
      this.fd = openCreatingParents(this.temp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, mode);
      fchmodSync(this.fd, mode);
    } catch (e) {
      throw storageError(e, `writing ${path}`);
    }
  }

  write(piece: string | Uint8Array): void {
    const bytes = typeof piece === "string" ? Buffer.from(piece, "utf8") : Buffer.from(piece);
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= AtomicFileWriter.FLUSH_BYTES) this.flush();
  }

  private flush(): void {
    const fd = this.open();
    const data = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    try {
      writeAll(fd, data);
    } catch (e) {
      this.abort();
      throw storageError(e, `writing ${this.path}`);
    }
  }

  private open(): number {
    if (this.fd === null) throw new LinksError("internal_error", `${this.path} was already committed or aborted`);
    return this.fd;
  }

  commit(): void {
    this.flush();
    const fd = this.open();
    try {
      fsyncSync(fd);
      closeSync(fd);
      this.fd = null;
      renameSync(this.temp, this.path);
      fsyncDir(dirname(this.path));
    } catch (e) {
      this.abort();
      throw storageError(e, `writing ${this.path}`);
    }
  }

  /** Drops what was written; the target is untouched. */
  abort(): void {
    if (this.fd !== null) closeQuietly(this.fd);
    this.fd = null;
    removeQuietly(this.temp);
  }
}
