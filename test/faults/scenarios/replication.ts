/**
 * Replication under faults, with real `links serve` processes syncing in the background:
 *
 * - crash: node B is killed with SIGKILL while it pulls a large backlog from A (and while both take
 *   pushes), then restarted, several times. At the end both hold every bundle either acknowledged,
 *   each indexed once and accepted once, every file verifying.
 * - hostile relay: B first syncs only through a relay in front of A that alters (content, signature,
 *   or re-signed by an outsider), drops, reorders, duplicates and replays bundles and pages, or
 *   answers garbage. Nothing altered is stored (re-signed ones are quarantined by the issuer
 *   allowlist); then B is given A itself as a peer and converges to A's set.
 * - bad peers: B has a peer that is down, one that answers garbage, one that answers 429 with
 *   Retry-After, and one behind a slow link. Each gets a clear last_error (the slow one succeeds)
 *   and backs off, while B keeps answering its own requests.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { computeBundleId, type Bundle } from "../../../src/core/bundle.ts";
import { parseStored, toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { linksOk } from "../../e2e/harness.ts";
import { startNode, type RunningNode } from "../../e2e/node.ts";
import { bundleText, makeBundle, resign, signingKey } from "../lib/bundles.ts";
import { runPool } from "../lib/http.ts";
import {
  acceptRows,
  indexCounts,
  MESH_VID,
  peerStateOf,
  peersStatus,
  startFront,
  startMesh,
  startMeshNode,
  storedIds,
  unverifiable,
  waitFor,
  type Front,
  type Mesh,
} from "../lib/mesh.ts";
import { figures } from "../lib/scale.ts";
import { runScenarioOnce } from "../lib/suite.ts";
import { makeVillage, push } from "../lib/village.ts";

export interface ReplicationSizes {
  /** SIGKILL rounds of node B */
  crashRounds: number;
  /** bundles A holds before B starts pulling */
  backlog: number;
  /** bundles the hostile relay's village holds */
  relayBundles: number;
  /** how long the bad peers are watched, in ms */
  badPeersMs: number;
  timeoutMs: number;
}

/** A small deterministic generator, so a run's relay behaviour can be told apart in its log. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

interface CrashResult {
  kills: Array<{ stored: number; of: number; step: string }>;
  acknowledged: string[];
  a: string[];
  b: string[];
  convergeMs: number;
  indexedTwice: number;
  acceptedTwice: number;
  unverifiable: number;
}

async function crashScenario(dir: string, sizes: ReplicationSizes): Promise<CrashResult> {
  const mesh: Mesh = await startMesh(dir, ["a", "b"], { syncInterval: 1 });
  const a = mesh.byName("a");
  const b = mesh.byName("b");
  const key = signingKey();
  const acknowledged: string[] = [];
  const kills: CrashResult["kills"] = [];
  try {
    // B is stopped while A takes its backlog, so that B has a long way to go when it comes back
    await b.process?.kill();
    b.front.target = null;
    const backlog = Array.from({ length: sizes.backlog }, () => makeBundle(key, "backlog"));
    await runPool(backlog, 8, async (bundle) => {
      const r = await push(a.url(), MESH_VID, a.village.tokens.writer as string, bundleText(bundle));
      if (r.status !== 200) throw new Error(`backlog push answered ${r.status}`);
      acknowledged.push(bundle.bundle_id);
    });
    // each feed page takes a while: B is caught in the middle of its backlog
    a.front.delayMs = (url) => (url.pathname.endsWith("/bundles") ? 100 : 0);

    let pushing = true;
    const pushers = [a, b].map(async (n) => {
      while (pushing) {
        const bundle = makeBundle(key, `live-${n.name}`);
        try {
          const r = await push(n.front.url, MESH_VID, n.village.tokens.writer as string, bundleText(bundle));
          if (r.status === 200) acknowledged.push(bundle.bundle_id);
        } catch {
          // the node is down: not acknowledged
        }
        await Bun.sleep(20);
      }
    });

    const backlogIds = new Set(backlog.map((x) => x.bundle_id));
    const heldOfBacklog = () => storedIds(b.data).filter((id) => backlogIds.has(id)).length;
    for (let round = 0; round < sizes.crashRounds; round++) {
      await startMeshNode(b, 1);
      // each kill waits until B has pulled more of A's backlog since it came back (so it is in the
      // middle of it), unless it already holds all of it
      const before = heldOfBacklog();
      await waitFor(() => heldOfBacklog() > before || before === backlogIds.size, 30_000, () => `B pulled nothing after restart ${round}`, 10);
      await Bun.sleep(Math.floor(Math.random() * 200));
      kills.push({ stored: heldOfBacklog(), of: backlogIds.size, step: readState(b.data, a.front.url) });
      await b.process?.kill();
      b.front.target = null;
      await Bun.sleep(200);
    }
    await startMeshNode(b, 1);
    pushing = false;
    await Promise.all(pushers);
    a.front.delayMs = () => 0;

    const want = [...new Set(acknowledged)].sort();
    const same = () => {
      const [x, y] = [storedIds(a.data), storedIds(b.data)];
      return x.length === y.length && x.every((id, i) => id === y[i]) && want.every((id) => x.includes(id));
    };
    const convergeMs = await waitFor(same, sizes.timeoutMs / 2, () => `A ${storedIds(a.data).length}, B ${storedIds(b.data).length}, acknowledged ${want.length}`);
    const twice = (counts: Map<string, number>) => [...counts.values()].filter((n) => n > 1).length;
    return {
      kills,
      acknowledged: want,
      a: storedIds(a.data),
      b: storedIds(b.data),
      convergeMs,
      indexedTwice: twice(indexCounts(a.data)) + twice(indexCounts(b.data)),
      acceptedTwice: twice(acceptRows(a.data)) + twice(acceptRows(b.data)),
      unverifiable: unverifiable(a.data).length + unverifiable(b.data).length,
    };
  } finally {
    await mesh.stopAll();
  }
}

/** The step B's record of its peer A says the pass was at (what the kill interrupted). */
function readState(data: string, url: string): string {
  try {
    return peerStateOf(data, url).step;
  } catch {
    return "none";
  }
}

