import { describe, expect, test } from "bun:test";
import { parseBundle } from "../../../src/core/bundle.ts";
import { loadVectors } from "../core/vectors.ts";

describe("when index rows are written as text", () => {
  test("the template gives exactly the canonical text of each row", async () => {
    const { indexRowLines, indexRows } = await import("../../../src/storage/index-rows.ts");
    const { canonicalize, JsonFloat } = await import("../../../src/core/canonical.ts");
    for (const v of loadVectors("bundles")) {
      const b = parseBundle(v.wire);
      for (const [vid, vis] of [["v1", "village"], [null, "public"]] as const) {
        expect(indexRowLines(b, vid, vis)).toEqual(indexRows(b, vid, vis).map((r) => canonicalize(r as never)));
      }
    }
    const odd = parseBundle(loadVectors("bundles")[0]!.wire);
    const withOdd = { ...odd, claims: odd.claims.map((c) => ({ ...c, value: { "～": new JsonFloat(1), "😀": [1n, null] } as never, evidence: ["\u2028", "\n"] })) };
    expect(indexRowLines(withOdd, "v", "village")).toEqual(indexRows(withOdd, "v", "village").map((r) => canonicalize(r as never)));
  });
});
