import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { z } from "zod";
import { basename, join } from "node:path";
import { computeBundleId, parseBundle, signBundle, verifyBundle, type Bundle, type Claim } from "../core/bundle.ts";
import { BundlePacker } from "../core/bundle-packing.ts";
import { JsonFloat, parseJson, toJsonText } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { isLinksError, LinksError } from "../core/errors.ts";
import { printable } from "../core/printable.ts";
import { detached } from "../core/strings.ts";
import { parseWith, zFloat } from "../core/schema.ts";
import { ClaimsDb } from "../storage/claims-db.ts";
import { reindex } from "../storage/claims-index.ts";
import type { ClaimFilter } from "../storage/index-rows.ts";
import type { DataPaths } from "../storage/paths.ts";
import { submitPublic, submitToVillage, type InboxResult } from "../storage/inbox.ts";
import { readSeedFile } from "../storage/keys.ts";
import { assertVillageId } from "../storage/paths.ts";
import { bundleInputs, describeTally, isDirectory, numberedName, prepareBundleDir, stepOfSeveral, tally, type BundleInputs } from "./bundle-files.ts";
import { dataArgs, jsonArgs, parseByteSize, parsePositiveInt, printJson, readInputFile, say, warn, writeOutputFile } from "./common.ts";
import { actorArgs, actorOf, existingVillage, openData } from "./context.ts";
import { forEachArrayElement, inputSize } from "./input-stream.ts";
import { startProgress } from "./progress.ts";
import { ExitCode, type MetaWithDetails } from "./run.ts";

const EdgeSchema = z.object({
  from_entity_id: z.string(),
  to_entity_id: z.string(),
  weight: zFloat,
  derivation: z.string().nullable().default(null),
});

/** The node's default body limit: a bundle of this size or less is accepted as it is. */
const DEFAULT_MAX_BYTES = "1MiB";

interface BuiltBundle {
  file: string;
  bundle_id: string;
  claims: number;
  signed_bytes: number;
}

/**
 * Where built bundles go: all in one file (--out) while they fit one bundle; as soon as a second
 * is needed (or --out is a directory already), a directory of `<n>.json`, one bundle each.
 */
class BuildOutput {
  private first: { bundle: Bundle; bytes: number } | null = null;
  private finishDir: ((written: number) => string[]) | null = null;
  readonly written: BuiltBundle[] = [];

  constructor(private readonly out: string) {
    if (isDirectory(out)) this.finishDir = prepareBundleDir(out);
  }

  add(bundle: Bundle, bytes: number): void {
    if (this.finishDir === null && this.first === null) {
      this.first = { bundle, bytes };
      return;
    }
    if (this.finishDir === null) {
      this.finishDir = prepareBundleDir(this.out);
      const held = this.first as { bundle: Bundle; bytes: number };
      this.write(join(this.out, numberedName(1)), held.bundle, held.bytes);
    }
    this.write(join(this.out, numberedName(this.written.length + 1)), bundle, bytes);
  }

  /** Writes what is held; returns stale `<n>.json` files removed from the directory. */
  finish(): string[] {
    if (this.finishDir === null) {
      const held = this.first as { bundle: Bundle; bytes: number };
      this.write(this.out, held.bundle, held.bytes);
      return [];
    }
    return this.finishDir(this.written.length);
  }

  get directory(): boolean {
    return this.finishDir !== null;
  }

  private write(file: string, bundle: Bundle, bytes: number): void {
    writeOutputFile(file, bundle);
    this.written.push({ file, bundle_id: bundle.bundle_id, claims: bundle.claims.length, signed_bytes: bytes });
  }
}