const HARMS = [
  "alter a value",
  "alter a value and its id",
  "break a signature",
  "re-sign by an outsider",
  "drop bundles",
  "reorder",
  "duplicate a bundle",
  "replay an earlier page",
  "garbage",
  "honest",
] as const;
type Harm = (typeof HARMS)[number];

interface RelayResult {
  actions: Record<string, number>;
  ids: string[];
  afterRelay: { stored: string[]; unverifiable: number; foreign: string[]; quarantined: number; refused: number; lastError: string | null };
  final: { stored: string[]; unverifiable: number; foreign: string[] };
  convergeMs: number;
}

async function hostileRelayScenario(dir: string, sizes: ReplicationSizes, seed: number): Promise<RelayResult> {
  const key = signingKey();
  const outsider = signingKey();
  const mesh = await startMesh(dir, ["a", "b"], { syncInterval: 1, peers: [], policy: { issuer_allowlist: [key.keyHash] } });
  const a = mesh.byName("a");
  const b = mesh.byName("b");
  const random = rng(seed);
  const actions: Record<string, number> = {};
  const count = (what: string) => (actions[what] = (actions[what] ?? 0) + 1);
  const pages: string[] = [];
  let tampered = 0;
  const relay = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const upstream = await fetch(`${a.url()}${url.pathname}${url.search}`, { headers: req.headers });
      if (!url.pathname.endsWith("/bundles") || upstream.status !== 200) return upstream;
      const text = await upstream.text();
      pages.push(text);
      const page = parseStored(text) as { bundles: Array<Record<string, JsonValue>>; next_cursor: JsonValue };
      const json = (v: unknown) => new Response(toJsonText(v as JsonValue), { headers: { "content-type": "application/json" } });
      if (page.bundles.length === 0) return json(page);
      // each kind of harm once, in turn, then at random
      const kind = tampered < HARMS.length ? (HARMS[tampered] as Harm) : (HARMS[Math.floor(random() * HARMS.length)] as Harm);
      tampered++;
      count(kind);
      const i = Math.floor(random() * page.bundles.length);
      const bundles = [...page.bundles];
      const target = bundles[i] as Record<string, JsonValue>;
      switch (kind) {
        case "alter a value":
          bundles[i] = { ...target, claims: (target.claims as Array<Record<string, JsonValue>>).map((c) => ({ ...c, subject: `${c.subject as string}-altered` })) };
          break;
        case "alter a value and its id": {
          const altered = { ...target, issuer: "someone-else" };
          bundles[i] = { ...altered, bundle_id: computeBundleId(altered as unknown as Bundle) };
          break;
        }
        case "break a signature": {
          const sig = String(target.signature);
          bundles[i] = { ...target, signature: `${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}` };
          break;
        }
        case "re-sign by an outsider":
          bundles[i] = resign(toJsonText(target), outsider) as unknown as Record<string, JsonValue>;
          break;
        case "drop bundles":
          bundles.splice(i, Math.max(1, Math.floor(bundles.length / 3)));
          break;
        case "reorder":
          bundles.reverse();
          break;
        case "duplicate a bundle":
          bundles.push(target);
          break;
        case "replay an earlier page":
          return new Response(pages[Math.floor(random() * Math.max(1, pages.length - 1))], { headers: { "content-type": "application/json" } });
        case "garbage":
          return new Response('{"bundles": [1, 2', { headers: { "content-type": "application/json" } });
        case "honest":
          break;
      }
      return json({ ...page, bundles });
    },
  });
  try {
    const ids: string[] = [];
    const pushToA = async (bundle: Bundle) => {
      const r = await push(a.url(), MESH_VID, a.village.tokens.writer as string, bundleText(bundle));
      if (r.status !== 200) throw new Error(`push answered ${r.status}`);
      ids.push(bundle.bundle_id);
    };
    await runPool(Array.from({ length: sizes.relayBundles }, () => makeBundle(key, "relay")), 8, pushToA);
    const tokenFile = join(dir, "b-to-a.token");
    writeFileSync(tokenFile, `${a.village.tokens["node-b"]}\n`, { mode: 0o600 });
    const relayUrl = `http://127.0.0.1:${relay.port}`;
    await linksOk(["peers", "add", MESH_VID, relayUrl, "--token-file", tokenFile, "--data", b.data]);
    // the relay alone, A taking new bundles meanwhile so that every pass has a page to tamper
    // with, until the relay has done each kind of harm (each comes once, in turn, then at random)
    let pushing = true;
    const pusher = (async () => {
      while (pushing) {
        await pushToA(makeBundle(key, "relay-live"));
        await Bun.sleep(100);
      }
    })();
    await waitFor(() => Object.keys(actions).length === HARMS.length, 60_000, () => `the relay did only ${JSON.stringify(actions)}`, 250);
    pushing = false;
    await pusher;
    ids.sort();
    const relayStatus = (await peersStatus(b.data)).find((s) => s.url === relayUrl);
    const onlyA = (stored: string[]) => stored.filter((id) => !ids.includes(id));
    const afterRelay = {
      stored: storedIds(b.data),
      unverifiable: unverifiable(b.data).length,
      foreign: onlyA(storedIds(b.data)),
      quarantined: relayStatus?.bundles_quarantined ?? 0,
      refused: relayStatus?.bundles_refused ?? 0,
      lastError: relayStatus?.last_error?.code ?? null,
    };
    // now the honest peer too
    await linksOk(["peers", "add", MESH_VID, a.front.url, "--token-file", tokenFile, "--data", b.data]);
    const convergeMs = await waitFor(() => storedIds(b.data).length >= ids.length, sizes.timeoutMs / 2, () => `${storedIds(b.data).length}/${ids.length}`);
    return {
      actions,
      ids,
      afterRelay,
      final: { stored: storedIds(b.data), unverifiable: unverifiable(b.data).length, foreign: onlyA(storedIds(b.data)) },
      convergeMs,
    };
  } finally {
    relay.stop(true);
    await mesh.stopAll();
  }
}

