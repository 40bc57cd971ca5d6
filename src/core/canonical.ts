/**
 * Lossless JSON parsing and canonical serialization, byte-compatible with Python's
 * `json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":"))` on what `json.loads`
 * builds (wire-format spec, section 1). Everything hashed or signed goes through here.
 */
import { LinksError } from "./errors.ts";

/** A JSON float (a number token with '.', 'e' or 'E'), kept apart from ints so 1.0 stays 1.0. */
export class JsonFloat {
  constructor(readonly value: number) {}
  toJSON(): number {
    return this.value;
  }
}

export type JsonValue = null | boolean | string | number | bigint | JsonFloat | JsonValue[] | { [key: string]: JsonValue };

/**
 * How deep a document received from outside may nest. Whatever the node accepts it may wrap a
 * few levels deeper when it stores or serves it (a write-ahead-log line around a bundle, a
 * history row around an artifact around a policy, a feed page around artifacts), so every
 * reader of the node's own files and of another node's answers allows STORED_MAX_DEPTH: what was
 * accepted can always be read back.
 */
export const INPUT_MAX_DEPTH = 64;
export const STORED_MAX_DEPTH = INPUT_MAX_DEPTH + 16;

export interface ParseOptions {
  /** Deepest allowed nesting of arrays/objects (default INPUT_MAX_DEPTH). */
  maxDepth?: number;
  /** Largest allowed input, in UTF-8 bytes. */
  maxBytes?: number;
}

// Python refuses to read an int of more digits than this (sys.int_info.default_max_str_digits);
// it also keeps BigInt parsing, which is quadratic, cheap.
const MAX_INT_DIGITS = 4300;
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

export function parseJson(input: string | Uint8Array, opts: ParseOptions = {}): JsonValue {
  const src = decodeInput(input, opts.maxBytes);
  const parser = new Parser(src, opts.maxDepth ?? INPUT_MAX_DEPTH);
  try {
    return parser.document();
  } catch (e) {
    if (e instanceof LinksError) throw e;
    // Only reachable with a caller-chosen huge maxDepth: the engine's stack gave out first.
    throw new LinksError("invalid_json", `invalid JSON: nested too deeply near offset ${parser.pos}`);
  }
}

/** Throws invalid_json when a value already parsed nests deeper than `max` (INPUT_MAX_DEPTH). */
export function assertMaxDepth(value: unknown, what: string, max = INPUT_MAX_DEPTH): void {
  const depthOf = (v: unknown, d: number): void => {
    if (typeof v !== "object" || v === null || v instanceof JsonFloat) return;
    if (d >= max) throw new LinksError("invalid_json", `invalid ${what}: nesting deeper than ${max}`);
    for (const child of Array.isArray(v) ? v : Object.values(v)) depthOf(child, d + 1);
  };
  depthOf(value, 0);
}

/** Parses a record the node wrote itself (or another node served): see STORED_MAX_DEPTH. */
export function parseStored(input: string | Uint8Array): JsonValue {
  return parseJson(input, { maxDepth: STORED_MAX_DEPTH });
}

function decodeInput(input: string | Uint8Array, maxBytes = Infinity): string {
  const isText = typeof input === "string";
  // A UTF-16 unit is at most 3 UTF-8 bytes, so only long texts need their size measured.
  const size = !isText ? input.length : input.length * 3 > maxBytes ? Buffer.byteLength(input, "utf8") : 0;
  if (size > maxBytes) throw new LinksError("invalid_json", `JSON is ${size} bytes, over the limit of ${maxBytes}`);
  if (isText) return input;
  try {
    return utf8Decoder.decode(input);
  } catch {
    throw new LinksError("invalid_json", `invalid UTF-8 at byte ${firstInvalidUtf8(input)}`);
  }
}

