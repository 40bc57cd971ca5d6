import { VECTORS_DIR } from "../../fixtures/vectors-dir.ts";
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  canonicalBytes,
  canonicalize,
  canonicalizeAscii,
  compareCodePoints,
  formatFloat,
  JsonFloat,
  type JsonValue,
  parseJson,
  sha256Hex,
  toJsonText,
} from "../../../src/core/canonical.ts";
import { LinksError } from "../../../src/core/errors.ts";

const VECTORS = VECTORS_DIR;

type JsonObject = { [key: string]: JsonValue };

function vectorFiles(dir: string): { name: string; meta: Record<string, unknown>; wire: Uint8Array }[] {
  return readdirSync(join(VECTORS, dir))
    .filter((f) => f.endsWith(".json") && !f.endsWith(".wire.json"))
    .sort()
    .map((f) => ({
      name: f.replace(/\.json$/, ""),
      meta: JSON.parse(readFileSync(join(VECTORS, dir, f), "utf8")),
      wire: new Uint8Array(readFileSync(join(VECTORS, dir, f.replace(/\.json$/, ".wire.json")))),
    }));
}

/**
 * The bundle schema's missing-field defaults (spec section 2). Only absent fields are added;
 * present values are left exactly as parsed, so the canonical rules are still what is tested.
 */
function fillBundleDefaults(bundle: JsonObject): JsonObject {
  bundle.signature_alg ??= "Ed25519";
  for (const claim of bundle.claims as JsonObject[]) {
    for (const key of ["object", "value", "derivation"]) claim[key] ??= null;
    claim.evidence ??= [];
  }
  return bundle;
}

/** Vectors whose wire text needs datetime normalization (another module) before it hashes right. */
const NEEDS_DATETIME_NORMALIZATION = new Set(["10-timestamps"]);

function expectInvalidJson(input: string | Uint8Array, opts?: Parameters<typeof parseJson>[1]): LinksError {
  try {
    parseJson(input, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(LinksError);
    expect((e as LinksError).code).toBe("invalid_json");
    return e as LinksError;
  }
  throw new Error(`accepted ${JSON.stringify(input).slice(0, 80)}`);
}

function expectInvalidArgument(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LinksError);
    expect((e as LinksError).code).toBe("invalid_argument");
    return;
  }
  throw new Error("no error thrown");
}

/** Parses, and on failure requires a LinksError invalid_json (anything else is a bug). */
function parseOrNull(input: string | Uint8Array): JsonValue | undefined {
  try {
    return parseJson(input);
  } catch (e) {
    if (!(e instanceof LinksError) || e.code !== "invalid_json") throw e;
    return undefined;
  }
}

/** Python's repr(float), rebuilt independently from the digits and exponent of toExponential(). */
function reprReference(x: number): string {
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa = "", exponent = ""] = x.toExponential().split("e");
  const e = Number(exponent);
  const sign = x < 0 ? "-" : "";
  const digits = mantissa.replace("-", "").replace(".", "");
  if (e >= -4 && e < 16) {
    if (e < 0) return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
    if (digits.length <= e + 1) return `${sign}${digits.padEnd(e + 1, "0")}.0`;
    return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
}

function nextAfter(x: number, direction: 1 | -1): number {
  const f = new Float64Array([x]);
  const bits = new BigInt64Array(f.buffer);
  bits[0] = bits[0]! + (x > 0 ? 1n : -1n) * BigInt(direction);
  return f[0]!;
}

const codePoints = (s: string): number[] => [...s].map((c) => c.codePointAt(0)!);

function compareArrays(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function jsonValue(opts: { floats: boolean }): fc.Arbitrary<JsonValue> {
  const leaves: fc.Arbitrary<JsonValue>[] = [fc.constant(null), fc.boolean(), fc.string({ unit: "binary", maxLength: 12 }), fc.maxSafeInteger()];
  if (opts.floats) {
    leaves.push(fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }));
    leaves.push(fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => new JsonFloat(x)));
  }
  const { value } = fc.letrec<{ value: JsonValue; array: JsonValue[]; object: JsonObject }>((tie) => ({
    value: fc.oneof(
      { depthSize: "medium", maxDepth: 8 },
      ...leaves,
      { arbitrary: tie("array"), weight: 3 },
      { arbitrary: tie("object"), weight: 3 },
    ),
    array: fc.array(tie("value"), { maxLength: 6 }),
    object: fc.dictionary(fc.string({ unit: "binary", maxLength: 6 }), tie("value"), { maxKeys: 6 }),
  }));
  return value;
}

