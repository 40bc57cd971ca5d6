/** The policy commands that talk to another node: pull, drift, apply-remote. */
import { defineCommand } from "citty";
import { parseJson, toJsonText } from "../core/canonical.ts";
import { isLinksError } from "../core/errors.ts";
import { printable } from "../core/printable.ts";
import { CLIENT_DEFAULTS } from "../client/remote.ts";
import { policyHash } from "../core/policy-update.ts";
import { onRemote, pullPolicy, readLocalVillage, remoteHead, type PullReport } from "../client/policy-pull.ts";
import { assertVillageId } from "../storage/paths.ts";
import { dataArgs, jsonArgs, printJson, readInputFile, say } from "./common.ts";
import { openData } from "./context.ts";
import { remoteFor, tokenArgs, urlArg } from "./remote-args.ts";
import { ExitCode } from "./run.ts";

const vidArg = { village_id: { type: "positional", description: "Village id", required: true } } as const;

export const applyRemote = defineCommand({
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
    const remote = remoteFor(args, { tokenRequired: true });
    const res = await onRemote(remote, vid, () => remote.request("POST", `/villages/${vid}/policy`, { body: raw, maxBytes: CLIENT_DEFAULTS.smallAnswerBytes }));
    if (args.json) printJson(res.body);
    else say(`${(res.body as { status?: unknown } | null)?.status === "unchanged" ? "unchanged" : "applied"}: ${printable(toJsonText(res.body), { max: 2000 })}`);
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

export const pull = defineCommand({
  meta: {
    name: "pull",
    description:
      "Fetch a node's signed policy updates after our head (from a links node or a Python Links v0.15 node), verify them, " +
      "and with --apply apply them (exit 0 aligned/applied, 3 behind, 1 refused)",
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

export const drift = defineCommand({
  meta: { name: "drift", description: "Compare our policy head with a node's, applying nothing (exit 0 aligned, 3 drift)" },
  args: { ...urlArg, ...vidArg, ...tokenArgs, ...dataArgs, ...jsonArgs },
  async run({ args }) {
    const vid = assertVillageId(args.village_id);
    const local = policyHash(readLocalVillage(openData(args), vid).policy);
    const head = await remoteHead(remoteFor(args), vid, local);
    const report = { status: head.same ? "aligned" : "drift", village_id: vid, local_head: local, remote_head: head.hash };
    if (args.json) printJson(report);
    else say(head.same ? `aligned at ${local}` : `drift: we are at ${local}, the node is at ${head.hash}`);
    if (!head.same) throw new ExitCode(3);
  },
});
