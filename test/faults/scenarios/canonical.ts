/**
 * Canonical JSON under fuzzing, in process (src/core/canonical.ts): random values round-trip
 * byte for byte; random and mutated texts are judged like JSON.parse judges them (never accepted
 * when JSON.parse refuses; refused only for the documented stricter rules); every refusal is an
 * invalid_json LinksError, never a crash, a stack overflow or a hang; hostile sizes are refused or
 * read in bounded time. With python3 on the PATH, canonical text is also compared with Python's
 * json.dumps(sort_keys, ensure_ascii=False, compact separators).
 */
import fc from "fast-check";
import {
  canonicalize,
  canonicalizeAscii,
  JsonFloat,
  parseJson,
  type JsonValue,
} from "../../../src/core/canonical.ts";
import { parseCanonicalText } from "../../../src/core/canonical-fast.ts";
import { LinksError } from "../../../src/core/errors.ts";

// ---------------------------------------------------------------- values

const wellFormed = (s: string): boolean => s.isWellFormed();

const keyArb = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ unit: "grapheme", maxLength: 6 }),
  fc.string({ unit: "binary", maxLength: 4 }).filter(wellFormed),
  fc.constantFrom("", "__proto__", "constructor", "toString", "a", "A", "\u00e9", "\ud83d\ude00", "\uffff", "\ue000", "0", "10", "9"),
);

/** Every string escape JSON has, control characters, astral characters, U+2028/9, DEL. */
const stringArb = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 20 }).filter(wellFormed),
  fc
    .array(fc.constantFrom('"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\u0000", "\u001f", "\u007f", "\u2028", "\u2029", "\ud83d\ude00", "\u{10ffff}", "\ufeff", "a"), { maxLength: 20 })
    .map((a) => a.join("")),
);

/** Every number form: safe ints, -0, ints past 2^53 (bigint), every double (as a float). */
const numberArb: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  fc.bigInt({ min: -(10n ** 300n), max: 10n ** 300n }).map((b) => (b >= -BigInt(Number.MAX_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b)),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => new JsonFloat(d)),
  fc.constantFrom(0, new JsonFloat(-0), new JsonFloat(5e-324), new JsonFloat(1e16), new JsonFloat(1e-4), new JsonFloat(9007199254740993), new JsonFloat(1.7976931348623157e308)),
);

const { value: valueArb } = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    numberArb,
    stringArb,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.array(fc.tuple(keyArb, tie("value")), { maxLength: 5 }).map((pairs) => {
      const o: { [k: string]: JsonValue } = Object.create(null);
      for (const [k, v] of pairs) o[k] = v;
      return o;
    }),
  ),
}));

/** A value nested `depth` levels (arrays and objects alternating). */
function nested(depth: number, leaf: JsonValue): JsonValue {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v };
  return v;
}

function depthOf(v: JsonValue): number {
  if (v === null || typeof v !== "object" || v instanceof JsonFloat) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce<number>((m, c) => Math.max(m, depthOf(c)), 0);
}

/** Values, some wrapped up to the parser's limit of 64 levels of nesting. */
export const valueArbitrary = fc.oneof(
  { weight: 9, arbitrary: valueArb },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 64 }), valueArb).map(([d, v]) => nested(Math.min(d, 64 - depthOf(v)), v)) },
);

// ---------------------------------------------------------------- texts

const textMutation = fc.record({
  kind: fc.constantFrom("flip", "insert", "delete", "truncate", "duplicate"),
  at: fc.nat(),
  ch: fc.constantFrom('"', "\\", "[", "]", "{", "}", ",", ":", "-", "+", ".", "e", "0", "1", " ", "\n", "\u0000", "\ud800", "u", "x", "\ufeff", "N", "I"),
});

