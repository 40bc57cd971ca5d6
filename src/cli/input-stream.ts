/**
 * Input files read a piece at a time, so a command's memory does not grow with its input: lines
 * of a JSONL file, elements of a JSON array. Standard input ("-") is copied to a temporary file
 * first when a command needs to read it twice.
 */
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonArraySplitter } from "../core/json-array-splitter.ts";
import { LinksError } from "../core/errors.ts";
import { inputFileError } from "./common.ts";

const CHUNK = 1 << 20;

function openInput(path: string, what: string): number {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    // a directory opens, and only fails at the first read
    if (!fstatSync(fd).isDirectory()) return fd;
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    throw inputFileError(e, path, what);
  }
  closeSync(fd);
  throw inputFileError({ code: "EISDIR" }, path, what);
}

/** The size of an input file in bytes (for progress), or null for a pipe. */
export function inputSize(path: string, what: string): number | null {
  const fd = openInput(path, what);
  try {
    const s = fstatSync(fd);
    return s.isFile() ? s.size : null;
  } finally {
    closeSync(fd);
  }
}

/** Reads a file as UTF-8 text pieces; onBytes gets the running byte count. */
function readPieces(path: string, what: string, onPiece: (text: string) => void, onBytes?: (n: number) => void): void {
  const fd = path === "-" ? 0 : openInput(path, what);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const buf = Buffer.allocUnsafe(CHUNK);
  let total = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      total += n;
      let text: string;
      try {
        text = decoder.decode(buf.subarray(0, n), { stream: true });
      } catch {
        throw new LinksError("invalid_json", `${what} ${path} is not UTF-8 text (invalid bytes within the first ${total} bytes)`);
      }
      onPiece(text);
      onBytes?.(total);
    }
    try {
      onPiece(decoder.decode());
    } catch {
      throw new LinksError("invalid_json", `${what} ${path} ends in the middle of a UTF-8 character`);
    }
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}

/**
 * The longest line or array element read from an input file. Whole-file inputs are bounded by
 * MAX_INPUT_FILE_BYTES; a file read a piece at a time may be as large as the disk, but each piece
 * held in memory is bounded by this, so a line that never ends (/dev/zero) is refused.
 */
export const MAX_INPUT_RECORD_CHARS = 16 * 1024 * 1024;

function recordTooLong(what: string, path: string, which: string): LinksError {
  return new LinksError("input_too_large", `${what} ${path}: ${which} is longer than ${MAX_INPUT_RECORD_CHARS} characters`);
}

/** Calls onLine with each line (1-based number, "\r\n" endings accepted), a piece at a time. */
export function forEachLine(
  path: string,
  what: string,
  onLine: (line: string, lineNo: number) => void,
  onBytes?: (n: number) => void,
): void {
  let rest = "";
  let lineNo = 0;
  const emit = (line: string) => {
    if (line.length > MAX_INPUT_RECORD_CHARS + 1) throw recordTooLong(what, path, `line ${lineNo + 1}`);
    onLine(line.endsWith("\r") ? line.slice(0, -1) : line, ++lineNo);
  };
  readPieces(
    path,
    what,
    (text) => {
      const lines = (rest + text).split("\n");
      rest = lines.pop() as string;
      for (const line of lines) emit(line);
      if (rest.length > MAX_INPUT_RECORD_CHARS + 1) throw recordTooLong(what, path, `line ${lineNo + 1}`);
    },
    onBytes,
  );
  if (rest !== "") emit(rest);
}

/** Calls onElement with the text of each element of the JSON array the file holds. */
export function forEachArrayElement(
  path: string,
  what: string,
  onElement: (text: string, index: number) => void,
  onBytes?: (n: number) => void,
): void {
  const splitter = new JsonArraySplitter(`${what} ${path}`, MAX_INPUT_RECORD_CHARS);
  readPieces(path, what, (text) => splitter.push(text, onElement), onBytes);
  splitter.end();
}

/**
 * Runs fn with a path that can be read more than once: the path itself, or for "-" a temporary
 * copy of standard input (removed afterwards). The copy is of lines: a line longer than any
 * forEachLine accepts ends it (input_too_large), so an endless stream without line breaks
 * (`cat /dev/zero |`) does not fill the temporary directory first.
 */
export function withRereadable<T>(path: string, what: string, fn: (path: string) => T): T {
  if (path !== "-") return fn(path);
  const dir = mkdtempSync(join(tmpdir(), "links-stdin-"));
  const copy = join(dir, "stdin");
  try {
    const out = openSync(copy, "w", 0o600);
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      // a line of MAX_INPUT_RECORD_CHARS characters is at most 3 bytes per character in UTF-8
      const maxLineBytes = MAX_INPUT_RECORD_CHARS * 3;
      let lineBytes = 0;
      let lineNo = 1;
      for (;;) {
        const n = readSync(0, buf, 0, CHUNK, null);
        if (n === 0) break;
        const chunk = buf.subarray(0, n);
        const last = chunk.lastIndexOf(0x0a);
        if (last === -1) lineBytes += n;
        else {
          for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) lineNo++;
          lineBytes = n - last - 1;
        }
        if (lineBytes > maxLineBytes) throw recordTooLong(what, "standard input", `line ${lineNo}`);
        let done = 0;
        while (done < n) done += writeSync(out, buf, done, n - done);
      }
    } finally {
      closeSync(out);
    }
    return fn(copy);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
