/**
 * Fixtures for the replication tests: a peer node (the real app on a real loopback port), a
 * local data directory with the same village, and relays that rewrite what the peer answers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import type { VillagePolicy } from "../../../src/core/village-policy.ts";
import { addPeer } from "../../../src/replication/peers.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { recordGenesis } from "../../../src/storage/policy.ts";
import { createVillage, readVillage } from "../../../src/storage/villages.ts";
import { makeNode, peer, signedBundle, VID, type BundleOptions, type Node, type NodeOptions } from "../server/helpers.ts";

export { VID };

export interface PeerNode extends Node {
  url: string;
  /** pushes a signed bundle to the peer's inbox; returns its id */
  push(o?: BundleOptions): Promise<string>;
}

/** A node serving the real app on a loopback port, with the village of makeNode. */
export function startPeer(opts: NodeOptions = {}): PeerNode {
  const node = makeNode(opts);
  recordGenesis(node.paths, readVillage(node.paths, VID), "test");
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req, srv) => node.app.fetch(req, srv) });
  return {
    ...node,
    url: `http://127.0.0.1:${server.port}`,
    async push(o = {}) {
      const bundle = signedBundle(node.key, o);
      const res = await node.send("POST", `/villages/${VID}/inbox`, { token: node.tokens.member, body: toJsonText(bundle as unknown as JsonValue) });
      if (res.status !== 200) throw new Error(`push answered ${res.status}: ${await res.text()}`);
      return bundle.bundle_id;
    },
    async cleanup() {
      server.stop(true);
      await node.cleanup();
    },
  };
}

export interface LocalNode {
  dataDir: string;
  paths: DataPaths;
  cleanup(): void;
}

/** A data directory holding the same village (same policy, so the same policy head) as a peer. */
export function localNode(policy?: Partial<VillagePolicy>): LocalNode {
  const parent = mkdtempSync(join(tmpdir(), "links-repl-"));
  const dataDir = join(parent, "data");
  const paths = new DataPaths(dataDir);
  const village = createVillage(paths, { villageId: VID, name: "North field", adminId: "alice", policy });
  recordGenesis(paths, village, "test");
  return { dataDir, paths, cleanup: () => rmSync(parent, { recursive: true, force: true }) };
}

export function addPeerOf(local: LocalNode, url: string, token: string | null): void {
  addPeer(local.paths, VID, url, token);
}

export interface Relay {
  url: string;
  /** requests the relay saw, by path */
  seen: string[];
  stop(): void;
}

/**
 * A relay in front of `upstream`: `answer` sees each request (and the peer's answer when it asks
 * for it) and may answer instead; null passes the peer's answer on unchanged.
 */
export function startRelay(
  upstream: string,
  answer: (req: Request, url: URL, forward: () => Promise<Response>) => Promise<Response | null> | Response | null,
): Relay {
  const seen: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      seen.push(url.pathname);
      const forward = () => fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers: req.headers });
      return (await answer(req, url, forward)) ?? (await forward());
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, seen, stop: () => server.stop(true) };
}

export { peer };
