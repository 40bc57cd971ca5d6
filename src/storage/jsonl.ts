/**
 * JSONL files: one locked append for every writer, and readers that survive a torn last line.
 *
 * A record counts as written once its "\n" is on disk. Appends lock the JSONL file itself (an
 * append never replaces the inode, unlike an atomic rewrite), and readers take a shared lock so
 * they never see half of an append that is still in progress.
 */
import {
  closeSync,
  constants,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { LinksError, storageError } from "../core/errors.ts";
import { atomicWrite, fsyncDir } from "./atomic.ts";
import { lockFd, unlockFd } from "./flock.ts";
import { openCreatingParents, writeAll } from "./open.ts";

const NL = 0x0a;

export interface BadLine {
  path: string;
  /** 1-based; for readJsonlFrom, counted from the starting offset. */
  lineNo: number;
  /** Byte offset of the line's first byte in the file. */
  byteOffset: number;
  reason: string;
  /** The last line of a file that does not end in "\n": an append that did not finish. */
  torn: boolean;
}

export type OnBadLine = (info: BadLine) => void;

export function warnBadLine(info: BadLine): void {
  const kind = info.torn ? "torn" : "corrupt";
  process.stderr.write(
    `links: warning: skipped ${kind} line ${info.lineNo} in ${info.path}: ${info.reason}\n`,
  );
}

/**
 * Appends whole records under an exclusive flock, in one write. Each element is one serialized
 * JSON record without its newline. A torn line left by a crashed writer gets a "\n" first, so the
 * new records start on a fresh line.
 */
export function lockedAppend(path: string, lines: string[], opts?: { fsync?: boolean }): void {
  for (const [i, line] of lines.entries()) {
    if (line.length === 0 || line.includes("\n") || line.includes("\r")) {
      throw new LinksError(
        "invalid_argument",
        `record ${i} for ${path} is empty or contains a line break; a JSONL record is one line`,
      );
    }
  }
  if (lines.length === 0) return;
  const body = `${lines.join("\n")}\n`;
  let fd: number | undefined;
  try {
    let size: number;
    ({ fd, size } = openLocked(path));
    // a torn last line (a crashed writer) is closed first, so the records start on a line of their own
    const data = size > 0 && readRange(fd, size - 1, 1)[0] !== NL ? `\n${body}` : body;
    try {
      writeAll(fd, data);
      if (opts?.fsync ?? true) fdatasyncSync(fd);
    } catch (e) {
      // Still under the lock: take back a partial record (a full disk), so no torn line is left
      // in the middle of the file.
      try {
        ftruncateSync(fd, size);
      } catch {
        // the append failed either way; a reader skips a torn line
      }
      throw e;
    }
  } catch (e) {
    throw storageError(e, `appending to ${path}`);
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd); // also drops the flock
      } catch {
        // the append itself already succeeded or failed; nothing useful to add
      }
    }
  }
}

/**
 * Opens for append and takes the exclusive lock; gives the file's size under it. A rewrite
 * (stageJsonl, dropJsonlPrefix) renames a new inode over the path while holding the old one's
 * lock; whoever waited on the old inode must reopen, or its records would land in an unlinked file.
 */
