/**
 * Group commit for the node's inbox. Accepted bundles of concurrent requests are gathered and
 * made durable together: one fdatasync of a write-ahead log (the bundles themselves) and one of
 * the audit log per batch, instead of several fsyncs per request. Bundle files, index rows and
 * latest pointers are then written without fsync; a checkpoint (syncfs) makes them durable and
 * empties the log, and `recover` rewrites whatever a crash lost from the log at start-up.
 */
import { existsSync } from "node:fs";
import { normalizeBundle, requireVerified } from "../core/bundle.ts";
import { parseStored, toJsonText, type JsonValue } from "../core/canonical.ts";
import { storageError } from "../core/errors.ts";
import { Histogram } from "../core/stats.ts";
import { fdatasyncFile } from "./atomic.ts";
import { appendAudit, auditRow, type AuditEntry, type AuditRow } from "./audit.ts";
import { withFileLockSync } from "./flock.ts";
import { indexRowLines, rowScope } from "./index-rows.ts";
import { readJsonFile, writeJsonFile } from "./json-file.ts";
import { dropJsonlPrefix, fileStamp, lockedAppend, readJsonl, readJsonlFrom } from "./jsonl.ts";
import type { DataPaths } from "./paths.ts";
import { storeBundles, type IngestResult, type StoreItem, type TopLevelOwners } from "./store.ts";
import { syncFilesystem, syncFilesystemAsync } from "./syncfs.ts";

export const GROUP_COMMIT_DEFAULTS = {
  maxBatch: 512,
  /** checkpoint when the log holds this many bytes, or this long after the last one */
  checkpointBytes: 32 * 1024 * 1024,
  checkpointMs: 10_000,
};