describe("wire-format vectors", () => {
  for (const { name, meta, wire } of vectorFiles("bundles")) {
    test(`bundle ${name} canonicalizes to the signed bytes and the bundle_id preimage`, () => {
      const payload = fillBundleDefaults(parseJson(wire) as JsonObject);
      delete payload.signature;
      delete payload.public_key;
      if (NEEDS_DATETIME_NORMALIZATION.has(name)) {
        // Its wire datetimes (".120Z", "+05:30", no offset) are normalized by the schema module,
        // so only the canonical rules on Python's own output are checked here.
        expect(canonicalize(parseJson(meta.signed_bytes_utf8 as string))).toBe(meta.signed_bytes_utf8 as string);
        return;
      }
      expect(canonicalize(payload)).toBe(meta.signed_bytes_utf8 as string);
      payload.bundle_id = "";
      expect(canonicalize(payload)).toBe(meta.bundle_id_preimage_utf8 as string);
      expect(sha256Hex(canonicalBytes(payload)).slice(0, 32)).toBe(meta.expected_bundle_id as string);
    });
  }

  for (const { name, meta, wire } of vectorFiles("policy_updates")) {
    test(`policy update ${name} canonicalizes its policy to the hashed bytes`, () => {
      const policy = (parseJson(wire) as JsonObject).policy!;
      expect(canonicalize(policy)).toBe(meta.policy_canonical_utf8 as string);
      expect(sha256Hex(canonicalize(policy))).toBe(meta.expected_policy_hash as string);
      if (typeof meta.audit_policy_hash16_for_comparison === "string") {
        expect(sha256Hex(canonicalizeAscii(policy)).slice(0, 16)).toBe(meta.audit_policy_hash16_for_comparison);
      }
      expect(canonicalize(parseJson(meta.signed_bytes_utf8 as string))).toBe(meta.signed_bytes_utf8 as string);
    });
  }
});

describe("floats", () => {
  const pythonReprs: [number, string][] = [
    [1, "1.0"], [100, "100.0"], [1e-4, "0.0001"], [1e-5, "1e-05"], [0.1 + 0.2, "0.30000000000000004"],
    [1e15, "1000000000000000.0"], [1e16, "1e+16"], [1.2345678901234568e20, "1.2345678901234568e+20"],
    [1e21, "1e+21"], [5e-324, "5e-324"], [-0, "-0.0"], [0, "0.0"], [1.7976931348623157e308, "1.7976931348623157e+308"],
    [123456789012345.6, "123456789012345.6"], [9999999999999998, "9999999999999998.0"], [0.00012345, "0.00012345"],
    [1.5e-5, "1.5e-05"], [-2.5, "-2.5"], [1e100, "1e+100"], [-1e-7, "-1e-07"],
  ];
  for (const [x, repr] of pythonReprs) {
    test(`${repr} is written as Python's repr`, () => {
      expect(formatFloat(x)).toBe(repr);
      expect(canonicalize(new JsonFloat(x))).toBe(repr);
    });
  }

  test("every double round-trips bit-exactly through formatFloat and parseJson", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const parsed = parseJson(formatFloat(x));
        return parsed instanceof JsonFloat && Object.is(parsed.value, x);
      }),
      { numRuns: 500 },
    );
  });

  test("every double matches the reference repr built from toExponential", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => formatFloat(x) === reprReference(x)),
      { numRuns: 500 },
    );
  });

  test("the positional/exponential boundaries hold for the neighbours of 1e-4, 1e-5, 1e15 and 1e16", () => {
    for (const edge of [1e-4, 1e-5, 1e15, 1e16]) {
      let below = edge;
      let above = edge;
      for (let i = 0; i < 5; i++) {
        below = nextAfter(below, -1);
        above = nextAfter(above, 1);
        for (const x of [below, above, -below, -above]) expect(formatFloat(x)).toBe(reprReference(x));
      }
    }
    expect(formatFloat(nextAfter(1e16, -1))).toBe("9999999999999998.0");
    expect(formatFloat(nextAfter(1e-4, -1))).toBe("9.999999999999999e-05");
  });

  test("NaN and infinities cannot be written", () => {
    for (const x of [NaN, Infinity, -Infinity]) {
      expectInvalidArgument(() => formatFloat(x));
      expectInvalidArgument(() => canonicalize([new JsonFloat(x)]));
    }
  });

  test("1e-400 underflows to 0.0 as in Python, and -1e-400 to -0.0", () => {
    expect(canonicalize(parseJson("[1e-400,-1e-400]"))).toBe("[0.0,-0.0]");
  });
});