function openLocked(path: string): { fd: number; size: number } {
  for (;;) {
    const fd = openCreatingParents(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT);
    let current: number | undefined;
    let own: { ino: number; size: number };
    try {
      lockFd(fd, "exclusive");
      try {
        current = statSync(path).ino;
      } catch {
        current = undefined;
      }
      own = fstatSync(fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    if (current === own.ino) return { fd, size: own.size };
    closeSync(fd);
  }
}

/** Bytes [offset, offset + length) of an open file; fewer when the file ends before. */
function readRange(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(Math.max(0, length));
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

export interface StagedJsonl {
  /**
   * Adds the records appended to the live file from byte `since` on that `keep` accepts, then
   * renames the staged file into place. The last of them are read under the live file's own lock,
   * held through the rename, so no append is lost. Returns how many records were added.
   */
  commit(since: number, keep: (line: string) => boolean): number;
  /** Removes the staged file (the rebuild was abandoned). */
  discard(): void;
}

/**
 * Writes a JSONL file's replacement beside it, fsynced, without the live file's lock: a rebuild
 * that takes long keeps appenders waiting only for its `commit`.
 */
export function stageJsonl(path: string, lines: string[]): StagedJsonl {
  const staged = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.staged`);
  atomicWrite(staged, lines.length === 0 ? "" : `${lines.join("\n")}\n`);
  const discard = (): void => {
    try {
      unlinkSync(staged);
    } catch {
      // already renamed or removed
    }
  };
  return {
    discard,
    commit(since, keep) {
      let added = 0;
      try {
        const out = openSync(staged, constants.O_WRONLY | constants.O_APPEND);
        try {
          /** Copies the whole lines of bytes that `keep` accepts; returns how many bytes that covered. */
          const appendKept = (bytes: Uint8Array): number => {
            const whole = bytes.lastIndexOf(NL) + 1;
            const kept = decoder.decode(bytes.subarray(0, whole)).split("\n").filter((l) => l.trim() !== "" && keep(l));
            if (kept.length > 0) writeAll(out, `${kept.join("\n")}\n`);
            added += kept.length;
            return whole;
          };
          // Most of what came meanwhile is copied before the lock is taken ...
          const early = readFrom(path, since);
          const from = since + (early === null ? 0 : appendKept(early));
          // ... the rest under it, through the rename.
          const { fd, size } = openLocked(path);
          try {
            // an unfinished last line can only be a crashed writer's: it is left behind
            appendKept(readRange(fd, from, size - from));
            fdatasyncSync(out);
            renameSync(staged, path);
            fsyncDir(dirname(path));
          } finally {
            closeSync(fd);
          }
        } finally {
          closeSync(out);
        }
      } catch (e) {
        discard();
        throw storageError(e, `rewriting ${path}`);
      }
      return added;
    },
  };
}

/**
 * Drops a JSONL file's first `offset` bytes (whole lines: a checkpointed prefix), keeping what
 * was appended after them; under the file's own lock, so no concurrent append is lost.
 */
export function dropJsonlPrefix(path: string, offset: number): void {
  let fd: number | undefined;
  try {
    let size: number;
    ({ fd, size } = openLocked(path));
    atomicWrite(path, readRange(fd, offset, size - offset));
  } catch (e) {
    throw storageError(e, `rewriting ${path}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Reads bytes [offset, EOF) under a shared lock; null when the file does not exist. */
export function readFrom(path: string, offset: number, maxBytes = Number.POSITIVE_INFINITY): Uint8Array | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw storageError(e, `reading ${path}`);
  }
  try {
    lockFd(fd, "shared");
    const size = fstatSync(fd).size;
    if (offset >= size) return new Uint8Array(0);
    const buf = readRange(fd, offset, Math.min(size - offset, maxBytes));
    unlockFd(fd);
    return buf;
  } catch (e) {
    throw storageError(e, `reading ${path}`);
  } finally {
    closeSync(fd);
  }
}

const decoder = new TextDecoder();

/** Which file is at path and how long it is, for readers that tail it: zeros when there is none. */
export function fileStamp(path: string): { ino: number; size: number } {
  try {
    const s = statSync(path, { throwIfNoEntry: false });
    if (s === undefined) return { ino: 0, size: 0 };
    return { ino: s.ino, size: s.size };
  } catch {
    return { ino: 0, size: 0 };
  }
}

function shorten(s: string, max = 200): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/**
 * Parses the lines of buf. With includeTorn, a trailing line without "\n" is parsed too (and
 * reported as torn if it fails); without it, that line is left for a later read.
 * Returns the records and how many bytes of buf were consumed.
 */
function parseLines<T>(
  path: string,
  buf: Uint8Array,
  base: number,
  parse: (line: string) => T,
  onBad: OnBadLine,
  includeTorn: boolean,
): { records: T[]; consumed: number } {
  const records: T[] = [];
  let start = 0;
  let lineNo = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(NL, start);
    const torn = nl === -1;
    if (torn && !includeTorn) break;
    const end = torn ? buf.length : nl;
    lineNo++;
    const text = decoder.decode(buf.subarray(start, end));
    if (text.trim() !== "") {
      try {
        records.push(parse(text));
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        onBad({
          path,
          lineNo,
          byteOffset: base + start,
          reason: shorten(torn ? `unfinished last line (no newline): ${why}` : why),
          torn,
        });
      }
    }
    start = end + 1;
  }
  return { records, consumed: Math.min(start, buf.length) };
}

/**
 * Every record of a JSONL file (missing file: none). Bad lines are skipped and reported through
 * onBad (default: one warning on stderr); content problems never throw.
 */
export function readJsonl<T>(
  path: string,
  parse: (line: string) => T,
  onBad: OnBadLine = warnBadLine,
): T[] {
  const buf = readFrom(path, 0);
  if (buf === null) return [];
  return parseLines(path, buf, 0, parse, onBad, true).records;
}

/**
 * Records from byte offset on, for caches that tail a file. nextOffset lies just after the last
 * complete line: a trailing line without "\n" is not consumed, so the next call reads it once it
 * is whole. An offset past the end of the file (or a missing file) yields no records and returns
 * the same offset.
 */
export function readJsonlFrom<T>(
  path: string,
  offset: number,
  parse: (line: string) => T,
  onBad: OnBadLine = warnBadLine,
  /** read at most this many bytes (whole lines only; a longer line is left for later) */
  maxBytes?: number,
): { records: T[]; nextOffset: number } {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new LinksError("invalid_argument", `offset must be a non-negative integer, got ${offset}`);
  }
  const buf = readFrom(path, offset, maxBytes);
  if (buf === null) return { records: [], nextOffset: offset };
  const { records, consumed } = parseLines(path, buf, offset, parse, onBad, false);
  return { records, nextOffset: offset + consumed };
}
