/**
 * Signer quorum for policy updates, under the three models of Python Links v0.15's
 * `policy_quorum` (absent: M-of-N):
 * - `m_of_n`: at least M distinct allowlisted signers, M being `policy_signature_threshold_m`
 *   (or `policy_quorum.threshold_m` when that is larger);
 * - `weighted`: the distinct signers' weights (`policy_signer_weights`, by key hash) add up to
 *   `policy_quorum.threshold_weight`;
 * - `role_based`: for each `policy_quorum.role_requirements` entry `{role, min_signers}`, that
 *   many distinct signers hold the role (`policy_signer_roles`, key hash -> roles).
 * Signers count when allowlisted (`policy_signer_allowlist`); a weighted or role-based policy with
 * no allowlist counts the keys it weighs or gives a role, as v0.15 does. Unlike v0.15, every
 * model needs at least one signer, and rules that cannot be read (an unknown model, a threshold
 * weight of 0, no role requirement) are met by nobody instead of by everybody.
 * An update that changes any of these rules must satisfy both the policy in force and the one it
 * installs, so a minority can neither add itself nor lower the bar.
 */
import { canonicalize, JsonFloat, type JsonValue } from "./canonical.ts";
import { LinksError } from "./errors.ts";
import type { VillagePolicy } from "./village-policy.ts";

export interface QuorumResult {
  /** `m_of_n`, `weighted` or `role_based`; what a policy names when this node cannot read it */
  model: string;
  /** signers needed (m_of_n), or weight needed (weighted); for role_based, the signers all roles need at least */
  required: number;
  /** the distinct valid signers that count under the rules */
  allowlisted: string[];
  met: boolean;
  /** the verdict in words, e.g. "2 of 3 required allowlisted signers" */
  detail: string;
}

interface RoleRequirement {
  role: string;
  minSigners: number;
}

type Rules =
  | { model: "m_of_n"; allowed: Set<string>; threshold: number }
  | { model: "weighted"; allowed: Set<string>; threshold: number; weights: Map<string, number> }
  | { model: "role_based"; allowed: Set<string>; requirements: RoleRequirement[]; roles: Map<string, string[]> }
  | { model: string; unusable: string };

const numberOf = (v: unknown): number | null => (typeof v === "number" ? v : v instanceof JsonFloat ? v.value : null);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonFloat);

function rulesOf(policy: VillagePolicy): Rules {
  const config = policy.policy_quorum ?? {};
  if (!isRecord(config)) return { model: "policy_quorum", unusable: "policy_quorum is not an object" };
  const model = config.model ?? "m_of_n";
  const allowlist = new Set(policy.policy_signer_allowlist);
  if (model === "m_of_n") {
    const own = numberOf(config.threshold_m);
    const threshold = Math.max(1, policy.policy_signature_threshold_m, own !== null && Number.isSafeInteger(own) ? own : 0);
    return { model, allowed: allowlist, threshold };
  }
  if (model === "weighted") {
    const threshold = numberOf(config.threshold_weight);
    if (threshold === null || !Number.isFinite(threshold) || threshold <= 0) {
      return { model, unusable: "policy_quorum.threshold_weight is not a number above 0" };
    }
    const weights = new Map<string, number>();
    const given = policy.policy_signer_weights ?? {};
    if (!isRecord(given)) return { model, unusable: "policy_signer_weights is not an object of key hash -> weight" };
    for (const [key, w] of Object.entries(given)) {
      const n = numberOf(w);
      if (n !== null && Number.isFinite(n) && n > 0) weights.set(key, n);
    }
    return { model, allowed: allowlist.size > 0 ? allowlist : new Set(weights.keys()), threshold, weights };
  }
  if (model === "role_based") {
    const given = config.role_requirements ?? [];
    if (!Array.isArray(given)) return { model, unusable: "policy_quorum.role_requirements is not a list" };
    const requirements: RoleRequirement[] = [];
    for (const r of given) {
      const min = isRecord(r) ? numberOf(r.min_signers) : null;
      if (!isRecord(r) || typeof r.role !== "string" || min === null || !Number.isSafeInteger(min) || min < 0) {
        return { model, unusable: "a policy_quorum.role_requirements entry is not {role, min_signers}" };
      }
      if (min > 0) requirements.push({ role: r.role, minSigners: min });
    }
    if (requirements.length === 0) return { model, unusable: "policy_quorum.role_requirements asks no role for a signer" };
    const roles = new Map<string, string[]>();
    const byKey = policy.policy_signer_roles ?? {};
    if (!isRecord(byKey)) return { model, unusable: "policy_signer_roles is not an object of key hash -> roles" };
    for (const [key, list] of Object.entries(byKey)) {
      if (Array.isArray(list)) roles.set(key, list.filter((x): x is string => typeof x === "string"));
    }
    return { model, allowed: allowlist.size > 0 ? allowlist : new Set(roles.keys()), requirements, roles };
  }
  const named = canonicalize(model as JsonValue).slice(0, 80);
  return { model: typeof model === "string" ? model.slice(0, 80) : "policy_quorum", unusable: `policy_quorum.model ${named} is none of m_of_n, weighted, role_based` };
}

