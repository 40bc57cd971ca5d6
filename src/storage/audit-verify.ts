/**
 * `links audit verify`: recomputes every audit tree from store/audit/audit.log.jsonl and checks
 * each checkpoint kept in store/audit/checkpoints.jsonl against it: the note's signature (with
 * the node's public key), its origin, and the root of the recomputed tree at its size.
 *
 * When a checkpoint fails, the first bad row is named exactly if the audit index still holds the
 * leaf hashes it read before the change and they reproduce that checkpoint's signed root (so
 * they are the signed history); otherwise it lies between the last checkpoint that held and the
 * first that failed, and that range is reported.
 */
import { checkpointOrigin, NODE_NAME_RE } from "../core/audit-origin.ts";
import { LinksError } from "../core/errors.ts";
import { CompactRange, EMPTY_ROOT, hashesEqual, leafHash } from "../core/merkle.ts";
import { ed25519KeyId, openCheckpoint, parseNote } from "../core/signed-note.ts";
import { AuditIndex } from "./audit-index.ts";
import { auditLeafOf, completeLines, isBlankLine, parseCheckpointLine } from "./audit-records.ts";
import type { DataPaths } from "./paths.ts";

export interface TreeReport {
  village_id: string | null;
  /** rows of this tree in the audit file */
  rows: number;
  /** checkpoints kept for this tree */
  checkpoints: number;
  /** of those, how many verified and match the file */
  verified: number;
  /** the size of the largest checkpoint that verified and matches */
  latest_size: number | null;
  status: "ok" | "bad" | "unsigned";
  first_bad_index: number | null;
  /** [from, to]: where the first bad row is, when it cannot be named exactly */
  first_bad_range: [number, number] | null;
  detail: string | null;
}

export interface VerifyReport {
  status: "ok" | "bad";
  trees: TreeReport[];
  warnings: string[];
}

export interface VerifyOptions {
  /** only this village's tree (null: only the public scope's) */
  villageId?: string | null | undefined;
  /** the node's public key; required when there are checkpoints to check */
  publicKey: Uint8Array | null;
}

interface Kept {
  line: number;
  size: number;
  root: Uint8Array;
  ts: string;
  /** why it failed, once it did */
  failure: string | null;
  /** the note itself is bad (not the rows it covers) */
  forged: boolean;
}

interface Tree {
  scope: string | null;
  range: CompactRange;
  kept: Kept[];
  /** the next checkpoint (in size order) to compare */
  next: number;
}

function scopeName(scope: string | null): string {
  return scope === null ? "the public scope" : `village ${scope}`;
}

/** The node name the note was signed under with this key, if any of its signatures is by it. */
function keyNameFor(note: string, publicKey: Uint8Array): string | null {
  for (const s of parseNote(note).signatures) {
    if (NODE_NAME_RE.test(s.keyName) && hashesEqual(s.keyId, ed25519KeyId(s.keyName, publicKey))) return s.keyName;
  }
  return null;
}

