/**
 * The canonical JSON fuzz as test cases, sized by the caller (the fast suite and test:faults).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { JsonValue } from "../../../src/core/canonical.ts";
import { figures } from "../lib/scale.ts";
import {
  compareWithPython,
  HOSTILE,
  judgeText,
  pythonAvailable,
  roundTrips,
  runHostile,
  textArbitrary,
  valueArbitrary,
  type DifferentialStats,
} from "./canonical.ts";

export function canonicalFuzzSuite(o: { runs: number; seed: number; python: boolean; hostileLimitMs: number }): void {
  describe("canonical JSON under fuzzing", () => {
    test(`${o.runs} random values (deep nesting, every number form, every escape, astral characters) round-trip byte for byte`, () => {
      fc.assert(fc.property(valueArbitrary, (v) => roundTrips(v)), { numRuns: o.runs, seed: o.seed });
      figures("canonical round-trip", { values: o.runs, seed: o.seed, failures: 0 });
    });

    test(`${o.runs * 4} random and mutated texts: accepted only if JSON.parse accepts them, refused only by the stricter rules, never a crash`, () => {
      const stats: DifferentialStats = { texts: 0, acceptedByBoth: 0, refusedByBoth: 0, refusedOnlyByLinks: {}, slowestMs: 0 };
      fc.assert(fc.property(textArbitrary, (t) => judgeText(t, stats)), { numRuns: o.runs * 4, seed: o.seed });
      figures("canonical differential", {
        texts: stats.texts,
        accepted_by_both: stats.acceptedByBoth,
        refused_by_both: stats.refusedByBoth,
        refused_only_by_links: Object.entries(stats.refusedOnlyByLinks).map(([k, v]) => `${k.replace(/ /g, "_")}:${v}`).join(",") || 0,
        slowest_ms: stats.slowestMs.toFixed(1),
      });
    });

    test(`hostile sizes are refused (or read) in bounded time, with invalid_json and no stack overflow`, () => {
      const outcomes = HOSTILE.map(runHostile);
      for (const r of outcomes) console.log(`[faults] canonical hostile: ${r.ok ? "ok  " : "FAIL"} ${r.ms.toFixed(0).padStart(5)} ms  ${r.name}: ${r.detail}`);
      figures("canonical hostile", { cases: outcomes.length, failures: outcomes.filter((r) => !r.ok).length, slowest_ms: Math.max(...outcomes.map((r) => r.ms)).toFixed(0) });
      expect(outcomes.filter((r) => !r.ok)).toEqual([]);
      expect(outcomes.filter((r) => r.ms > o.hostileLimitMs).map((r) => `${r.name}: ${r.ms.toFixed(0)} ms`)).toEqual([]);
    });

    if (o.python) {
      const why = pythonAvailable();
      test.skipIf(why !== null)(`canonical text equals Python's json.dumps for ${o.runs} random values`, async () => {
        const values = fc.sample(valueArbitrary, { numRuns: o.runs, seed: o.seed }) as JsonValue[];
        const diffs = await compareWithPython(values);
        figures("canonical vs python", { values: values.length, disagreements: diffs.length });
        expect(diffs.slice(0, 10)).toEqual([]);
      });
      if (why !== null) console.log(`[faults] canonical vs python: SKIPPED: ${why}`);
    }
  });
}
