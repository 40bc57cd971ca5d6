/**
 * Id validation and the data directory layout: the only place a file name is built from an id.
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import type { ErrorCode } from "../core/errors.ts";
import { LinksError } from "../core/errors.ts";
import { BUNDLE_ID_RE } from "../core/bundle.ts";

export const VILLAGE_ID_RE = /^[a-zA-Z0-9_-]{1,64}$/;
export { BUNDLE_ID_RE };
export const MEMBER_ID_RE = /^[a-zA-Z0-9_.@-]{1,128}$/;
/** A peer of a village is named by the first 16 hex characters of sha256 of its URL. */
export const PEER_ID_RE = /^[0-9a-f]{16}$/;

function show(value: unknown): string {
  if (typeof value !== "string") return `a ${value === null ? "null" : typeof value}`;
  const cut = value.length > 80 ? `${value.slice(0, 80)}...` : value;
  return JSON.stringify(cut);
}

function check(code: ErrorCode, what: string, rule: string, ok: (s: string) => boolean, value: unknown): string {
  if (typeof value === "string" && ok(value)) return value;
  throw new LinksError(code, `invalid ${what} ${show(value)}: ${rule}`);
}

export function assertVillageId(id: unknown): string {
  return check(
    "invalid_village_id",
    "village id",
    "must be 1 to 64 characters of ASCII letters, digits, '_' or '-'",
    (s) => VILLAGE_ID_RE.test(s),
    id,
  );
}

export function assertBundleId(id: unknown): string {
  return check(
    "invalid_bundle_id",
    "bundle id",
    "must be exactly 32 lowercase hex characters (0-9, a-f)",
    (s) => BUNDLE_ID_RE.test(s),
    id,
  );
}

export function assertMemberId(id: unknown): string {
  return check(
    "invalid_member_id",
    "member id",
    "must be 1 to 128 characters of ASCII letters, digits, '_', '.', '@' or '-', not starting with '.'",
    (s) => MEMBER_ID_RE.test(s) && !s.startsWith("."),
    id,
  );
}

function checkPeerId(id: string): string {
  return check("invalid_argument", "peer id", "must be 16 lowercase hex characters", (s) => PEER_ID_RE.test(s), id);
}

export class DataPaths {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** Joins parts under root and refuses a result outside it (a second line behind the id checks). */
  private under(...parts: string[]): string {
    const p = resolve(this.root, ...parts);
    const rel = relative(this.root, p);
    if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw new LinksError("invalid_argument", `path ${JSON.stringify(p)} is outside the data directory`);
    }
    return p;
  }

  villagesDir(): string {
    return this.under("villages");
  }

  villageDir(vid: string): string {
    return this.under("villages", assertVillageId(vid));
  }

  villageFile(vid: string): string {
    return this.under("villages", assertVillageId(vid), "village.json");
  }

  membersFile(vid: string): string {
    return this.under("villages", assertVillageId(vid), "members.jsonl");
  }

  revocationsFile(vid: string): string {
    return this.under("villages", assertVillageId(vid), "revocations.jsonl");
  }

  policyHistoryFile(vid: string): string {
    return this.under("villages", assertVillageId(vid), "policy_history.jsonl");
  }

  policyChainDir(vid: string): string {
    return this.under("villages", assertVillageId(vid), "policy_chain");
  }

  bundlesDir(): string {
    return this.under("store", "bundles");
  }

  /** Public bundles sit directly in store/bundles; village bundles in store/bundles/<vid>. */
  bundleFile(bundleId: string, vid?: string | null): string {
    const bid = assertBundleId(bundleId);
    if (vid === undefined || vid === null) return this.under("store", "bundles", `${bid}.json`);
    return this.under("store", "bundles", assertVillageId(vid), `${bid}.json`);
  }

  /** The group commit's write-ahead log: accepted bundles not yet covered by a checkpoint. */
  ingestLogFile(): string {
    return this.under("store", "index", "ingest.wal.jsonl");
  }

  ingestCheckpointFile(): string {
    return this.under("store", "index", "ingest.checkpoint.json");
  }

  claimsSqliteFile(): string {
    return this.under("store", "index", "claims.sqlite");
  }

  claimsIndexFile(): string {
    return this.under("store", "index", "claims.jsonl");
  }

  quarantineDir(vid: string): string {
    return this.under("store", "quarantine", assertVillageId(vid));
  }

  quarantineFile(vid: string, bid: string): string {
    return this.under("store", "quarantine", assertVillageId(vid), `${assertBundleId(bid)}.json`);
  }

  /**
   * Why, when and who of a held bundle, in a subfolder: every `*.json` directly in a quarantine
   * folder is a held bundle (Python Links lists the folder that way).
   */
  quarantineMetaFile(vid: string, bid: string): string {
    return this.under("store", "quarantine", assertVillageId(vid), "meta", `${assertBundleId(bid)}.json`);
  }

  /** Where earlier versions of links kept it, beside the bundle (read, then moved). */
  legacyQuarantineMetaFile(vid: string, bid: string): string {
    return this.under("store", "quarantine", assertVillageId(vid), `${assertBundleId(bid)}.meta.json`);
  }

  rejectedDir(vid: string): string {
    return this.under("store", "rejected", assertVillageId(vid));
  }

  rejectedFile(vid: string, bid: string): string {
    return this.under("store", "rejected", assertVillageId(vid), `${assertBundleId(bid)}.json`);
  }

  rejectedMetaFile(vid: string, bid: string): string {
    return this.under("store", "rejected", assertVillageId(vid), "meta", `${assertBundleId(bid)}.json`);
  }

  legacyRejectedMetaFile(vid: string, bid: string): string {
    return this.under("store", "rejected", assertVillageId(vid), `${assertBundleId(bid)}.meta.json`);
  }

  /**
   * Shared by every writer from creating a bundle file to appending its index rows; `reindex`
   * takes it exclusively for the moments it must see no bundle half stored.
   */
  indexWritersLockFile(): string {
    return this.under("store", "index", "claims.writers.lock");
  }

  /** Serializes public adoption of a file Python Links v0.7 left at the top of store/bundles. */
  publicAdoptionLockFile(): string {
    return this.under("store", "index", "public_adoption.lock");
  }

  quarantineRoot(): string {
    return this.under("store", "quarantine");
  }

  auditFile(): string {
    return this.under("store", "audit", "audit.log.jsonl");
  }

  /** Every checkpoint this node signed over its audit trees, in signing order. */
  checkpointsFile(): string {
    return this.under("store", "audit", "checkpoints.jsonl");
  }

  /** The Merkle trees derived from the audit file (safe to delete: rebuilt from it). */
  auditIndexFile(): string {
    return this.under("store", "index", "audit.sqlite");
  }

  /** The peers this node replicates villages with, and their tokens (mode 0600). */
  peersFile(): string {
    return this.under("replication", "peers.json");
  }

  /** What the last sync with one peer of a village recorded: cursor, counters, errors, pins. */
  peerStateFile(vid: string, peerId: string): string {
    return this.under("replication", assertVillageId(vid), `${checkPeerId(peerId)}.json`);
  }

  /** Held while a sync pass with that peer runs (one pass per peer at a time, across processes). */
  peerLockFile(vid: string, peerId: string): string {
    return this.under("replication", assertVillageId(vid), `${checkPeerId(peerId)}.lock`);
  }

  /** The node's identity key pair (ed25519.key, ed25519.pub), made on first `serve`. */
  nodeKeyDir(): string {
    return this.under("node");
  }
}
