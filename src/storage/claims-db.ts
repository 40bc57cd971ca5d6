/**
 * The node's query index: a bun:sqlite database derived from store/index/claims.jsonl and the
 * audit log. The JSONL file is the record; the database tails it (the byte offset it has read is
 * stored in the same transaction as the rows), so it is never ahead of the file, and it rebuilds
 * itself when the file was replaced (reindex) or shrank (a crash lost an unsynced tail). Deleting
 * it is safe.
 *
 * Each row belongs to one scope: its village, the public store, or none for a row Python Links
 * v0.7 wrote without the village it accepted the bundle into; legacy-holdings.ts gives such a
 * village its own copy of those rows. The store asks it about files at the top of store/bundles
 * through `TopLevelOwners`.
 */
import { Database } from "bun:sqlite";
import { dirname } from "node:path";
import { storageError } from "../core/errors.ts";
import { claimsQuery, ClaimsTable, keysOf, Meta, tailJsonl } from "./claims-table.ts";
import { parseIndexRow, PUBLIC_SCOPE, rowScope, type ClaimFilter, type IndexRow } from "./index-rows.ts";
import { fileStamp } from "./jsonl.ts";
import { LegacyHoldings } from "./legacy-holdings.ts";
import { makeDataDirs } from "./open.ts";
import type { DataPaths } from "./paths.ts";
import type { Scope, TopLevelOwners } from "./store.ts";

const SCHEMA_VERSION = "2";
/** how long a catch-up that must be current waits for another process's catch-up */
const BUSY_WAIT_MS = 5000;

export interface ClaimRowWithSeq {
  seq: number;
  row: IndexRow;
}

export class ClaimsDb implements TopLevelOwners {
  private readonly db: Database;
  private readonly claims: ClaimsTable;
  private readonly meta: Meta;
  private readonly legacy: LegacyHoldings;
  private readonly jsonl: string;
  private readonly audit: string;
  /** the files' stamp at the last catch-up that went through ("" until one has) */
  private lastStamp = "";

  constructor(paths: DataPaths) {
    this.jsonl = paths.claimsIndexFile();
    this.audit = paths.auditFile();
    const file = paths.claimsSqliteFile();
    try {
      makeDataDirs(dirname(file));
      this.db = new Database(file, { create: true });
      this.db.exec("PRAGMA journal_mode = WAL");
      // Derived data: a crash may lose the newest rows, which the next catch-up reads again.
      this.db.exec("PRAGMA synchronous = OFF");
      this.db.exec(`PRAGMA busy_timeout = ${BUSY_WAIT_MS}`);
      this.meta = new Meta(this.db);
      if (this.meta.get("schema") !== SCHEMA_VERSION) {
        this.db.exec("DROP TABLE IF EXISTS claims");
        this.db.exec("DROP TABLE IF EXISTS legacy_holdings");
        this.meta.clear();
      }
      this.claims = new ClaimsTable(this.db);
      this.legacy = new LegacyHoldings(this.db, this.claims, this.meta, paths, (m) => this.warnOnce(m));
      this.meta.set("schema", SCHEMA_VERSION);
    } catch (e) {
      throw storageError(e, `opening the claims database ${file}`);
    }
  }

  /**
   * Reads what the audit log and the JSONL gained since the last call; two stats when nothing did.
   * With `wait: false` (queries), it does not wait for another process that is catching up (e.g.
   * `links claims reindex` indexing the file it just rebuilt): the answer then comes from the
   * rows indexed so far, and a later call catches up.
   */
  catchUp(opts: { wait: boolean } = { wait: true }): void {
    if (this.stamp() === this.lastStamp) return;
    if (!opts.wait) this.db.exec("PRAGMA busy_timeout = 0");
    try {
      this.lastStamp = this.db.transaction(() => this.follow()).immediate();
    } catch (e) {
      this.legacy.invalidate(); // what the rolled-back transaction read is gone
      if (!opts.wait && (e as { code?: string }).code === "SQLITE_BUSY") return;
      // A full disk (or a busy database) must not take reads down: answer from what is indexed
      // and catch up on a later call.
      this.warnOnce(`the claims database could not catch up with ${this.jsonl} (${(e as Error).message}); answering from the rows indexed so far`);
    } finally {
      if (!opts.wait) this.db.exec(`PRAGMA busy_timeout = ${BUSY_WAIT_MS}`);
    }
  }

