/**
 * What a node knows of one peer of a village (replication/<village>/<peer id>.json), written by
 * the sync pass at every step and only read by `peers status`, the peers endpoint and the loop's
 * scheduler (OPA's status record): where the feed cursor stands, the counters, the last success
 * and error, the policy heads and drift, the peer's pinned node key and the last audit
 * checkpoint it showed us. Every write is the one atomic write, so a reader (or a crash) only
 * ever sees a whole record, and a cursor on disk is never ahead of the bundles it covers.
 */
import { z } from "zod";
import { nowIso } from "../core/datetime.ts";
import type { ErrorCode } from "../core/errors.ts";
import { parseWith } from "../core/schema.ts";
import { readJsonFile, writeJsonFileAsync } from "../storage/json-file.ts";
import type { DataPaths } from "../storage/paths.ts";
import { peerId, type Peer } from "./peers.ts";

export const DRIFTS = ["aligned", "behind", "ahead", "diverged"] as const;
export type Drift = (typeof DRIFTS)[number];

const count = z.number().int().nonnegative().default(0);

export const NodeKeySchema = z.object({ name: z.string(), public_key: z.string(), key_hash: z.string() });
export type NodeKeyRecord = z.output<typeof NodeKeySchema>;

export const KeptCheckpointSchema = z.object({
  /** the log's name: links/<node name>/<village> */
  origin: z.string(),
  size: z.number().int().nonnegative(),
  /** base64 of the 32-byte root */
  root_hash: z.string(),
  /** the signed note as the peer served it */
  note: z.string(),
  at: z.string(),
});
export type KeptPeerCheckpoint = z.output<typeof KeptCheckpointSchema>;

export const PeerStateSchema = z.object({
  village: z.string(),
  url: z.string(),
  /** the peer's feed cursor after the last bundle made durable here; null: from the start */
  cursor: z.string().nullable().default(null),
  /** the feed's ETag when the last pass found nothing after `cursor` (sent as If-None-Match) */
  etag: z.string().nullable().default(null),
  /** which step the pass is at ("idle" between passes) */
  step: z.enum(["idle", "audit", "policy", "bundles"]).default("idle"),
  last_attempt: z.string().nullable().default(null),
  last_success: z.string().nullable().default(null),
  last_error: z.object({ code: z.string(), detail: z.string(), at: z.string() }).nullable().default(null),
  /** failed passes since the last success, and when the loop tries again */
  failures: count,
  next_attempt: z.string().nullable().default(null),
  bundles_pulled: count,
  bundles_accepted: count,
  bundles_quarantined: count,
  bundles_refused: count,
  /** the village's policy hash here and at the peer, as the last pass saw them */
  local_head: z.string().nullable().default(null),
  remote_head: z.string().nullable().default(null),
  drift: z.enum(DRIFTS).default("behind"),
  /** the peer's node key, pinned on first contact */
  node_key: NodeKeySchema.nullable().default(null),
  /** the last checkpoint of the village's audit log the peer showed us, verified */
  checkpoint: KeptCheckpointSchema.nullable().default(null),
  /** "checked": the peer's audit log was verified on the last pass; "unavailable": it publishes none */
  audit: z.enum(["checked", "unavailable"]).nullable().default(null),
});
export type PeerState = z.output<typeof PeerStateSchema>;

/** Exactly the fields `peers status --json` and `GET /villages/:id/peers` show for a peer. */
export type PeerStatus = Pick<
  PeerState,
  | "village"
  | "url"
  | "last_success"
  | "last_error"
  | "cursor"
  | "bundles_pulled"
  | "bundles_accepted"
  | "bundles_quarantined"
  | "bundles_refused"
  | "local_head"
  | "remote_head"
  | "drift"
>;

export function freshState(peer: Pick<Peer, "village" | "url">): PeerState {
  return PeerStateSchema.parse({ village: peer.village, url: peer.url });
}

/** The recorded state of a peer; a fresh one when it was never synced. */
export function readPeerState(paths: DataPaths, peer: Pick<Peer, "village" | "url">): PeerState {
  const file = paths.peerStateFile(peer.village, peerId(peer.url));
  const raw = readJsonFile(file);
  if (raw === null) return freshState(peer);
  const state = parseWith(PeerStateSchema, raw, file);
  // a state file copied or renamed from another peer says nothing about this one
  return state.village === peer.village && state.url === peer.url ? state : freshState(peer);
}

/** Replaces the record, all or nothing and durably, without holding up the event loop. */
export function writePeerState(paths: DataPaths, state: PeerState): Promise<void> {
  return writeJsonFileAsync(paths.peerStateFile(state.village, peerId(state.url)), state);
}

export function statusOf(state: PeerState): PeerStatus {
  return {
    village: state.village,
    url: state.url,
    last_success: state.last_success,
    last_error: state.last_error,
    cursor: state.cursor,
    bundles_pulled: state.bundles_pulled,
    bundles_accepted: state.bundles_accepted,
    bundles_quarantined: state.bundles_quarantined,
    bundles_refused: state.bundles_refused,
    local_head: state.local_head,
    remote_head: state.remote_head,
    drift: state.drift,
  };
}

/** The status of every configured peer (of one village when given), from what was recorded. */
export function peerStatuses(paths: DataPaths, peers: Peer[]): PeerStatus[] {
  return peers.map((p) => statusOf(readPeerState(paths, p)));
}

/**
 * The pass's handle on a peer's record: every change is written at once (the record is small),
 * so what the status shows is what the pass last did.
 */
export class StatusRecorder {
  constructor(
    private readonly paths: DataPaths,
    private current: PeerState,
  ) {}

  get state(): PeerState {
    return this.current;
  }

  update(change: Partial<PeerState>): Promise<void> {
    this.current = { ...this.current, ...change };
    return writePeerState(this.paths, this.current);
  }

  fail(code: ErrorCode | string, detail: string, extra: Partial<PeerState> = {}): Promise<void> {
    return this.update({ ...extra, step: "idle", failures: this.current.failures + 1, last_error: { code, detail, at: nowIso() } });
  }

  succeed(extra: Partial<PeerState> = {}): Promise<void> {
    return this.update({ ...extra, step: "idle", failures: 0, last_success: nowIso(), last_error: null });
  }
}