/** Texts around the edge of JSON: valid ones, and valid ones with one character changed. */
export const textArbitrary = fc.oneof(
  fc.json({ maxDepth: 4, stringUnit: "grapheme" }),
  valueArb.map((v) => canonicalize(v)),
  fc.tuple(valueArb, textMutation).map(([v, m]) => {
    const t = canonicalize(v);
    const at = m.at % (t.length + 1);
    switch (m.kind) {
      case "flip":
        return t.slice(0, at) + m.ch + t.slice(at + 1);
      case "insert":
        return t.slice(0, at) + m.ch + t.slice(at);
      case "delete":
        return t.slice(0, at) + t.slice(at + 1);
      case "truncate":
        return t.slice(0, at);
      default:
        return t.slice(0, at) + t.slice(at, at + 8) + t.slice(at);
    }
  }),
  fc.string({ unit: "binary", maxLength: 30 }),
);

/** Refusals quote the input in bounded excerpts: an error never echoes megabytes back. */
export const MAX_DETAIL = 300;

/** Why parseJson may refuse a text JSON.parse takes: its documented, stricter rules. */
const STRICTER = /duplicate key|unpaired surrogate|nesting deeper|longer than \d+ digits|overflows a double|byte order mark/;

export interface DifferentialStats {
  texts: number;
  acceptedByBoth: number;
  refusedByBoth: number;
  refusedOnlyByLinks: Record<string, number>;
  slowestMs: number;
}

/** The verdict of parseJson on a text agrees with JSON.parse's, as described above. Throws on disagreement. */
export function judgeText(text: string, stats: DifferentialStats): void {
  stats.texts++;
  fastPathAgrees(text);
  let native: unknown;
  let nativeOk = true;
  try {
    native = JSON.parse(text);
  } catch {
    nativeOk = false;
  }
  const t0 = performance.now();
  let ours: JsonValue | undefined;
  let error: unknown;
  try {
    ours = parseJson(text);
  } catch (e) {
    error = e;
  }
  stats.slowestMs = Math.max(stats.slowestMs, performance.now() - t0);
  if (error !== undefined) {
    if (!(error instanceof LinksError) || error.code !== "invalid_json") {
      throw new Error(`parseJson threw ${String(error)} (not an invalid_json LinksError) on ${JSON.stringify(text).slice(0, 200)}`);
    }
    if (error.detail.length > MAX_DETAIL) throw new Error(`the refusal's detail is ${error.detail.length} characters long: ${error.detail.slice(0, 120)}`);
    if (!nativeOk) {
      stats.refusedByBoth++;
      return;
    }
    const rule = STRICTER.exec(error.detail)?.[0];
    if (rule === undefined) throw new Error(`parseJson refused what JSON.parse takes: ${error.detail} on ${JSON.stringify(text).slice(0, 200)}`);
    stats.refusedOnlyByLinks[rule] = (stats.refusedOnlyByLinks[rule] ?? 0) + 1;
    return;
  }
  if (!nativeOk) throw new Error(`parseJson accepted what JSON.parse refuses: ${JSON.stringify(text).slice(0, 200)}`);
  stats.acceptedByBoth++;
  if (!sameAsNative(ours as JsonValue, native)) {
    throw new Error(`parseJson and JSON.parse read different values from ${JSON.stringify(text).slice(0, 200)}`);
  }
  // What was read canonicalizes, and the canonical text reads back to itself.
  const canon = canonicalize(ours as JsonValue);
  if (canonicalize(parseJson(canon)) !== canon) throw new Error(`canonical text does not round-trip: ${canon.slice(0, 200)}`);
}

/** Deep equality of a lossless value with what JSON.parse built (numbers compared as doubles). */
function sameAsNative(ours: JsonValue, native: unknown): boolean {
  if (ours instanceof JsonFloat) return typeof native === "number" && Object.is(ours.value, native);
  if (typeof ours === "bigint") return typeof native === "number" && Number(ours) === native;
  if (typeof ours === "number") return typeof native === "number" && (ours === native || (ours === 0 && native === 0));
  if (ours === null || typeof ours !== "object") return ours === native;
  if (Array.isArray(ours)) {
    return Array.isArray(native) && ours.length === native.length && ours.every((v, i) => sameAsNative(v, native[i]));
  }
  if (typeof native !== "object" || native === null || Array.isArray(native)) return false;
  const keys = Object.keys(ours);
  const nativeKeys = Object.keys(native as object);
  if (keys.length !== nativeKeys.length) return false;
  return keys.every((k) => Object.hasOwn(native as object, k) && sameAsNative(ours[k] as JsonValue, (native as Record<string, unknown>)[k]));
}

