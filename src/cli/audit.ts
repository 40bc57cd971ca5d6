import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { tailAudit } from "../storage/audit.ts";
import { assertVillageId } from "../storage/paths.ts";
import { dataArgs, jsonArgs, parsePositiveInt, printJson } from "./common.ts";
import { existingVillage, openData } from "./context.ts";

const tail = defineCommand({
  meta: { name: "tail", description: "Show the newest audit rows" },
  args: {
    "village-id": { type: "string", description: "Only this village" },
    action: { type: "string", description: "Only this action (e.g. ingest.quarantine, or a prefix like ingest)" },
    limit: { type: "string", description: "How many rows at most", default: "50" },
    ...dataArgs,
    ...jsonArgs,
  },
  run({ args }) {
    const vid = args["village-id"] === undefined ? undefined : assertVillageId(args["village-id"]);
    const paths = openData(args);
    const rows = tailAudit(paths, {
      villageId: vid === undefined ? undefined : existingVillage(paths, vid),
      action: args.action,
      limit: parsePositiveInt(args.limit, "limit", 50),
    });
    if (args.json) return printJson(rows);
    for (const r of rows) {
      const who = r.actor ? ` by ${r.actor}` : "";
      const what = [r.village_id && `village=${r.village_id}`, r.bundle_id && `bundle=${r.bundle_id}`, r.reason && `reason=${r.reason}`]
        .filter(Boolean)
        .join(" ");
      process.stdout.write(`${r.ts}  ${r.action}${who}  ${what}\n`);
    }
  },
});

export default defineCommand({
  meta: groupMeta("audit"),
  subCommands: { tail },
});
