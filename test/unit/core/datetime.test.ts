import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  datetimeToMs,
  formatInstant,
  normalizeDatetime,
  nowInstant,
  nowIso,
  parseDatetime,
} from "../../../src/core/datetime.ts";

const CANONICAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$/;

describe("when a datetime is normalized", () => {
  const cases: [string, string, string][] = [
    ["milliseconds are padded to six digits", "2024-05-01T12:00:00.120Z", "2024-05-01T12:00:00.120000Z"],
    ["one fractional digit is padded", "2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00.500000Z"],
    ["microseconds are kept", "2024-05-01T12:00:00.000001Z", "2024-05-01T12:00:00.000001Z"],
    ["a zero fraction is dropped", "2024-05-01T12:00:00.000Z", "2024-05-01T12:00:00Z"],
    ["a six-digit zero fraction is dropped", "2024-05-01T12:00:00.000000Z", "2024-05-01T12:00:00Z"],
    ["+05:30 is converted to UTC", "2024-05-01T17:30:00+05:30", "2024-05-01T12:00:00Z"],
    ["+05:30 with microseconds is converted to UTC", "2024-05-01T17:30:00.000001+05:30", "2024-05-01T12:00:00.000001Z"],
    ["no offset means UTC", "2024-05-01T12:00:00", "2024-05-01T12:00:00Z"],
    ["-00:30 is converted to UTC", "2024-05-01T12:00:00-00:30", "2024-05-01T12:30:00Z"],
    ["+00:00 is UTC", "2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00Z"],
    ["-00:00 is UTC", "2024-05-01T12:00:00-00:00", "2024-05-01T12:00:00Z"],
    ["an offset can cross a day boundary backwards", "2024-01-01T00:00:00+23:59", "2023-12-31T00:01:00Z"],
    ["an offset can cross a year boundary forwards", "2023-12-31T23:30:00-01:00", "2024-01-01T00:30:00Z"],
    ["an offset can land on a leap day", "2024-03-01T01:00:00+02:00", "2024-02-29T23:00:00Z"],
    ["a leap day is accepted", "2024-02-29T23:59:59.999999Z", "2024-02-29T23:59:59.999999Z"],
    ["a leap day in a year divisible by 400 is accepted", "2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"],
    ["year 0001 is the lower bound", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"],
    ["year 0001 moved forward by an offset stays in range", "0001-01-01T00:00:00-00:01", "0001-01-01T00:01:00Z"],
    ["year 9999 is the upper bound", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"],
    ["year 9999 moved back by an offset stays in range", "9999-12-31T23:59:59+00:01", "9999-12-31T23:58:59Z"],
    ["years below 100 are not read as 19xx", "0099-03-01T00:00:00Z", "0099-03-01T00:00:00Z"],
    ["a fraction and an offset combine", "2024-01-01T00:00:00.5+01:00", "2023-12-31T23:00:00.500000Z"],
  ];
  for (const [what, input, output] of cases) {
    test(`${what}: ${input} -> ${output}`, () => {
      expect(normalizeDatetime(input)).toBe(output);
    });
  }
});

describe("when a datetime is not accepted", () => {
  const cases: [string, string][] = [
    ["an offset pushing year 0001 below the range", "0001-01-01T00:00:00+00:01"],
    ["an offset pushing year 9999 above the range", "9999-12-31T23:59:59-00:01"],
    ["year 0000", "0000-01-01T00:00:00Z"],
    ["February 30", "2024-02-30T00:00:00Z"],
    ["February 29 in a common year", "2023-02-29T00:00:00Z"],
    ["February 29 in a century year", "1900-02-29T00:00:00Z"],
    ["April 31", "2024-04-31T00:00:00Z"],
    ["month 13", "2024-13-01T00:00:00Z"],
    ["month 00", "2024-00-01T00:00:00Z"],
    ["day 00", "2024-01-00T00:00:00Z"],
    ["hour 24", "2024-01-01T24:00:00Z"],
    ["minute 60", "2024-01-01T00:60:00Z"],
    ["second 60", "2024-01-01T23:59:60Z"],
    ["7 fraction digits", "2024-01-01T00:00:00.1234567Z"],
    ["an empty fraction", "2024-01-01T00:00:00.Z"],
    ["a space separator", "2024-01-01 00:00:00Z"],
    ["a lowercase t", "2024-01-01t00:00:00Z"],
    ["a lowercase z", "2024-01-01T00:00:00z"],
    ["an offset hour of 24", "2024-01-01T00:00:00+24:00"],
    ["an offset minute of 60", "2024-01-01T00:00:00+01:60"],
    ["an offset without a colon", "2024-01-01T00:00:00+0100"],
    ["an offset of hours only", "2024-01-01T00:00:00+01"],
    ["no seconds", "2024-01-01T00:00Z"],
    ["a date only", "2024-01-01"],
    ["a five-digit year", "10000-01-01T00:00:00Z"],
    ["a two-digit year", "24-01-01T00:00:00Z"],
    ["a fullwidth digit", "２024-01-01T00:00:00Z"],
    ["leading whitespace", " 2024-01-01T00:00:00Z"],
    ["a trailing newline", "2024-01-01T00:00:00Z\n"],
    ["both Z and an offset", "2024-01-01T00:00:00Z+01:00"],
    ["the empty string", ""],
    ["a Unix time as text", "1714564800"],
  ];
  for (const [what, input] of cases) {
    test(`${what} (${JSON.stringify(input)}) gives null`, () => {
      expect(normalizeDatetime(input)).toBeNull();
      expect(parseDatetime(input)).toBeNull();
    });
  }

  test("datetimeToMs throws a RangeError on text that is not accepted", () => {
    expect(() => datetimeToMs("2024-02-30T00:00:00Z")).toThrow(RangeError);
  });
});

describe("when converting to milliseconds", () => {
  test("microseconds are truncated, not rounded", () => {
    expect(datetimeToMs("2024-05-01T12:00:00.999999Z")).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 999));
    expect(datetimeToMs("1969-12-31T23:59:59.999999Z")).toBe(-1);
  });

  test("the offset is applied", () => {
    expect(datetimeToMs("2024-05-01T17:30:00+05:30")).toBe(Date.UTC(2024, 4, 1, 12));
  });
});