/** canonicalize(v) reads back (parseJson) to a value with the same canonical text, also via the ASCII form. */
/**
 * The canonical fast path (src/core/canonical-fast.ts) takes a text exactly when the lossless
 * parser reads it and canonicalizes it back to the same text, and then reads the same value.
 * Only ints past 2^53 and a "__proto__" key are left to the lossless parser on purpose.
 */
export function fastPathAgrees(text: string): void {
  const fast = parseCanonicalText(text);
  let canonicalOfLossless: string | null = null;
  try {
    canonicalOfLossless = canonicalize(parseJson(text));
  } catch {
    // refused by the lossless parser: the fast path must refuse too
  }
  const isCanonical = canonicalOfLossless === text;
  if (fast === undefined) {
    if (isCanonical && !/\d{16}|"__proto__"/.test(text)) throw new Error(`the fast path refused canonical text ${JSON.stringify(text).slice(0, 200)}`);
    return;
  }
  if (!isCanonical) throw new Error(`the fast path took non-canonical text ${JSON.stringify(text).slice(0, 200)}`);
  if (canonicalize(fast) !== text) throw new Error(`the fast path read a different value from ${JSON.stringify(text).slice(0, 200)}`);
}

export function roundTrips(v: JsonValue): void {
  const canon = canonicalize(v);
  fastPathAgrees(canon);
  const back = canonicalize(parseJson(canon));
  if (back !== canon) throw new Error(`round trip changed ${canon.slice(0, 120)} into ${back.slice(0, 120)}`);
  const ascii = canonicalizeAscii(v);
  if (/[^\x00-\x7f]/.test(ascii)) throw new Error(`ensure_ascii output holds non-ASCII: ${ascii.slice(0, 120)}`);
  if (canonicalize(parseJson(ascii)) !== canon) throw new Error(`the ASCII form does not read back to the same value: ${ascii.slice(0, 120)}`);
}

// ---------------------------------------------------------------- hostile sizes

export interface HostileCase {
  name: string;
  text: () => string;
  /** "refused" or "accepted" */
  expect: "refused" | "accepted";
  /** when refused, the detail must match */
  why?: RegExp;
  maxBytes?: number;
}

export const HOSTILE: HostileCase[] = [
  { name: "10 MB of [", text: () => "[".repeat(10 * 1024 * 1024), expect: "refused", why: /nesting deeper than 64/ },
  { name: "10 MB of {\"a\":", text: () => '{"a":'.repeat(2 * 1024 * 1024), expect: "refused", why: /nesting deeper than 64/ },
  { name: "10 MB of [ with maxBytes 1 MiB", text: () => "[".repeat(10 * 1024 * 1024), expect: "refused", why: /over the limit/, maxBytes: 1024 * 1024 },
  { name: "64 levels then 1 MB of ]", text: () => `${"[".repeat(64)}${"]".repeat(1024 * 1024)}`, expect: "refused", why: /unexpected data|expected/ },
  { name: "1 MB string of \\n escapes", text: () => `"${"\\n".repeat(512 * 1024)}"`, expect: "accepted" },
  { name: "1 MB string of \\u00e9 escapes", text: () => `"${"\\u00e9".repeat(180 * 1024)}"`, expect: "accepted" },
  { name: "1 MB string of surrogate pair escapes", text: () => `"${"\\ud83d\\ude00".repeat(90 * 1024)}"`, expect: "accepted" },
  { name: "1 MB string of escapes ending in a lone surrogate", text: () => `"${"\\t".repeat(512 * 1024)}\\ud800"`, expect: "refused", why: /unpaired surrogate/ },
  { name: "1 MB string of escapes, unterminated", text: () => `"${"\\\\".repeat(512 * 1024)}`, expect: "refused", why: /unterminated string/ },
  { name: "1 MB string of raw astral characters", text: () => `"${"\u{1f600}".repeat(256 * 1024)}"`, expect: "accepted" },
  { name: "integer of 100k digits", text: () => "9".repeat(100_000), expect: "refused", why: /longer than 4300 digits/ },
  { name: "negative integer of 100k digits", text: () => `-${"1".repeat(100_000)}`, expect: "refused", why: /longer than 4300 digits/ },
  { name: "integer of 4300 digits", text: () => "7".repeat(4300), expect: "accepted" },
  { name: "float with 100k fraction digits", text: () => `0.${"3".repeat(100_000)}`, expect: "accepted" },
  { name: "float with 100k integer digits", text: () => `${"9".repeat(100_000)}.5`, expect: "refused", why: /overflows a double/ },
  { name: "exponent of 100k digits", text: () => `1e${"9".repeat(100_000)}`, expect: "refused", why: /overflows a double/ },
  { name: "negative exponent of 100k digits", text: () => `1e-${"9".repeat(100_000)}`, expect: "accepted" },
  { name: "array of 1M zeros", text: () => `[${"0,".repeat(1_000_000)}0]`, expect: "accepted" },
  { name: "object of 100k keys", text: () => `{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":${i}`).join(",")}}`, expect: "accepted" },
  { name: "object of 100k keys, the last a duplicate", text: () => `{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":${i}`).join(",")},"k0":1}`, expect: "refused", why: /duplicate key/ },
  { name: "1 MB of whitespace", text: () => `${" \n\t\r".repeat(256 * 1024)}1`, expect: "accepted" },
];

