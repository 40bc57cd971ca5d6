/** Arguments, input and output shared by every command. */
import { toJsonText, type JsonValue } from "../core/canonical.ts";
import { LinksError } from "../core/errors.ts";
import { jsonForTerminal } from "../core/printable.ts";
import { atomicWrite } from "../storage/atomic.ts";
import { readBounded, type BoundedRead } from "../storage/read-bounded.ts";
import { interruptProgress } from "./progress.ts";

export const dataArgs = {
  data: {
    type: "string",
    description: "Data directory (env LINKS_DATA)",
    valueHint: "dir",
  },
} as const;

export const jsonArgs = {
  json: { type: "boolean", description: "Print one JSON document on stdout" },
} as const;

export function dataDir(args: { data?: string | undefined }): string {
  return args.data || process.env.LINKS_DATA || "./data";
}

let printedJson = false;

/**
 * Prints one compact JSON document (lossless: floats stay floats) on stdout. On a terminal, the
 * characters a terminal would act on or reorder are escaped (the same document to a JSON reader);
 * a pipe or a file gets the exact text.
 */
export function printJson(value: unknown): void {
  const text = toJsonText(value as JsonValue);
  process.stdout.write(`${process.stdout.isTTY ? jsonForTerminal(text) : text}\n`);
  printedJson = true;
}

/** Whether this process already printed its JSON document (so a failure adds no second one). */
export function jsonWasPrinted(): boolean {
  return printedJson;
}

/** Prints a human message on stderr, so stdout stays clean for data. */
export function say(message: string): void {
  interruptProgress();
  process.stderr.write(`${message}\n`);
}

export function warn(message: string): void {
  interruptProgress();
  process.stderr.write(`links: warning: ${message}\n`);
}

/** Why a file named on the command line could not be opened or read, naming it. */
export function inputFileError(e: unknown, path: string, what: string): LinksError {
  const code = (e as { code?: string }).code;
  if (code === "ENOENT") return new LinksError("not_found", `${what} not found: ${path}`);
  if (code === "EISDIR") return new LinksError("invalid_argument", `${what} is a directory: ${path}`);
  if (code === "EACCES") return new LinksError("invalid_argument", `${what} is not readable: ${path}`);
  return new LinksError("invalid_argument", `cannot read ${what} ${path}: ${(e as Error).message}`);
}

/**
 * The most a file read whole from the command line may hold (a bundle, a policy, a token). Far
 * above what a node accepts, yet bounded: /dev/zero or an endless pipe given as a file is refused
 * rather than read until memory runs out.
 */
export const MAX_INPUT_FILE_BYTES = 256 * 1024 * 1024;

/** Reads a file named on the command line ("-" is standard input) with a clear error. */
export function readInputFile(path: string, what = "file", maxBytes = MAX_INPUT_FILE_BYTES): Uint8Array {
  let read: BoundedRead;
  try {
    read = readBounded(path === "-" ? 0 : path, maxBytes);
  } catch (e) {
    throw inputFileError(e, path, what);
  }
  if (read.over) throw new LinksError("input_too_large", `${what} ${path} is larger than ${maxBytes} bytes`);
  return read.bytes;
}

/** Writes a command's output file atomically (a crash never leaves half a file). */
export function writeOutputFile(path: string, value: unknown): void {
  const text = typeof value === "string" ? value : `${toJsonText(value as JsonValue)}\n`;
  atomicWrite(path, text);
}

export function parsePositiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new LinksError("usage", `--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** Every value of a repeatable option, in order (citty keeps only the last). */
export function repeated(rawArgs: string[], flag: string): string[] {
  const out: string[] = [];
  rawArgs.forEach((a, i) => {
    if (a === flag && rawArgs[i + 1] !== undefined) out.push(rawArgs[i + 1] as string);
    else if (a.startsWith(`${flag}=`)) out.push(a.slice(flag.length + 1));
  });
  return out;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
};

/** A byte size such as 1048576, 512KiB, 1MiB or 2GiB. */
export function parseByteSize(value: string, name: string): number {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(value.trim());
  const unit = m ? SIZE_UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) < 1) {
    throw new LinksError("usage", `--${name} must be a size like 1048576, 512KiB, 1MiB or 2GiB, got ${JSON.stringify(value)}`);
  }
  return Number(m[1]) * unit;
}
