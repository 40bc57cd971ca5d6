/**
 * Texts already in canonical form take a shorter path in normalizeDatetime and datetimeToMs; it
 * must answer exactly what the general parse answers, for valid and invalid texts alike.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { datetimeToMs, formatInstant, normalizeDatetime, parseDatetime } from "../../../src/core/datetime.ts";

/** What the general path answers (parse, then format), the definition of both functions. */
function general(text: string): { normalized: string | null; ms: number | null } {
  const t = parseDatetime(text);
  return t ? { normalized: formatInstant(t), ms: t.epochSeconds * 1000 + Math.floor(t.micros / 1000) } : { normalized: null, ms: null };
}

function actual(text: string): { normalized: string | null; ms: number | null } {
  const normalized = normalizeDatetime(text);
  return { normalized, ms: normalized === null ? null : datetimeToMs(text) };
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");
const canonicalLike = fc
  .record({
    y: fc.integer({ min: 0, max: 9999 }),
    mo: fc.integer({ min: 0, max: 13 }),
    d: fc.integer({ min: 0, max: 32 }),
    h: fc.integer({ min: 0, max: 24 }),
    mi: fc.integer({ min: 0, max: 60 }),
    s: fc.integer({ min: 0, max: 60 }),
    us: fc.option(fc.integer({ min: 0, max: 999_999 }), { nil: undefined }),
  })
  .map(({ y, mo, d, h, mi, s, us }) => `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${us === undefined ? "" : `.${pad(us, 6)}`}Z`);

describe("a datetime already in canonical form", () => {
  test("gets the same answer as the general parse, over the whole range of fields", () => {
    fc.assert(fc.property(canonicalLike, (text) => {
      expect(actual(text)).toEqual(general(text));
    }), { numRuns: 20_000 });
  });

  test("named cases: leap days, month ends, years before 100, a zero fraction", () => {
    for (const text of [
      "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T23:59:59.999999Z",
      "2024-04-31T00:00:00Z", "0001-01-01T00:00:00Z", "0099-12-31T23:59:59Z", "0100-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
      "9999-12-31T23:59:59.000001Z", "2024-05-01T12:00:00.000000Z", "2024-05-01T12:00:00.5Z", "2024-05-01T24:00:00Z",
    ]) {
      expect({ text, ...actual(text) }).toEqual({ text, ...general(text) });
    }
  });

  test("texts near the canonical form get the same answer too", () => {
    const near = fc.tuple(canonicalLike, fc.integer({ min: 0, max: 30 }), fc.constantFrom("+00:00", "-05:30", "", " ", "z", "T", ".1")).map(
      ([text, at, piece]) => text.slice(0, at) + piece + text.slice(at),
    );
    fc.assert(fc.property(near, (text) => {
      expect(actual(text)).toEqual(general(text));
    }), { numRuns: 20_000 });
  });
});
