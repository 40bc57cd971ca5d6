import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { parseJson, sha256Hex } from "../core/canonical.ts";
import { isLinksError, LinksError } from "../core/errors.ts";
import { publicKeyFromSeed } from "../core/ed25519.ts";
import { printable } from "../core/printable.ts";
import {
  addPolicySignature,
  isPolicyUpdateArtifact,
  newPolicyUpdate,
  normalizePolicyUpdate,
  parsePolicyUpdate,
  policyHash,
  policyUpdateToJson,
  signPolicyUpdateLegacy,
  verifyPolicyUpdate,
  type PolicyUpdate,
} from "../core/policy-update.ts";
import { isExpired } from "../core/policy-rules.ts";
import { quorumUnder, updateQuorum } from "../core/quorum.ts";
import { defaultPolicy, missingPolicyFields, readPlainPolicy, readPolicy, type PolicyObject } from "../core/village-policy.ts";
import { readSeedFile } from "../storage/keys.ts";
import { assertVillageId } from "../storage/paths.ts";
import { applyPlainPolicy, applySignedUpdate } from "../storage/policy.ts";
import { readLocalVillage } from "../client/policy-pull.ts";
import { dataArgs, jsonArgs, printJson, readInputFile, say, warn, writeOutputFile } from "./common.ts";
import { actorArgs, actorOf, openData } from "./context.ts";
import { applyRemote, drift, pull } from "./policy-remote.ts";
import { ExitCode } from "./run.ts";

/** `policy verify` exit codes (documented in its --help). */
const VERIFY_EXIT = { valid: 0, invalid: 1, expired: 4, notForVillage: 5 } as const;

const verify = defineCommand({
  meta: {
    name: "verify",
    description:
      "Verify a policy-update artifact: policy_hash and at least one signature. Exit 0 valid; 1 invalid " +
      "(hash, signatures, unreadable); 4 valid but expired; 5 valid but not for --village-id (its quorum is not met, " +
      "or the artifact names another village)",
  },
  args: {
    file: { type: "positional", description: "Policy-update artifact", required: true },
    "village-id": { type: "string", description: "Also check that this village's signer quorum is met (exit 5 if not)" },
    ...dataArgs,
    ...jsonArgs,
  },
  run({ args }) {
    let update: PolicyUpdate | null = null;
    let report;
    try {
      update = parsePolicyUpdate(readInputFile(args.file, "policy update"));
      const v = verifyPolicyUpdate(update);
      report = { valid: v.valid, policy_hash: v.policy_hash, generation: v.generation, signers: v.signers, code: v.code, detail: v.detail, checks: v.checks };
    } catch (e) {
      if (!isLinksError(e) || (e.code === "not_found" && !args.json)) throw e;
      report = { valid: false, policy_hash: null, generation: null, signers: [], code: e.code, detail: e.detail, checks: [] };
    }
    const vid = args["village-id"] === undefined ? null : assertVillageId(args["village-id"]);
    const village = vid === null ? null : readLocalVillage(openData(args), vid);
    const allowlist = village ? new Set(readPolicy(village.policy).policy_signer_allowlist) : null;
    // the village's verdict: under the policy in force, and under the new one when the update changes the signers
    const quorum = village === null ? null : update === null ? quorumUnder(readPolicy(village.policy), report.signers) : quorumOfUpdate(village.policy, update, report.signers);
    const expired = update !== null && isExpired(update, Date.now());
    const otherVillage = update !== null && vid !== null && update.village_id !== vid;
    const status = !report.valid ? "invalid" : expired ? "expired" : otherVillage ? "other_village" : quorum && !quorum.met ? "quorum_not_met" : "valid";
    if (args.json) {
      const { checks: _checks, ...summary } = report;
      printJson({ status, ...summary, expired, ...(quorum ? { quorum } : {}) });
    } else {
      for (const c of report.checks) {
        const listed = allowlist && c.key_hash ? (allowlist.has(c.key_hash) ? ", allowlisted" : ", NOT allowlisted") : "";
        say(`  ${printable(c.where)}: key ${printable(c.key_hash ?? "(unreadable)")} ${c.valid ? "verifies" : "does NOT verify"}${listed}`);
      }
      if (quorum) {
        const rules = "policy" in quorum && quorum.policy === "new" ? " under the signer rules the update installs" : "";
        say(`quorum of ${vid}${rules}: ${printable(quorum.detail)}: ${quorum.met ? "met" : "NOT met"}`);
      }
      if (otherVillage && update) say(`the artifact is for village "${printable(update.village_id, { max: 64 })}", not ${vid}`);
      if (expired && update?.generation === "v2") say(`expired at ${update.expires_at}: no village applies it`);
      say(report.valid
        ? `valid ${report.generation} policy update, policy_hash ${report.policy_hash}, ${report.signers.length} signer(s)`
        : `invalid: ${printable(report.detail)} [${report.code}]`);
    }
    if (status === "invalid") throw new ExitCode(VERIFY_EXIT.invalid);
    if (status === "expired") throw new ExitCode(VERIFY_EXIT.expired);
    if (status !== "valid") throw new ExitCode(VERIFY_EXIT.notForVillage);
  },
});

