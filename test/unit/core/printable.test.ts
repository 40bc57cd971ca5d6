import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { jsonForTerminal, printable } from "../../../src/core/printable.ts";
import { toJsonText, parseJson } from "../../../src/core/canonical.ts";

describe("printable", () => {
  test("leaves ordinary text alone, non-ASCII letters and emoji included", () => {
    for (const s of ["", "garden", "Zoë & José: 東京 ✓", "emoji 😀 ok", "a\\nb (a backslash and n)", 'quote " and \' stay']) {
      expect(printable(s)).toBe(s);
    }
  });

  test("escapes newlines, carriage returns and tabs, so no line or column can be forged", () => {
    expect(printable("reason\n2024-01-01T00:00:00Z  ingest.accept by admin")).toBe("reason\\n2024-01-01T00:00:00Z  ingest.accept by admin");
    expect(printable("a\r\nb\tc")).toBe("a\\r\\nb\\tc");
  });

  test("escapes ESC and the one-byte CSI, so no ANSI sequence reaches the terminal", () => {
    expect(printable("\u001b[31mred\u001b[0m")).toBe("\\x1b[31mred\\x1b[0m");
    expect(printable("\u009b2J")).toBe("\\u009b2J");
    expect(printable("\u0000\u0007\u007f")).toBe("\\x00\\x07\\x7f");
  });

  test("escapes the invisible characters that reorder or break lines", () => {
    expect(printable("abc\u202edcba")).toBe("abc\\u202edcba");
    expect(printable("x\u2028y\u2029z\u2066\u2069\u200f\ufeff")).toBe("x\\u2028y\\u2029z\\u2066\\u2069\\u200f\\ufeff");
  });

  test("escapes lone surrogates but keeps well-formed pairs", () => {
    expect(printable("a\ud800b")).toBe("a\\ud800b");
    expect(printable("a\udc00b")).toBe("a\\udc00b");
    expect(printable("\ud83d\ude00")).toBe("😀");
  });

  test("cuts long text to max characters and says how much was left out", () => {
    expect(printable("x".repeat(1000), { max: 10 })).toBe(`${"x".repeat(10)}... (990 more characters)`);
    expect(printable("short", { max: 10 })).toBe("short");
    // a cut never splits a surrogate pair
    expect(printable("ab😀cd", { max: 3 })).toBe("ab... (4 more characters)");
  });

  test("prints non-strings as their String()", () => {
    expect(printable(42)).toBe("42");
    expect(printable(null)).toBe("null");
  });

  test("no output ever holds a control, bidi or line-separator character (property-based)", () => {
    const unsafe = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), fc.option(fc.nat(300), { nil: undefined }), (s, max) => {
        const out = printable(s, max === undefined ? {} : { max });
        expect(unsafe.test(out)).toBe(false);
        expect(out.isWellFormed()).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe("jsonForTerminal", () => {
  test("escapes what JSON leaves raw (C1, bidi overrides, line separators) and keeps the document", () => {
    const value = { predicate: "a\u009b31mred\u202eevil\u2028x", plain: "héllo ✓", n: [1, "\u0085"] };
    const text = toJsonText(value);
    const shown = jsonForTerminal(text);
    expect(shown).not.toMatch(/[\u007f-\u009f\u2028-\u202e]/);
    expect(shown).toContain("\\u009b");
    expect(shown).toContain("\\u202e");
    expect(shown).toContain("héllo ✓");
    expect(parseJson(shown)).toEqual(parseJson(text));
  });
  test("any JSON text stays the same document", () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: "binary" }), (v) => {
        const text = JSON.stringify(v);
        expect(JSON.parse(jsonForTerminal(text))).toEqual(JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });
});
