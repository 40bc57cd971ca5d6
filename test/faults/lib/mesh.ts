/**
 * Several real nodes replicating one village: each a `links serve --sync-interval` process with
 * its own data directory, each behind a small front (a stable URL that follows the node across
 * restarts and answers 502 while it is down), peered with `links peers add --token-file`, the way
 * an operator sets them up.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { normalizeBundle, verifyBundle } from "../../../src/core/bundle.ts";
import { parseStored } from "../../../src/core/canonical.ts";
import { peerId } from "../../../src/replication/peers.ts";
import { PeerStateSchema, type PeerState, type PeerStatus } from "../../../src/replication/state.ts";
import { json, linksOk } from "../../e2e/harness.ts";
import { startNode, type RunningNode } from "../../e2e/node.ts";
import { makeVillage, type TestVillage } from "./village.ts";

export const MESH_VID = "mesh";

export interface Front {
  url: string;
  /** where requests go now; null: answer 502 as if the node were down */
  target: string | null;
  /** how long to hold a request before passing it on (a slow link) */
  delayMs: (url: URL) => number;
  stop(): void;
}

/** A stable URL in front of a node whose port changes when it restarts. */
export function startFront(): Front {
  const front: Front = {
    url: "",
    target: null,
    delayMs: () => 0,
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const down = () => Response.json({ detail: "the node behind this front is down", code: "unavailable" }, { status: 502 });
      if (front.target === null) return down();
      const url = new URL(req.url);
      const delay = front.delayMs(url);
      if (delay > 0) await Bun.sleep(delay);
      if (front.target === null) return down();
      try {
        const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
        return await fetch(`${front.target}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body });
      } catch {
        return down();
      }
    },
  });
  front.url = `http://127.0.0.1:${server.port}`;
  return front;
}

export interface MeshNode {
  name: string;
  data: string;
  village: TestVillage;
  front: Front;
  process: RunningNode | null;
  /** the node's own URL while it runs (not the front) */
  url(): string;
}

export interface Mesh {
  nodes: MeshNode[];
  byName(name: string): MeshNode;
  stopAll(): Promise<void>;
}

export interface MeshOptions {
  /** seconds between syncs (serve --sync-interval) */
  syncInterval?: number;
  /** village policy fields on every node (the same everywhere, so the heads agree) */
  policy?: Record<string, unknown>;
  /** who pulls from whom; default every node from every other */
  peers?: Array<[from: string, to: string]>;
  /** extra `serve` arguments */
  serveArgs?: string[];
}

export async function startMeshNode(n: MeshNode, syncInterval: number, serveArgs: string[] = []): Promise<void> {
  n.process = await startNode(n.data, ["--sync-interval", String(syncInterval), ...serveArgs]);
  n.front.target = n.process.url;
}

/** Builds the nodes (village, members, one observer member per peer), starts them, then peers them. */
export async function startMesh(dir: string, names: string[], opts: MeshOptions = {}): Promise<Mesh> {
  const interval = opts.syncInterval ?? 1;
  const nodes: MeshNode[] = [];
  for (const name of names) {
    const data = join(dir, name);
    const others = names.filter((o) => o !== name).map((o): [string, string] => [`node-${o}`, "observer"]);
    const village = await makeVillage(data, MESH_VID, { scratch: dir, members: [["writer", "member"], ...others], ...(opts.policy ? { policy: opts.policy } : {}) });
    const node: MeshNode = {
      name,
      data,
      village,
      front: startFront(),
      process: null,
      url() {
        if (!this.process) throw new Error(`node ${name} is not running`);
        return this.process.url;
      },
    };
    nodes.push(node);
  }
  const byName = (name: string): MeshNode => {
    const n = nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  };
  await Promise.all(nodes.map((n) => startMeshNode(n, interval, opts.serveArgs)));
  const pairs = opts.peers ?? names.flatMap((from) => names.filter((to) => to !== from).map((to): [string, string] => [from, to]));
  for (const [from, to] of pairs) {
    const tokenFile = join(dir, `${from}-to-${to}.token`);
    writeFileSync(tokenFile, `${byName(to).village.tokens[`node-${from}`]}\n`, { mode: 0o600 });
    await linksOk(["peers", "add", MESH_VID, byName(to).front.url, "--token-file", tokenFile, "--data", byName(from).data]);
  }
  return {
    nodes,
    byName,
    async stopAll() {
      await Promise.all(nodes.map(async (n) => n.process?.stop()));
      for (const n of nodes) n.front.stop();
    },
  };
}

/** The ids of the bundles a node stores in the village. */
export function storedIds(data: string, vid = MESH_VID): string[] {
  const dir = join(data, "store", "bundles", vid);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^[0-9a-f]{32}\.json$/.test(f))
    .map((f) => f.slice(0, 32))
    .sort();
}

/** bundle id -> how many index rows name it (claims.jsonl). */
export function indexCounts(data: string): Map<string, number> {
  const file = join(data, "store", "index", "claims.jsonl");
  const counts = new Map<string, number>();
  if (!existsSync(file)) return counts;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const id = (JSON.parse(line) as { bundle_id: string }).bundle_id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** bundle id -> how many ingest.accept audit rows name it. */
export function acceptRows(data: string, vid = MESH_VID): Map<string, number> {
  const file = join(data, "store", "audit", "audit.log.jsonl");
  const counts = new Map<string, number>();
  if (!existsSync(file)) return counts;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const row = JSON.parse(line) as { action?: string; bundle_id?: string; village_id?: string };
    if (row.action === "ingest.accept" && row.village_id === vid && row.bundle_id) counts.set(row.bundle_id, (counts.get(row.bundle_id) ?? 0) + 1);
  }
  return counts;
}

/** Stored bundle files that do not verify (altered on disk or on the way). */
export function unverifiable(data: string, vid = MESH_VID): string[] {
  return storedIds(data, vid).filter((id) => {
    try {
      const b = normalizeBundle(parseStored(readFileSync(join(data, "store", "bundles", vid, `${id}.json`))));
      return b.bundle_id !== id || !verifyBundle(b).valid;
    } catch {
      return true;
    }
  });
}

/** The state record a node wrote for one peer (replication/<village>/<peer id>.json); throws when there is none. */
export function peerStateOf(data: string, url: string, vid = MESH_VID): PeerState {
  return PeerStateSchema.parse(parseStored(readFileSync(join(data, "replication", vid, `${peerId(url)}.json`))));
}

export async function peersStatus(data: string): Promise<PeerStatus[]> {
  return json<{ peers: PeerStatus[] }>(await linksOk(["peers", "status", "--json", "--data", data])).peers;
}

/** Polls `done` until it holds; resolves with the ms it took, or throws with `why()` after timeoutMs. */
export async function waitFor(done: () => boolean | Promise<boolean>, timeoutMs: number, why: () => string, stepMs = 200): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await done()) return performance.now() - start;
    if (performance.now() - start > timeoutMs) throw new Error(`not reached within ${timeoutMs} ms: ${why()}`);
    await Bun.sleep(stepMs);
  }
}
