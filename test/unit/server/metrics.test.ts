import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { addPeer } from "../../../src/replication/peers.ts";
import { NodeMetrics, UNMATCHED } from "../../../src/server/metrics-node.ts";
import { RouteTable } from "../../../src/server/route-table.ts";
import { GroupCommitStats } from "../../../src/storage/group-commit.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { makeNode, PROXY, REMOTE, signedBundle, VID, type Node } from "./helpers.ts";
import { parseExposition, sampleValue, type ParsedFamily } from "./prom-parse.ts";

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

async function scrape(n: Node): Promise<{ text: string; families: Map<string, ParsedFamily> }> {
  const res = await n.send("GET", "/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  return { text, families: parseExposition(text) };
}

const push = (n: Node, bundle: unknown, token = n.tokens.member) => n.send("POST", `/villages/${VID}/inbox`, { token, body: bundle as object });

describe("who may read /metrics", () => {
  test("a peer on this host may; a remote peer gets 403 forbidden as JSON", async () => {
    node = makeNode();
    expect((await node.send("GET", "/metrics")).status).toBe(200);
    expect((await node.send("GET", "/metrics", { ip: "::1" })).status).toBe(200);
    const remote = await node.send("GET", "/metrics", { ip: REMOTE });
    expect(remote.status).toBe(403);
    expect(await remote.json()).toEqual({ code: "forbidden", detail: expect.stringContaining("--metrics-public") });
  });

  test("through a trusted proxy, the client it names decides", async () => {
    node = makeNode({ server: { trustProxy: [PROXY] } });
    const viaProxy = await node.send("GET", "/metrics", { ip: PROXY, headers: { "x-forwarded-for": REMOTE } });
    expect(viaProxy.status).toBe(403);
  });

  test("a loopback proxy does not open it to the clients it forwards", async () => {
    node = makeNode({ server: { trustProxy: ["127.0.0.1"] } });
    const forwarded = await node.send("GET", "/metrics", { headers: { "x-forwarded-for": REMOTE } });
    expect(forwarded.status).toBe(403);
    expect((await node.send("GET", "/metrics")).status).toBe(200);
  });

  test("with metricsPublic, anyone may, within the per-address limit of routes without a token", async () => {
    node = makeNode({ server: { metricsPublic: true, publicRatePerMin: 1 } });
    expect((await node.send("GET", "/metrics", { ip: REMOTE })).status).toBe(200);
    expect((await node.send("GET", "/metrics", { ip: REMOTE })).status).toBe(429);
  });

  test("peers on this host are never rate limited", async () => {
    node = makeNode({ server: { publicRatePerMin: 1 } });
    for (let i = 0; i < 3; i++) expect((await node.send("GET", "/metrics")).status).toBe(200);
  });
});

describe("what /metrics counts", () => {
  test("inbox decisions by village, decision and code, with no bundle id or token in any label", async () => {
    node = makeNode({ policy: { allowed_predicates: ["links.weighted_to"] } });
    const good = signedBundle(node.key);
    expect((await push(node, good)).status).toBe(200);
    expect((await push(node, good)).status).toBe(200);
    const held = signedBundle(node.key, { predicate: "links.other" });
    expect((await push(node, held)).status).toBe(202);
    const tampered = { ...signedBundle(node.key), issuer: "someone-else" };
    expect((await push(node, tampered)).status).toBe(400);
    expect((await push(node, "{not json")).status).toBe(400);

    const { text, families } = await scrape(node);
    const decided = (decision: string, code: string) =>
      sampleValue(families, "links_inbox_decisions_total", "links_inbox_decisions_total", { village: VID, decision, code });
    expect(decided("accepted", "none")).toBe(1);
    expect(decided("duplicate", "none")).toBe(1);
    expect(decided("quarantined", "predicate_not_allowed")).toBe(1);
    expect(decided("rejected", "bundle_id_mismatch")).toBe(1);
    expect(decided("rejected", "invalid_json")).toBe(1);
    expect(sampleValue(families, "links_quarantine_held", "links_quarantine_held", { village: VID })).toBe(1);
    // a stray file in the quarantine folder is no held bundle, for the gauge as for the review list
    writeFileSync(join(node.paths.quarantineDir(VID), "notes.json"), "{}");
    const again = (await scrape(node)).families;
    expect(sampleValue(again, "links_quarantine_held", "links_quarantine_held", { village: VID })).toBe(1);
    const list = (await (await node.send("GET", `/villages/${VID}/quarantine`, { token: node.tokens.admin })).json()) as { total: number };
    expect(list.total).toBe(1);
    for (const secret of [good.bundle_id, held.bundle_id, node.tokens.member, node.tokens.admin]) expect(text).not.toContain(secret);
  });

  test("HTTP requests by route pattern, method and status; unknown paths are one label", async () => {
    node = makeNode();
    await node.send("GET", `/villages/${VID}/claims`, { token: node.tokens.member });
    await node.send("GET", `/villages/${VID}/claims`);
    await node.send("GET", "/no/such/path/123");
    await node.send("DELETE", "/healthz");
    const { text, families } = await scrape(node);
    const requests = (route: string, method: string, status: string) =>
      sampleValue(families, "links_http_requests_total", "links_http_requests_total", { route, method, status });
    expect(requests("/villages/:id/claims", "GET", "200")).toBe(1);
    expect(requests("/villages/:id/claims", "GET", "401")).toBe(1);
    expect(requests(UNMATCHED, "GET", "404")).toBe(1);
    expect(requests(UNMATCHED, "DELETE", "405")).toBe(1);
    expect(text).not.toContain("/no/such/path");
    expect(text).not.toContain(`/villages/${VID}/`);
    expect(sampleValue(families, "links_http_request_duration_seconds", "links_http_request_duration_seconds_count", { route: "/villages/:id/claims" })).toBe(2);
  });

  test("group commit batches and fsyncs are measured", async () => {
    node = makeNode();
    await Promise.all([0, 1, 2].map(() => push(node, signedBundle(node.key))));
    const { families } = await scrape(node);
    const batches = sampleValue(families, "links_group_commit_batch_size", "links_group_commit_batch_size_count") as number;
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(sampleValue(families, "links_group_commit_batch_size", "links_group_commit_batch_size_sum")).toBe(3);
    expect(sampleValue(families, "links_group_commit_fsync_seconds", "links_group_commit_fsync_seconds_count")).toBe(batches);
  });

  test("rate-limit refusals by limit", async () => {
    node = makeNode({ server: { publicRatePerMin: 1, authFailuresPerMin: 1 } });
    await node.send("GET", "/.well-known/links/claims/latest");
    expect((await node.send("GET", "/.well-known/links/claims/latest")).status).toBe(429);
    await node.send("GET", `/villages/${VID}/claims`, { token: "wrong-token" });
    expect((await node.send("GET", `/villages/${VID}/claims`, { token: "wrong-token" })).status).toBe(429);
    const { families } = await scrape(node);
    const refused = (limit: string) => sampleValue(families, "links_rate_limit_refusals_total", "links_rate_limit_refusals_total", { limit });
    expect([refused("public"), refused("auth_failures"), refused("member")]).toEqual([1, 1, 0]);
  });

  test("villages are counted from the data directory; a stray directory is not a village", async () => {
    node = makeNode();
    mkdirSync(join(node.dataDir, "villages", "not-a-village"), { recursive: true });
    const { families } = await scrape(node);
    expect(sampleValue(families, "links_villages", "links_villages")).toBe(1);
    expect(families.get("links_quarantine_held")?.samples.map((s) => s.labels.village)).toEqual([VID]);
    expect(sampleValue(families, "links_build_info", "links_build_info")).toBe(1);
    expect(sampleValue(families, "process_resident_memory_bytes", "process_resident_memory_bytes")).toBeGreaterThan(0);
  });

  test("one scrape reads the villages and the peers' records once, whatever the families that show them", async () => {
    node = makeNode();
    addPeer(node.paths, VID, "http://127.0.0.1:9001", null);
    addPeer(node.paths, VID, "http://127.0.0.1:9002", null);
    // listVillageIds lists villagesDir once; readPeerState opens one state file per peer
    const reads = { villages: 0, peerStates: 0 };
    class CountingPaths extends DataPaths {
      override villagesDir(): string {
        reads.villages++;
        return super.villagesDir();
      }
      override peerStateFile(vid: string, peerId: string): string {
        reads.peerStates++;
        return super.peerStateFile(vid, peerId);
      }
    }
    const metrics = new NodeMetrics({ paths: new CountingPaths(node.dataDir), routes: new RouteTable(), commit: new GroupCommitStats(), verify: null });
    const families = parseExposition(metrics.render());
    expect(sampleValue(families, "links_villages", "links_villages")).toBe(1);
    expect(families.get("links_peer_failures")?.samples).toHaveLength(2);
    expect(families.get("links_peer_drift")?.samples).toHaveLength(8);
    expect(reads).toEqual({ villages: 1, peerStates: 2 });
    // the next scrape reads afresh: a peer added since is there
    addPeer(node.paths, VID, "http://127.0.0.1:9003", null);
    expect(parseExposition(metrics.render()).get("links_peer_failures")?.samples).toHaveLength(3);
    expect(reads).toEqual({ villages: 2, peerStates: 5 });
  });
});