export function verifyAuditLog(paths: DataPaths, opts: VerifyOptions): VerifyReport {
  const warnings: string[] = [];
  const wanted = (scope: string | null) => opts.villageId === undefined || opts.villageId === scope;
  const trees = new Map<string | null, Tree>();
  const tree = (scope: string | null): Tree => {
    let t = trees.get(scope);
    if (!t) {
      t = { scope, range: CompactRange.empty(), kept: [], next: 0 };
      trees.set(scope, t);
    }
    return t;
  };

  // 1. the checkpoints, each opened with the node's key
  const checkpointsFile = paths.checkpointsFile();
  let lineNo = 0;
  const keptEnd = eachLine(checkpointsFile, (_, line) => {
    lineNo++;
    const text = new TextDecoder().decode(line);
    if (text.trim() === "") return;
    const c = parseCheckpointLine(text);
    if (c === null) {
      warnings.push(`line ${lineNo} of ${checkpointsFile} is not a checkpoint record (a write cut short by a crash?): skipped`);
      return;
    }
    if (!wanted(c.village_id)) return;
    if (opts.publicKey === null) {
      throw new LinksError("not_found", "the node's public key is needed to check its checkpoints: give --public-key FILE (the data directory has no node/ed25519.pub)");
    }
    let failure: string | null = null;
    try {
      const name = keyNameFor(c.note, opts.publicKey);
      if (name === null) throw new LinksError("invalid_signature", "it is not signed by the node's key");
      const opened = openCheckpoint(c.note, { name, publicKey: opts.publicKey });
      if (opened.origin !== checkpointOrigin(name, c.village_id)) failure = `its origin is not that of ${scopeName(c.village_id)}`;
      else if (opened.size !== c.size || !hashesEqual(opened.rootHash, c.root_hash)) failure = "the size or root beside the note is not the one it signs";
    } catch (e) {
      // the message may quote the note: only the code is printed
      failure = `its signed note does not verify with the node's key [${e instanceof LinksError ? e.code : "invalid_checkpoint"}]`;
    }
    tree(c.village_id).kept.push({ line: lineNo, size: c.size, root: c.root_hash, ts: c.ts, failure, forged: failure !== null });
  });
  if (keptEnd.end < keptEnd.size) warnings.push(`the last line of ${checkpointsFile} is unfinished (a write cut short by a crash): skipped`);
  for (const t of trees.values()) t.kept.sort((a, b) => a.size - b.size);

  // 2. the trees, recomputed from the audit file, compared at each checkpoint's size
  const compare = (t: Tree): void => {
    while (t.next < t.kept.length && (t.kept[t.next] as Kept).size === t.range.size) {
      const k = t.kept[t.next] as Kept;
      if (k.failure === null && !hashesEqual(t.range.size === 0 ? EMPTY_ROOT : t.range.root(), k.root)) {
        k.failure = `the root of its first ${k.size} rows is not the one signed`;
      }
      t.next++;
    }
  };
  for (const t of trees.values()) compare(t);
  const auditFile = paths.auditFile();
  const auditEnd = eachLine(auditFile, (offset, line) => {
    const leaf = auditLeafOf(line);
    if (leaf === null) {
      if (!isBlankLine(line)) warnings.push(`the line at byte ${offset} of ${auditFile} is not an audit row: it is in no tree`);
      return;
    }
    if (!wanted(leaf.scope)) return;
    const t = tree(leaf.scope);
    t.range.append(leafHash(line));
    compare(t);
  });
  if (auditEnd.end < auditEnd.size) warnings.push(`the last line of ${auditFile} is unfinished (an append cut short by a crash): it is in no tree yet`);

  // 3. a verdict per tree, naming the first bad row of each failing one
  let index: AuditIndex | null | undefined;
  const reports = [...trees.values()].map((t): TreeReport => {
    for (const k of t.kept.slice(t.next)) k.failure ??= `it covers ${k.size} rows, but the file holds ${t.range.size} for this tree`;
    const good = t.kept.filter((k) => k.failure === null);
    const bad = t.kept.find((k) => k.failure !== null && !k.forged);
    const forged = t.kept.find((k) => k.forged);
    const report: TreeReport = {
      village_id: t.scope,
      rows: t.range.size,
      checkpoints: t.kept.length,
      verified: good.length,
      latest_size: good.length > 0 ? (good[good.length - 1] as Kept).size : null,
      status: bad || forged ? "bad" : t.kept.length === 0 ? "unsigned" : "ok",
      first_bad_index: null,
      first_bad_range: null,
      detail: null,
    };
    if (!bad) {
      if (forged) report.detail = `the checkpoint at line ${forged.line} of checkpoints.jsonl fails: ${forged.failure}`;
      return report;
    }
    const from = good.filter((k) => k.size < bad.size).reduce((m, k) => Math.max(m, k.size), 0);
    index ??= AuditIndex.openExisting(paths);
    const exact = bad.size > from ? firstDifference(index ?? null, auditFile, t.scope, from, bad) : null;
    const signed = `the checkpoint of ${bad.size} rows signed at ${bad.ts} (line ${bad.line} of checkpoints.jsonl)`;
    if (exact !== null) {
      report.first_bad_index = exact;
      report.detail = `row ${exact} is not the one ${signed} covers: ${bad.failure}`;
    } else if (bad.size > from) {
      report.first_bad_range = [from, bad.size - 1];
      report.detail = `a row from ${from} to ${bad.size - 1} is not the one ${signed} covers: ${bad.failure}`;
    } else {
      report.detail = `${signed} fails: ${bad.failure}`;
    }
    if (forged) report.detail += `; and the checkpoint at line ${forged.line} fails: ${forged.failure}`;
    return report;
  });
  index?.close();
  // the public scope first, then villages by id
  reports.sort((a, b) => (a.village_id ?? "").localeCompare(b.village_id ?? ""));
  return { status: reports.some((r) => r.status === "bad") ? "bad" : "ok", trees: reports, warnings };
}

/**
 * Calls onLine for every complete line (until it answers false); returns where the last line
 * ended and the file's size.
 */
function eachLine(path: string, onLine: (offset: number, line: Uint8Array) => boolean | void): { end: number; size: number } {
  const lines = completeLines(path);
  for (;;) {
    const next = lines.next();
    if (next.done) return { end: next.value, size: Bun.file(path).size };
    if (onLine(next.value.offset, next.value.line) === false) return { end: next.value.offset, size: Bun.file(path).size };
  }
}

/**
 * The first row in [from, bad.size) whose leaf differs from the hash the audit index kept, when
 * the index's hashes are the signed history (they reproduce the failing checkpoint's root).
 */
function firstDifference(index: AuditIndex | null, auditFile: string, scope: string | null, from: number, bad: Kept): number | null {
  if (index === null || index.size(scope) < bad.size || !hashesEqual(index.rootAt(scope, bad.size), bad.root)) return null;
  const remembered = index.leafHashes(scope, from, bad.size);
  let leaf = 0;
  let found: number | null = null;
  eachLine(auditFile, (_, line) => {
    const row = auditLeafOf(line);
    if (row === null || row.scope !== scope) return true;
    const want = leaf >= from ? remembered[leaf - from] : undefined;
    if (want !== undefined && !hashesEqual(leafHash(line), want)) found = leaf;
    leaf++;
    return found === null && leaf < bad.size;
  });
  // the file ran out before the checkpoint's size: the first missing row
  return found ?? (leaf < bad.size ? leaf : null);
}
