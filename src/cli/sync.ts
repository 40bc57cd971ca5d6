import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { normalizeBundle } from "../core/bundle.ts";
import { submitToVillage } from "../storage/inbox.ts";
import { assertVillageId } from "../storage/paths.ts";
import { toJsonText } from "../core/canonical.ts";
import { printable } from "../core/printable.ts";
import { dataArgs, jsonArgs, printJson, readInputFile, say } from "./common.ts";
import { actorOf, openData } from "./context.ts";
import { remoteFor, tokenArgs, urlArg } from "./remote-args.ts";
import { CLIENT_DEFAULTS } from "../client/remote.ts";
import { ExitCode } from "./run.ts";

const vidArg = { village_id: { type: "positional", description: "Village id", required: true } } as const;

const push = defineCommand({
  meta: {
    name: "push-village",
    description: "Push a bundle to a village's inbox (exit 0 accepted or duplicate, 3 quarantined, 1 refused)",
  },
  args: {
    ...urlArg,
    ...vidArg,
    bundle: { type: "string", description: "Bundle file", required: true, valueHint: "file" },
    ...tokenArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const vid = assertVillageId(args.village_id);
    const raw = readInputFile(args.bundle, "bundle file");
    const remote = remoteFor(args, { tokenRequired: true });
    const res = await remote.request("POST", `/villages/${vid}/inbox`, { body: raw, maxBytes: CLIENT_DEFAULTS.smallAnswerBytes });
    const body = (res.body ?? {}) as { status?: unknown; bundle_id?: unknown; code?: unknown; detail?: unknown };
    if (args.json) printJson(res.body);
    // the node's words, shown escaped and cut short
    const shown = (v: unknown) => printable(v ?? "?", { max: 200 });
    if (body.status === "quarantined") {
      if (!args.json) say(`quarantined ${shown(body.bundle_id)}: ${shown(body.detail)} [${shown(body.code)}]`);
      throw new ExitCode(3);
    }
    if (!args.json) say(`${shown(body.status)} ${shown(body.bundle_id)} by ${remote.baseUrl} village ${vid}`);
  },
});

const pull = defineCommand({
  meta: { name: "pull-village", description: "Fetch a village's newest bundle and ingest it locally through the same pipeline" },
  args: {
    ...urlArg,
    ...vidArg,
    "no-ingest": { type: "boolean", description: "Only print the bundle; do not store it" },
    out: { type: "string", description: "Also write the bundle to this file", valueHint: "file" },
    ...tokenArgs,
    ...dataArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const vid = assertVillageId(args.village_id);
    const remote = remoteFor(args);
    const res = await remote.request("GET", `/villages/${vid}/claims/latest`);
    const bundle = normalizeBundle(res.body);
    const text = toJsonText(bundle);
    if (args.out) await Bun.write(args.out, `${text}\n`);
    // citty maps --no-ingest to ingest=false
    const skipIngest = args["no-ingest"] === true || (args as { ingest?: boolean }).ingest === false;
    if (skipIngest) {
      if (args.json || !args.out) process.stdout.write(`${text}\n`);
      return;
    }
    const result = await submitToVillage(openData(args), vid, new TextEncoder().encode(text), actorOf({ actor: `pull:${remote.baseUrl}` }));
    if (args.json) printJson(result);
    else say(`${result.status} ${result.bundle_id} from ${remote.baseUrl} into local village ${vid}`);
    if (result.status === "quarantined") throw new ExitCode(3);
  },
});

export default defineCommand({
  meta: groupMeta("sync"),
  subCommands: { "push-village": push, "pull-village": pull },
});