interface BadPeersResult {
  own: { requests: number; non200: number; p50: number; p99: number };
  status: Record<string, { code: string | null; lastSuccess: string | null; failures: number; recordedDelayMs: number | null; lastAttempt: string | null }>;
  hits: Record<string, number>;
  watchedMs: number;
}

async function badPeersScenario(dir: string, sizes: ReplicationSizes): Promise<BadPeersResult> {
  const dataA = join(dir, "honest");
  const dataB = join(dir, "b");
  const va = await makeVillage(dataA, MESH_VID, { scratch: dir, members: [["writer", "member"], ["node-b", "observer"]] });
  const vb = await makeVillage(dataB, MESH_VID, { scratch: dir, members: [["writer", "member"]] });
  const key = signingKey();
  let a: RunningNode | null = null;
  let b: RunningNode | null = null;
  const hits: Record<string, number> = { garbage: 0, limited: 0 };
  const servers: Array<{ stop(force?: boolean): void }> = [];
  let slow: Front | null = null;
  try {
    a = await startNode(dataA, ["--sync-interval", "0"]);
    for (let i = 0; i < 20; i++) await push(a.url, MESH_VID, va.tokens.writer as string, bundleText(makeBundle(key, "slow")));
    slow = startFront();
    slow.target = a.url;
    slow.delayMs = () => 700;
    const garbage = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch() {
        hits.garbage = (hits.garbage ?? 0) + 1;
        return new Response(new Uint8Array(Array.from({ length: 512 }, (_, i) => (i * 37) % 256)), { headers: { "content-type": "application/json" } });
      },
    });
    const limited = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch() {
        hits.limited = (hits.limited ?? 0) + 1;
        return Response.json({ detail: "too many requests", code: "rate_limited" }, { status: 429, headers: { "retry-after": "4" } });
      },
    });
    servers.push(garbage, limited);
    // a port nothing listens on: bound, then closed
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const downUrl = `http://127.0.0.1:${probe.port}`;
    probe.stop(true);
    const peers: Record<string, string> = {
      down: downUrl,
      garbage: `http://127.0.0.1:${garbage.port}`,
      limited: `http://127.0.0.1:${limited.port}`,
      slow: slow.url,
    };
    writeFileSync(join(dir, "b.token"), `${va.tokens["node-b"]}\n`, { mode: 0o600 });
    for (const url of Object.values(peers)) await linksOk(["peers", "add", MESH_VID, url, "--token-file", join(dir, "b.token"), "--data", dataB]);
    b = await startNode(dataB, ["--sync-interval", "1"]);

    // the node's own requests while its peers misbehave
    const latencies: number[] = [];
    let non200 = 0;
    const started = performance.now();
    while (performance.now() - started < sizes.badPeersMs) {
      const t0 = performance.now();
      const statuses = await Promise.all([
        fetch(`${b.url}/healthz`).then((r) => r.status),
        fetch(`${b.url}/villages/${MESH_VID}/claims?limit=10`, { headers: { authorization: `Bearer ${vb.tokens.writer}` } }).then((r) => r.status),
        push(b.url, MESH_VID, vb.tokens.writer as string, bundleText(makeBundle(key, "own"))).then((r) => r.status),
      ]);
      latencies.push(performance.now() - t0);
      non200 += statuses.filter((s) => s !== 200).length;
      await Bun.sleep(50);
    }
    const watchedMs = performance.now() - started;
    latencies.sort((x, y) => x - y);
    const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
    const status: BadPeersResult["status"] = {};
    for (const [name, url] of Object.entries(peers)) {
      const state = peerStateOf(dataB, url);
      status[name] = {
        code: state.last_error?.code ?? null,
        lastSuccess: state.last_success,
        failures: state.failures,
        lastAttempt: state.last_attempt,
        recordedDelayMs: state.next_attempt && state.last_attempt ? Date.parse(state.next_attempt) - Date.parse(state.last_attempt) : null,
      };
    }
    return { own: { requests: latencies.length * 3, non200, p50: at(50), p99: at(99) }, status, hits, watchedMs };
  } finally {
    for (const s of servers) s.stop(true);
    slow?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  }
}

