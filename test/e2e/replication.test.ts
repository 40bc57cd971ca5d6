/**
 * A village across several nodes, with the compiled binary: `links peers` as an operator uses it,
 * three nodes in a full mesh converging under concurrent pushes, a signed policy update spreading
 * by background sync alone, and `links peers sync` beside a node whose own loop holds the peer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bundleText, makeBundle, signingKey } from "../faults/lib/bundles.ts";
import { runPool } from "../faults/lib/http.ts";
import { acceptRows, indexCounts, MESH_VID, peersStatus, startMesh, storedIds, unverifiable, waitFor, type Mesh } from "../faults/lib/mesh.ts";
import { makeVillage, push } from "../faults/lib/village.ts";
import { errorCode, json, lastLine, links, linksOk, makeTempDir, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";

const STATUS_FIELDS = ["village", "url", "last_success", "last_error", "cursor", "bundles_pulled", "bundles_accepted", "bundles_quarantined", "bundles_refused", "local_head", "remote_head", "drift"];

let tmp: TempDir;
beforeAll(() => {
  tmp = makeTempDir("links-e2e-repl-");
});
afterAll(() => tmp.remove());

describe("links peers", () => {
  test("add takes the token from a file or LINKS_PEER_TOKEN, keeps it 0600 and never prints it", async () => {
    const data = tmp.join("cli");
    await makeVillage(data, "garden", { scratch: tmp.path });
    const secret = "cGVlci10b2tlbi1mcm9tLWEtZmlsZS0xMjM0NTY3ODkwYQ";
    const envSecret = "cGVlci10b2tlbi1mcm9tLXRoZS1lbnZpcm9ubWVudC0xMjM";
    writeFileSync(tmp.join("peer.token"), `${secret}\n`, { mode: 0o600 });
    await linksOk(["peers", "add", "garden", "http://127.0.0.1:9/", "--token-file", tmp.join("peer.token"), "--data", data]);
    await linksOk(["peers", "add", "garden", "https://node-c.example", "--data", data], { env: { LINKS_PEER_TOKEN: envSecret } });
    const file = join(data, "replication", "peers.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toContain(secret);

    const listed = await linksOk(["peers", "list", "--data", data]);
    const listedJson = json<{ peers: Array<Record<string, unknown>> }>(await linksOk(["peers", "list", "--json", "--data", data]));
    const status = await linksOk(["peers", "status", "--json", "--data", data]);
    for (const out of [listed.stdout, listed.stderr, JSON.stringify(listedJson), status.stdout]) {
      expect(out).not.toContain(secret);
      expect(out).not.toContain(envSecret);
    }
    expect(listedJson.peers).toEqual([
      expect.objectContaining({ village: "garden", url: "http://127.0.0.1:9", has_token: true }),
      expect.objectContaining({ village: "garden", url: "https://node-c.example", has_token: true }),
    ]);
    const statuses = json<{ peers: Array<Record<string, unknown>> }>(status).peers;
    for (const s of statuses) expect(Object.keys(s).sort()).toEqual([...STATUS_FIELDS].sort());
    expect(statuses[0]).toMatchObject({ cursor: null, last_success: null, last_error: null, drift: "behind" });

    await linksOk(["peers", "remove", "garden", "https://node-c.example/", "--data", data]);
    expect(json<{ peers: unknown[] }>(await linksOk(["peers", "list", "--json", "--data", data])).peers).toHaveLength(1);
  });

  test("mistakes get a clear error and change nothing", async () => {
    const data = tmp.join("cli-errors");
    await makeVillage(data, "garden", { scratch: tmp.path });
    const cases: Array<[string[], number, string | null]> = [
      [["peers", "add", "orchard", "http://127.0.0.1:9"], 1, "village_not_found"],
      [["peers", "add", "garden", "http://user:pw@127.0.0.1:9"], 1, "invalid_argument"],
      [["peers", "add", "garden", "not a url"], 1, "invalid_argument"],
      [["peers", "add", "garden", "http://127.0.0.1:9", "--token-file", tmp.join("missing.token")], 1, "not_found"],
      [["peers", "add", "garden", "http://127.0.0.1:9", "--token", "abc"], 2, null],
      [["peers", "remove", "garden", "http://127.0.0.1:9"], 1, "peer_not_found"],
      [["peers", "sync", "orchard"], 1, "village_not_found"],
      [["serve", "--port", "0", "--sync-interval", "soon"], 1, "invalid_argument"],
    ];
    for (const [args, code, errCode] of cases) {
      const r = await links([...args, "--data", data]);
      expect({ args, code: r.code }).toEqual({ args, code });
      if (errCode) expect(errorCode(r.stderr)).toBe(errCode);
      else expect(r.stderr).toContain('unknown option "--token"');
    }
    expect(json<{ peers: unknown[] }>(await linksOk(["peers", "list", "--json", "--data", data])).peers).toEqual([]);
    const dup = tmp.join("dup.token");
    writeFileSync(dup, "dG9rZW4\n");
    await linksOk(["peers", "add", "garden", "http://127.0.0.1:9", "--token-file", dup, "--data", data]);
    const again = await links(["peers", "add", "garden", "http://127.0.0.1:9/", "--token-file", dup, "--data", data]);
    expect(again.code).toBe(1);
    expect(errorCode(again.stderr)).toBe("peer_exists");
  });

  test("sync against a peer that is down fails with a clear last_error and exit 1", async () => {
    const data = tmp.join("cli-down");
    await makeVillage(data, "garden", { scratch: tmp.path });
    await linksOk(["peers", "add", "garden", "http://127.0.0.1:9", "--data", data]);
    const r = await links(["peers", "sync", "--json", "--timeout", "5", "--data", data]);
    expect(r.code).toBe(1);
    expect(json<{ peers: unknown[] }>(r).peers).toEqual([expect.objectContaining({ status: "failed", code: "unavailable" })]);
    const [s] = await peersStatus(data);
    expect(s?.last_error).toMatchObject({ code: "unavailable" });
    expect(s?.last_error?.detail).toContain("127.0.0.1:9");
  });
});

describe("three nodes in a full mesh", () => {
  let mesh: Mesh;
  let signer: { key: string; hash: string };

  beforeAll(async () => {
    const keys = tmp.join("signer");
    await linksOk(["keys", "gen", "--out-dir", keys]);
    signer = { key: join(keys, "ed25519.key"), hash: lastLine((await linksOk(["keys", "hash", join(keys, "ed25519.pub")])).stdout) };
    const policy = { require_policy_signature: true, policy_signer_allowlist: [signer.hash], policy_signature_threshold_m: 1 };
    mesh = await startMesh(tmp.join("mesh"), ["a", "b", "c"], { syncInterval: 1, policy });
  }, 60_000);
  afterAll(async () => {
    await mesh?.stopAll();
  });

  test("concurrent pushes to all three converge to the same bundles, each claim indexed once per node", async () => {
    const key = signingKey();
    const own = Object.fromEntries(mesh.nodes.map((n) => [n.name, Array.from({ length: 30 }, () => makeBundle(key, `own-${n.name}`))]));
    const shared = Array.from({ length: 5 }, () => makeBundle(key, "shared"));
    const jobs = mesh.nodes.flatMap((n) => [...(own[n.name] ?? []), ...shared].map((b) => ({ n, b })));
    const started = performance.now();
    await runPool(jobs, 6, async ({ n, b }) => {
      const r = await push(n.url(), MESH_VID, n.village.tokens.writer as string, bundleText(b));
      if (r.status !== 200) throw new Error(`push to ${n.name} answered ${r.status}: ${JSON.stringify(r.body)}`);
    });
    const pushedMs = performance.now() - started;
    const all = [...Object.values(own).flat(), ...shared].map((b) => b.bundle_id).sort();
    const convergeMs = await waitFor(
      () => mesh.nodes.every((n) => storedIds(n.data).length === all.length),
      60_000,
      () => mesh.nodes.map((n) => `${n.name}: ${storedIds(n.data).length}/${all.length}`).join(", "),
    );
    console.log(`[replication] 3 nodes, ${jobs.length} pushes (${all.length} distinct bundles) in ${(pushedMs / 1000).toFixed(1)} s; converged ${(convergeMs / 1000).toFixed(1)} s after the last push`);
    for (const n of mesh.nodes) {
      expect(storedIds(n.data)).toEqual(all);
      const rows = indexCounts(n.data);
      expect(all.filter((id) => rows.get(id) !== 1)).toEqual([]);
      const accepts = acceptRows(n.data);
      expect(all.filter((id) => accepts.get(id) !== 1)).toEqual([]);
      expect(unverifiable(n.data)).toEqual([]);
    }
    // and every peer says so once its next pass ran
    await waitFor(
      async () => (await Promise.all(mesh.nodes.map((n) => peersStatus(n.data)))).flat().every((s) => s.drift === "aligned" && s.last_error === null),
      30_000,
      () => "some peer is not aligned",
    );
    const statuses = (await Promise.all(mesh.nodes.map((n) => peersStatus(n.data)))).flat();
    expect(statuses).toHaveLength(6);
    for (const s of statuses) expect(s.local_head).toBe(s.remote_head as string);
    // every node checked each peer's audit log: its key pinned, a signed checkpoint of the village kept
    for (const n of mesh.nodes) {
      const dir = join(n.data, "replication", MESH_VID);
      const records = readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as { audit: string; node_key: { name: string } | null; checkpoint: { origin: string; size: number } | null });
      expect(records).toHaveLength(2);
      for (const r of records) {
        expect(r.audit).toBe("checked");
        expect(r.checkpoint?.origin).toBe(`links/${r.node_key?.name}/${MESH_VID}`);
        expect(r.checkpoint?.size).toBeGreaterThan(0);
      }
    }
  }, 120_000);

  test("a signed policy update applied on one node reaches the others by background sync alone", async () => {
    const a = mesh.byName("a");
    const current = json<{ policy: Record<string, unknown> }>(await linksOk(["villages", "show", MESH_VID, "--json", "--data", a.data])).policy;
    const next = tmp.join("next-policy.json");
    writeFileSync(next, JSON.stringify({ ...current, max_window_days: 14 }));
    await linksOk(["policy", "export", MESH_VID, "--policy", next, "--out", tmp.join("u.json"), "--data", a.data]);
    await linksOk(["policy", "sign", tmp.join("u.json"), "--key", signer.key, "--out", tmp.join("u.signed.json")]);
    await linksOk(["policy", "apply-local", MESH_VID, tmp.join("u.signed.json"), "--data", a.data]);
    const head = (JSON.parse(readFileSync(tmp.join("u.signed.json"), "utf8")) as { policy_hash: string }).policy_hash;
    const windowOf = async (data: string) =>
      json<{ policy: { max_window_days: number } }>(await linksOk(["villages", "show", MESH_VID, "--json", "--data", data])).policy.max_window_days;
    const ms = await waitFor(
      async () => (await Promise.all(mesh.nodes.map((n) => windowOf(n.data)))).every((w) => w === 14),
      30_000,
      () => "the update has not reached every node",
      300,
    );
    console.log(`[replication] a signed policy update reached the other two nodes in ${(ms / 1000).toFixed(1)} s`);
    for (const n of mesh.nodes.filter((x) => x.name !== "a")) {
      const history = readFileSync(join(n.data, "villages", MESH_VID, "policy_history.jsonl"), "utf8");
      expect(history).toContain(head);
    }
  }, 60_000);
});

describe("links peers sync beside a running node", () => {
  let a: RunningNode | undefined;
  let b: RunningNode | undefined;
  let gate: ReturnType<typeof Bun.serve> | undefined;
  afterAll(async () => {
    gate?.stop(true);
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test("finds the node's pass holding the peer, says so and skips; nothing is applied twice, no cursor is lost", async () => {
    const dataA = tmp.join("gate-a");
    const dataB = tmp.join("gate-b");
    const va = await makeVillage(dataA, MESH_VID, { scratch: tmp.path, members: [["writer", "member"], ["node-b", "observer"]] });
    await makeVillage(dataB, MESH_VID, { scratch: tmp.path });
    a = await startNode(dataA, ["--sync-interval", "0"]);
    const key = signingKey();
    const ids: string[] = [];
    for (let i = 0; i < 120; i++) {
      const bundle = makeBundle(key, "gate");
      ids.push(bundle.bundle_id);
      expect((await push(a.url, MESH_VID, va.tokens.writer as string, bundleText(bundle))).status).toBe(200);
    }
    // a relay that holds the first feed request until the test lets it through
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held!: () => void;
    const holding = new Promise<void>((r) => (held = r));
    let first = true;
    const upstream = a.url;
    gate = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const url = new URL(req.url);
        if (url.pathname.endsWith("/bundles") && first) {
          first = false;
          held();
          await released;
        }
        return fetch(`${upstream}${url.pathname}${url.search}`, { headers: req.headers });
      },
    });
    writeFileSync(tmp.join("gate.token"), `${va.tokens["node-b"]}\n`);
    await linksOk(["peers", "add", MESH_VID, `http://127.0.0.1:${gate.port}`, "--token-file", tmp.join("gate.token"), "--data", dataB]);
    b = await startNode(dataB, ["--sync-interval", "1"]);
    await holding; // the node's own pass holds the peer now

    const clis = await Promise.all([0, 1].map(() => links(["peers", "sync", "--json", "--data", dataB])));
    for (const r of clis) {
      expect(r.code).toBe(0);
      expect(json<{ peers: unknown[] }>(r).peers).toEqual([expect.objectContaining({ status: "in_progress", pulled: 0 })]);
    }
    const human = await links(["peers", "sync", "--data", dataB]);
    expect(human.stderr).toContain("in progress");

    // stopping the node does not wait for its peer: the held pass ends at once, the node exits 0
    expect(await b.stop()).toBe(0);
    expect(storedIds(dataB)).toEqual([]);
    b = await startNode(dataB, ["--sync-interval", "1"]);
    release();
    await waitFor(() => storedIds(dataB).length === ids.length, 60_000, () => `${storedIds(dataB).length}/${ids.length} stored`);
    // the loop and one more command pass: nothing left, nothing twice
    const after = json<{ peers: Array<{ status: string; pulled: number; accepted: number }> }>(
      await waitForOk(() => links(["peers", "sync", "--json", "--data", dataB])),
    ).peers[0];
    expect(after).toMatchObject({ status: "ok", accepted: 0 });
    const rows = indexCounts(dataB);
    expect(ids.filter((id) => rows.get(id) !== 1)).toEqual([]);
    const accepts = acceptRows(dataB);
    expect(ids.filter((id) => accepts.get(id) !== 1)).toEqual([]);
    const [status] = await peersStatus(dataB);
    expect(status).toMatchObject({ bundles_accepted: ids.length, drift: "aligned", last_error: null });
    expect(status?.cursor).not.toBeNull();
  }, 120_000);
});

/** Runs a `peers sync` until it is not skipped because the node's own pass holds the peer. */
async function waitForOk(run: () => Promise<{ code: number; stdout: string; stderr: string }>): Promise<{ code: number; stdout: string; stderr: string }> {
  for (let i = 0; i < 50; i++) {
    const r = await run();
    if (!r.stdout.includes('"in_progress"')) return r;
    await Bun.sleep(200);
  }
  throw new Error("peers sync found the peer held on every try");
}
