/**
 * `villages/<id>/policy_history.jsonl`, read as the village's policy chain: one entry per row,
 * each with the artifact other nodes are served. Signed rows are served as received; a plain
 * change (or a row written by Python Links, which holds only the policy) is served as an
 * unsigned v2 artifact, stamped so `created_at` never goes backwards along the chain.
 */
import { statSync } from "node:fs";
import { parseStored, type JsonValue } from "../core/canonical.ts";
import { laterOf, publishStamps } from "../core/chain-time.ts";
import { normalizeDatetime } from "../core/datetime.ts";
import {
  normalizePolicyUpdate,
  policyHash,
  policyPayloadHash,
  policyUpdateToJson,
  unsignedUpdateJson,
  type PolicyUpdate,
} from "../core/policy-update.ts";
import type { PolicyObject } from "../core/village-policy.ts";
import { readJsonl } from "./jsonl.ts";
import type { DataPaths } from "./paths.ts";

export type PolicySource = "create" | "local" | "remote" | "pull";

export interface PolicyHistoryRow {
  policy: PolicyObject;
  policy_hash: string;
  previous_policy_hash: string | null;
  actor: string | null;
  ts: string;
  source: PolicySource | string;
  /** true when the artifact carries signatures that verified when it was applied */
  signed: boolean;
  signers: string[];
  /** the artifact as received; for an unsigned change, an unsigned v2 artifact made here */
  artifact: JsonValue;
}

export interface ChainEntry {
  policy_hash: string;
  previous_policy_hash: string | null;
  signed: boolean;
  /** the artifact as published */
  artifact: JsonValue;
}

/** A time for rows that carry none: the stamps move it after the entry before it. */
export const EPOCH = "1970-01-01T00:00:00Z";

export function readPolicyHistory(paths: DataPaths, vid: string): PolicyHistoryRow[] {
  return readJsonl(paths.policyHistoryFile(vid), (line) => {
    const v = parseStored(line) as unknown as PolicyHistoryRow;
    if (typeof v !== "object" || v === null || Array.isArray(v) || typeof v.policy !== "object" || v.policy === null) {
      throw new Error("not a policy history row");
    }
    return v;
  });
}

/** The history file's size in bytes (0 when it does not exist). */
export function historyBytes(paths: DataPaths, vid: string): number {
  try {
    return statSync(paths.policyHistoryFile(vid)).size;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return 0;
    throw e;
  }
}

function signedUpdateOf(row: PolicyHistoryRow): PolicyUpdate | null {
  if (row.signed !== true || typeof row.artifact !== "object" || row.artifact === null) return null;
  try {
    return normalizePolicyUpdate(row.artifact);
  } catch {
    return null; // a row edited by hand: served as an unsigned entry of its policy
  }
}

function ownTime(row: PolicyHistoryRow): string {
  const artifact = row.artifact as { created_at?: unknown } | null;
  const stamped = artifact && typeof artifact === "object" && typeof artifact.created_at === "string" ? normalizeDatetime(artifact.created_at) : null;
  return stamped ?? (typeof row.ts === "string" ? normalizeDatetime(row.ts) : null) ?? EPOCH;
}

/** The signed artifact of each row (null for unsigned rows) and the time each is published with. */
function prepare(rows: PolicyHistoryRow[]): { updates: Array<PolicyUpdate | null>; stamps: string[] } {
  const updates = rows.map(signedUpdateOf);
  const stamps = publishStamps(rows.map((row, i) => {
    const update = updates[i];
    return update ? { createdAt: update.created_at, fixed: true } : { createdAt: ownTime(row), fixed: false };
  }));
  return { updates, stamps };
}

/**
 * One entry of the chain. Its hash is always computed from the row's policy: Python Links stored
 * the policy after filling in defaults (what village.json holds) beside the hash of the policy as
 * sent, so its `policy_hash` need not be the hash of the policy the village took.
 */
function entryOf(vid: string, row: PolicyHistoryRow, update: PolicyUpdate | null, stamp: string): ChainEntry {
  const hash = policyHash(row.policy);
  const previous = typeof row.previous_policy_hash === "string" ? row.previous_policy_hash : null;
  const artifact = update
    ? policyUpdateToJson(update)
    : unsignedUpdateJson({
        villageId: vid,
        policy: row.policy,
        policyHash: hash,
        actor: typeof row.actor === "string" ? row.actor : null,
        previousPolicyHash: previous,
        createdAt: stamp,
      });
  return { policy_hash: hash, previous_policy_hash: previous, signed: update !== null, artifact };
}

export interface ChainSummary {
  entries: number;
  /** created_at of the newest signed artifact */
  newest: string | null;
  /** the signed payloads in the chain */
  payloads: string[];
  /** the last two entries, as published (null where the chain is shorter) */
  last: ChainEntry | null;
  beforeLast: ChainEntry | null;
}

/** What the chain's memory keeps, from history rows: only the last two entries are built. */
export function summarizeRows(vid: string, rows: PolicyHistoryRow[]): ChainSummary {
  const { updates, stamps } = prepare(rows);
  let newest: string | null = null;
  const payloads: string[] = [];
  for (const u of updates) {
    if (!u) continue;
    payloads.push(policyPayloadHash(u));
    newest = laterOf(newest, u.created_at);
  }
  const at = (i: number): ChainEntry | null => {
    const row = rows[i];
    return row ? entryOf(vid, row, updates[i] ?? null, stamps[i] as string) : null;
  };
  return { entries: rows.length, newest, payloads, last: at(rows.length - 1), beforeLast: at(rows.length - 2) };
}

/** The village's chain, every row of its history, each entry as published. */
export function policyChain(paths: DataPaths, vid: string): ChainEntry[] {
  const rows = readPolicyHistory(paths, vid);
  const { updates, stamps } = prepare(rows);
  return rows.map((row, i) => entryOf(vid, row, updates[i] ?? null, stamps[i] as string));
}

/** The created_at an entry is published with. */
export function entryTime(entry: ChainEntry): string {
  return (entry.artifact as { created_at: string }).created_at;
}