/** The quorum applying `update` to a village with `policy` needs; an unreadable new policy counts as not met. */
function quorumOfUpdate(policy: PolicyObject, update: PolicyUpdate, signers: string[]) {
  const current = readPolicy(policy);
  let next;
  try {
    next = readPolicy(update.policy);
  } catch {
    return { ...quorumUnder(current, signers), met: false, policy: "new" as const, detail: "the policy the update installs cannot be read" };
  }
  return updateQuorum(current, next, signers);
}

const vidArg = { village_id: { type: "positional", description: "Village id", required: true } } as const;

/**
 * A file holding a plain policy object (only fields of the village policy table and Python
 * v0.15's) or a policy-update artifact (its policy kept exactly as signed).
 */
function readPolicyInput(path: string): { policy: PolicyObject; artifact: PolicyUpdate | null } {
  const raw = parseJson(readInputFile(path, "policy file"));
  if (isPolicyUpdateArtifact(raw)) {
    const artifact = normalizePolicyUpdate(raw);
    return { policy: artifact.policy, artifact };
  }
  return { policy: readPlainPolicy(raw, `policy in ${path}`), artifact: null };
}

const exportCmd = defineCommand({
  meta: { name: "export", description: "Write an unsigned v2 policy-update artifact for the current (or given) policy" },
  args: {
    ...vidArg,
    policy: { type: "string", description: "Policy object to export instead of the current one", valueHint: "file" },
    out: { type: "string", description: "Artifact output file", required: true, valueHint: "file" },
    ...dataArgs,
    ...actorArgs,
  },
  run({ args }) {
    const paths = openData(args);
    const vid = assertVillageId(args.village_id);
    const village = readLocalVillage(paths, vid);
    const policy = args.policy ? readPolicyInput(args.policy).policy : village.policy;
    const update = newPolicyUpdate({ villageId: vid, policy, actor: actorOf(args), previousPolicyHash: policyHash(village.policy) });
    writeOutputFile(args.out, policyUpdateToJson(update));
    say(`exported policy ${update.policy_hash} of ${vid} -> ${args.out} (unsigned; sign it with links policy sign or sign-add)`);
  },
});

const sign = defineCommand({
  meta: { name: "sign", description: "Sign an artifact with the single top-level signature" },
  args: {
    in: { type: "positional", description: "Artifact file", required: true },
    key: { type: "string", description: "Private key file", required: true, valueHint: "file" },
    out: { type: "string", description: "Signed artifact output file", required: true, valueHint: "file" },
  },
  async run({ args }) {
    const update = parsePolicyUpdate(readInputFile(args.in, "policy update"));
    const signed = signPolicyUpdateLegacy(update, await readSeedFile(args.key, warn));
    writeOutputFile(args.out, policyUpdateToJson(signed));
    say(`signed policy update ${signed.policy_hash} -> ${args.out}`);
  },
});