describe("integers", () => {
  test("an integer beyond 2^53 round-trips as exact digits through a bigint", () => {
    const v = parseJson("[12345678901234567890123,-9007199254740993,9007199254740991]");
    expect(v).toEqual([12345678901234567890123n, -9007199254740993n, 9007199254740991]);
    expect(canonicalize(v)).toBe("[12345678901234567890123,-9007199254740993,9007199254740991]");
  });

  test("-0 is the int 0 while -0.0 stays a negative zero float", () => {
    expect(Object.is(parseJson("-0"), 0)).toBe(true);
    expect(canonicalize(parseJson("[-0,-0.0]"))).toBe("[0,-0.0]");
  });

  test("1.0 stays 1.0 and 1E5 becomes the float 100000.0", () => {
    expect(canonicalize(parseJson("[1.0,1E5,1e5,2]"))).toBe("[1.0,100000.0,100000.0,2]");
  });

  test("a number that is not a safe integer cannot be written as an int", () => {
    for (const x of [2 ** 53, 1.5, NaN]) expectInvalidArgument(() => canonicalize(x));
  });

  test("an integer longer than Python's 4300 digit limit is refused", () => {
    expect(canonicalize(parseJson("9".repeat(4300)))).toBe("9".repeat(4300));
    expectInvalidJson("9".repeat(4301));
  });
});

describe("object keys", () => {
  test("keys are sorted by code point, not by UTF-16 unit or integer-likeness", () => {
    const v = parseJson('{"～":1,"😀":2,"a":3,"9":4,"10":5,"\\ue000":6,"\\ud7ff":7}');
    expect(canonicalize(v)).toBe('{"10":5,"9":4,"a":3,"\ud7ff":7,"\ue000":6,"～":1,"😀":2}');
  });

  test("sorted keys follow code point order for arbitrary unicode keys", () => {
    // Biased towards the chars where UTF-16 and code point order disagree (E000-FFFF vs astral).
    const char = fc.oneof(fc.constantFrom("a", "9", "é", "\ud7ff", "\ue000", "～", "\uffff", "😀", "𐀀"), fc.string({ unit: "binary", minLength: 1, maxLength: 1 }));
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ unit: char, maxLength: 4 }), { maxLength: 8 }), (keys) => {
        const obj: JsonObject = Object.create(null);
        keys.forEach((k, i) => (obj[k] = i));
        const expected = [...keys].sort((a, b) => compareArrays(codePoints(a), codePoints(b)));
        expect([...keys].sort(compareCodePoints)).toEqual(expected);
        // JSON.stringify quotes well-formed strings exactly as the canonical form does.
        return canonicalize(obj) === "{" + expected.map((k) => `${JSON.stringify(k)}:${obj[k]}`).join(",") + "}";
      }),
      { numRuns: 300 },
    );
  });

  test("__proto__ and constructor are ordinary keys", () => {
    const v = parseJson('{"__proto__":{"x":1},"constructor":2}') as JsonObject;
    expect(Object.getPrototypeOf(v)).toBeNull();
    expect(Object.keys(v)).toEqual(["__proto__", "constructor"]);
    expect(canonicalize(v)).toBe('{"__proto__":{"x":1},"constructor":2}');
  });

  test("undefined properties are skipped and plain objects with a prototype serialize", () => {
    const v = { b: 1, a: undefined, c: { d: undefined } } as unknown as JsonValue;
    expect(canonicalize(v)).toBe('{"b":1,"c":{}}');
  });

  test("class instances and undefined array items cannot be written", () => {
    expectInvalidArgument(() => canonicalize(new Date(0) as unknown as JsonValue));
    expectInvalidArgument(() => canonicalize([undefined] as unknown as JsonValue));
  });
});