export interface HostileOutcome {
  name: string;
  ok: boolean;
  ms: number;
  detail: string;
}

export function runHostile(c: HostileCase): HostileOutcome {
  const text = c.text();
  const t0 = performance.now();
  let detail = "accepted";
  let refused = false;
  try {
    parseJson(text, c.maxBytes === undefined ? {} : { maxBytes: c.maxBytes });
  } catch (e) {
    refused = true;
    if (!(e instanceof LinksError) || e.code !== "invalid_json") {
      return { name: c.name, ok: false, ms: performance.now() - t0, detail: `threw ${String(e).slice(0, 200)}` };
    }
    detail = e.detail;
    if (detail.length > MAX_DETAIL) {
      return { name: c.name, ok: false, ms: performance.now() - t0, detail: `a ${detail.length}-character detail: ${detail.slice(0, 100)}` };
    }
  }
  const ms = performance.now() - t0;
  const ok = c.expect === "refused" ? refused && (c.why === undefined || c.why.test(detail)) : !refused;
  return { name: c.name, ok, ms, detail };
}

// ---------------------------------------------------------------- Python

export function pythonAvailable(): string | null {
  const r = Bun.spawnSync(["python3", "-c", "import json, sys; print(sys.version_info[0])"], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 0 && r.stdout.toString().trim() === "3" ? null : "python3 is not on the PATH";
}

const PY = `
import json, sys
for line in sys.stdin:
    v = json.loads(line)
    sys.stdout.write(json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\\n")
    sys.stdout.write(json.dumps(v, ensure_ascii=True, sort_keys=True, separators=(",", ":")) + "\\n")
`;

/** Canonical text of each value vs Python's dumps of it; returns the disagreements. */
export async function compareWithPython(values: JsonValue[]): Promise<string[]> {
  const lines = values.map((v) => canonicalizeAscii(v));
  const proc = Bun.spawn(["python3", "-c", PY], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  proc.stdin.write(`${lines.join("\n")}\n`);
  await proc.stdin.end();
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) return [`python3 failed: ${err.slice(0, 400)}`];
  const py = out.split("\n");
  const diffs: string[] = [];
  values.forEach((v, i) => {
    const ours = canonicalize(v);
    const oursAscii = canonicalizeAscii(v);
    if (py[2 * i] !== ours) diffs.push(`ensure_ascii=False: ours ${ours.slice(0, 120)} python ${String(py[2 * i]).slice(0, 120)}`);
    if (py[2 * i + 1] !== oursAscii) diffs.push(`ensure_ascii=True: ours ${oursAscii.slice(0, 120)} python ${String(py[2 * i + 1]).slice(0, 120)}`);
  });
  return diffs;
}
