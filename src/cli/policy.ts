import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { JsonFloat, parseJson, toJsonText } from "../core/canonical.ts";
import { isLinksError, LinksError } from "../core/errors.ts";
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
import { isExpired } from "../core/policy-chain.ts";
import { quorumUnder } from "../core/quorum.ts";
import { readPolicy, type PolicyObject } from "../core/village-policy.ts";
import { pullPolicy, remoteHead, type PullReport } from "../client/policy-pull.ts";
import { readSeedFile } from "../storage/keys.ts";
import { assertVillageId } from "../storage/paths.ts";
import { applyPolicy } from "../storage/policy.ts";
import { readVillage } from "../storage/villages.ts";
import { dataArgs, jsonArgs, printJson, readInputFile, say, warn, writeOutputFile } from "./common.ts";
import { actorArgs, actorOf, openData } from "./context.ts";
import { remoteFor, tokenArgs, urlArg } from "./remote-args.ts";
import { CLIENT_DEFAULTS } from "../client/remote.ts";
import { ExitCode } from "./run.ts";

const verify = defineCommand({
  meta: {
    name: "verify",
    description: "Verify a policy-update artifact: policy_hash and at least one signature (exit 0 valid, 1 not)",
  },
  args: {
    file: { type: "positional", description: "Policy-update artifact", required: true },
    "village-id": { type: "string", description: "Also show which signers this village allowlists and whether its quorum is met" },
    ...dataArgs,
    ...jsonArgs,
  },
  run({ args }) {
    let report;
    try {
      const v = verifyPolicyUpdate(parsePolicyUpdate(readInputFile(args.file, "policy update")));
      report = { valid: v.valid, policy_hash: v.policy_hash, generation: v.generation, signers: v.signers, code: v.code, detail: v.detail, checks: v.checks };
    } catch (e) {
      if (!isLinksError(e) || (e.code === "not_found" && !args.json)) throw e;
      report = { valid: false, policy_hash: null, generation: null, signers: [], code: e.code, detail: e.detail, checks: [] };
    }
    const village = args["village-id"] === undefined ? null : readVillage(openData(args), assertVillageId(args["village-id"]));
    const allowlist = village ? new Set(readPolicy(village.policy).policy_signer_allowlist) : null;
    const quorum = village ? quorumUnder(readPolicy(village.policy), report.signers) : null;
    if (args.json) {
      const { checks: _checks, ...summary } = report;
      printJson(quorum ? { ...summary, quorum } : summary);
    } else {
      for (const c of report.checks) {
        const listed = allowlist && c.key_hash ? (allowlist.has(c.key_hash) ? ", allowlisted" : ", NOT allowlisted") : "";
        say(`  ${printable(c.where)}: key ${printable(c.key_hash ?? "(unreadable)")} ${c.valid ? "verifies" : "does NOT verify"}${listed}`);
      }
      if (quorum) say(`quorum of ${args["village-id"]}: ${quorum.allowlisted.length} of ${quorum.required} required allowlisted signer(s): ${quorum.met ? "met" : "NOT met"}`);
      say(report.valid
        ? `valid ${report.generation} policy update, policy_hash ${report.policy_hash}, ${report.signers.length} signer(s)`
        : `invalid: ${printable(report.detail)} [${report.code}]`);
    }
    if (!report.valid) throw new ExitCode(1);
  },
});

const vidArg = { village_id: { type: "positional", description: "Village id", required: true } } as const;

/** A file holding a plain policy object or a policy-update artifact. */
function readPolicyInput(path: string): { policy: PolicyObject; artifact: PolicyUpdate | null } {
  const raw = parseJson(readInputFile(path, "policy file"));
  if (isPolicyUpdateArtifact(raw)) {
    const artifact = normalizePolicyUpdate(raw);
    return { policy: artifact.policy, artifact };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw) || raw instanceof JsonFloat) {
    throw new LinksError("invalid_schema", `${path} must hold a policy object or a policy-update artifact`);
  }
  readPolicy(raw);
  return { policy: raw as PolicyObject, artifact: null };
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
    const village = readVillage(paths, vid);
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
  meta: { name: "sign-add", description: "Append a signature to signatures[] (for a signer quorum)" },
  args: {
    in: { type: "positional", description: "Artifact file", required: true },
    key: { type: "positional", description: "Private key file", required: true },
    out: { type: "positional", description: "Output file", required: true },
  },
  async run({ args }) {
    const update = parsePolicyUpdate(readInputFile(args.in, "policy update"));
    const signed = addPolicySignature(update, await readSeedFile(args.key, warn));
    writeOutputFile(args.out, policyUpdateToJson(signed));
    const signers = verifyPolicyUpdate(signed).signers.length;
    say(`added a signature to ${signed.policy_hash}: ${signers} valid signer(s) -> ${args.out}`);
  },
});