  /**
   * Runs `swap`, which replaces claims.jsonl (`links claims reindex`), and indexes the new file,
   * holding this database's write lock throughout: a node on the same data directory then keeps
   * answering from the rows it had (its catch-up does not wait), instead of starting to index
   * the new file itself and stalling on it. A failure to index does not undo the swap: the next
   * catch-up indexes the file.
   */
  replaceIndex<T>(swap: () => T): T {
    let swapped: { result: T } | null = null;
    let stamp = "";
    try {
      this.db
        .transaction(() => {
          swapped = { result: swap() };
          try {
            stamp = this.db.transaction(() => this.follow())(); // a savepoint: all of it or none
          } catch (e) {
            this.legacy.invalidate(); // what the rolled-back transaction read is gone
            this.warnOnce(`the claims database could not index the rebuilt ${this.jsonl} (${(e as Error).message}); it will on its next catch-up`);
          }
        })
        .immediate();
    } catch (e) {
      if (swapped !== null) throw e;
      // The database stayed busy: swap without it; the next catch-up indexes the new file.
      if (!(e as { code?: string }).code?.startsWith("SQLITE_")) throw e;
      return swap();
    }
    this.lastStamp = stamp;
    return (swapped as unknown as { result: T }).result;
  }

  private stamp(): string {
    const claims = fileStamp(this.jsonl);
    const audit = fileStamp(this.audit);
    return `${claims.ino}:${claims.size}:${audit.ino}:${audit.size}`;
  }

  /** One catch-up, inside a write transaction; returns the stamp of what it read. */
  private follow(): string {
    const claims = fileStamp(this.jsonl);
    const audit = fileStamp(this.audit);
    this.legacy.invalidate();
    // The audit first: a v0.7 row of a village bundle is then copied to its village as it is read.
    this.legacy.followAudit(this.audit, audit);
    const offset = this.meta.resume("claims", claims, () => {
      this.claims.clear();
      this.legacy.reset();
    });
    const parse = (line: string) => ({ line, k: keysOf(line) });
    const reached = tailJsonl(this.jsonl, offset, claims.size, parse, ({ line, k }) => {
      const scope = rowScope(k);
      this.claims.insert(k, scope, false, line);
      this.legacy.onRow(line, k, scope);
    });
    this.meta.reached("claims", claims, reached);
    this.legacy.materialize();
    return `${claims.ino}:${claims.size}:${audit.ino}:${audit.size}`;
  }

  private lastWarning = 0;

  private warnOnce(message: string): void {
    const now = Date.now();
    if (now - this.lastWarning < 60_000) return;
    this.lastWarning = now;
    process.stderr.write(`links: warning: ${message}\n`);
  }

  /** Rows matching the filter with seq > after, oldest first (see claimsQuery). */
  query(filter: ClaimFilter, limit: number, after = 0): ClaimRowWithSeq[] {
    this.catchUp({ wait: false });
    const { sql, args } = claimsQuery(filter, limit, after);
    const rows = this.db.query(sql).all(...args) as Array<{ seq: number; row: string }>;
    return rows.map((r) => ({ seq: r.seq, row: parseIndexRow(r.row) }));
  }

  /** The bundle most recently indexed for a scope (a village, or null: the public store), or null. */
  latestBundleId(scope: Scope): string | null {
    this.catchUp({ wait: false });
    const row = this.db.query("SELECT bundle_id FROM claims INDEXED BY claims_scope WHERE scope = ? ORDER BY seq DESC LIMIT 1").get(scope ?? PUBLIC_SCOPE) as { bundle_id: string } | null;
    return row?.bundle_id ?? null;
  }

  /**
   * v0.7's holdings come from its audit rows, which only v0.7 writes: what the first catch-up of
   * this process read stays true (later catch-ups keep the table current too), so this does not
   * catch up again. The group commit asks it for every village bundle it stores.
   */
  villagesAtTop(bundleId: string): string[] {
    if (this.lastStamp === "") this.catchUp({ wait: false });
    return this.legacy.villagesOf(bundleId);
  }

  /**
   * A file at the top is public unless it is only a village's: one v0.7 accepted into a village
   * (audit), or whose v0.7 rows name no public visibility, and that was never indexed publicly.
   */
  publicAtTop(bundleId: string): boolean {
    this.catchUp({ wait: false });
    if (this.claims.has(bundleId, PUBLIC_SCOPE, false)) return true;
    if (this.legacy.has(bundleId)) return false;
    return this.claims.unattributed(bundleId).length === 0;
  }

  refresh(): void {
    this.catchUp();
  }

  /** The rows v0.7 wrote for a bundle without its village (oldest first). */
  unattributedRows(bundleId: string): string[] {
    return this.claims.unattributed(bundleId);
  }

  close(): void {
    this.db.close();
  }
}

/**
 * Runs fn with `owners`, or, when the caller has none (a one-off CLI command), with the claims
 * database opened for the call and closed after it (also after a returned promise settles).
 */
export function withOwners<T, O extends TopLevelOwners>(paths: DataPaths, owners: O | undefined, fn: (owners: O | ClaimsDb) => T): T {
  if (owners !== undefined) return fn(owners);
  const db = new ClaimsDb(paths);
  let result: T;
  try {
    result = fn(db);
  } catch (e) {
    db.close();
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => db.close()) as T;
  db.close();
  return result;
}
