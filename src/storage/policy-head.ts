/**
 * The policy chain's memory, so neither the rules nor the feed's head re-read a long history:
 *
 * - `villages/<id>/policy_chain/head.json`: the history size it describes, the number of
 *   entries, the newest signed artifact's `created_at`, and the last entry as published;
 * - `villages/<id>/policy_chain/payloads/<sha256>`: one empty file per signed payload in the
 *   chain, so "already in the chain" is one stat.
 *
 * Both are written under the village lock after the history rows they describe, and head.json
 * last. A head.json whose size is not the history's (a crash in between, a row appended by
 * Python Links, a hand edit) is stale: the memory is then rebuilt from the history, once.
 */
import { closeSync, constants, readdirSync, rmSync, statSync } from "node:fs";
import { fsyncDir } from "./atomic.ts";
import { join } from "node:path";
import { SHA256_HEX_RE } from "../core/canonical.ts";
import { stampAfter } from "../core/chain-time.ts";
import { normalizeDatetime } from "../core/datetime.ts";
import { LinksError, storageError } from "../core/errors.ts";
import type { ChainState } from "../core/policy-rules.ts";
import { policyHash, unsignedUpdateJson } from "../core/policy-update.ts";
import { lockPathFor, withFileLockSync } from "./flock.ts";
import { readJsonFile, writeJsonFile } from "./json-file.ts";
import { openCreatingParents } from "./open.ts";
import type { DataPaths } from "./paths.ts";
import { EPOCH, entryTime, historyBytes, readPolicyHistory, summarizeRows, type ChainEntry } from "./policy-history.ts";
import type { Village } from "./villages.ts";

export interface ChainHead {
  format: 1;
  /** size of policy_history.jsonl this record describes */
  history_bytes: number;
  entries: number;
  newest_artifact_at: string | null;
  /** the last history entry, as published */
  last: ChainEntry | null;
  /**
   * The entry that was last before the latest write, unless that write repeated its hash: the
   * head to publish while village.json still holds the policy from before it (a reader between
   * the two writes, or a crash between them).
   */
  before: ChainEntry | null;
}

const headFile = (paths: DataPaths, vid: string) => join(paths.policyChainDir(vid), "head.json");
const payloadDir = (paths: DataPaths, vid: string) => join(paths.policyChainDir(vid), "payloads");

function payloadFile(paths: DataPaths, vid: string, payloadHash: string): string {
  if (!SHA256_HEX_RE.test(payloadHash)) throw new LinksError("internal_error", "a payload hash must be 64 hex characters");
  return join(payloadDir(paths, vid), payloadHash);
}

function isHead(v: unknown): v is ChainHead {
  const h = v as ChainHead;
  return typeof h === "object" && h !== null && h.format === 1 && Number.isSafeInteger(h.history_bytes) && Number.isSafeInteger(h.entries) &&
    (h.newest_artifact_at === null || typeof h.newest_artifact_at === "string") && (h.last === null || typeof h.last === "object") &&
    (h.before === null || typeof h.before === "object");
}

/** head.json when it describes the history as it is now; null when missing, stale or unreadable. */
export function readFreshHead(paths: DataPaths, vid: string): ChainHead | null {
  let head: unknown;
  try {
    head = readJsonFile(headFile(paths, vid));
  } catch {
    return null;
  }
  if (!isHead(head)) return null;
  return head.history_bytes === historyBytes(paths, vid) ? head : null;
}

function markPayloads(paths: DataPaths, vid: string, hashes: string[]): void {
  if (hashes.length === 0) return;
  try {
    for (const h of hashes) closeSync(openCreatingParents(payloadFile(paths, vid, h), constants.O_CREAT | constants.O_WRONLY));
    fsyncDir(payloadDir(paths, vid));
  } catch (e) {
    throw storageError(e, `recording the policy chain of ${vid}`);
  }
}

/** Writes the memory of the history after rows were appended. The caller holds the village lock. */
export function writeHead(paths: DataPaths, vid: string, head: Omit<ChainHead, "format" | "history_bytes">, newPayloads: string[]): ChainHead {
  markPayloads(paths, vid, newPayloads);
  const record: ChainHead = { format: 1, history_bytes: historyBytes(paths, vid), ...head };
  writeJsonFile(headFile(paths, vid), record);
  return record;
}

/** Rebuilds the memory from the whole history. The caller holds the village lock. */
function rebuildHead(paths: DataPaths, vid: string): ChainHead {
  const chain = summarizeRows(vid, readPolicyHistory(paths, vid));
  try {
    rmSync(payloadDir(paths, vid), { recursive: true, force: true });
  } catch (e) {
    throw storageError(e, `rebuilding the policy chain memory of ${vid}`);
  }
  const { last, beforeLast } = chain;
  return writeHead(
    paths,
    vid,
    { entries: chain.entries, newest_artifact_at: chain.newest, last, before: beforeLast && beforeLast.policy_hash !== last?.policy_hash ? beforeLast : null },
    [...new Set(chain.payloads)],
  );
}

/** The chain's memory, rebuilt first when stale. The caller holds the village lock. */
export function headUnderLock(paths: DataPaths, vid: string): ChainHead {
  return readFreshHead(paths, vid) ?? rebuildHead(paths, vid);
}

/** The chain's memory, taking the village lock only when it has to be rebuilt. */
export function currentHead(paths: DataPaths, vid: string): ChainHead {
  return readFreshHead(paths, vid) ?? withFileLockSync(lockPathFor(paths.villageFile(vid)), "exclusive", () => headUnderLock(paths, vid));
}

/** What the policy rules need, for a village whose policy is `policy`. */
export function chainState(paths: DataPaths, village: Village, head: ChainHead): ChainState {
  const vid = village.village_id;
  return {
    villageId: vid,
    headHash: policyHash(village.policy),
    headPolicy: village.policy,
    newestArtifactAt: head.newest_artifact_at,
    hasPayload: (h) => {
      const file = payloadFile(paths, vid, h);
      try {
        statSync(file);
        return true;
      } catch (e) {
        // only a marker that is not there says "not in the chain": a replay check must not pass on an I/O error
        if ((e as { code?: string }).code === "ENOENT") return false;
        throw storageError(e, `reading the policy chain memory of ${vid}`);
      }
    },
  };
}

/** How many payload markers the memory holds (for tests and diagnostics). */
export function payloadCount(paths: DataPaths, vid: string): number {
  try {
    return readdirSync(payloadDir(paths, vid)).length;
  } catch {
    return 0;
  }
}

/**
 * The entry published for a policy with no history row of its own (a village made by Python
 * Links, or village.json edited by hand): an unsigned artifact after the chain's last entry,
 * stamped from the village's own created_at so the answer is the same each time.
 */
export function synthesizedHead(village: Village, last: ChainEntry | null): ChainEntry {
  const hash = policyHash(village.policy);
  const own = (typeof village.created_at === "string" ? normalizeDatetime(village.created_at) : null) ?? EPOCH;
  const previous = last?.policy_hash ?? null;
  return {
    policy_hash: hash,
    previous_policy_hash: previous,
    signed: false,
    artifact: unsignedUpdateJson({
      villageId: village.village_id,
      policy: village.policy,
      policyHash: hash,
      actor: null,
      previousPolicyHash: previous,
      createdAt: stampAfter(last ? entryTime(last) : null, own),
    }),
  };
}
