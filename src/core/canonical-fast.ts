/**
 * The fast path for input that is already canonical (clients send what they signed): the
 * runtime's native JSON.parse builds the value, then one walk checks that the text is exactly
 * the canonical JSON of that value and recovers what JSON.parse loses (a float token such as
 * `1.0` becomes a JsonFloat again). Anything else (whitespace, other key order, other escapes,
 * big or negative-zero ints, a `__proto__` key, too deep) answers undefined and the caller takes the
 * general lossless parser, which also gives the precise error. So the fast path accepts exactly
 * the texts whose lossless parse would canonicalize back to themselves, and returns the same value.
 */
import { compareCodePoints, formatFloat, INPUT_MAX_DEPTH, NEEDS_ESCAPE, JsonFloat, quoteCanonical, sortByCodePoint, type JsonValue } from "./canonical.ts";

const MISMATCH = Symbol("not canonical");

/** JSON.parse keeps canonical text's key order, but for integer-like keys: sort only then. */
function inCodePointOrder(keys: string[]): string[] {
  for (let i = 1; i < keys.length; i++) {
    if (compareCodePoints(keys[i - 1] as string, keys[i] as string) >= 0) return sortByCodePoint(keys);
  }
  return keys;
}

export function parseCanonicalText(text: string): JsonValue | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const walk = new CanonicalWalk(text);
  try {
    const out = walk.value(value, 0);
    return walk.pos === text.length ? out : undefined;
  } catch (e) {
    if (e === MISMATCH) return undefined;
    throw e;
  }
}

class CanonicalWalk {
  pos = 0;
  constructor(private readonly text: string) {}

  private expect(c: number): void {
    if (this.text.charCodeAt(this.pos) !== c) throw MISMATCH;
    this.pos++;
  }

  private literal(word: string): void {
    if (!this.text.startsWith(word, this.pos)) throw MISMATCH;
    this.pos += word.length;
  }

  private string(s: string): void {
    const text = this.text;
    const at = this.pos;
    if (!NEEDS_ESCAPE.test(s)) {
      const end = at + 1 + s.length;
      if (text.charCodeAt(at) !== 0x22 || text.charCodeAt(end) !== 0x22 || !text.startsWith(s, at + 1)) throw MISMATCH;
      this.pos = end + 1;
      return;
    }
    let quoted: string;
    try {
      quoted = quoteCanonical(s);
    } catch {
      throw MISMATCH; // an unpaired surrogate: the lossless parser refuses it
    }
    this.literal(quoted);
  }

  value(v: unknown, depth: number): JsonValue {
    switch (typeof v) {
      case "string":
        this.string(v);
        return v;
      case "number":
        return this.number(v);
      case "boolean":
        this.literal(v ? "true" : "false");
        return v;
      case "object":
        if (v === null) {
          this.literal("null");
          return null;
        }
        if (depth >= INPUT_MAX_DEPTH) throw MISMATCH;
        return Array.isArray(v) ? this.array(v, depth) : this.object(v as Record<string, unknown>, depth);
      default:
        throw MISMATCH;
    }
  }

  private number(v: number): number | JsonFloat {
    const text = this.text;
    const start = this.pos;
    let i = start;
    let isFloat = false;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x2e || c === 0x65 || c === 0x45) isFloat = true;
      else if (!((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b)) break;
      i++;
    }
    const token = text.slice(start, i);
    this.pos = i;
    if (isFloat) {
      if (!Number.isFinite(v) || formatFloat(v) !== token) throw MISMATCH;
      return new JsonFloat(v);
    }
    // String(-0) is "0": a "-0" token, like an int beyond 2^53, goes to the lossless parser.
    if (!Number.isSafeInteger(v) || String(v) !== token) throw MISMATCH;
    return v;
  }

  private array(items: unknown[], depth: number): JsonValue[] {
    this.expect(0x5b);
    const out = items as JsonValue[];
    for (let i = 0; i < items.length; i++) {
      if (i > 0) this.expect(0x2c);
      const item = items[i];
      const lossless = this.value(item, depth + 1);
      if (lossless !== item) out[i] = lossless;
    }
    this.expect(0x5d);
    return out;
  }

  private object(obj: Record<string, unknown>, depth: number): { [key: string]: JsonValue } {
    this.expect(0x7b);
    // Keys come in code-point order in canonical text, whatever order the object keeps them in
    // (a JS object puts integer-like keys first). JSON.parse keeps the last of duplicate keys, so
    // a duplicate leaves a key over in the text and fails the closing brace.
    const keys = inCodePointOrder(Object.keys(obj));
    const out = obj as { [key: string]: JsonValue };
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (key === "__proto__") throw MISMATCH;
      if (i > 0) this.expect(0x2c);
      this.string(key);
      this.expect(0x3a);
      const item = obj[key];
      const lossless = this.value(item, depth + 1);
      if (lossless !== item) out[key] = lossless;
    }
    this.expect(0x7d);
    return out;
  }
}
