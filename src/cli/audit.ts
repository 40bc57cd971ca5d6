import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { existsSync } from "node:fs";
import { LinksError } from "../core/errors.ts";
import { tailAudit } from "../storage/audit.ts";
import { verifyAuditLog, type TreeReport } from "../storage/audit-verify.ts";
import { readPublicKeyOf } from "../storage/keys.ts";
import { nodePublicKeyFile } from "../storage/node-identity.ts";
import { assertVillageId } from "../storage/paths.ts";
import { dataArgs, jsonArgs, parsePositiveInt, printJson } from "./common.ts";
import { openData } from "./context.ts";
import { printable } from "../core/printable.ts";
import { ExitCode } from "./run.ts";

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

/** One line per tree: checked village ids, numbers, checked timestamps and fixed text. */
function treeLine(t: TreeReport): string {
  const what = t.village_id === null ? "public scope" : `village ${t.village_id}`;
  if (t.status === "bad") {
    const where = t.first_bad_index !== null ? `first bad index ${t.first_bad_index}` : t.first_bad_range ? `first bad index between ${t.first_bad_range[0]} and ${t.first_bad_range[1]}` : "a checkpoint fails";
    return `${what}: BAD (${where}): ${t.detail}`;
  }
  if (t.status === "unsigned") return `${what}: ${t.rows} rows, no checkpoint yet`;
  return `${what}: ${t.rows} rows, ${t.verified} checkpoints verified (the newest covers ${t.latest_size} rows), ok`;
}

const verify = defineCommand({
  meta: { name: "verify", description: "Recompute the audit trees from the audit file and check every checkpoint the node signed" },
  args: {
    "village-id": { type: "string", description: "Only this village's tree" },
    "public-key": { type: "string", description: "The node's public key file (default: <data>/node/ed25519.pub)", valueHint: "file" },
    ...dataArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const paths = openData(args);
    const keyFile = args["public-key"] ?? nodePublicKeyFile(paths);
    const publicKey = args["public-key"] !== undefined || existsSync(keyFile) ? (await readPublicKeyOf(keyFile)).publicKey : null;
    const report = verifyAuditLog(paths, {
      villageId: args["village-id"] === undefined ? undefined : assertVillageId(args["village-id"]),
      publicKey,
    });
    const bad = report.trees.filter((t) => t.status === "bad");
    if (args.json) {
      printJson(report);
      if (bad.length > 0) throw new ExitCode(1);
      return;
    }
    for (const w of report.warnings) process.stderr.write(`links: warning: ${printable(w)}\n`);
    for (const t of report.trees) process.stdout.write(`${printable(treeLine(t))}\n`);
    if (report.trees.length === 0) process.stdout.write("no audit rows\n");
    if (bad.length > 0) {
      const which = bad.map((t) => (t.village_id === null ? "the public scope" : `village ${t.village_id}`)).join(", ");
      throw new LinksError("audit_inconsistent", `the audit log does not match the checkpoints this node signed: ${which}`);
    }
  },
});

export default defineCommand({
  meta: groupMeta("audit"),
  subCommands: { tail, verify },
});