export function quorumUnder(policy: VillagePolicy, signers: string[]): QuorumResult {
  const rules = rulesOf(policy);
  if ("unusable" in rules) return { model: rules.model, required: 0, allowlisted: [], met: false, detail: `no update can meet it: ${rules.unusable}` };
  const counted = [...new Set(signers)].filter((s) => rules.allowed.has(s));
  const base = { model: rules.model, allowlisted: counted };
  if (rules.model === "weighted" && "weights" in rules) {
    const weight = counted.reduce((sum, s) => sum + (rules.weights.get(s) ?? 0), 0);
    return { ...base, required: rules.threshold, met: counted.length > 0 && weight >= rules.threshold, detail: `signers' weight ${weight} of ${rules.threshold} required` };
  }
  if ("requirements" in rules) {
    const short = rules.requirements.map((r) => ({ ...r, have: counted.filter((s) => rules.roles.get(s)?.includes(r.role)).length }));
    const detail = short.map((r) => `${r.role} ${r.have} of ${r.minSigners}`).join(", ");
    const required = Math.max(...rules.requirements.map((r) => r.minSigners));
    return { ...base, required, met: counted.length > 0 && short.every((r) => r.have >= r.minSigners), detail: `signers by role: ${detail}` };
  }
  const threshold = "threshold" in rules ? rules.threshold : 1;
  return {
    ...base,
    required: threshold,
    met: rules.allowed.size > 0 && counted.length >= threshold,
    detail: `${counted.length} of ${threshold} required allowlisted signer(s)`,
  };
}

/** Whether the signers the policy lists could meet its quorum at all (all of them signing). */
export function quorumReachable(policy: VillagePolicy): QuorumResult {
  const rules = rulesOf(policy);
  return quorumUnder(policy, "allowed" in rules ? [...rules.allowed] : []);
}

const RULE_FIELDS = ["policy_signer_allowlist", "policy_signature_threshold_m", "policy_quorum", "policy_signer_weights", "policy_signer_roles"] as const;

function signerRulesChange(current: VillagePolicy, next: VillagePolicy): boolean {
  const rules = (p: VillagePolicy) =>
    canonicalize(Object.fromEntries(RULE_FIELDS.map((k) => [k, k === "policy_signer_allowlist" ? [...p[k]].sort() : ((p[k] ?? null) as JsonValue)])));
  return rules(current) !== rules(next);
}

export interface UpdateQuorum extends QuorumResult {
  /** which policy's rules this result is for: the first one not met, else the policy in force */
  policy: "current" | "new";
}

/**
 * The quorum a signed update replacing `current` with `next` must meet: the policy in force's,
 * and the new policy's too when the update changes the signer rules. Returns the first one not
 * met, else the policy in force's (what `policy verify --village-id` reports).
 */
export function updateQuorum(current: VillagePolicy, next: VillagePolicy, signers: string[]): UpdateQuorum {
  const checks: Array<[UpdateQuorum["policy"], VillagePolicy]> = [["current", current]];
  if (signerRulesChange(current, next)) checks.push(["new", next]);
  for (const [which, policy] of checks) {
    const q = quorumUnder(policy, signers);
    if (!q.met) return { ...q, policy: which };
  }
  return { ...quorumUnder(current, signers), policy: "current" };
}

/** Throws unless a signed update with these valid signers may replace `current` with `next`. */
export function requireQuorum(current: VillagePolicy, next: VillagePolicy, signers: string[]): void {
  const q = updateQuorum(current, next, signers);
  if (q.met) return;
  const policy = q.policy === "current" ? current : next;
  if (q.model === "m_of_n" && policy.policy_signer_allowlist.length === 0) {
    throw new LinksError(
      "policy_signer_not_allowed",
      `the ${q.policy} policy has an empty policy_signer_allowlist: there is no signer to check the update against`,
    );
  }
  throw new LinksError("policy_quorum_not_met", `the ${q.policy} policy's ${q.model} quorum is not met: ${q.detail}`);
}
