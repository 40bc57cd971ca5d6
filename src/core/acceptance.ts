/**
 * The acceptance checks every pushed bundle goes through (design: "The village inbox"), steps 5
 * and 6: signature, then policy. The inbox and quarantine approval both call `decide`, so a
 * bundle is judged the same way wherever it comes from.
 */
import { verifyWithText, type Bundle, type VerifiedBundle, type VerifiedText } from "./bundle.ts";
import type { ErrorCode } from "./errors.ts";
import type { VillagePolicy } from "./village-policy.ts";

export type Decision =
  | { status: "accept"; bundle: VerifiedBundle; text: string; issuerKeyHash: string }
  | { status: "quarantine"; bundle: VerifiedBundle; text: string; issuerKeyHash: string; code: ErrorCode; detail: string }
  | { status: "reject"; issuerKeyHash: string | null; code: ErrorCode; detail: string };

/** `verified` is the bundle's verification when the caller already made it (off the event loop). */
export function decide(bundle: Bundle, policy: VillagePolicy, verified: VerifiedText = verifyWithText(bundle)): Decision {
  const { verification, text } = verified;
  if (!verification.valid) {
    return {
      status: "reject",
      issuerKeyHash: verification.issuer_key_hash,
      code: verification.code ?? "invalid_signature",
      detail: verification.detail ?? "bundle does not verify",
    };
  }
  const issuerKeyHash = verification.issuer_key_hash as string;
  const checked = bundle as VerifiedBundle;
  const failure = policyFailure(bundle, issuerKeyHash, policy);
  const stored = text as string;
  return failure
    ? { status: "quarantine", bundle: checked, text: stored, issuerKeyHash, ...failure }
    : { status: "accept", bundle: checked, text: stored, issuerKeyHash };
}

/** The first policy rule the bundle breaks, in the design's order, or null. */
export function policyFailure(
  bundle: Bundle,
  issuerKeyHash: string,
  policy: VillagePolicy,
): { code: ErrorCode; detail: string } | null {
  const issuer = JSON.stringify(bundle.issuer);
  if (policy.issuer_id_blocklist.includes(bundle.issuer)) {
    return { code: "issuer_id_blocked", detail: `issuer ${issuer} is blocked by the village policy` };
  }
  if (policy.issuer_id_allowlist.length > 0 && !policy.issuer_id_allowlist.includes(bundle.issuer)) {
    return { code: "issuer_id_not_allowed", detail: `issuer ${issuer} is not on the village's issuer id allowlist` };
  }
  if (policy.issuer_blocklist.includes(issuerKeyHash)) {
    return { code: "issuer_key_blocked", detail: `issuer key ${issuerKeyHash} is blocked by the village policy` };
  }
  if (
    (policy.require_issuer_allowlist || policy.issuer_allowlist.length > 0) &&
    !policy.issuer_allowlist.includes(issuerKeyHash)
  ) {
    return { code: "issuer_key_not_allowed", detail: `issuer key ${issuerKeyHash} is not on the village's issuer allowlist` };
  }
  if (bundle.window_days > policy.max_window_days) {
    return {
      code: "window_too_large",
      detail: `bundle window_days ${bundle.window_days} exceeds the village maximum of ${policy.max_window_days}`,
    };
  }
  const wide = bundle.claims.findIndex((c) => c.window_days > policy.max_window_days);
  if (wide !== -1) {
    return {
      code: "window_too_large",
      detail: `claims[${wide}].window_days ${bundle.claims[wide]?.window_days} exceeds the village maximum of ${policy.max_window_days}`,
    };
  }
  const allowed = new Set(policy.allowed_predicates);
  const odd = bundle.claims.findIndex((c) => !allowed.has(c.predicate));
  if (odd !== -1) {
    return {
      code: "predicate_not_allowed",
      detail: `claims[${odd}].predicate ${JSON.stringify(bundle.claims[odd]?.predicate)} is not allowed by the village policy`,
    };
  }
  return null;
}
