import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { tailAudit } from "../storage/audit.ts";
import { assertVillageId } from "../storage/paths.ts";
import { dataArgs, jsonArgs, parsePositiveInt, printJson } from "./common.ts";
import { openData } from "./context.ts";
import { printable } from "../core/printable.ts";

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
    const rows = tailAudit(openData(args), {
      villageId: args["village-id"] === undefined ? undefined : assertVillageId(args["village-id"]),
      action: args.action,
      limit: parsePositiveInt(args.limit, "limit", 50),
    });
    if (args.json) return printJson(rows);
    for (const r of rows) {
      // Every field is stored text (a reason can hold what a client sent): escaped, one row per line.
      const who = r.actor ? ` by ${printable(r.actor)}` : "";
      const what = [r.village_id && `village=${printable(r.village_id)}`, r.bundle_id && `bundle=${printable(r.bundle_id)}`, r.reason && `reason=${printable(r.reason)}`]
        .filter(Boolean)
        .join(" ");
      process.stdout.write(`${printable(r.ts)}  ${printable(r.action)}${who}  ${what}\n`);
    }
  },
});

export default defineCommand({
  meta: groupMeta("audit"),
  subCommands: { tail },
});
