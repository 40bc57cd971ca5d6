import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { z } from "zod";
import { computeBundleId, normalizeBundle, parseBundle, signBundle, verifyBundle, type Bundle } from "../core/bundle.ts";
import { JsonFloat, parseJson, toJsonText } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { isLinksError } from "../core/errors.ts";
import { printable } from "../core/printable.ts";
import { parseWith, zFloat } from "../core/schema.ts";
import { ClaimsDb } from "../storage/claims-db.ts";
import { reindex } from "../storage/claims-index.ts";
import type { ClaimFilter } from "../storage/index-rows.ts";
import type { DataPaths } from "../storage/paths.ts";
import { submitPublic, submitToVillage } from "../storage/inbox.ts";
import { readSeedFile } from "../storage/keys.ts";
import { assertVillageId } from "../storage/paths.ts";
import { dataArgs, jsonArgs, parsePositiveInt, printJson, readInputFile, say, warn, writeOutputFile } from "./common.ts";
import { actorArgs, actorOf, openData } from "./context.ts";
import { ExitCode } from "./run.ts";

const EdgesSchema = z.array(
  z.object({
    from_entity_id: z.string(),
    to_entity_id: z.string(),
    weight: zFloat,
    derivation: z.string().nullable().default(null),
  }),
);

const build = defineCommand({
  meta: { name: "build", description: "Build an unsigned claim bundle from an edges file" },
  args: {
    edges: { type: "string", description: "Edges JSON (from `links derive`)", required: true, valueHint: "file" },
    issuer: { type: "string", description: "Issuer id written on the bundle and every claim", required: true },
    "window-days": { type: "string", description: "Window of the bundle and its claims", required: true },
    predicate: { type: "string", description: "Predicate of every claim", default: "links.weighted_to" },
    out: { type: "string", description: "Bundle output file", required: true, valueHint: "file" },
  },
  run({ args }) {
    const windowDays = parsePositiveInt(args["window-days"], "window-days", 30);
    const edges = parseWith(EdgesSchema, parseJson(readInputFile(args.edges, "edges file")), "edges file");
    const createdAt = nowIso();
    const draft = normalizeBundle({
      bundle_id: "",
      issuer: args.issuer,
      created_at: createdAt,
      window_days: windowDays,
      claims: edges.map((e) => ({
        issuer: args.issuer,
        subject: e.from_entity_id,
        predicate: args.predicate,
        object: e.to_entity_id,
        value: new JsonFloat(e.weight.value),
        window_days: windowDays,
        computed_at: createdAt,
        derivation: e.derivation,
        evidence: [],
      })),
    });
    const bundle: Bundle = { ...draft, bundle_id: computeBundleId(draft) };
    writeOutputFile(args.out, bundle);
    say(`built unsigned bundle with ${bundle.claims.length} claims -> ${args.out}`);
    process.stdout.write(`${bundle.bundle_id}\n`);
  },
});

const sign = defineCommand({
  meta: { name: "sign", description: "Sign a bundle: fills bundle_id, public_key and signature" },
  args: {
    file: { type: "positional", description: "Bundle file", required: true },
    key: { type: "string", description: "Private key file (ed25519.key)", required: true, valueHint: "file" },
    out: { type: "string", description: "Signed bundle output file", required: true, valueHint: "file" },
  },
  async run({ args }) {
    const bundle = parseBundle(readInputFile(args.file, "bundle file"));
    const signed = signBundle(bundle, await readSeedFile(args.key, warn));
    writeOutputFile(args.out, signed);
    say(`signed bundle ${signed.bundle_id} -> ${args.out}`);
    process.stdout.write(`${signed.bundle_id}\n`);
  },
});

const verify = defineCommand({
  meta: { name: "verify", description: "Verify a bundle's id and signature (exit 0 valid, 1 not)" },
  args: {
    file: { type: "positional", description: "Bundle file", required: true },
    ...jsonArgs,
  },
  run({ args }) {
    let result;
    try {
      result = verifyBundle(parseBundle(readInputFile(args.file, "bundle file")));
    } catch (e) {
      if (!isLinksError(e) || (e.code === "not_found" && !args.json)) throw e;
      result = { valid: false, bundle_id: null, expected_bundle_id: null, issuer_key_hash: null, code: e.code, detail: e.detail };
    }
    if (args.json) printJson(result);
    else if (result.valid) say(`valid: bundle ${result.bundle_id} signed by key ${result.issuer_key_hash}`);
    else say(`invalid: ${printable(result.detail)} [${result.code}]`);
    if (!result.valid) throw new ExitCode(1);
  },
});

