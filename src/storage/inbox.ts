/**
 * Steps 4 to 8 of the village inbox (design: "The village inbox: one pipeline"), shared by the
 * HTTP inbox and `links claims ingest`: parse, verify, judge by policy, store or quarantine, audit.
 */
import { decide } from "../core/acceptance.ts";
import { BUNDLE_ID_RE, parseBundle, requireVerified, verifyWithTextAsync, type AsyncSignatureCheck, type Bundle } from "../core/bundle.ts";
import { nowIso } from "../core/datetime.ts";
import { LinksError, type ErrorCode } from "../core/errors.ts";
import { appendAudit } from "./audit.ts";
import { withOwners } from "./claims-db.ts";
import type { DataPaths } from "./paths.ts";
import { putInQuarantine } from "./quarantine.ts";
import { isStored, storeBundle, type TopLevelOwners } from "./store.ts";
import type { GroupCommit } from "./group-commit.ts";
import { readVillage, villagePolicy, villagePolicyHash, type Village } from "./villages.ts";

export type InboxResult =
  | { status: "accepted" | "duplicate"; bundle_id: string }
  | { status: "quarantined"; bundle_id: string; code: ErrorCode; detail: string };

export interface SubmitOptions {
  /**
   * the claims database: who holds the files Python v0.7 left at the top of store/bundles (the
   * node's; without it, one is opened for the call)
   */
  owners?: TopLevelOwners | undefined;
  /** the node's group commit; without it each bundle is fsynced on its own (CLI) */
  commit?: GroupCommit | undefined;
  /** the village as the caller already read it */
  village?: Village | undefined;
  /** checks the signature elsewhere (the node's verification workers); default: here */
  checkSignature?: AsyncSignatureCheck | undefined;
}

/** Runs a village's pipeline on a received body. Rejections throw (and are audited). */
export async function submitToVillage(
  paths: DataPaths,
  villageId: string,
  raw: Uint8Array,
  actor: string,
  opts: SubmitOptions = {},
): Promise<InboxResult> {
  return withOwners(paths, opts.owners, (owners) => submit(paths, villageId, raw, actor, { ...opts, owners }));
}

async function submit(
  paths: DataPaths,
  villageId: string,
  raw: Uint8Array,
  actor: string,
  opts: SubmitOptions & { owners: TopLevelOwners },
): Promise<InboxResult> {
  const village = opts.village ?? readVillage(paths, villageId);
  const policy = villagePolicy(village);
  const policyHash = villagePolicyHash(village);
  const bundle = parseBundle(raw);
  const verified = opts.checkSignature ? await verifyWithTextAsync(bundle, opts.checkSignature) : undefined;
  const decision = decide(bundle, policy, verified);
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
  // Only this village's copy counts: the public store's or another village's is not its own.
  if (isStored(paths, villageId, bundle.bundle_id, opts.owners)) {
    return { status: "duplicate", bundle_id: bundle.bundle_id };
  }
  const audit = { ...base, action: "ingest.accept" } as const;
  const item = { bundle: decision.bundle, villageId, visibility: policy.visibility, text: decision.text };
  let stored;
  if (opts.commit) {
    stored = await opts.commit.submit({ ...item, audit });
  } else {
    stored = storeBundle(paths, item.bundle, villageId, item.visibility, opts.owners);
    if (stored.status === "stored") appendAudit(paths, audit);
  }
  return { status: stored.status === "stored" ? "accepted" : "duplicate", bundle_id: bundle.bundle_id };
}

/** The public inbox: any valid bundle is stored in the public store (whoever else holds it). */
export function submitPublic(paths: DataPaths, raw: Uint8Array, actor: string, owners?: TopLevelOwners): InboxResult {
  const bundle = parseBundle(raw);
  let verified;
  try {
    verified = requireVerified(bundle);
  } catch (e) {
    if (e instanceof LinksError) appendAudit(paths, { action: "ingest.reject", bundle_id: safeId(bundle), actor, reason: e.code });
    throw e;
  }
  const stored = withOwners(paths, owners, (o) => storeBundle(paths, verified, null, "public", o));
  if (stored.status === "stored") appendAudit(paths, { action: "ingest.accept", bundle_id: bundle.bundle_id, actor });
  return { status: stored.status === "stored" ? "accepted" : "duplicate", bundle_id: bundle.bundle_id };
}

/** A rejected bundle's claimed id goes into the audit row only if it is a well-formed id. */
function safeId(bundle: Bundle): string | null {
  return BUNDLE_ID_RE.test(bundle.bundle_id) ? bundle.bundle_id : null;
}