describe("string escapes", () => {
  test("every control character is escaped as Python does", () => {
    const short: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
    for (let c = 0; c < 0x20; c++) {
      const expected = short[c] ?? `\\u${c.toString(16).padStart(4, "0")}`;
      expect(canonicalize(String.fromCharCode(c))).toBe(`"${expected}"`);
    }
  });

  test("quote and backslash are escaped; DEL, U+2028, slash and astral chars are raw", () => {
    expect(canonicalize('"\\')).toBe('"\\"\\\\"');
    expect(canonicalize("\u007f\u2028\u2029/😀")).toBe('"\u007f\u2028\u2029/😀"');
  });

  test("ensure_ascii output escapes non-ASCII as lowercase \\u, astral chars as surrogate pairs", () => {
    expect(canonicalizeAscii({ "é": "a😀\n" })).toBe('{"\\u00e9":"a\\ud83d\\ude00\\n"}');
  });

  test("ensure_ascii output escapes DEL as \\u007f, as Python's json.dumps(ensure_ascii=True) does", () => {
    // Python: json.dumps("a\x7fb") == '"a\\u007fb"' (its ASCII escape covers everything outside " ".."~")
    expect(canonicalizeAscii("a\u007fb")).toBe('"a\\u007fb"');
    expect(canonicalize("a\u007fb")).toBe('"a\u007fb"');
  });

  test("any well-formed string is written as JSON.stringify writes it", () => {
    fc.assert(fc.property(fc.string({ unit: "binary" }), (s) => canonicalize(s) === JSON.stringify(s)), { numRuns: 500 });
  });

  test("a lone surrogate in a JS string cannot be written", () => {
    for (const s of ["\ud800", "a\udc00", "\ud83dx"]) {
      expectInvalidArgument(() => canonicalize(s));
      expectInvalidArgument(() => canonicalizeAscii({ [s]: 1 }));
    }
  });

  test("escaped surrogate pairs decode to the astral char", () => {
    expect(parseJson('"\\ud83d\\ude00"')).toBe("😀");
  });
});

describe("rejected input", () => {
  const rejected: [string, string | Uint8Array][] = [
    ["NaN", "NaN"], ["Infinity", "Infinity"], ["-Infinity", "-Infinity"], ["an overflowing float", "1e400"],
    ["a negative overflowing float", "-1e400"], ["a lone high surrogate escape", '"\\ud800"'],
    ["a lone low surrogate escape", '"\\udc00"'], ["a high surrogate escape before a letter", '"\\ud800x"'],
    ["a lone raw surrogate", '"\ud800"'], ["duplicate keys", '{"a":1,"a":2}'], ["trailing garbage", "{} x"],
    ["a trailing comma in an array", "[1,]"], ["a trailing comma in an object", '{"a":1,}'],
    ["a leading zero", "01"], ["a plus sign", "+1"], ["a bare fraction", ".5"], ["a dangling point", "1."],
    ["a missing exponent", "1e"], ["a BOM", "\ufeff{}"], ["a BOM in bytes", new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])],
    ["a raw newline in a string", '"a\nb"'], ["a raw NUL in a string", '"\u0000"'], ["an invalid escape", '"\\x"'],
    ["a short \\u escape", '"\\u12"'], ["invalid UTF-8", new Uint8Array([0x22, 0xff, 0x22])],
    ["an overlong UTF-8 sequence", new Uint8Array([0x22, 0xc0, 0xaf, 0x22])], ["empty input", ""],
    ["only whitespace", " \n\t"], ["a form feed as whitespace", "\f1"], ["an unterminated string", '"abc'],
    ["an unclosed array", "[1"], ["a single quote string", "'a'"], ["a bad literal", "nul"],
  ];
  for (const [what, input] of rejected) {
    test(`${what} is refused as invalid_json`, () => {
      expectInvalidJson(input);
    });
  }

  test("error details say what and where", () => {
    expect(expectInvalidJson('{"a":1,"a":2}').detail).toContain('duplicate key "a" at offset 7');
    expect(expectInvalidJson(new Uint8Array([0x31, 0x20, 0xff])).detail).toContain("byte 2");
  });

  test("64 levels of nesting are accepted and 65 refused", () => {
    expect(parseJson("[".repeat(64) + "]".repeat(64))).toBeDefined();
    expect(parseJson('{"a":'.repeat(64) + "1" + "}".repeat(64))).toBeDefined();
    expectInvalidJson("[".repeat(65) + "]".repeat(65));
    expectInvalidJson("[".repeat(3) + "]".repeat(3), { maxDepth: 2 });
  });

  test("100000 open brackets are refused without a stack overflow", () => {
    expectInvalidJson("[".repeat(100_000));
    expectInvalidJson("[".repeat(100_000), { maxDepth: 1_000_000 });
  });

  test("input over maxBytes is refused", () => {
    expect(parseJson('"ééé"', { maxBytes: 8 })).toBe("ééé");
    expectInvalidJson('"éééé"', { maxBytes: 8 });
    expectInvalidJson(new TextEncoder().encode('"éééé"'), { maxBytes: 8 });
  });

  test("whitespace around the value is allowed", () => {
    expect(parseJson(" \t\r\n[ 1 , { \"a\" : true } ]\n")).toEqual([1, { a: true }]);
  });
});