/** Offset of the byte where UTF-8 decoding first fails (run only after decoding did fail). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  const decodesAsPrefix = (n: number): boolean => {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  let lo = 0; // longest prefix known to decode (a truncated final sequence still counts)
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (decodesAsPrefix(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

const ESCAPES: Record<number, string> = { 0x22: '"', 0x5c: "\\", 0x2f: "/", 0x62: "\b", 0x66: "\f", 0x6e: "\n", 0x72: "\r", 0x74: "\t" };

class Parser {
  pos = 0;
  private depth = 0;

  constructor(private readonly src: string, private readonly maxDepth: number) {}

  document(): JsonValue {
    if (this.src.charCodeAt(0) === 0xfeff) this.fail("a byte order mark (BOM) is not allowed");
    this.skipWhitespace();
    if (this.pos >= this.src.length) this.fail("empty input");
    const value = this.value();
    this.skipWhitespace();
    if (this.pos < this.src.length) this.fail("unexpected data after the JSON value");
    return value;
  }

  private fail(what: string, at = this.pos): never {
    throw new LinksError("invalid_json", `invalid JSON: ${what} at offset ${at}`);
  }

  private skipWhitespace(): void {
    const src = this.src;
    let i = this.pos;
    let c = src.charCodeAt(i);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = src.charCodeAt(++i);
    this.pos = i;
  }

  private value(): JsonValue {
    const c = this.src.charCodeAt(this.pos);
    if (c === 0x22) return this.string();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (c === 0x7b) return this.object();
    if (c === 0x5b) return this.array();
    if (c === 0x74) return this.literal("true", true);
    if (c === 0x66) return this.literal("false", false);
    if (c === 0x6e) return this.literal("null", null);
    if (c !== c) this.fail("unexpected end of input");
    if (this.src.startsWith("NaN", this.pos) || this.src.startsWith("Infinity", this.pos)) {
      this.fail("NaN and Infinity are not JSON");
    }
    this.fail(`unexpected character ${JSON.stringify(this.src[this.pos])}`);
  }

  private literal<T extends JsonValue>(word: string, value: T): T {
    if (!this.src.startsWith(word, this.pos)) this.fail("invalid literal");
    this.pos += word.length;
    return value;
  }

  private enter(): void {
    if (++this.depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`);
    this.pos++;
    this.skipWhitespace();
  }

  private array(): JsonValue[] {
    this.enter();
    const out: JsonValue[] = [];
    if (this.src.charCodeAt(this.pos) === 0x5d) return this.leave(out, 1);
    for (;;) {
      this.skipWhitespace();
      out.push(this.value());
      this.skipWhitespace();
      const c = this.src.charCodeAt(this.pos++);
      if (c === 0x5d) return this.leave(out);
      if (c !== 0x2c) this.fail("expected ',' or ']'", this.pos - 1);
    }
  }

  private object(): { [key: string]: JsonValue } {
    this.enter();
    const out: { [key: string]: JsonValue } = Object.create(null);
    if (this.src.charCodeAt(this.pos) === 0x7d) return this.leave(out, 1);
    for (;;) {
      this.skipWhitespace();
      const at = this.pos;
      if (this.src.charCodeAt(at) !== 0x22) this.fail("expected a string key");
      const key = this.string();
      if (key in out) this.fail(`duplicate key ${JSON.stringify(excerpt(key))}`, at);
      this.skipWhitespace();
      if (this.src.charCodeAt(this.pos++) !== 0x3a) this.fail("expected ':'", this.pos - 1);
      this.skipWhitespace();
      out[key] = this.value();
      this.skipWhitespace();
      const c = this.src.charCodeAt(this.pos++);
      if (c === 0x7d) return this.leave(out);
      if (c !== 0x2c) this.fail("expected ',' or '}'", this.pos - 1);
    }
  }

  /** Closes a container; `skip` steps over a closing bracket not consumed yet. */
  private leave<T>(container: T, skip = 0): T {
    this.depth--;
    this.pos += skip;
    return container;
  }

  /** Scans runs of plain characters and slices them out whole; escapes are the slow path. */
  private string(): string {
    const src = this.src;
    let i = this.pos + 1;
    let start = i;
    let out = "";
    for (;;) {
      const c = src.charCodeAt(i);
      if (c === 0x22) {
        this.pos = i + 1;
        return out + src.slice(start, i);
      }
      if (c === 0x5c) {
        out += src.slice(start, i) + this.escape(i);
        i = start = this.pos;
      } else if (!(c >= 0x20)) {
        this.fail(c !== c ? "unterminated string" : "raw control character in string", i);
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const next = src.charCodeAt(i + 1);
        if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) this.fail("unpaired surrogate in string", i);
        i += 2;
      } else {
        i++;
      }
    }
  }

  /** Decodes the escape starting at the backslash at `i`; leaves `pos` after it. */
  private escape(i: number): string {
    const kind = this.src.charCodeAt(i + 1);
    if (kind !== 0x75) {
      const simple = ESCAPES[kind];
      if (simple === undefined) this.fail("invalid escape", i);
      this.pos = i + 2;
      return simple;
    }
    const unit = this.hex4(i + 2);
    if (unit >= 0xdc00 && unit <= 0xdfff) this.fail("unpaired surrogate escape", i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const low = this.src.startsWith("\\u", i + 6) ? this.hex4(i + 8) : -1;
      if (!(low >= 0xdc00 && low <= 0xdfff)) this.fail("unpaired surrogate escape", i);
      this.pos = i + 12;
      return String.fromCharCode(unit, low);
    }
    this.pos = i + 6;
    return String.fromCharCode(unit);
  }

  private hex4(i: number): number {
    const digits = this.src.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.fail("invalid \\u escape", i - 2);
    return parseInt(digits, 16);
  }

  private number(): number | bigint | JsonFloat {
    const src = this.src;
    const start = this.pos;
    let i = start;
    if (src.charCodeAt(i) === 0x2d) i++;
    if (src.startsWith("Infinity", i)) this.fail("NaN and Infinity are not JSON", start);
    const intStart = i;
    if (src.charCodeAt(i) === 0x30) {
      i++;
      if (isDigit(src.charCodeAt(i))) this.fail("leading zeros are not allowed", start);
    } else {
      i = this.digits(i);
    }
    const intDigits = i - intStart;
    let isFloat = false;
    if (src.charCodeAt(i) === 0x2e) {
      i = this.digits(i + 1);
      isFloat = true;
    }
    const e = src.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      const sign = src.charCodeAt(i + 1);
      i = this.digits(sign === 0x2b || sign === 0x2d ? i + 2 : i + 1);
      isFloat = true;
    }
    this.pos = i;
    const token = src.slice(start, i);
    if (isFloat) {
      const x = Number(token);
      if (!Number.isFinite(x)) this.fail(`number ${excerpt(token)} overflows a double`, start);
      return new JsonFloat(x);
    }
    if (intDigits <= 15) return Number(token) + 0; // + 0 turns the int -0 into 0
    if (intDigits > MAX_INT_DIGITS) this.fail(`integer longer than ${MAX_INT_DIGITS} digits`, start);
    const big = BigInt(token);
    return big >= -MAX_SAFE && big <= MAX_SAFE ? Number(big) : big;
  }

  /** Requires one or more digits at `i`; returns the offset after them. */
  private digits(i: number): number {
    const from = i;
    while (isDigit(this.src.charCodeAt(i))) i++;
    if (i === from) this.fail("expected a digit", i);
    return i;
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A piece of the input quoted in an error: bounded, so a refusal never echoes megabytes back. */
function excerpt(text: string, max = 40): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length} characters)`;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Canonical text: sorted keys (by code point), no whitespace, Python's escapes and float repr. */
export function canonicalize(value: JsonValue): string {
  return serialize(value, false);
}

/** Canonical text with every non-ASCII character escaped (Python's `ensure_ascii=True`). */
export function canonicalizeAscii(value: JsonValue): string {
  return serialize(value, true);
}

export const toJsonText = canonicalize;

export function canonicalBytes(value: JsonValue): Uint8Array {
  return utf8Encoder.encode(canonicalize(value));
}

/** What sha256Hex returns: 64 lowercase hex characters (key hashes, policy hashes). */
export const SHA256_HEX_RE = /^[0-9a-f]{64}$/;

export function sha256Hex(data: string | Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

function serialize(value: JsonValue, ascii: boolean): string {
  try {
    return emit(value, ascii);
  } catch (e) {
    if (e instanceof LinksError) throw e;
    throw new LinksError("invalid_argument", "cannot serialize a cyclic or too deeply nested value", { cause: e });
  }
}

function emit(v: JsonValue, ascii: boolean): string {
  switch (typeof v) {
    case "string":
      return quote(v, ascii);
    case "number":
      if (!Number.isSafeInteger(v)) throw invalidArgument(`${v} is not a safe integer (use JsonFloat or bigint)`);
      return String(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    case "object":
      if (v === null) return "null";
      if (v instanceof JsonFloat) return formatFloat(v.value);
      if (Array.isArray(v)) return emitArray(v, ascii);
      return emitObject(v, ascii);
    default:
      throw invalidArgument(`a ${typeof v} is not a JSON value`);
  }
}

function emitArray(items: JsonValue[], ascii: boolean): string {
  let out = "[";
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += ",";
    out += emit(items[i] as JsonValue, ascii);
  }
  return out + "]";
}

function emitObject(obj: { [key: string]: JsonValue }, ascii: boolean): string {
  const proto = Object.getPrototypeOf(obj);
  if (proto !== null && proto !== Object.prototype) throw invalidArgument("only plain objects serialize as JSON objects");
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
  sortByCodePoint(keys);
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (i > 0) out += ",";
    out += quote(key, ascii) + ":" + emit(obj[key]!, ascii);
  }
  return out + "}";
}

const HAS_SURROGATE = /[\ud800-\udfff]/;

/** Sorts in place by Unicode code point; the native UTF-16 sort is the same order without surrogates. */
export function sortByCodePoint(keys: string[]): string[] {
  return keys.some((k) => HAS_SURROGATE.test(k)) ? keys.sort(compareCodePoints) : keys.sort();
}

/** Orders strings by Unicode code point (Python's str order), for `Array#sort`. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order only goes wrong when a surrogate (an astral char) meets a unit in E000-FFFF:
    // lift surrogates above that range.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** What canonical JSON escapes, or refuses (unpaired surrogates). */