const signAdd = defineCommand({
  meta: {
    name: "sign-add",
    description:
      "Append a signature to signatures[] (for a signer quorum). A key whose signature is already valid on the " +
      "artifact is refused (exit 1, policy_already_signed) and nothing is written",
  },
  args: {
    in: { type: "positional", description: "Artifact file", required: true },
    key: { type: "positional", description: "Private key file", required: true },
    out: { type: "positional", description: "Output file", required: true },
    ...jsonArgs,
  },
  async run({ args }) {
    const update = parsePolicyUpdate(readInputFile(args.in, "policy update"));
    const seed = await readSeedFile(args.key, warn);
    const keyHash = sha256Hex(publicKeyFromSeed(seed));
    if (verifyPolicyUpdate(update).signers.includes(keyHash)) {
      throw new LinksError("policy_already_signed", `${args.in} already carries a valid signature by key ${keyHash}; nothing written`);
    }
    const signed = addPolicySignature(update, seed);
    writeOutputFile(args.out, policyUpdateToJson(signed));
    const signers = verifyPolicyUpdate(signed).signers;
    if (args.json) printJson({ status: "signed", policy_hash: signed.policy_hash, key_hash: keyHash, signers });
    say(`added a signature by key ${keyHash} to ${signed.policy_hash}: ${signers.length} valid signer(s) -> ${args.out}`);
  },
});

/** The policy a plain apply-local installs: the file's as is, merged onto the current one, or with defaults. */
function plainPolicyToApply(given: PolicyObject, current: PolicyObject, mode: "merge" | "replace" | null, file: string): PolicyObject {
  if (mode === "merge") return { ...current, ...given };
  if (mode === "replace") return { ...defaultPolicy(), ...given };
  const missing = missingPolicyFields(given);
  if (missing.length > 0) {
    throw new LinksError(
      "policy_incomplete",
      `${file} leaves out ${missing.length} field(s) of the policy (${missing.join(", ")}): pass --merge to change only the fields it gives, or --replace to set the others to their defaults`,
    );
  }
  return given;
}

const applyLocal = defineCommand({
  meta: {
    name: "apply-local",
    description:
      "Apply a policy on this host: a plain policy (trusted, recorded as unsigned) or a signed artifact (decided like an update over HTTP). " +
      "A plain policy that leaves out fields needs --merge or --replace; the policy in force given again is \"unchanged\"",
  },
  args: {
    ...vidArg,
    file: { type: "positional", description: "Policy object or policy-update artifact", required: true },
    merge: { type: "boolean", description: "Plain policy: set only the fields it gives, keep the rest of the current policy" },
    replace: { type: "boolean", description: "Plain policy: set the fields it gives, every other field to its default" },
    ...dataArgs,
    ...actorArgs,
    ...jsonArgs,
  },
  run({ args }) {
    if (args.merge && args.replace) throw new LinksError("invalid_argument", "--merge and --replace exclude each other");
    const paths = openData(args);
    const vid = assertVillageId(args.village_id);
    const current = readLocalVillage(paths, vid);
    const { policy, artifact } = readPolicyInput(args.file);
    const mode = args.merge ? "merge" : args.replace ? "replace" : null;
    let result;
    if (artifact) {
      if (mode) throw new LinksError("invalid_argument", `--${mode} is for a plain policy; a signed artifact is applied exactly as signed`);
      result = applySignedUpdate(paths, vid, artifact, { actor: actorOf(args), source: "local", now: Date.now() });
    } else {
      const next = plainPolicyToApply(policy, current.policy, mode, args.file);
      result = applyPlainPolicy(paths, vid, next, { actor: actorOf(args), source: "local" });
    }
    if (args.json) printJson(result);
    else if (result.status === "unchanged") say(`unchanged: ${vid} already has policy ${result.policy_hash}`);
    else say(`applied policy ${result.policy_hash} to ${vid}${artifact ? " (signed update)" : " (unsigned local change)"}`);
  },
});

export const policyCommands = {
  pull,
  drift,
  verify,
  export: exportCmd,
  sign,
  "sign-add": signAdd,
  "apply-local": applyLocal,
  "apply-remote": applyRemote,
};

export default defineCommand({
  meta: groupMeta("policy"),
  subCommands: policyCommands,
});
