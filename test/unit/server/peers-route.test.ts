/**
 * GET /villages/:id/peers: the village's peers as `links peers status --json` shows them, for its
 * admins only, never with a token.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { addPeer } from "../../../src/replication/peers.ts";
import { readPeerState, StatusRecorder } from "../../../src/replication/state.ts";
import { makeNode, VID, type Node } from "./helpers.ts";
import { parseExposition, sampleValue } from "./prom-parse.ts";

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

const SECRET = "c2VjcmV0LXRva2VuLW9mLXRoZS1wZWVyLW5vZGUtMTIzNA";
const FIELDS = ["village", "url", "last_success", "last_error", "cursor", "bundles_pulled", "bundles_accepted", "bundles_quarantined", "bundles_refused", "local_head", "remote_head", "drift"];

describe("GET /villages/:id/peers", () => {
  test("lists the village's peers with exactly the status fields, and no token", async () => {
    node = makeNode();
    addPeer(node.paths, VID, "http://127.0.0.1:9001", SECRET);
    addPeer(node.paths, VID, "http://127.0.0.1:9002", null);
    const recorder = new StatusRecorder(node.paths, readPeerState(node.paths, { village: VID, url: "http://127.0.0.1:9002" }));
    await recorder.fail("unavailable", "cannot reach http://127.0.0.1:9002");

    const res = await node.send("GET", `/villages/${VID}/peers`, { token: node.tokens.admin });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    const { peers } = JSON.parse(text) as { peers: Array<Record<string, unknown>> };
    expect(peers.map((p) => p.url)).toEqual(["http://127.0.0.1:9001", "http://127.0.0.1:9002"]);
    for (const p of peers) expect(Object.keys(p).sort()).toEqual([...FIELDS].sort());
    expect(peers[0]).toMatchObject({ village: VID, cursor: null, last_success: null, last_error: null, drift: "behind", bundles_pulled: 0 });
    expect(peers[1]?.last_error).toMatchObject({ code: "unavailable", detail: "cannot reach http://127.0.0.1:9002" });
  });

  test("an empty list when the village has no peers", async () => {
    node = makeNode();
    const res = await node.send("GET", `/villages/${VID}/peers`, { token: node.tokens.admin });
    expect(await res.json()).toEqual({ peers: [] });
  });

  test("needs the manage right", async () => {
    node = makeNode();
    expect((await node.send("GET", `/villages/${VID}/peers`, { token: node.tokens.member })).status).toBe(403);
    expect((await node.send("GET", `/villages/${VID}/peers`, {})).status).toBe(401);
  });
});

describe("the peers in /metrics", () => {
  test("are read from the same records: counters by outcome, failures, last success and drift", async () => {
    node = makeNode();
    addPeer(node.paths, VID, "http://127.0.0.1:9001", SECRET);
    const peer = { village: VID, url: "http://127.0.0.1:9001" };
    const recorder = new StatusRecorder(node.paths, readPeerState(node.paths, peer));
    await recorder.update({ bundles_pulled: 7, bundles_accepted: 5, bundles_quarantined: 1, bundles_refused: 1 });
    await recorder.fail("unavailable", "down");
    await recorder.fail("unavailable", "down");

    const res = await node.send("GET", "/metrics");
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    const families = parseExposition(text);
    const labels = { village: VID, peer: peer.url };
    const bundles = (outcome: string) => sampleValue(families, "links_peer_bundles_total", "links_peer_bundles_total", { ...labels, outcome });
    expect([bundles("pulled"), bundles("accepted"), bundles("quarantined"), bundles("refused")]).toEqual([7, 5, 1, 1]);
    expect(sampleValue(families, "links_peer_failures", "links_peer_failures", labels)).toBe(2);
    expect(sampleValue(families, "links_peer_last_success_timestamp_seconds", "links_peer_last_success_timestamp_seconds", labels)).toBe(0);
    expect(sampleValue(families, "links_peer_drift", "links_peer_drift", { ...labels, drift: "behind" })).toBe(1);
    expect(sampleValue(families, "links_peer_drift", "links_peer_drift", { ...labels, drift: "aligned" })).toBe(0);

    await recorder.succeed({ drift: "aligned" });
    const after = parseExposition(await (await node.send("GET", "/metrics")).text());
    expect(sampleValue(after, "links_peer_failures", "links_peer_failures", labels)).toBe(0);
    expect(sampleValue(after, "links_peer_drift", "links_peer_drift", { ...labels, drift: "aligned" })).toBe(1);
    expect(sampleValue(after, "links_peer_last_success_timestamp_seconds", "links_peer_last_success_timestamp_seconds", labels)).toBeGreaterThan(0);
  });
});