/** What the node's metrics read: filled in as batches commit and checkpoints finish. */
export class GroupCommitStats {
  readonly batchSize = new Histogram([1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
  readonly fsyncSeconds = new Histogram([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
  checkpoints = 0;
  checkpointFailures = 0;
  /** ms since the epoch of the last checkpoint that finished, or null */
  lastCheckpointMs: number | null = null;
}

export interface CommitItem extends StoreItem {
  audit: AuditEntry;
}

interface Pending {
  item: CommitItem;
  resolve: (r: IngestResult) => void;
  reject: (e: unknown) => void;
}

interface LogEntry {
  /** the bundle's audit row as it was to be written (older log lines may lack it) */
  audit?: AuditRow;
  village_id: string | null;
  visibility: string;
  bundle: JsonValue;
}

export class GroupCommit {
  private queue: Pending[] = [];
  private running: Promise<void> | null = null;
  private logBytes = 0;
  private checkpointDue = false;
  private needsRepair = false;
  private checkpointing: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  readonly stats = new GroupCommitStats();

  constructor(
    private readonly paths: DataPaths,
    /** the claims database: who holds the files Python v0.7 left at the top of store/bundles */
    private readonly owners: TopLevelOwners,
    private readonly opts: typeof GROUP_COMMIT_DEFAULTS & { syncFs?: (path: string) => Promise<void> } = GROUP_COMMIT_DEFAULTS,
  ) {
    this.logBytes = fileStamp(paths.ingestLogFile()).size;
    this.timer = setInterval(() => {
      this.checkpointDue = true;
      if (!this.running) this.checkpointIfDue();
    }, opts.checkpointMs);
    this.timer.unref?.();
  }

  /** Resolves once the bundle is durable (or known to be stored already). */
  submit(item: CommitItem): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.running ??= this.drain();
    });
  }

  /**
   * Commits batches until the queue is empty. While a batch waits for its fdatasync (off the
   * main thread), the next requests are parsed and verified and queue up for the next batch.
   */
  private async drain(): Promise<void> {
    // Requests already readable are parsed first, so they join the first batch.
    await new Promise<void>((r) => setImmediate(r));
    try {
      while (this.queue.length > 0) {
        await this.commit(this.queue.splice(0, this.opts.maxBatch));
        this.checkpointIfDue();
      }
    } finally {
      this.running = null;
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    try {
      // The bundle is serialized once, for its log line and its file; "audit" < "bundle" < ...
      const lines = batch.map(({ item }) => {
        item.text ??= toJsonText(item.bundle as unknown as JsonValue);
        const audit = toJsonText(auditRow(item.audit) as unknown as JsonValue);
        return `{"audit":${audit},"bundle":${item.text},"village_id":${toJsonText(item.villageId)},"visibility":${toJsonText(item.visibility)}}`;
      });
      lockedAppend(this.paths.ingestLogFile(), lines, { fsync: false });
      this.stats.batchSize.observe(batch.length);
      const syncStart = performance.now();
      await fdatasyncFile(this.paths.ingestLogFile());
      this.stats.fsyncSeconds.observe((performance.now() - syncStart) / 1000);
      this.logBytes += lines.reduce((n, l) => n + l.length + 1, 0);
      // Durable from here on: the log holds each bundle and its audit row.
      const results = storeBundles(this.paths, batch.map((p) => p.item), this.owners, { sync: false });
      const audits = batch.filter((_, i) => results[i]?.status === "stored").map((p) => auditRow(p.item.audit));
      if (audits.length > 0) lockedAppend(this.paths.auditFile(), audits.map((a) => toJsonText(a as unknown as JsonValue)), { fsync: false });
      batch.forEach((p, i) => p.resolve(results[i] as IngestResult));
    } catch (e) {
      // Some of the batch may be logged but not stored: the next checkpoint repairs from the log
      // before it empties it.
      this.needsRepair = true;
      const error = storageError(e, "committing accepted bundles");
      for (const p of batch) p.reject(error);
    }
  }

  private checkpointIfDue(): void {
    if (this.checkpointing) return;
    if (this.logBytes === 0) {
      this.checkpointDue = false;
      return;
    }
    if (!this.checkpointDue && this.logBytes < this.opts.checkpointBytes) return;
    this.checkpointDue = false;
    this.checkpointing = this.checkpointAsync()
      .then(() => {
        this.stats.checkpoints++;
        this.stats.lastCheckpointMs = Date.now();
      })
      .catch((e) => {
        this.checkpointDue = true;
        this.stats.checkpointFailures++;
        process.stderr.write(`links: warning: checkpoint failed, will retry: ${(e as Error).message}\n`);
      })
      .finally(() => {
        this.checkpointing = null;
      });
  }

  /**
   * Called between batches (never while one is half written): what the log holds up to here is
   * on disk once the filesystem is synced, so that prefix of the log can go. Batches committed
   * meanwhile land after it and stay.
   */
  private async checkpointAsync(): Promise<void> {
    if (this.needsRepair) {
      this.needsRepair = false;
      recover(this.paths);
      this.logBytes = 0;
      return;
    }
    const mark = checkpointMark(this.paths);
    await (this.opts.syncFs ?? syncFilesystemAsync)(this.paths.root);
    finishCheckpoint(this.paths, mark);
    this.logBytes = Math.max(0, this.logBytes - mark.log);
  }

  /** Commits what is queued, checkpoints, stops the timer (clean shutdown). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.running || this.checkpointing) await (this.running ?? this.checkpointing);
    if (this.needsRepair || this.logBytes > 0) await this.checkpointAsync();
  }
}

/**
 * Makes everything written so far durable (syncfs), then empties the write-ahead log and notes
 * where the index and audit logs stood, so recovery only looks past that point.
 */
export function checkpoint(paths: DataPaths): void {
  const mark = checkpointMark(paths);
  syncFilesystem(paths.root);
  finishCheckpoint(paths, mark);
}

interface Mark {
  log: number;
  index: { ino: number; size: number };
  audit: { ino: number; size: number };
}

/** Where the log, index and audit files stand before the filesystem is synced. */
function checkpointMark(paths: DataPaths): Mark {
  return { log: fileStamp(paths.ingestLogFile()).size, index: fileStamp(paths.claimsIndexFile()), audit: fileStamp(paths.auditFile()) };
}

/**
 * After the sync: note the offsets for recovery and drop the part of the log now on disk. The
 * inodes say whether a later recovery still reads the same files (a reindex replaces the index).
 */
function finishCheckpoint(paths: DataPaths, mark: Mark): void {
  writeJsonFile(paths.ingestCheckpointFile(), {
    index_offset: mark.index.size,
    index_ino: mark.index.ino,
    audit_offset: mark.audit.size,
    audit_ino: mark.audit.ino,
  });
  dropJsonlPrefix(paths.ingestLogFile(), mark.log);
}

/**
 * Replays the write-ahead log after a crash: every logged bundle is stored in its village (its
 * file rewritten if missing or torn), its index rows appended once, its audit row written if it
 * was lost. "Once" is per scope: rows or an audit row of the same bundle in another scope (the
 * public store, another village) do not count. Returns how many bundles needed repair.
 */
export function recover(paths: DataPaths): { logged: number; repaired: number } {
  const logFile = paths.ingestLogFile();
  if (!existsSync(logFile)) return { logged: 0, repaired: 0 };
  const entries = readJsonl(logFile, (line) => parseStored(line) as unknown as LogEntry);
  if (entries.length === 0) return { logged: 0, repaired: 0 };
  const mark = (readJsonFile(paths.ingestCheckpointFile()) ?? {}) as { index_offset?: number; index_ino?: number; audit_offset?: number; audit_ino?: number };
  const indexed = keysAfter(paths.claimsIndexFile(), mark.index_offset, mark.index_ino, (line) => {
    const row = JSON.parse(line) as { bundle_id?: unknown; village_id?: unknown; visibility?: unknown };
    return typeof row.bundle_id === "string" ? scopeKey(rowScope(row), row.bundle_id) : "";
  });
  const audited = keysAfter(paths.auditFile(), mark.audit_offset, mark.audit_ino, (line) => {
    const row = parseStored(line) as { action?: string; bundle_id?: string; village_id?: string | null };
    const stores = row.action === "ingest.accept" || row.action === "quarantine.approve";
    return stores && typeof row.bundle_id === "string" ? scopeKey(row.village_id ?? "", row.bundle_id) : "";
  });
  let repaired = 0;
  withFileLockSync(paths.indexWritersLockFile(), "shared", () => {
    for (const entry of entries) {
      const bundle = requireVerified(normalizeBundle(entry.bundle));
      const key = scopeKey(entry.village_id ?? "", bundle.bundle_id);
      const file = paths.bundleFile(bundle.bundle_id, entry.village_id);
      const whole = existsSync(file) && isWholeJson(file);
      if (whole && indexed.has(key) && audited.has(key)) continue;
      repaired++;
      if (!whole) writeJsonFile(file, bundle);
      if (!indexed.has(key)) {
        // storeBundles would see the file and call it a duplicate: append the rows directly.
        lockedAppend(paths.claimsIndexFile(), indexRowLines(bundle, entry.village_id, entry.visibility));
        indexed.add(key);
      }
      if (!audited.has(key)) {
        if (entry.audit) lockedAppend(paths.auditFile(), [toJsonText(entry.audit as unknown as JsonValue)]);
        else appendAudit(paths, { action: "ingest.accept", bundle_id: bundle.bundle_id, village_id: entry.village_id, reason: "recovered from the ingest log after a crash" });
        audited.add(key);
      }
    }
  });
  checkpoint(paths);
  return { logged: entries.length, repaired };
}

function scopeKey(scope: string | null, bundleId: string): string {
  return `${scope ?? "\u0000"}/${bundleId}`;
}

/**
 * Keys of the records of a JSONL file from the checkpoint's offset on: all of it when the file
 * was replaced or shrank since (or there was no checkpoint).
 */
function keysAfter(path: string, offset: number | undefined, ino: number | undefined, keyOf: (line: string) => string): Set<string> {
  const now = fileStamp(path);
  const same = offset !== undefined && offset <= now.size && (ino === undefined || ino === now.ino);
  const { records } = readJsonlFrom(path, same ? offset : 0, keyOf, () => {});
  return new Set(records.filter(Boolean));
}

function isWholeJson(file: string): boolean {
  try {
    return readJsonFile(file) !== null;
  } catch {
    return false;
  }
}
