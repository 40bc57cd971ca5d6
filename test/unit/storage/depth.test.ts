/**
 * Whatever the node accepts at the deepest nesting its inbox and policy routes allow must be
 * readable back from every file it lands in: the write-ahead log, bundle files, village.json,
 * the policy history and the feed built from it.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, unlinkSync } from "node:fs";
import { assertMaxDepth, INPUT_MAX_DEPTH, parseJson, parseStored, type JsonValue } from "../../../src/core/canonical.ts";
import { recover } from "../../../src/storage/group-commit.ts";
import { policyChain } from "../../../src/storage/policy.ts";
import { withOwners } from "../../../src/storage/claims-db.ts";
import { storedBundle } from "../../../src/storage/store.ts";
import { listVillageIds, readVillage } from "../../../src/storage/villages.ts";
import { json, makeNode, signedBundle, VID, type Node } from "../server/helpers.ts";

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.cleanup();
});

/** An array nested `levels` deep: [[[...]]]. */
function nested(levels: number): JsonValue {
  let v: JsonValue = [];
  for (let i = 1; i < levels; i++) v = [v];
  return v;
}

/** The deepest value that still fits when it sits `outer` levels down in a document. */
const deepestValue = (outer: number): JsonValue => nested(INPUT_MAX_DEPTH - outer);

describe("the nesting bound", () => {
  test("assertMaxDepth counts levels the way the parser does", () => {
    const ok = nested(INPUT_MAX_DEPTH);
    expect(() => parseJson(JSON.stringify(ok))).not.toThrow();
    expect(() => assertMaxDepth(ok, "x")).not.toThrow();
    const deep = nested(INPUT_MAX_DEPTH + 1);
    expect(() => parseJson(JSON.stringify(deep))).toThrow(/nesting deeper/);
    expect(() => assertMaxDepth(deep, "x")).toThrow(/nesting deeper/);
    expect(() => parseStored(JSON.stringify(deep))).not.toThrow();
  });
});

describe("when a bundle is nested as deeply as the inbox allows", () => {
  test("it is accepted, and its log line, file and index row read back, also after a crash", async () => {
    const node = makeNode();
    nodes.push(node);
    // bundle { claims [ claim { value ... } ] }: the value starts three levels down
    const bundle = signedBundle(node.key, { value: deepestValue(3) });
    const text = JSON.stringify(bundle);
    expect(() => parseJson(text)).not.toThrow();
    const res = await node.send("POST", `/villages/${VID}/inbox`, { token: node.tokens.member, body: text });
    expect(res.status).toBe(200);
    expect((await json(res)).status).toBe("accepted");

    const wal = readFileSync(node.paths.ingestLogFile(), "utf8").split("\n").filter(Boolean);
    expect(wal.length).toBeGreaterThan(0);
    for (const line of wal) expect(() => parseStored(line)).not.toThrow();

    // a crash that lost the bundle file: recovery rebuilds it from the log line
    unlinkSync(node.paths.bundleFile(bundle.bundle_id, VID));
    expect(recover(node.paths).repaired).toBe(1);
    expect(withOwners(node.paths, undefined, (o) => storedBundle(node.paths, VID, bundle.bundle_id, o))?.bundle_id).toBe(bundle.bundle_id);
  });

  test("one level deeper is refused before anything is written", async () => {
    const node = makeNode();
    nodes.push(node);
    const deepest = JSON.stringify(signedBundle(node.key, { value: deepestValue(3) }));
    const deeper = deepest.replace('"value":[', '"value":[[').replace(/\](,"window_days")/, "]]$1");
    expect(() => parseStored(deeper)).not.toThrow();
    const res = await node.send("POST", `/villages/${VID}/inbox`, { token: node.tokens.member, body: deeper });
    expect(res.status).toBe(400);
    expect((await json(res)).code).toBe("invalid_json");
  });
});

describe("when a policy carries a field nested as deeply as the policy route allows", () => {
  test("village.json, the history and the published chain read back, and the node keeps serving", async () => {
    const node = makeNode();
    nodes.push(node);
    // policy { policy_quorum ... } inside an artifact { policy ... }: two levels down
    const policy = { ...readVillage(node.paths, VID).policy, policy_quorum: deepestValue(2) };
    const before = policyChain(node.paths, VID).length;
    const res = await node.send("POST", `/villages/${VID}/policy`, { token: node.tokens.admin, body: policy });
    expect(await res.json()).toEqual({ status: "applied", policy_hash: expect.any(String) });
    expect(readVillage(node.paths, VID).policy.policy_quorum).toBeDefined();
    expect(listVillageIds(node.paths)).toEqual([VID]);
    expect(policyChain(node.paths, VID).length).toBe(before + 1);
    const latest = await node.send("GET", `/villages/${VID}/policy/latest`);
    expect(latest.status).toBe(200);
    const claims = await node.send("GET", `/villages/${VID}/claims`, { token: node.tokens.member });
    expect(claims.status).toBe(200);

    const deeper = { ...policy, policy_quorum: deepestValue(1) };
    const refused = await node.send("POST", `/villages/${VID}/policy`, { token: node.tokens.admin, body: deeper });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ code: "invalid_json", detail: expect.stringContaining("invalid policy: nesting deeper") });
    expect(policyChain(node.paths, VID).length).toBe(before + 1);
  });
});
