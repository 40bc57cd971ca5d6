/**
 * The peers a node replicates its villages with: replication/peers.json, one entry per village
 * and peer URL, with the bearer token the peer gave us for that village. The file holds tokens,
 * so it is written with mode 0600 (readable by the node's user only), and changed only under its
 * lock so a `peers add` beside a running node never loses an entry.
 */
import { z } from "zod";
import { Remote } from "../client/remote.ts";
import { sha256Hex, toJsonText, type JsonValue } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { LinksError } from "../core/errors.ts";
import { parseWith } from "../core/schema.ts";
import { atomicWrite } from "../storage/atomic.ts";
import { lockPathFor, withFileLockSync } from "../storage/flock.ts";
import { readJsonFile } from "../storage/json-file.ts";
import type { DataPaths } from "../storage/paths.ts";

/** Tokens are stored for the node's user only. */
export const PEERS_FILE_MODE = 0o600;
/** A member token is 43 characters; anything far longer is not a token. */
const TOKEN_RE = /^[A-Za-z0-9\-._~+/]{1,512}=*$/;

export const PeerSchema = z.object({
  village: z.string(),
  url: z.string(),
  token: z.string().nullable().default(null),
  added_at: z.string(),
});
export type Peer = z.output<typeof PeerSchema>;

const PeersFileSchema = z.object({ peers: z.array(PeerSchema).default([]) });

/** The file name of a peer's state: sha256 of its URL, 16 hex characters. */
export function peerId(url: string): string {
  return sha256Hex(url).slice(0, 16);
}

/**
 * The peer's base URL as every other place spells it (no trailing slash). Refuses what is not a
 * plain http(s) origin and path: credentials in a URL would be stored and shown in clear.
 */
export function normalizePeerUrl(text: string): string {
  const base = new Remote({ baseUrl: text }).baseUrl;
  const url = new URL(base);
  if (url.username !== "" || url.password !== "") {
    throw new LinksError("invalid_argument", "a peer URL must not carry credentials: give the token with --token-file or LINKS_PEER_TOKEN");
  }
  if (url.search !== "" || url.hash !== "") throw new LinksError("invalid_argument", "a peer URL has no query or fragment: give the node's base URL");
  return base;
}

export function checkToken(token: string): string {
  const t = token.trim();
  if (!TOKEN_RE.test(t)) throw new LinksError("invalid_argument", "the peer token is not a bearer token (one line of URL-safe characters)");
  return t;
}

/** Every configured peer (of one village when given), in the order they were added. */
export function listPeers(paths: DataPaths, village?: string): Peer[] {
  const raw = readJsonFile(paths.peersFile());
  if (raw === null) return [];
  const peers = parseWith(PeersFileSchema, raw, paths.peersFile()).peers;
  return village === undefined ? peers : peers.filter((p) => p.village === village);
}

export function findPeer(paths: DataPaths, village: string, url: string): Peer | null {
  return listPeers(paths, village).find((p) => p.url === url) ?? null;
}

function editPeers<T>(paths: DataPaths, change: (peers: Peer[]) => { peers: Peer[]; result: T }): T {
  const file = paths.peersFile();
  return withFileLockSync(lockPathFor(file), "exclusive", () => {
    const { peers, result } = change(listPeers(paths));
    atomicWrite(file, `${toJsonText({ peers } as unknown as JsonValue)}\n`, { mode: PEERS_FILE_MODE });
    return result;
  });
}

/** Records a peer for a village; nothing is fetched until a sync. */
export function addPeer(paths: DataPaths, village: string, url: string, token: string | null): Peer {
  const peer: Peer = { village, url: normalizePeerUrl(url), token: token === null ? null : checkToken(token), added_at: nowIso() };
  return editPeers(paths, (peers) => {
    if (peers.some((p) => p.village === village && p.url === peer.url)) {
      throw new LinksError("peer_exists", `${peer.url} is already a peer of village ${village} (remove it first to change its token)`);
    }
    return { peers: [...peers, peer], result: peer };
  });
}

export function removePeer(paths: DataPaths, village: string, url: string): Peer {
  const target = normalizePeerUrl(url);
  return editPeers(paths, (peers) => {
    const found = peers.find((p) => p.village === village && p.url === target);
    if (!found) throw new LinksError("peer_not_found", `${target} is not a peer of village ${village}`);
    return { peers: peers.filter((p) => p !== found), result: found };
  });
}