describe("the current time", () => {
  test("nowIso has the canonical form with microseconds when they are not zero", () => {
    for (let i = 0; i < 20; i++) {
      const now = nowIso();
      expect(now).toMatch(CANONICAL);
      expect(normalizeDatetime(now)).toBe(now);
    }
  });

  test("nowIso is close to Date.now()", () => {
    const before = Date.now();
    const now = datetimeToMs(nowIso());
    const after = Date.now();
    expect(now).toBeGreaterThanOrEqual(before - 5);
    expect(now).toBeLessThanOrEqual(after + 5);
  });

  test("nowInstant carries microseconds in 0..999999", () => {
    const micros = Array.from({ length: 200 }, () => nowInstant().micros);
    expect(micros.every((m) => Number.isInteger(m) && m >= 0 && m < 1_000_000)).toBe(true);
    // sub-millisecond digits are actually filled in, not always 000
    expect(micros.some((m) => m % 1000 !== 0)).toBe(true);
  });
});

describe("for any instant between years 0001 and 9999", () => {
  // Date.UTC maps years 0..99 to 1900..1999, so build the bounds with setUTCFullYear.
  const lower = new Date(0);
  lower.setUTCFullYear(1, 0, 1);
  lower.setUTCHours(0, 0, 0, 0);
  const upper = new Date(0);
  upper.setUTCFullYear(9999, 11, 31);
  upper.setUTCHours(23, 59, 59, 0);
  const instant = fc.record({
    epochSeconds: fc.integer({ min: lower.getTime() / 1000, max: upper.getTime() / 1000 }),
    micros: fc.integer({ min: 0, max: 999_999 }),
  });

  test("format, parse and format again is the identity, microseconds included", () => {
    fc.assert(
      fc.property(instant, (t) => {
        const text = formatInstant(t);
        expect(text).toMatch(CANONICAL);
        expect(parseDatetime(text)).toEqual(t);
        expect(normalizeDatetime(text)).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  test("the same instant written with any offset normalizes to the same text", () => {
    const offset = fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 });
    fc.assert(
      fc.property(instant, offset, (t, minutes) => {
        const shifted = t.epochSeconds + minutes * 60;
        if (shifted < lower.getTime() / 1000 || shifted > upper.getTime() / 1000) return; // local time out of range
        const local = formatInstant({ epochSeconds: shifted, micros: t.micros });
        const sign = minutes < 0 ? "-" : "+";
        const abs = Math.abs(minutes);
        const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
        const withOffset = local.slice(0, -1) + zone;
        expect(normalizeDatetime(withOffset)).toBe(formatInstant(t));
      }),
      { numRuns: 1000 },
    );
  });

  test("milliseconds written with three digits read as the same instant as six", () => {
    fc.assert(
      fc.property(instant, fc.integer({ min: 0, max: 999 }), (t, ms) => {
        const base = formatInstant({ epochSeconds: t.epochSeconds, micros: 0 }).slice(0, -1);
        const three = `${base}.${String(ms).padStart(3, "0")}Z`;
        expect(parseDatetime(three)).toEqual({ epochSeconds: t.epochSeconds, micros: ms * 1000 });
      }),
      { numRuns: 500 },
    );
  });
});
