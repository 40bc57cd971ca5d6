import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { IntCounter } from "../../../src/core/number-table.ts";

describe("an IntCounter", () => {
  test("counts like a Map, through many growths, for any safe non-negative keys", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 50 }), fc.maxSafeNat(), fc.integer({ min: 0, max: 2 ** 26 }).map((n) => n * 2 ** 26)), { maxLength: 3000 }), (keys) => {
        const table = new IntCounter(1);
        const model = new Map<number, number>();
        for (const k of keys) {
          expect(table.increment(k)).toBe(model.get(k) ?? 0);
          model.set(k, (model.get(k) ?? 0) + 1);
        }
        expect(table.size).toBe(model.size);
        expect(new Map(table.entries())).toEqual(model);
        for (const [k, n] of model) expect(table.get(k)).toBe(n);
        expect(table.get(2 ** 53 - 2)).toBe(model.get(2 ** 53 - 2) ?? 0);
      }),
      { numRuns: 200 },
    );
  });

  test("keeps 200,000 sequential keys (the common shape of observation ids)", () => {
    const table = new IntCounter();
    for (let i = 0; i < 200_000; i++) expect(table.increment(i * 2)).toBe(0);
    expect(table.increment(2 * 199_999)).toBe(1);
    expect(table.size).toBe(200_000);
    expect(table.get(1)).toBe(0);
  });

  test("refuses a key it cannot hold exactly", () => {
    const table = new IntCounter();
    for (const bad of [-1, 0.5, 2 ** 53, Number.NaN]) expect(() => table.increment(bad)).toThrow(RangeError);
  });
});