const ingest = defineCommand({
  meta: {
    name: "ingest",
    description: "Store a bundle locally: public, or through a village's pipeline (exit 0 stored or duplicate, 3 quarantined)",
  },
  args: {
    file: { type: "positional", description: "Bundle file", required: true },
    "village-id": { type: "string", description: "Village to ingest into (its policy applies)" },
    ...dataArgs,
    ...actorArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const paths = openData(args);
    const raw = readInputFile(args.file, "bundle file");
    const vid = args["village-id"] === undefined ? undefined : assertVillageId(args["village-id"]);
    const result = vid === undefined ? submitPublic(paths, raw, actorOf(args)) : await submitToVillage(paths, vid, raw, actorOf(args));
    if (args.json) printJson(result);
    else if (result.status === "quarantined") say(`quarantined ${result.bundle_id}: ${printable(result.detail)} [${result.code}]`);
    else say(`${result.status} ${result.bundle_id}${vid ? ` into ${vid}` : " into the public store"}`);
    if (result.status === "quarantined") throw new ExitCode(3);
  },
});

const query = defineCommand({
  meta: { name: "query", description: "Query the claims index" },
  args: {
    subject: { type: "string", description: "Only this subject" },
    issuer: { type: "string", description: "Only this issuer" },
    predicate: { type: "string", description: "Only this predicate" },
    "village-id": { type: "string", description: "Only this village" },
    limit: { type: "string", description: "At most this many rows (default: all)" },
    ...dataArgs,
    ...jsonArgs,
  },
  run({ args }) {
    const paths = openData(args);
    const filter = {
      subject: args.subject,
      issuer: args.issuer,
      predicate: args.predicate,
      villageId: args["village-id"] === undefined ? undefined : assertVillageId(args["village-id"]),
    };
    const limit = args.limit === undefined ? Number.MAX_SAFE_INTEGER : parsePositiveInt(args.limit, "limit", 1);
    const rows = queryIndex(paths, filter, limit);
    if (args.json) return printJson(rows);
    for (const r of rows) {
      const cells = [r.subject, r.predicate, r.object ?? "", toJsonText(r.value), r.issuer, r.village_id ?? "-", r.bundle_id];
      process.stdout.write(`${cells.map((cell) => printable(cell)).join("\t")}\n`);
    }
    if (rows.length === 0) say("no matching claims");
  },
});

const reindexCmd = defineCommand({
  meta: { name: "reindex", description: "Rebuild the claims index from the stored bundles" },
  args: { ...dataArgs, ...jsonArgs },
  run({ args }) {
    const progress = process.stderr.isTTY ? progressBar("reindexing") : undefined;
    const result = reindex(openData(args), progress);
    if (progress) process.stderr.write("\n");
    for (const s of result.skipped) warn(`skipped ${printable(s)}`);
    if (args.json) printJson(result);
    else say(`reindexed ${result.bundles} bundles into ${result.rows} index rows`);
  },
});

/** Queries through the claims database (brought up to date with claims.jsonl first). */
function queryIndex(paths: DataPaths, filter: ClaimFilter, limit: number) {
  const db = new ClaimsDb(paths);
  try {
    return db.query(filter, limit).map((r) => r.row);
  } finally {
    db.close();
  }
}

function progressBar(label: string): (done: number, total: number) => void {
  let last = -1;
  return (done, total) => {
    const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
    if (pct === last && done !== total) return;
    last = pct;
    const width = 30;
    const filled = Math.round((pct / 100) * width);
    process.stderr.write(`\r${label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${pct}% (${done}/${total})`);
  };
}

export const claimsCommands = { build, sign, verify, ingest, query, reindex: reindexCmd };

export default defineCommand({
  meta: groupMeta("claims"),
  subCommands: claimsCommands,
});