const applyLocal = defineCommand({
  meta: {
    name: "apply-local",
    description: "Apply a policy on this host: a plain policy (trusted, recorded as unsigned) or a verified artifact",
  },
  args: {
    ...vidArg,
    file: { type: "positional", description: "Policy object or policy-update artifact", required: true },
    ...dataArgs,
    ...actorArgs,
    ...jsonArgs,
  },
  run({ args }) {
    const paths = openData(args);
    const vid = assertVillageId(args.village_id);
    const { policy, artifact } = readPolicyInput(args.file);
    const missing = Object.keys(readPolicy({})).filter((k) => !(k in policy));
    if (!artifact && missing.length > 0) {
      warn(`the policy replaces the whole current policy; fields it leaves out take their defaults: ${missing.join(", ")}`);
    }
    let signers: string[] = [];
    if (artifact) {
      const v = verifyPolicyUpdate(artifact);
      if (!v.valid) throw new LinksError(v.code ?? "invalid_signature", v.detail ?? "the policy update does not verify");
      if (artifact.village_id !== vid) {
        throw new LinksError("village_mismatch", `the artifact is for village ${JSON.stringify(artifact.village_id)}, not ${vid}`);
      }
      // An expired update in the chain would make every node that pulls it refuse it for good.
      if (isExpired(artifact, Date.now())) {
        throw new LinksError("policy_expired", `the update expired at ${artifact.generation === "v2" ? artifact.expires_at : "?"}; export and sign a fresh one`);
      }
      signers = v.signers;
    }
    const result = applyPolicy(paths, vid, { policy, artifact, signers, actor: actorOf(args), source: "local" });
    if (args.json) printJson({ status: "applied", ...result });
    else say(`applied policy ${result.policy_hash} to ${vid}${artifact ? ` (signed by ${signers.length})` : " (unsigned local change)"}`);
  },
});

const applyRemote = defineCommand({
  meta: { name: "apply-remote", description: "Send a policy or signed artifact to a node (needs an admin token)" },
  args: {
    ...urlArg,
    ...vidArg,
    file: { type: "positional", description: "Policy object or policy-update artifact", required: true },
    ...tokenArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const vid = assertVillageId(args.village_id);
    const raw = readInputFile(args.file, "policy file");
    parseJson(raw);
    const res = await remoteFor(args, { tokenRequired: true }).request("POST", `/villages/${vid}/policy`, { body: raw, maxBytes: CLIENT_DEFAULTS.smallAnswerBytes });
    if (args.json) printJson(res.body);
    else say(`applied: ${printable(toJsonText(res.body), { max: 2000 })}`);
  },
});

function printPull(report: PullReport, json: boolean | undefined): void {
  if (json) printJson(report);
  else if (report.status === "aligned") say(`aligned: ${report.village_id} is at ${report.local_head} on both nodes`);
  else if (report.status === "applied") say(`applied ${report.updates}: ${report.village_id} is now at ${report.remote_head}`);
  else say(`behind by ${report.updates}: the node is at ${report.remote_head}, we are at ${report.local_head} (run with --apply)`);
  if (report.status === "behind") throw new ExitCode(3);
}

/** A refusal as text or JSON, then exit 1: the local policy is unchanged. */
function printRefusal(e: unknown, vid: string, json: boolean | undefined): never {
  if (!isLinksError(e)) throw e;
  if (json) printJson({ status: "refused", village_id: vid, code: e.code, detail: e.detail });
  else say(`refused: ${printable(e.detail, { max: 2000 })} [${e.code}]; the local policy is unchanged`);
  throw new ExitCode(1);
}

const pull = defineCommand({
  meta: {
    name: "pull",
    description: "Fetch a node's signed policy updates after our head, verify them, and with --apply apply them (exit 0 aligned/applied, 3 behind, 1 refused)",
  },
  args: {
    ...urlArg,
    ...vidArg,
    apply: { type: "boolean", description: "Apply the verified updates (default: only check)" },
    ...tokenArgs,
    ...dataArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const vid = assertVillageId(args.village_id);
    let report: PullReport;
    try {
      report = await pullPolicy(remoteFor(args), openData(args), vid, { apply: Boolean(args.apply) });
    } catch (e) {
      printRefusal(e, vid, args.json);
    }
    printPull(report, args.json);
  },
});

const drift = defineCommand({
  meta: { name: "drift", description: "Compare our policy head with a node's, applying nothing (exit 0 aligned, 3 drift)" },
  args: { ...urlArg, ...vidArg, ...tokenArgs, ...dataArgs, ...jsonArgs },
  async run({ args }) {
    const vid = assertVillageId(args.village_id);
    const local = policyHash(readVillage(openData(args), vid).policy);
    const head = await remoteHead(remoteFor(args), vid, local);
    const report = { status: head.same ? "aligned" : "drift", village_id: vid, local_head: local, remote_head: head.hash };
    if (args.json) printJson(report);
    else say(head.same ? `aligned at ${local}` : `drift: we are at ${local}, the node is at ${head.hash}`);
    if (!head.same) throw new ExitCode(3);
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