export function replicationSuite(sizes: ReplicationSizes): void {
  describe("a node killed with SIGKILL while it syncs", () => {
    const result = runScenarioOnce("links-faults-repl-crash-", sizes.timeoutMs, (dir) => crashScenario(dir, sizes));

    test("converges after each restart: nothing acknowledged is lost, nothing is stored or indexed twice", () => {
      const r = result();
      figures("replication crash", {
        rounds: r.kills.length,
        killed_at: r.kills.map((k) => `${k.stored}/${k.of}:${k.step}`).join(","),
        acknowledged: r.acknowledged.length,
        converged_s: (r.convergeMs / 1000).toFixed(1),
        lost: r.acknowledged.filter((id) => !r.a.includes(id) || !r.b.includes(id)).length,
        indexed_twice: r.indexedTwice,
        accepted_twice: r.acceptedTwice,
        unverifiable: r.unverifiable,
      });
      expect(r.kills.length).toBe(sizes.crashRounds);
      // every kill came while B was working through A's backlog
      for (const k of r.kills) expect(k.stored).toBeLessThan(k.of);
      expect(r.acknowledged.filter((id) => !r.a.includes(id))).toEqual([]);
      expect(r.acknowledged.filter((id) => !r.b.includes(id))).toEqual([]);
      expect(r.a).toEqual(r.b);
      expect(r.indexedTwice).toBe(0);
      expect(r.acceptedTwice).toBe(0);
      expect(r.unverifiable).toBe(0);
    });
  });

  describe("a relay that alters, drops, reorders and replays what a peer serves", () => {
    const seed = (Date.now() ^ (process.pid << 8)) | 0;
    const result = runScenarioOnce("links-faults-repl-relay-", sizes.timeoutMs, (dir) => hostileRelayScenario(dir, sizes, seed));

    test("nothing altered is stored, and the node converges through the honest peer", () => {
      const r = result();
      figures("replication relay", {
        seed,
        ...Object.fromEntries(Object.entries(r.actions).map(([k, v]) => [k.replaceAll(" ", "_"), v])),
        stored_via_relay: r.afterRelay.stored.length,
        refused: r.afterRelay.refused,
        quarantined: r.afterRelay.quarantined,
        last_error: r.afterRelay.lastError ?? "none",
        converged_s: (r.convergeMs / 1000).toFixed(1),
      });
      expect(r.afterRelay.unverifiable).toBe(0);
      expect(r.afterRelay.foreign).toEqual([]);
      expect(r.final.unverifiable).toBe(0);
      expect(r.final.foreign).toEqual([]);
      expect(r.final.stored).toEqual(r.ids);
      const harmful = ["alter a value", "alter a value and its id", "break a signature"].reduce((n, k) => n + (r.actions[k] ?? 0), 0);
      if (harmful > 0) expect(r.afterRelay.refused).toBeGreaterThan(0);
    });
  });

  describe("peers that are down, answer garbage, rate limit us, or sit behind a slow link", () => {
    const result = runScenarioOnce("links-faults-repl-bad-", sizes.timeoutMs, (dir) => badPeersScenario(dir, sizes));

    test("each gets a clear last_error and backs off, while the node answers its own requests", () => {
      const r = result();
      figures("replication bad peers", {
        watched_s: (r.watchedMs / 1000).toFixed(1),
        own_requests: r.own.requests,
        own_non_200: r.own.non200,
        own_p50_ms: r.own.p50.toFixed(1),
        own_p99_ms: r.own.p99.toFixed(1),
        ...Object.fromEntries(Object.entries(r.status).map(([k, s]) => [k, `${s.code ?? "ok"}/failures=${s.failures}/next_in=${s.recordedDelayMs}ms`])),
        garbage_hits: r.hits.garbage ?? 0,
        limited_hits: r.hits.limited ?? 0,
      });
      expect(r.own.non200).toBe(0);
      expect(r.status.down?.code).toBe("unavailable");
      expect(r.status.garbage?.code).toBe("remote_error");
      expect(r.status.limited?.code).toBe("rate_limited");
      expect(r.status.slow).toMatchObject({ code: null });
      expect(r.status.slow?.lastSuccess).not.toBeNull();
      // the delay recorded after f failures in a row is at least half of interval * 2^(f-1)
      for (const name of ["down", "garbage"]) {
        const s = r.status[name] as BadPeersResult["status"][string];
        expect(s.failures).toBeGreaterThanOrEqual(2);
        expect(s.recordedDelayMs as number).toBeGreaterThanOrEqual((1000 * 2 ** (s.failures - 1)) / 2 - 50);
      }
      // Retry-After: 4 is honoured
      expect(r.status.limited?.recordedDelayMs as number).toBeGreaterThanOrEqual(4000 - 50);
      expect(r.hits.limited as number).toBeLessThanOrEqual(Math.ceil(r.watchedMs / 4000) + 1);
    });
  });
}
