import { describe, expect, test } from "bun:test";
import { RateLimiter } from "../../../src/server/middleware/rate-limit/limiter.ts";

function clock(start = 60_000 * 1000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe("the rate limiter", () => {
  test("allows limit requests per window, then refuses without counting the refusals", () => {
    const c = clock();
    const l = new RateLimiter({ now: c.now });
    const results = Array.from({ length: 5 }, () => l.consume("k", 3));
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false]);
    expect(results.map((r) => r.remaining)).toEqual([2, 1, 0, 0, 0]);
  });

  test("starts counting afresh when the window ends, and says when that is", () => {
    const c = clock();
    const l = new RateLimiter({ now: c.now });
    c.advance(45_000);
    expect(l.consume("k", 1)).toMatchObject({ allowed: true, resetSeconds: 15 });
    expect(l.consume("k", 1).allowed).toBe(false);
    c.advance(15_000);
    expect(l.consume("k", 1)).toMatchObject({ allowed: true, resetSeconds: 60 });
  });

  test("keeps keys apart", () => {
    const l = new RateLimiter({ now: clock().now });
    expect(l.consume("a", 1).allowed).toBe(true);
    expect(l.consume("b", 1).allowed).toBe(true);
    expect(l.consume("a", 1).allowed).toBe(false);
  });

  test("peek and record count without a limit attached", () => {
    const l = new RateLimiter({ now: clock().now });
    l.record("f");
    l.record("f");
    expect(l.peek("f", 2)).toMatchObject({ allowed: false, remaining: 0 });
    expect(l.peek("f", 3)).toMatchObject({ allowed: true, remaining: 1 });
  });

  test("refuses options that would make it unbounded or wrong", () => {
    expect(() => new RateLimiter({ capacity: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ capacity: Number.POSITIVE_INFINITY })).toThrow(RangeError);
    expect(() => new RateLimiter({ windowMs: 10 })).toThrow(RangeError);
    expect(() => new RateLimiter({ sketchWidth: 1000 })).toThrow(RangeError);
  });

  describe("when there are more keys than its capacity", () => {
    test("an evicted key that comes back in the same window keeps its count (never past its limit)", () => {
      const l = new RateLimiter({ capacity: 10, now: clock().now });
      for (let i = 0; i < 5; i++) l.consume("heavy", 5);
      expect(l.consume("heavy", 5).allowed).toBe(false);
      for (let i = 0; i < 100; i++) l.consume(`flood-${i}`, 5);
      expect(l.size).toBeLessThanOrEqual(10);
      expect(l.consume("heavy", 5).allowed).toBe(false);
    });

    test("a key evicted again and again still never gets past its limit within a window", () => {
      const l = new RateLimiter({ capacity: 4, now: clock().now });
      let allowed = 0;
      for (let round = 0; round < 50; round++) {
        if (l.consume("attacker", 10).allowed) allowed++;
        for (let i = 0; i < 8; i++) l.consume(`noise-${round}-${i}`, 10);
      }
      expect(allowed).toBe(10);
    });

    test("keys whose window ended are dropped first, and cost nothing to forget", () => {
      const c = clock();
      const l = new RateLimiter({ capacity: 100, now: c.now });
      for (let i = 0; i < 100; i++) l.consume(`old-${i}`, 1);
      c.advance(60_000);
      expect(l.sweep()).toBe(100);
      expect(l.size).toBe(0);
      expect(l.consume("old-1", 1).allowed).toBe(true);
    });

    test("a new key is not limited early by light traffic from many other keys", () => {
      const l = new RateLimiter({ capacity: 1000, now: clock().now });
      for (let i = 0; i < 50_000; i++) l.consume(`light-${i}`, 20);
      expect(l.consume("newcomer", 20)).toMatchObject({ allowed: true });
      expect(l.peek("newcomer", 20).remaining).toBeGreaterThanOrEqual(17);
    });

    test("its memory stays bounded: 1,000,000 distinct keys never hold more than capacity", () => {
      const capacity = 100_000;
      const l = new RateLimiter({ capacity, now: clock().now });
      Bun.gc(true);
      const before = process.memoryUsage().heapUsed;
      let maxSize = 0;
      for (let i = 0; i < 1_000_000; i++) {
        l.consume(`198.51.${i >>> 16}.${i & 0xffff}`, 120);
        if (l.size > maxSize) maxSize = l.size;
      }
      Bun.gc(true);
      const after = process.memoryUsage().heapUsed;
      console.log(
        `rate limiter: 1,000,000 keys, capacity ${capacity}, max size ${maxSize}; heap used ${(before / 2 ** 20).toFixed(1)} MiB before, ${(after / 2 ** 20).toFixed(1)} MiB after`,
      );
      expect(maxSize).toBe(capacity);
      expect(l.size).toBeLessThanOrEqual(capacity);
    });
  });
});
