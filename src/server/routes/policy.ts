/**
 * `POST /villages/:id/policy`: a signed policy-update artifact, or a plain policy object where the
 * village does not ask for signatures. Every check that depends on the policy in force runs in
 * applyPolicy's `authorize`, under the village lock, so two concurrent updates cannot both pass
 * against the same old policy.
 */
import { z } from "zod";
import { parseJson, type JsonValue } from "../../core/canonical.ts";
import { datetimeToMs } from "../../core/datetime.ts";
import { LinksError } from "../../core/errors.ts";
import {
  isPolicyUpdateArtifact,
  normalizePolicyUpdate,
  verifyPolicyUpdate,
  type PolicyUpdate,
} from "../../core/policy-update.ts";
import { requireQuorum } from "../../core/quorum.ts";
import { VillagePolicySchema, type PolicyObject, type VillagePolicy } from "../../core/village-policy.ts";
import { applyPolicy } from "../../storage/policy.ts";
import { PolicyAppliedAnswer, PolicyArtifact } from "../answers.ts";
import { sendJson } from "../context.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

/**
 * Whether a village only takes signed, quorum-approved updates. An allowlist of policy signers
 * counts as asking for signatures: otherwise a plain policy could replace the allowlist and
 * side-step the quorum it exists for.
 */
export function requiresSignedUpdates(current: VillagePolicy): boolean {
  return current.require_policy_signature || current.policy_signer_allowlist.length > 0;
}

/** The checks on the artifact itself, before the village's policy is consulted. */
export function checkArtifact(update: PolicyUpdate, villageId: string, nowMs: number): string[] {
  const v = verifyPolicyUpdate(update);
  if (!v.valid) throw new LinksError(v.code ?? "invalid_signature", v.detail ?? "the policy update does not verify");
  if (update.village_id !== villageId) {
    throw new LinksError(
      "village_mismatch",
      `the policy update is for village ${JSON.stringify(update.village_id.slice(0, 64))}, not ${villageId}`,
    );
  }
  if (update.generation === "v2" && update.expires_at !== null && datetimeToMs(update.expires_at) <= nowMs) {
    throw new LinksError("policy_expired", `the policy update expired at ${update.expires_at}`);
  }
  return v.signers;
}

function applySigned(d: RouteDeps, vid: string, raw: JsonValue, actor: string) {
  const update = normalizePolicyUpdate(raw);
  const signers = checkArtifact(update, vid, d.now());
  const previous = update.generation === "v2" ? update.previous_policy_hash : null;
  return applyPolicy(d.paths, vid, {
    policy: update.policy,
    artifact: update,
    signers,
    actor,
    source: "remote",
    authorize: (current, next, currentHash) => {
      if (previous !== null && previous !== currentHash) {
        throw new LinksError(
          "policy_lineage",
          `the update builds on policy ${previous.slice(0, 16)}..., but the village's policy is ${currentHash.slice(0, 16)}...`,
        );
      }
      if (requiresSignedUpdates(current)) requireQuorum(current, next, signers);
    },
  });
}

function applyPlain(d: RouteDeps, vid: string, raw: JsonValue, actor: string) {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new LinksError("invalid_schema", "invalid policy: expected a policy object or a signed policy update");
  }
  return applyPolicy(d.paths, vid, {
    policy: raw as PolicyObject,
    artifact: null,
    actor,
    source: "remote",
    authorize: (current) => {
      if (requiresSignedUpdates(current)) {
        throw new LinksError(
          "policy_signature_required",
          `village ${vid} takes only signed policy updates (require_policy_signature or a policy_signer_allowlist is set)`,
        );
      }
    },
  });
}

export function policyRoutes(d: RouteDeps): void {
  d.app.post(d.routes.add("POST", "/villages/:id/policy", {
    summary: "Apply a policy: a signed policy-update artifact, or a plain policy where the village does not ask for signatures",
    access: "manage",
    body: z.union([PolicyArtifact, VillagePolicySchema]),
    answers: { 200: { description: "applied and recorded in the village's policy chain", schema: PolicyAppliedAnswer } },
    errors: [
      ...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, ...ROUTE_ERRORS.jsonBody, ...ROUTE_ERRORS.storage,
      "invalid_signature", "policy_hash_mismatch", "village_mismatch", "policy_expired", "policy_lineage",
      "policy_signature_required", "policy_signer_not_allowed", "policy_quorum_not_met",
    ],
  }), d.ids, d.auth("manage"), d.memberLimit, d.jsonBody, (c) => {
    const vid = c.get("villageId");
    const actor = c.get("member").memberId;
    const raw = parseJson(c.get("body"));
    const applied = isPolicyUpdateArtifact(raw) ? applySigned(d, vid, raw, actor) : applyPlain(d, vid, raw, actor);
    return sendJson(c, { status: "applied", policy_hash: applied.policy_hash });
  });
}
