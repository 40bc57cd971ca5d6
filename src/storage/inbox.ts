/**
 * Steps 4 to 8 of the village inbox (design: "The village inbox: one pipeline"), shared by the
 * HTTP inbox and `links claims ingest`: parse, verify, judge by policy, store or quarantine, audit.
 */
import { decide } from "../core/acceptance.ts";
import { BUNDLE_ID_RE, parseBundle, requireVerified, type Bundle } from "../core/bundle.ts";
import { nowIso } from "../core/datetime.ts";
import { LinksError, type ErrorCode } from "../core/errors.ts";
import { auditPolicyHash } from "../core/village-policy.ts";
import { appendAudit } from "./audit.ts";
import type { DataPaths } from "./paths.ts";
import { putInQuarantine } from "./quarantine.ts";
import { findBundleFile, storeBundle } from "./store.ts";
import type { GroupCommit } from "./group-commit.ts";
import { readVillage, villagePolicy, type Village } from "./villages.ts";

export type InboxResult =
  | { status: "accepted" | "duplicate"; bundle_id: string }
  | { status: "quarantined"; bundle_id: string; code: ErrorCode; detail: string };

export interface SubmitOptions {
  /** the node's group commit; without it each bundle is fsynced on its own (CLI) */
  commit?: GroupCommit | undefined;
  /** the village as the caller already read it */
  village?: Village | undefined;
}

/** Runs a village's pipeline on a received body. Rejections throw (and are audited). */
export async function submitToVillage(
  paths: DataPaths,
  villageId: string,
  raw: Uint8Array,
  actor: string,
  opts: SubmitOptions = {},
): Promise<InboxResult> {
  const village = opts.village ?? readVillage(paths, villageId);
  const policy = villagePolicy(village);
  const policyHash = auditPolicyHash(village.policy);
  const bundle = parseBundle(raw);
  const decision = decide(bundle, policy);
  const base = { bundle_id: bundle.bundle_id, village_id: villageId, actor, policy_hash: policyHash, issuer_key_hash: decision.issuerKeyHash };

  if (decision.status === "reject") {
    appendAudit(paths, { ...base, action: "ingest.reject", bundle_id: safeId(bundle), reason: decision.code });
    throw new LinksError(decision.code, decision.detail);
  }
  if (decision.status === "quarantine") {
    putInQuarantine(paths, raw, {
      bundle_id: bundle.bundle_id,
      village_id: villageId,
      reason: decision.code,
      detail: decision.detail,
      received_at: nowIso(),
      actor,
      issuer_key_hash: decision.issuerKeyHash,
      policy_hash: policyHash,
    });
    appendAudit(paths, { ...base, action: "ingest.quarantine", reason: decision.code });
    return { status: "quarantined", bundle_id: bundle.bundle_id, code: decision.code, detail: decision.detail };
  }
  if (findBundleFile(paths, bundle.bundle_id, villageId) !== null) {
    return { status: "duplicate", bundle_id: bundle.bundle_id };
  }
  const audit = { ...base, action: "ingest.accept" } as const;
  const item = { bundle: decision.bundle, villageId, visibility: policy.visibility, text: decision.text };
  let stored;
  if (opts.commit) {
    stored = await opts.commit.submit({ ...item, audit });
  } else {
    stored = storeBundle(paths, item.bundle, villageId, item.visibility);
    if (stored.status === "stored") appendAudit(paths, audit);
  }
  return { status: stored.status === "stored" ? "accepted" : "duplicate", bundle_id: bundle.bundle_id };
}

/** The public inbox: any valid bundle is stored in the public store. */
export function submitPublic(paths: DataPaths, raw: Uint8Array, actor: string): InboxResult {
  const bundle = parseBundle(raw);
  let verified;
  try {
    verified = requireVerified(bundle);
  } catch (e) {
    if (e instanceof LinksError) appendAudit(paths, { action: "ingest.reject", bundle_id: safeId(bundle), actor, reason: e.code });
    throw e;
  }
  const stored = storeBundle(paths, verified, null, "public");
  if (stored.status === "stored") appendAudit(paths, { action: "ingest.accept", bundle_id: bundle.bundle_id, actor });
  return { status: stored.status === "stored" ? "accepted" : "duplicate", bundle_id: bundle.bundle_id };
}

/** A rejected bundle's claimed id goes into the audit row only if it is a well-formed id. */
function safeId(bundle: Bundle): string | null {
  return BUNDLE_ID_RE.test(bundle.bundle_id) ? bundle.bundle_id : null;
}
