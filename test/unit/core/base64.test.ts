import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeBase64, encodeBase64 } from "../../../src/core/base64.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

describe("decodeBase64 accepts canonical base64 only", () => {
  test("every byte string round-trips through its one canonical text (property-based)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), (bytes) => {
        const text = encodeBase64(bytes);
        expect(decodeBase64(text)).toEqual(bytes);
      }),
      { numRuns: 500 },
    );
  });

  test("for every 1- and 2-byte tail, a last character with a non-zero unused bit is refused", () => {
    let refused = 0;
    for (const tail of [[0x00], [0xff], [0x5a], [0x00, 0x00], [0xff, 0xff], [0x12, 0x34]]) {
      const canonical = encodeBase64(new Uint8Array([1, 2, 3, ...tail]));
      const at = canonical.indexOf("=") - 1; // the last data character
      for (const ch of ALPHABET) {
        const text = canonical.slice(0, at) + ch + canonical.slice(at + 1);
        const loose = new Uint8Array(Buffer.from(text, "base64")); // what a lenient decoder reads
        const isCanonical = encodeBase64(loose) === text;
        expect(decodeBase64(text)).toEqual(isCanonical ? loose : null);
        if (!isCanonical) refused++;
      }
    }
    // one byte in the last group leaves 4 unused bits (60 of 64 characters refused), two leave 2 (48)
    expect(refused).toBe(3 * 60 + 3 * 48);
  });

  test("a 32-byte key and a 64-byte signature with a non-zero unused bit are refused", () => {
    const key = encodeBase64(new Uint8Array(32).fill(7)); // 44 chars, ends "="
    const sig = encodeBase64(new Uint8Array(64).fill(9)); // 88 chars, ends "=="
    expect(decodeBase64(key)).not.toBeNull();
    expect(decodeBase64(sig)).not.toBeNull();
    const bump = (s: string, at: number) => s.slice(0, at) + ALPHABET[(ALPHABET.indexOf(s[at] as string) + 1) % 64] + s.slice(at + 1);
    expect(decodeBase64(bump(key, key.length - 2))).toBeNull();
    expect(decodeBase64(bump(sig, sig.length - 3))).toBeNull();
    // Buffer alone would have read both as the same bytes
    expect(new Uint8Array(Buffer.from(bump(key, key.length - 2), "base64"))).toEqual(new Uint8Array(32).fill(7));
  });

  test("whitespace, URL-safe characters, missing padding and stray padding are refused", () => {
    for (const bad of ["AAAA\n", " AAAA", "AA==AAAA", "AAA", "AA=", "AA-_", "A===", "=AAA", "AAAA="]) {
      expect(decodeBase64(bad)).toBeNull();
    }
    expect(decodeBase64("")).toEqual(new Uint8Array(0));
  });
});