const build = defineCommand({
  meta: {
    name: "build",
    description: "Build unsigned claim bundles from an edges file, each small enough for a node to accept",
    details: `OUTPUT
  While the claims fit one bundle of --max-bytes (once signed), --out is that bundle's file. When
  they need several, or --out is an existing directory, --out is a directory of 1.json, 2.json, ...
  one bundle each, every claim in exactly one of them (stale <n>.json files from an earlier, longer
  build are removed). claims sign, claims ingest and sync push-village take such a directory.
  The default --max-bytes fits a node's default body limit (links serve --max-body 1MiB).
  Bundle ids are printed on stdout, one per line.
`,
  } as MetaWithDetails,
  args: {
    edges: { type: "string", description: "Edges JSON (from `links derive`)", required: true, valueHint: "file" },
    issuer: { type: "string", description: "Issuer id written on the bundle and every claim", required: true },
    "window-days": { type: "string", description: "Window of the bundle and its claims", required: true },
    predicate: { type: "string", description: "Predicate of every claim", default: "links.weighted_to" },
    out: { type: "string", description: "Bundle file, or directory of <n>.json bundles", required: true, valueHint: "path" },
    "max-bytes": { type: "string", description: "Largest signed bundle, e.g. 1048576, 512KiB, 1MiB", default: DEFAULT_MAX_BYTES, valueHint: "size" },
    ...jsonArgs,
  },
  run({ args }) {
    const windowDays = parsePositiveInt(args["window-days"], "window-days", 30);
    const maxBytes = parseByteSize(args["max-bytes"], "max-bytes");
    const createdAt = nowIso();
    const header = { issuer: args.issuer, created_at: createdAt, window_days: windowDays };
    const packer = new BundlePacker(header, maxBytes);
    const output = new BuildOutput(args.out);
    const emit = (claims: Claim[], bytes: number) => {
      // the claims were built here from checked edges: no schema pass over them again
      const draft: Bundle = { bundle_id: "", ...header, claims, signature_alg: "Ed25519", public_key: null, signature: null };
      output.add({ ...draft, bundle_id: computeBundleId(draft) }, bytes);
    };
    const progress = startProgress(args, "build", inputSize(args.edges, "edges file"), "bytes");
    let claims = 0;
    forEachArrayElement(
      args.edges,
      "edges file",
      (text, i) => {
        const e = parseWith(EdgeSchema, parseJson(text), `edges file element ${i + 1}`);
        const full = packer.add(
          {
            issuer: args.issuer,
            subject: e.from_entity_id,
            predicate: args.predicate,
            object: e.to_entity_id,
            value: new JsonFloat(e.weight.value),
            window_days: windowDays,
            computed_at: createdAt,
            derivation: e.derivation,
            evidence: [],
          },
          i,
        );
        claims++;
        if (full) emit(full.claims, full.bytes);
      },
      (n) => progress.update(n),
    );
    const last = packer.finish();
    if (last.claims.length > 0 || output.written.length === 0) emit(last.claims, last.bytes);
    const stale = output.finish();
    progress.finish();
    const bundles = output.written;
    if (stale.length > 0) warn(`removed ${stale.length} bundle files left in ${args.out} by an earlier build: ${stale.join(", ")}`);
    if (args.json) {
      printJson({ status: "ok", claims, max_bytes: maxBytes, out: args.out, directory: output.directory, bundles });
      return;
    }
    if (output.directory) say(`built ${bundles.length} unsigned bundles with ${claims} claims, each at most ${maxBytes} bytes once signed -> ${args.out}/`);
    else say(`built unsigned bundle with ${claims} claims -> ${args.out}`);
    process.stdout.write(bundles.map((b) => `${b.bundle_id}\n`).join(""));
  },
});

/** Where signed bundles go: a file for one, a directory (same `<n>.json` names) for several. */
function signedOutputs(inputs: BundleInputs, out: string): string[] {
  if (!inputs.directory) {
    if (isDirectory(out)) throw new LinksError("usage", `--out ${out} is a directory; signing one bundle writes a file`);
    return [out];
  }
  prepareBundleDir(out);
  return inputs.files.map((f) => join(out, basename(f)));
}

