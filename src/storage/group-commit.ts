/**
 * Group commit for the node's inbox. Accepted bundles of concurrent requests are gathered and
 * made durable together: one fdatasync of a write-ahead log (the bundles themselves) and one of
 * the audit log per batch, instead of several fsyncs per request. Bundle files, index rows and
 * latest pointers are then written without fsync; a checkpoint (syncfs) makes them durable and
 * empties the log, and `recover` rewrites whatever a crash lost from the log at start-up.
 */
import { existsSync, statSync } from "node:fs";
import { normalizeBundle, requireVerified } from "../core/bundle.ts";
import { parseJson, toJsonText, type JsonValue } from "../core/canonical.ts";
import { storageError } from "../core/errors.ts";
import { appendAudit, type AuditEntry } from "./audit.ts";
import { readJsonFile, writeJsonFile } from "./json-file.ts";
import { lockedAppend, readJsonl, readJsonlFrom, replaceJsonl } from "./jsonl.ts";
import { parseIndexRow } from "./claims-index.ts";
import type { DataPaths } from "./paths.ts";
import { indexRowLines, storeBundles, type IngestResult, type StoreItem } from "./store.ts";
import { syncFilesystem } from "./syncfs.ts";

export const GROUP_COMMIT_DEFAULTS = {
  maxBatch: 512,
  /** checkpoint when the log holds this many bytes, or this long after the last one */
  checkpointBytes: 32 * 1024 * 1024,
  checkpointMs: 10_000,
};

export interface CommitItem extends StoreItem {
  audit: AuditEntry;
}

interface Pending {
  item: CommitItem;
  resolve: (r: IngestResult) => void;
  reject: (e: unknown) => void;
}

interface LogEntry {
  village_id: string | null;
  visibility: string;
  bundle: JsonValue;
}

export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private logBytes = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly paths: DataPaths,
    private readonly opts = GROUP_COMMIT_DEFAULTS,
  ) {
    this.logBytes = sizeOf(paths.ingestLogFile());
    this.timer = setInterval(() => this.checkpointIfDue(true), opts.checkpointMs);
    this.timer.unref?.();
  }

  /** Resolves once the bundle is durable (or known to be stored already). */
  submit(item: CommitItem): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.opts.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        // Requests already readable are parsed first, so they join this batch.
        setImmediate(() => this.flush());
      }
    });
  }

  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    try {
      // The bundle is serialized once, for its log line and its file; "bundle" sorts first.
      for (const p of batch) p.item.text ??= toJsonText(p.item.bundle as unknown as JsonValue);
      const lines = batch.map(
        ({ item }) => `{"bundle":${item.text},"village_id":${toJsonText(item.villageId)},"visibility":${toJsonText(item.visibility)}}`,
      );
      lockedAppend(this.paths.ingestLogFile(), lines, { fsync: true });
      this.logBytes += lines.reduce((n, l) => n + l.length + 1, 0);
      const results = storeBundles(this.paths, batch.map((p) => p.item), { sync: false });
      const audits = batch.filter((_, i) => results[i]?.status === "stored").map((p) => p.item.audit);
      if (audits.length > 0) appendAudit(this.paths, ...audits);
      batch.forEach((p, i) => p.resolve(results[i] as IngestResult));
    } catch (e) {
      const error = storageError(e, "committing accepted bundles");
      for (const p of batch) p.reject(error);
    }
    this.checkpointIfDue(false);
  }

  private checkpointIfDue(timerFired: boolean): void {
    if (this.logBytes === 0) return;
    if (timerFired || this.logBytes >= this.opts.checkpointBytes) {
      try {
        checkpoint(this.paths);
        this.logBytes = 0;
      } catch (e) {
        process.stderr.write(`links: warning: checkpoint failed, will retry: ${(e as Error).message}\n`);
      }
    }
  }

  /** Commits what is queued, checkpoints, stops the timer (clean shutdown). */
  close(): void {
    this.flush();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.logBytes > 0) checkpoint(this.paths);
    this.logBytes = 0;
  }
}

/**
 * Makes everything written so far durable (syncfs), then empties the write-ahead log and notes
 * where the index and audit logs stood, so recovery only looks past that point.
 */
export function checkpoint(paths: DataPaths): void {
  syncFilesystem(paths.root);
  writeJsonFile(paths.ingestCheckpointFile(), {
    index_offset: sizeOf(paths.claimsIndexFile()),
    audit_offset: sizeOf(paths.auditFile()),
  });
  replaceJsonl(paths.ingestLogFile(), []);
}

/**
 * Replays the write-ahead log after a crash: every logged bundle is stored (its file rewritten
 * if missing or torn), its index rows appended once, its audit row written if it was lost.
 * Returns how many bundles needed repair.
 */
export function recover(paths: DataPaths): { logged: number; repaired: number } {
  const logFile = paths.ingestLogFile();
  if (!existsSync(logFile)) return { logged: 0, repaired: 0 };
  const entries = readJsonl(logFile, (line) => parseJson(line) as unknown as LogEntry);
  if (entries.length === 0) return { logged: 0, repaired: 0 };
  const mark = (readJsonFile(paths.ingestCheckpointFile()) ?? {}) as { index_offset?: number; audit_offset?: number };
  const indexed = idsAfter(paths.claimsIndexFile(), mark.index_offset ?? 0, (line) => parseIndexRow(line).bundle_id);
  const audited = idsAfter(paths.auditFile(), mark.audit_offset ?? 0, (line) => {
    const row = parseJson(line) as { action?: string; bundle_id?: string };
    return row.action === "ingest.accept" || row.action === "quarantine.approve" ? (row.bundle_id ?? "") : "";
  });
  let repaired = 0;
  for (const entry of entries) {
    const bundle = requireVerified(normalizeBundle(entry.bundle));
    const file = paths.bundleFile(bundle.bundle_id, entry.village_id);
    const whole = existsSync(file) && isWholeJson(file);
    if (whole && indexed.has(bundle.bundle_id)) continue;
    repaired++;
    if (!whole) writeJsonFile(file, bundle);
    if (!indexed.has(bundle.bundle_id)) {
      // storeBundles would see the file and call it a duplicate: append the rows directly.
      const rows = indexRowLines(bundle, entry.village_id, entry.visibility);
      lockedAppend(paths.claimsIndexFile(), rows);
      indexed.add(bundle.bundle_id);
    }
    if (!audited.has(bundle.bundle_id)) {
      appendAudit(paths, { action: "ingest.accept", bundle_id: bundle.bundle_id, village_id: entry.village_id, reason: "recovered from the ingest log after a crash" });
    }
  }
  checkpoint(paths);
  return { logged: entries.length, repaired };
}

/** Ids named by the records of a JSONL file from a byte offset on (all of it if it shrank). */
function idsAfter(path: string, offset: number, idOf: (line: string) => string): Set<string> {
  const start = offset <= sizeOf(path) ? offset : 0;
  const { records } = readJsonlFrom(path, start, idOf, () => {});
  return new Set(records.filter(Boolean));
}

function isWholeJson(file: string): boolean {
  try {
    return readJsonFile(file) !== null;
  } catch {
    return false;
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