export const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
// Python's ensure_ascii escapes everything outside " "..."~", DEL (U+007F) included.
const NEEDS_ESCAPE_ASCII = /["\\\u0000-\u001f\u007f-\uffff]/;
const SHORT_ESCAPES: Record<number, string> = { 0x22: '\\"', 0x5c: "\\\\", 0x08: "\\b", 0x0c: "\\f", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t" };

/** A string as canonical JSON writes it (throws on an unpaired surrogate). */
export function quoteCanonical(s: string): string {
  return quote(s, false);
}

function quote(s: string, ascii: boolean): string {
  if (!(ascii ? NEEDS_ESCAPE_ASCII : NEEDS_ESCAPE).test(s)) return '"' + s + '"';
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) throw invalidArgument(`unpaired surrogate at index ${i} of a string`);
      if (ascii) {
        out += s.slice(start, i) + unicodeEscape(c) + unicodeEscape(next);
        start = i + 2;
      }
      i++;
    } else if (c < 0x20 || c === 0x22 || c === 0x5c || (ascii && c >= 0x7f)) {
      out += s.slice(start, i) + (SHORT_ESCAPES[c] ?? unicodeEscape(c));
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}

function unicodeEscape(unit: number): string {
  return "\\u" + unit.toString(16).padStart(4, "0");
}

/**
 * Python's `repr(float)`: shortest round-trip digits, positional for decimal exponents -4..15
 * (always with a fraction), otherwise `d.ddde±XX`.
 */
export function formatFloat(x: number): string {
  if (!Number.isFinite(x)) throw invalidArgument(`${x} cannot be written as JSON`);
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const a = Math.abs(x);
  // Exact bounds: 1e-4 and 1e16 are their own shortest digits, so nothing below them shares
  // their exponent. JS prints this whole range positionally.
  if (a >= 1e-4 && a < 1e16) {
    const s = String(x);
    return s.includes(".") ? s : s + ".0";
  }
  const s = x.toExponential();
  const e = s.indexOf("e");
  const sign = s[e + 1];
  const digits = s.slice(e + 2);
  return s.slice(0, e) + "e" + sign + (digits.length < 2 ? "0" + digits : digits);
}

function invalidArgument(detail: string): LinksError {
  return new LinksError("invalid_argument", detail);
}