const sign = defineCommand({
  meta: {
    name: "sign",
    description: "Sign bundles: fills bundle_id, public_key and signature (a file, or a directory of <n>.json)",
  },
  args: {
    file: { type: "positional", description: "Bundle file, or directory of <n>.json bundles", required: true },
    key: { type: "string", description: "Private key file (ed25519.key)", required: true, valueHint: "file" },
    out: { type: "string", description: "Signed bundle file (a directory when signing a directory)", required: true, valueHint: "path" },
    ...jsonArgs,
  },
  async run({ args }) {
    const inputs = bundleInputs(args.file);
    const seed = await readSeedFile(args.key, warn);
    const outputs = signedOutputs(inputs, args.out);
    const progress = startProgress(args, "sign", inputs.files.length);
    const signed: { file: string; bundle_id: string; claims: number }[] = [];
    inputs.files.forEach((file, i) => {
      const bundle = withFileName(file, () => parseBundle(readInputFile(file, "bundle file")));
      const done = signBundle(bundle, seed);
      writeOutputFile(outputs[i] as string, done);
      signed.push({ file: outputs[i] as string, bundle_id: done.bundle_id, claims: done.claims.length });
      progress.update(i + 1);
    });
    progress.finish();
    if (args.json) return printJson({ status: "ok", out: args.out, directory: inputs.directory, bundles: signed });
    if (inputs.directory) say(`signed ${signed.length} bundles -> ${args.out}/`);
    else say(`signed bundle ${signed[0]?.bundle_id} -> ${args.out}`);
    process.stdout.write(signed.map((b) => `${b.bundle_id}\n`).join(""));
  },
});

/** Runs fn; a LinksError it throws names the file it was about (one of several). */
function withFileName<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isLinksError(e) && !e.detail.includes(file)) throw new LinksError(e.code, `${file}: ${e.detail}`, { cause: e });
    throw e;
  }
}

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
    description:
      "Store bundles locally: public, or through a village's pipeline (exit 0 stored or duplicate, 3 quarantined)",
  },
  args: {
    file: { type: "positional", description: "Bundle file, or directory of <n>.json bundles", required: true },
    "village-id": { type: "string", description: "Village to ingest into (its policy applies)" },
    ...dataArgs,
    ...actorArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const vid = args["village-id"] === undefined ? undefined : assertVillageId(args["village-id"]);
    const inputs = bundleInputs(args.file);
    const paths = openData(args, { create: vid === undefined });
    if (vid !== undefined) existingVillage(paths, vid);
    const progress = startProgress(args, "ingest", inputs.files.length);
    const results: (InboxResult & { file: string })[] = [];
    for (const [i, file] of inputs.files.entries()) {
      const result = await stepOfSeveral(inputs, i, "ingested", async () => {
        const raw = readInputFile(file, "bundle file");
        return vid === undefined ? submitPublic(paths, raw, actorOf(args)) : await submitToVillage(paths, vid, raw, actorOf(args));
      });
      // keep copies: parsed strings are slices that would keep each whole bundle's text alive
      results.push(result.status === "quarantined"
        ? { ...result, bundle_id: detached(result.bundle_id), detail: detached(result.detail), file }
        : { ...result, bundle_id: detached(result.bundle_id), file });
      progress.update(i + 1);
    }
    progress.finish();
    const where = vid ? ` into ${vid}` : " into the public store";
    const quarantined = results.filter((r) => r.status === "quarantined").length;
    if (!inputs.directory) {
      const { file: _file, ...result } = results[0] as InboxResult & { file: string };
      if (args.json) printJson(result);
      else if (result.status === "quarantined") say(`quarantined ${result.bundle_id}: ${printable(result.detail)} [${result.code}]`);
      else say(`${result.status} ${result.bundle_id}${where}`);
    } else if (args.json) {
      printJson({ status: quarantined > 0 ? "quarantined" : "ok", ...tally(results), bundles: results });
    } else {
      for (const r of results) {
        if (r.status === "quarantined") say(`quarantined ${r.bundle_id} (${r.file}): ${printable(r.detail)} [${r.code}]`);
      }
      say(`ingested ${results.length} bundles${where}: ${describeTally(tally(results))}`);
    }
    if (quarantined > 0) throw new ExitCode(3);
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
    const villageId = args["village-id"] === undefined ? undefined : assertVillageId(args["village-id"]);
    const paths = openData(args);
    const filter = {
      subject: args.subject,
      issuer: args.issuer,
      predicate: args.predicate,
      villageId: villageId === undefined ? undefined : existingVillage(paths, villageId),
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
    const paths = openData(args);
    const progress = startProgress(args, "reindex", null);
    let total: number | null = null;
    const result = reindex(paths, (done, files) => {
      if (total === null) progress.phase("reindex", (total = files));
      progress.update(done);
    });
    progress.finish();
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

export const claimsCommands = { build, sign, verify, ingest, query, reindex: reindexCmd };

export default defineCommand({
  meta: groupMeta("claims"),
  subCommands: claimsCommands,
});