describe("round trips", () => {
  test("canonical text parses back to the same canonical text", () => {
    fc.assert(
      fc.property(jsonValue({ floats: true }), (v) => {
        const text = canonicalize(v);
        return canonicalize(parseJson(text)) === text && canonicalize(parseJson(canonicalBytes(v))) === text;
      }),
      { numRuns: 400 },
    );
  });

  test("values without floats or bigints read back through JSON.parse unchanged", () => {
    fc.assert(
      fc.property(jsonValue({ floats: false }), (v) => {
        expect(JSON.parse(canonicalize(v))).toEqual(v as never);
      }),
      { numRuns: 300 },
    );
  });

  test("toJsonText is canonicalize and sha256Hex hashes strings as UTF-8", () => {
    expect(toJsonText({ b: [1], a: "é" })).toBe('{"a":"é","b":[1]}');
    expect(sha256Hex("é")).toBe(sha256Hex(new Uint8Array([0xc3, 0xa9])));
    expect(sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });
});

describe("fuzzing", () => {
  const jsonish = fc.string({
    unit: fc.constantFrom(..."{}[],:\"\\ 0123456789-+.eEtrufalsn\\u00d8ad\n\t".split(""), "\\u", "\\ud83d", "😀", "é", "\u0000"),
    maxLength: 40,
  });

  test("random text is parsed or refused with invalid_json, and accepted text is also valid to JSON.parse", () => {
    fc.assert(
      fc.property(fc.oneof(jsonish, fc.string({ unit: "binary", maxLength: 40 })), (s) => {
        const v = parseOrNull(s);
        if (v === undefined) return true;
        JSON.parse(s);
        canonicalize(v);
        return true;
      }),
      { numRuns: 2000 },
    );
  });

  test("byte mutations of valid documents are parsed or refused with invalid_json", () => {
    const mutation = fc.tuple(fc.nat(), fc.constantFrom("replace", "insert", "delete"), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(jsonValue({ floats: true }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (v, mutations) => {
        const bytes = [...canonicalBytes(v)];
        for (const [at, kind, byte] of mutations) {
          const i = at % (bytes.length + 1);
          if (kind === "replace") bytes[i] = byte;
          else if (kind === "insert") bytes.splice(i, 0, byte);
          else bytes.splice(i, 1);
        }
        const parsed = parseOrNull(new Uint8Array(bytes));
        if (parsed !== undefined) canonicalize(parsed);
        return true;
      }),
      { numRuns: 1000 },
    );
  });

  test("pathological inputs parse in linear time", () => {
    const started = performance.now();
    parseJson('"' + "\\n\\u0041\\ud83d\\ude00".repeat(50_000) + '"');
    parseJson("{" + Array.from({ length: 50_000 }, (_, i) => `"k${i}":${i}`).join(",") + "}");
    parseJson("0." + "1".repeat(500_000));
    expect(performance.now() - started).toBeLessThan(3000);
  });
});
