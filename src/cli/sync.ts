import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { normalizeBundle } from "../core/bundle.ts";
import type { Remote } from "../client/remote.ts";
import { isLinksError, LinksError } from "../core/errors.ts";
import { submitToVillage } from "../storage/inbox.ts";
import { assertVillageId } from "../storage/paths.ts";
import { toJsonText } from "../core/canonical.ts";
import { printable } from "../core/printable.ts";
import { bundleInputs, describeTally, stepOfSeveral, tally } from "./bundle-files.ts";
import { dataArgs, jsonArgs, printJson, readInputFile, say } from "./common.ts";
import { actorOf, existingVillage, openData } from "./context.ts";
import { startProgress } from "./progress.ts";
import { remoteFor, tokenArgs, urlArg } from "./remote-args.ts";
import { CLIENT_DEFAULTS } from "../client/remote.ts";
import { ExitCode } from "./run.ts";

const vidArg = { village_id: { type: "positional", description: "Village id", required: true } } as const;

/** With several bundles a rate-limited push waits out the node's window (Retry-After) this long. */
const SEVERAL_BUNDLES_RETRY_WAIT_MS = 120_000;

/** The node's words, shown escaped and cut short. */
const shown = (v: unknown) => printable(v ?? "?", { max: 200 });

/** A remote "village does not exist" says it is the remote node's village that is missing. */
function remoteVillageMissing(e: unknown, remote: Remote, vid: string): unknown {
  if (isLinksError(e) && e.code === "village_not_found") {
    return new LinksError("village_not_found", `village ${vid} does not exist on the remote node ${remote.baseUrl}`, { cause: e });
  }
  return e;
}

interface PushResult {
  file: string;
  status: string;
  bundle_id: string | null;
  code?: string;
  detail?: string;
}

const push = defineCommand({
  meta: {
    name: "push-village",
    description: "Push bundles to a village's inbox: a file, or a directory of <n>.json (exit 0 accepted or duplicate, 3 quarantined, 1 refused)",
  },
  args: {
    ...urlArg,
    ...vidArg,
    bundle: { type: "string", description: "Bundle file, or directory of <n>.json bundles", required: true, valueHint: "path" },
    ...tokenArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const vid = assertVillageId(args.village_id);
    const inputs = bundleInputs(args.bundle);
    const several = inputs.directory;
    const remote = remoteFor(args, { tokenRequired: true, ...(several ? { maxRetryWaitMs: SEVERAL_BUNDLES_RETRY_WAIT_MS } : {}) });
    const progress = startProgress(args, "push", inputs.files.length);
    const results: PushResult[] = [];
    for (const [i, file] of inputs.files.entries()) {
      const res = await stepOfSeveral(inputs, i, "pushed", async () => {
        const raw = readInputFile(file, "bundle file");
        try {
          return await remote.request("POST", `/villages/${vid}/inbox`, { body: raw, maxBytes: CLIENT_DEFAULTS.smallAnswerBytes });
        } catch (e) {
          throw remoteVillageMissing(e, remote, vid);
        }
      });
      if (!several) {
        printOne(res.body, remote, vid, args.json);
        return;
      }
      const body = (res.body ?? {}) as Record<string, unknown>;
      results.push({
        file,
        status: typeof body.status === "string" ? body.status : "unknown",
        bundle_id: typeof body.bundle_id === "string" ? body.bundle_id : null,
        ...(body.status === "quarantined" ? { code: String(body.code), detail: String(body.detail) } : {}),
      });
      progress.update(i + 1);
    }
    progress.finish();
    const counts = tally(results);
    if (args.json) printJson({ status: counts.quarantined > 0 ? "quarantined" : "ok", village_id: vid, url: remote.baseUrl, ...counts, bundles: results });
    else {
      for (const r of results) {
        if (r.status === "quarantined") say(`quarantined ${shown(r.bundle_id)} (${r.file}): ${shown(r.detail)} [${shown(r.code)}]`);
      }
      say(`pushed ${results.length} bundles to ${remote.baseUrl} village ${vid}: ${describeTally(counts)}`);
    }
    if (counts.quarantined > 0) throw new ExitCode(3);
  },
});

/** One bundle: the node's answer as it is with --json, else one line. */
function printOne(answer: unknown, remote: Remote, vid: string, json: boolean | undefined): void {
  const body = (answer ?? {}) as { status?: unknown; bundle_id?: unknown; code?: unknown; detail?: unknown };
  if (json) printJson(answer);
  if (body.status === "quarantined") {
    if (!json) say(`quarantined ${shown(body.bundle_id)}: ${shown(body.detail)} [${shown(body.code)}]`);
    throw new ExitCode(3);
  }
  if (!json) say(`${shown(body.status)} ${shown(body.bundle_id)} by ${remote.baseUrl} village ${vid}`);
}

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
    // citty maps --no-ingest to ingest=false
    const skipIngest = args["no-ingest"] === true || (args as { ingest?: boolean }).ingest === false;
    // The local village is checked before anything is fetched, so a missing one is named as local.
    const paths = skipIngest ? null : openData(args);
    if (paths) {
      try {
        existingVillage(paths, vid);
      } catch (e) {
        if (isLinksError(e) && e.code === "village_not_found") {
          throw new LinksError("village_not_found", `the local village ${vid} does not exist in ${paths.root} (create it with links villages create, or pass --no-ingest)`);
        }
        throw e;
      }
    }
    const remote = remoteFor(args);
    let res;
    try {
      res = await remote.request("GET", `/villages/${vid}/claims/latest`);
    } catch (e) {
      throw remoteVillageMissing(e, remote, vid);
    }
    const bundle = normalizeBundle(res.body);
    const text = toJsonText(bundle);
    if (args.out) await Bun.write(args.out, `${text}\n`);
    if (!paths) {
      if (args.json || !args.out) process.stdout.write(`${text}\n`);
      return;
    }
    const result = await submitToVillage(paths, vid, new TextEncoder().encode(text), actorOf({ actor: `pull:${remote.baseUrl}` }));
    if (args.json) printJson(result);
    else say(`${result.status} ${result.bundle_id} from ${remote.baseUrl} into local village ${vid}`);
    if (result.status === "quarantined") throw new ExitCode(3);
  },
});

export default defineCommand({
  meta: groupMeta("sync"),
  subCommands: { "push-village": push, "pull-village": pull },
});
