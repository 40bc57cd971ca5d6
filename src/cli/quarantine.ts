import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { parseJson } from "../core/canonical.ts";
import { LinksError } from "../core/errors.ts";
import { printable } from "../core/printable.ts";
import { assertVillageId } from "../storage/paths.ts";
import {
  approveQuarantined,
  listQuarantine,
  locateQuarantined,
  rejectQuarantined,
  showQuarantine,
} from "../storage/quarantine.ts";
import { dataArgs, jsonArgs, printJson, say } from "./common.ts";
import { actorArgs, actorOf, openData } from "./context.ts";

const villageOpt = { "village-id": { type: "string", description: "Village of the entry" } } as const;
const refArg = { bundle: { type: "positional", description: "Bundle id, or the path of a quarantine file", required: true } } as const;

function villageOf(args: { "village-id"?: string | undefined }): string | undefined {
  return args["village-id"] === undefined ? undefined : assertVillageId(args["village-id"]);
}

const list = defineCommand({
  meta: { name: "list", description: "List quarantined bundles with why, when and who" },
  args: { ...villageOpt, ...dataArgs, ...jsonArgs },
  run({ args }) {
    const entries = listQuarantine(openData(args), villageOf(args)).map(({ file: _f, ...e }) => e);
    if (args.json) return printJson(entries);
    if (entries.length === 0) say("quarantine is empty");
    for (const e of entries) {
      const cells = [e.village_id, e.bundle_id, e.reason, e.received_at ?? "-", e.actor ?? "-"];
      process.stdout.write(`${cells.map((cell) => printable(cell)).join("\t")}\n`);
    }
  },
});

const show = defineCommand({
  meta: { name: "show", description: "Show a quarantined bundle and why it is held" },
  args: { ...refArg, ...villageOpt, ...dataArgs },
  run({ args }) {
    const paths = openData(args);
    const { villageId, bundleId } = locateQuarantined(paths, args.bundle, villageOf(args));
    const { entry, raw } = showQuarantine(paths, villageId, bundleId);
    const { file: _f, ...meta } = entry;
    say(`held in ${villageId}: ${printable(meta.reason)}${meta.detail ? ` (${printable(meta.detail)})` : ""}`);
    printJson({ ...meta, bundle: parseJson(raw) });
  },
});

const approve = defineCommand({
  meta: { name: "approve", description: "Approve: re-checked against the current policy, stored if it now passes" },
  args: { ...refArg, ...villageOpt, ...dataArgs, ...actorArgs },
  run({ args }) {
    const paths = openData(args);
    const { villageId, bundleId } = locateQuarantined(paths, args.bundle, villageOf(args));
    const result = approveQuarantined(paths, villageId, bundleId, actorOf(args));
    say(`approved ${bundleId} into ${villageId}${result.status === "duplicate" ? " (it was already stored)" : ""}`);
  },
});

const reject = defineCommand({
  meta: { name: "reject", description: "Reject: moved to store/rejected/ with the reason" },
  args: {
    ...refArg,
    ...villageOpt,
    reason: { type: "string", description: "Why (recorded and audited)", required: true },
    ...dataArgs,
    ...actorArgs,
  },
  run({ args }) {
    if (!args.reason.trim()) throw new LinksError("invalid_argument", "--reason must not be empty");
    const paths = openData(args);
    const { villageId, bundleId } = locateQuarantined(paths, args.bundle, villageOf(args));
    rejectQuarantined(paths, villageId, bundleId, actorOf(args), args.reason);
    say(`rejected ${bundleId} from ${villageId}`);
  },
});

export default defineCommand({
  meta: groupMeta("quarantine"),
  subCommands: { list, show, approve, reject },
});
