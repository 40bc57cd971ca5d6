/**
 * Whether a village takes a policy-update artifact: the one decision behind every way an artifact
 * arrives (HTTP, `policy apply-local`, each step of `policy pull`), as wire-format section 4
 * "Applying to a village with signed policy" states it. Pure: the chain's memory comes in as
 * data, so the same function runs before the village lock (a pull's pre-check) and under it.
 *
 * Order of the checks, first failure wins:
 *  1. integrity: policy_hash matches, a signature verifies (400/403), the village is the artifact's;
 *  2. replay: the same signed payload is already in the chain (`policy_replay`, every village:
 *     an artifact is applied at most once);
 *  3. lineage: `previous_policy_hash`, when present, is the head (`policy_lineage`);
 *  4. rollback: where signed policy is required, `created_at` is strictly later than the newest
 *     artifact's in the chain (`policy_rollback`); plain local changes carry no artifact time;
 *  5. expiry (`policy_expired`), and a `created_at` no further ahead of `now` than clock skew
 *     explains (`policy_future_dated`): a far-future time, once the newest in the chain, would
 *     make every honest update after it a rollback;
 *  6. quorum under the policy in force, and under the new one when it changes the signers;
 *  7. the new policy is at most MAX_POLICY_BYTES (`policy_too_large`) and leaves the village a
 *     way to change it again (`policy_lockout`).
 * Content hashes recur (A -> B -> A), so lineage alone cannot stop a replay: 2 and 4 do, and an
 * artifact without lineage (v1, or `previous_policy_hash: null`) is taken only under them.
 */
import { SHA256_HEX_RE } from "./canonical.ts";
import { compareDatetimes, laterOf } from "./chain-time.ts";
import { datetimeToMs } from "./datetime.ts";
import { LinksError } from "./errors.ts";
import { policyPayloadHash, previousPolicyHash, verifyPolicyUpdate, type PolicyUpdate } from "./policy-update.ts";
import { requireQuorum } from "./quorum.ts";
import { assertNoLockout, assertPolicySize, readPolicy, requiresSignedUpdates, type PolicyObject } from "./village-policy.ts";

/** How far ahead of this node's clock an artifact's `created_at` may be (clocks of hosts differ). */
export const MAX_CLOCK_SKEW_MS = 10 * 60_000;

/** What the rules need to know about a village's chain. */
export interface ChainState {
  villageId: string;
  /** the policy in force and its hash: the chain's head */
  headHash: string;
  headPolicy: PolicyObject;
  /** created_at of the newest signed artifact in the chain (null: none yet) */
  newestArtifactAt: string | null;
  /** whether a signed payload (its sha256, see policyPayloadHash) is already in the chain */
  hasPayload(payloadHash: string): boolean;
}

export interface AdmitOptions {
  /** the time expiry is judged at, in ms since the epoch */
  now: number;
  /** names the update in messages, e.g. "update 2 of 3" */
  label?: string;
  /**
   * Pulled updates are trusted only on signatures, so they need allowlisted signers in every
   * village; updates from an operator (HTTP with a manage token, apply-local) need them only where
   * the village requires signed policy.
   */
  requireSigners?: boolean;
}

export interface Admitted {
  update: PolicyUpdate;
  /** distinct key hashes with a valid signature */
  signers: string[];
  payloadHash: string;
}

export function isExpired(update: PolicyUpdate, now: number): boolean {
  return update.generation === "v2" && update.expires_at !== null && datetimeToMs(update.expires_at) <= now;
}

/** A hash for a message: artifacts come from outside, so anything but 64 hex is not echoed. */
function short(hash: string | null): string {
  if (hash === null) return "none";
  return SHA256_HEX_RE.test(hash) ? `${hash.slice(0, 16)}...` : "(not a policy hash)";
}

/** Decides one artifact against the chain; throws the refusal, or returns what to record. */
export function admitUpdate(update: PolicyUpdate, state: ChainState, opts: AdmitOptions): Admitted {
  const label = opts.label ?? "the policy update";
  const what = `${label} (${short(update.policy_hash)})`;
  const v = verifyPolicyUpdate(update);
  if (!v.valid) throw new LinksError(v.code ?? "invalid_signature", `${what} does not verify: ${v.detail}`);
  if (update.village_id !== state.villageId) {
    throw new LinksError("village_mismatch", `${label} is for village ${JSON.stringify(update.village_id.slice(0, 64))}, not ${state.villageId}`);
  }
  const payloadHash = policyPayloadHash(update);
  if (state.hasPayload(payloadHash)) {
    throw new LinksError(
      "policy_replay",
      `${what} is already in this village's policy chain (signed payload ${short(payloadHash)}); an update is applied once, and new or extra signatures do not make it new`,
    );
  }
  const previous = previousPolicyHash(update);
  if (previous !== null && previous !== state.headHash) {
    throw new LinksError(
      "policy_lineage",
      `${what} follows policy ${short(previous)}, but the policy in force is ${short(state.headHash)}; export a new update from the current policy`,
    );
  }
  const current = readPolicy(state.headPolicy);
  const signedVillage = requiresSignedUpdates(current);
  if (signedVillage && state.newestArtifactAt !== null && compareDatetimes(update.created_at, state.newestArtifactAt) <= 0) {
    throw new LinksError(
      "policy_rollback",
      `${what} was created at ${update.created_at}, not after the newest update in this village's chain (${state.newestArtifactAt}): an older update cannot be applied after a newer one`,
    );
  }
  if (isExpired(update, opts.now)) {
    throw new LinksError("policy_expired", `${what} expired at ${update.generation === "v2" ? update.expires_at : "?"}; export and sign a fresh one`);
  }
  if (datetimeToMs(update.created_at) > opts.now + MAX_CLOCK_SKEW_MS) {
    throw new LinksError(
      "policy_future_dated",
      `${what} was created at ${update.created_at}, more than ${MAX_CLOCK_SKEW_MS / 60_000} minutes ahead of this node's clock; check the signer's clock, or retry once that time has come`,
    );
  }
  assertPolicySize(update.policy, `the policy of ${what}`);
  const next = readPolicy(update.policy);
  if (signedVillage || opts.requireSigners) requireQuorum(current, next, v.signers);
  assertNoLockout(next, `the policy of ${what}`);
  return { update, signers: v.signers, payloadHash };
}

/** The state after `admitted` is applied on top of `state` (its payload is added by the caller). */
function advance(state: ChainState, admitted: Admitted, hasPayload: ChainState["hasPayload"]): ChainState {
  const newest = laterOf(state.newestArtifactAt, admitted.update.created_at);
  return { ...state, headHash: admitted.update.policy_hash, headPolicy: admitted.update.policy, newestArtifactAt: newest, hasPayload };
}

/**
 * Decides a run of updates that would follow `state`, in order, each against the chain as the
 * ones before it leave it (so a run that repeats an entry is a replay); throws on the first bad
 * one and returns them all otherwise.
 */
export function admitRun(updates: PolicyUpdate[], state: ChainState, opts: Omit<AdmitOptions, "label">): Admitted[] {
  const inRun = new Set<string>();
  const hasPayload = (h: string) => inRun.has(h) || state.hasPayload(h);
  let at: ChainState = { ...state, hasPayload };
  return updates.map((update, i) => {
    const admitted = admitUpdate(update, at, { ...opts, label: `update ${i + 1} of ${updates.length}` });
    inRun.add(admitted.payloadHash);
    at = advance(at, admitted, hasPayload);
    return admitted;
  });
}
