/**
 * `POST /villages/:id/policy`: a signed policy-update artifact, or a plain policy object where the
 * village does not ask for signatures. Every check that depends on the village runs under its
 * lock (storage/policy.ts), so two concurrent updates cannot both pass against the same old
 * policy; a signed artifact is decided by the same rules as `apply-local` and `pull`.
 */
import { z } from "zod";
import { parseJson } from "../../core/canonical.ts";
import { LinksError } from "../../core/errors.ts";
import { isPolicyUpdateArtifact, normalizePolicyUpdate } from "../../core/policy-update.ts";
import { readPlainPolicy, requiresSignedUpdates, VillagePolicySchema } from "../../core/village-policy.ts";
import { applyPlainPolicy, applySignedUpdate } from "../../storage/policy.ts";
import { PolicyAppliedAnswer, PolicyArtifact } from "../answers.ts";
import { sendJson } from "../context.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

export function policyRoutes(d: RouteDeps): void {
  d.app.post(d.routes.add("POST", "/villages/:id/policy", {
    summary: "Apply a policy: a signed policy-update artifact, or a plain policy where the village does not ask for signatures",
    access: "manage",
    body: z.union([PolicyArtifact, VillagePolicySchema]),
    answers: { 200: { description: "applied and recorded in the village's policy chain, or unchanged (the same plain policy again)", schema: PolicyAppliedAnswer } },
    errors: [
      ...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, ...ROUTE_ERRORS.jsonBody, ...ROUTE_ERRORS.storage,
      "invalid_signature", "policy_hash_mismatch", "village_mismatch", "policy_expired", "policy_lineage",
      "policy_replay", "policy_rollback", "policy_future_dated", "policy_lockout", "policy_too_large",
      "policy_signature_required", "policy_signer_not_allowed", "policy_quorum_not_met",
    ],
  }), d.ids, d.auth("manage"), d.memberLimit, d.jsonBody, (c) => {
    const vid = c.get("villageId");
    const actor = c.get("member").memberId;
    const raw = parseJson(c.get("body"));
    if (isPolicyUpdateArtifact(raw)) {
      const applied = applySignedUpdate(d.paths, vid, normalizePolicyUpdate(raw), { actor, source: "remote", now: d.now() });
      return sendJson(c, { status: applied.status, policy_hash: applied.policy_hash });
    }
    const policy = readPlainPolicy(raw, "policy");
    const applied = applyPlainPolicy(d.paths, vid, policy, {
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
    return sendJson(c, { status: applied.status, policy_hash: applied.policy_hash });
  });
}
