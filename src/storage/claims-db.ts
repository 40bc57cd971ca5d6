/**
 * The node's query index: a bun:sqlite database derived from store/index/claims.jsonl and the
 * audit log. The JSONL file is the record; the database tails it (the byte offset it has read is
 * stored in the same transaction as the rows), so it is never ahead of the file, and it rebuilds
 * itself when the file was replaced (reindex) or shrank (a crash lost an unsynced tail). Deleting
 * it is safe.
 *
 * Each row belongs to one scope: its village, the public store (""), or none (NULL) for a row
 * Python Links v0.7 wrote without the village it accepted the bundle into. Which village that was
 * is in v0.7's audit rows: the database tails the audit log too and keeps, in `legacy_holdings`,
 * every (bundle, village) whose bundle v0.7 left at the top of store/bundles/. Such a village gets
 * its own copy of the bundle's rows (`derived`), so its queries and "latest" see the bundle and
 * the public store and other villages do not. The store asks it about top-level files through
 * `TopLevelOwners`.
 */
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { normalizeBundle } from "../core/bundle.ts";
import { parseStored, toJsonText, type JsonValue } from "../core/canonical.ts";
import { storageError } from "../core/errors.ts";
import { indexRowLines, parseIndexRow, PUBLIC_SCOPE, rowScope, type ClaimFilter, type IndexRow } from "./index-rows.ts";
import { readJsonFile } from "./json-file.ts";
import { readJsonlFrom } from "./jsonl.ts";
import { BUNDLE_ID_RE, VILLAGE_ID_RE, type DataPaths } from "./paths.ts";
import type { Scope, TopLevelOwners } from "./store.ts";
import { readVillage, villagePolicy } from "./villages.ts";

const SCHEMA_VERSION = "2";
/** how long a catch-up that must be current waits for another process's catch-up */
const BUSY_WAIT_MS = 5000;
/** bytes of JSONL read at a time while catching up (bounds the memory it takes) */
const CATCH_UP_CHUNK = 4 * 1024 * 1024;
/** audit actions that put a bundle into a village */
const VILLAGE_ACCEPTS = new Set(["ingest.accept", "quarantine.approve"]);

interface RowKeys {
  bundle_id: string;
  village_id?: unknown;
  visibility?: unknown;
  subject: string;
  predicate: string;
  issuer: string;
}

/**
 * Only the string columns are taken from a row here (the row text itself is stored as it is),
 * so the runtime's JSON.parse serves: it loses nothing that is kept.
 */
function keysOf(line: string): RowKeys {
  const v = JSON.parse(line) as Partial<RowKeys>;
  if (typeof v.bundle_id !== "string" || typeof v.subject !== "string" || typeof v.predicate !== "string" || typeof v.issuer !== "string") {
    throw new Error("not an index row");
  }
  return v as RowKeys;
}

export interface ClaimRowWithSeq {
  seq: number;
  row: IndexRow;
}

/**
 * The statement behind a claims query: rows matching the filter with seq > after, oldest first.
 * A village's query names the index that fits it (subject, else issuer, else predicate): the
 * planner would otherwise pick (scope, seq) for its order and walk the whole village.
 */
export function claimsQuery(filter: ClaimFilter, limit: number, after = 0): { sql: string; args: Array<string | number> } {
  const where = ["seq > ?"];
  const args: Array<string | number> = [after];
  const eq = (column: string, value: string | undefined) => {
    if (value === undefined) return;
    where.push(`${column} = ?`);
    args.push(value);
  };
  if (filter.villageId !== undefined) eq("scope", filter.villageId);
  else where.push("derived = 0"); // across scopes: exactly the rows of claims.jsonl
  eq("subject", filter.subject);
  eq("issuer", filter.issuer);
  eq("predicate", filter.predicate);
  args.push(limit);
  let index = "";
  if (filter.subject !== undefined) index = "INDEXED BY claims_subject";
  else if (filter.villageId !== undefined) {
    index = filter.issuer !== undefined ? "INDEXED BY claims_issuer" : filter.predicate !== undefined ? "INDEXED BY claims_predicate" : "INDEXED BY claims_scope";
  }
  return { sql: `SELECT seq, row FROM claims ${index} WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`, args };
}

export class ClaimsDb implements TopLevelOwners {
  private readonly db: Database;
  private readonly jsonl: string;
  private readonly audit: string;
  private lastStamp = "";
  /** legacy_holdings as bundle id -> villages (small: only what v0.7 left at the top) */
  private holders: Map<string, string[]> | null = null;

  constructor(private readonly paths: DataPaths) {
    this.jsonl = paths.claimsIndexFile();
    this.audit = paths.auditFile();
    const file = paths.claimsSqliteFile();
    try {
      mkdirSync(dirname(file), { recursive: true });
      this.db = new Database(file, { create: true });
      this.db.exec("PRAGMA journal_mode = WAL");
      // Derived data: a crash may lose the newest rows, which the next catch-up reads again.
      this.db.exec("PRAGMA synchronous = OFF");
      this.db.exec(`PRAGMA busy_timeout = ${BUSY_WAIT_MS}`);
      this.migrate();
    } catch (e) {
      throw storageError(e, `opening the claims database ${file}`);
    }
  }

  private migrate(): void {
    this.db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    if (this.meta("schema") !== SCHEMA_VERSION) {
      this.db.exec("DROP TABLE IF EXISTS claims");
      this.db.exec("DROP TABLE IF EXISTS legacy_holdings");
      this.db.exec("DELETE FROM meta");
    }
    this.db.exec(`CREATE TABLE IF NOT EXISTS claims (
      seq INTEGER PRIMARY KEY,
      bundle_id TEXT NOT NULL,
      scope TEXT,
      derived INTEGER NOT NULL DEFAULT 0,
      subject TEXT NOT NULL,
      predicate TEXT NOT NULL,
      issuer TEXT NOT NULL,
      row TEXT NOT NULL)`);
    this.db.exec("CREATE INDEX IF NOT EXISTS claims_scope ON claims (scope, seq)");
    this.db.exec("CREATE INDEX IF NOT EXISTS claims_subject ON claims (subject, scope, seq)");
    this.db.exec("CREATE INDEX IF NOT EXISTS claims_issuer ON claims (scope, issuer, seq)");
    this.db.exec("CREATE INDEX IF NOT EXISTS claims_predicate ON claims (scope, predicate, seq)");
    this.db.exec("CREATE INDEX IF NOT EXISTS claims_bundle ON claims (bundle_id, scope)");
    this.db.exec(`CREATE TABLE IF NOT EXISTS legacy_holdings (
      bundle_id TEXT NOT NULL,
      village_id TEXT NOT NULL,
      pending INTEGER NOT NULL DEFAULT 1,
      PRIMARY KEY (bundle_id, village_id)) WITHOUT ROWID`);
    this.setMeta("schema", SCHEMA_VERSION);
  }

  private meta(key: string): string | null {
    const row = this.db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null;
    return row?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.db.query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
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
      this.holders = null;
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
            this.holders = null;
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
    this.holders = null;
    this.visibilities.clear();
    // The audit first: a v0.7 row of a village bundle is then copied to its village as it is read.
    this.followAudit(audit);
    this.followClaims(claims);
    this.materializePending();
    return `${claims.ino}:${claims.size}:${audit.ino}:${audit.size}`;
  }

  /** New (bundle, village) holdings from v0.7 audit rows: accepted into a village, file at the top. */
  private followAudit({ ino, size }: { ino: number; size: number }): void {
    let offset = Number(this.meta("audit_offset") ?? 0);
    if (String(ino) !== (this.meta("audit_ino") ?? String(ino)) || size < offset) {
      this.db.exec("DELETE FROM claims WHERE derived = 1");
      this.db.exec("DELETE FROM legacy_holdings");
      offset = 0;
    }
    const insert = this.db.query("INSERT OR IGNORE INTO legacy_holdings (bundle_id, village_id) VALUES (?, ?)");
    const parse = (line: string) => JSON.parse(line) as { action?: unknown; bundle_id?: unknown; village_id?: unknown } | null;
    offset = this.tail(this.audit, offset, size, parse, (row) => {
      if (typeof row !== "object" || row === null) return;
      const bid = row.bundle_id;
      const vid = row.village_id;
      if (!VILLAGE_ACCEPTS.has(row.action as string) || typeof bid !== "string" || typeof vid !== "string") return;
      if (!BUNDLE_ID_RE.test(bid) || !VILLAGE_ID_RE.test(vid)) return;
      // This node stores village bundles in the village's folder (before it audits them): only
      // v0.7 left one at the top instead.
      if (existsSync(this.paths.bundleFile(bid)) && !existsSync(this.paths.bundleFile(bid, vid))) insert.run(bid, vid);
    });
    this.setMeta("audit_offset", String(offset));
    this.setMeta("audit_ino", String(ino));
  }

  private followClaims({ ino, size }: { ino: number; size: number }): void {
    let offset = Number(this.meta("offset") ?? 0);
    if (String(ino) !== (this.meta("ino") ?? String(ino)) || size < offset) {
      this.db.exec("DELETE FROM claims");
      this.db.exec("UPDATE legacy_holdings SET pending = 1");
      offset = 0;
    }
    const holders = this.holdings();
    const dropCopies = this.db.query("DELETE FROM claims WHERE bundle_id = ? AND scope = ? AND derived = 1");
    const parse = (line: string) => ({ line, k: keysOf(line) });
    offset = this.tail(this.jsonl, offset, size, parse, ({ line, k }) => {
      const scope = rowScope(k);
      this.insertRow(k, scope, false, line);
      const villages = holders.get(k.bundle_id);
      if (villages === undefined) return;
      if (scope === null) {
        for (const vid of villages) if (!this.hasRows(k.bundle_id, vid, false)) this.insertCopy(line, vid);
      } else if (villages.includes(scope)) {
        dropCopies.run(k.bundle_id, scope); // the village's own rows came (a reindex wrote them)
      }
    });
    this.setMeta("offset", String(offset));
    this.setMeta("ino", String(ino));
  }

  /** Holdings not yet seen through a row: copies of their v0.7 rows, or rows from the file. */
  private materializePending(): void {
    const pending = this.db.query("SELECT bundle_id, village_id FROM legacy_holdings WHERE pending = 1").all() as Array<{ bundle_id: string; village_id: string }>;
    const done = this.db.query("UPDATE legacy_holdings SET pending = 0 WHERE bundle_id = ? AND village_id = ?");
    for (const { bundle_id: bid, village_id: vid } of pending) {
      if (!this.hasRows(bid, vid, true)) {
        const old = this.unattributedRows(bid);
        if (old.length > 0) for (const line of old) this.insertCopy(line, vid);
        else this.insertFromFile(bid, vid);
      }
      done.run(bid, vid);
    }
  }

  private insertFromFile(bundleId: string, villageId: string): void {
    try {
      const raw = readJsonFile(this.paths.bundleFile(bundleId));
      if (raw === null) return;
      for (const line of indexRowLines(normalizeBundle(raw), villageId, this.visibilityOf(villageId))) {
        this.insertRow(keysOf(line), villageId, true, line);
      }
    } catch (e) {
      this.warnOnce(`bundle ${bundleId} of village ${villageId} could not be read (${(e as Error).message}); it is left out of the village's queries`);
    }
  }

  /** A v0.7 row as its village's own: village_id and visibility filled in. */
  private insertCopy(line: string, villageId: string): void {
    const row = parseStored(line) as Record<string, JsonValue>;
    row.village_id = villageId;
    row.visibility = this.visibilityOf(villageId);
    const text = toJsonText(row);
    this.insertRow(keysOf(text), villageId, true, text);
  }

  private insertRow(k: RowKeys, scope: string | null, derived: boolean, line: string): void {
    this.db
      .query("INSERT INTO claims (bundle_id, scope, derived, subject, predicate, issuer, row) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(k.bundle_id, scope, derived ? 1 : 0, k.subject, k.predicate, k.issuer, line);
  }

  private hasRows(bundleId: string, scope: string, includeDerived: boolean): boolean {
    const sql = `SELECT 1 FROM claims WHERE bundle_id = ? AND scope = ?${includeDerived ? "" : " AND derived = 0"} LIMIT 1`;
    return this.db.query(sql).get(bundleId, scope) !== null;
  }

  private holdings(): Map<string, string[]> {
    if (this.holders) return this.holders;
    const map = new Map<string, string[]>();
    for (const r of this.db.query("SELECT bundle_id, village_id FROM legacy_holdings ORDER BY bundle_id, village_id").all() as Array<{ bundle_id: string; village_id: string }>) {
      const list = map.get(r.bundle_id);
      if (list) list.push(r.village_id);
      else map.set(r.bundle_id, [r.village_id]);
    }
    this.holders = map;
    return map;
  }

  private visibilities = new Map<string, string>();

  private visibilityOf(villageId: string): string {
    let v = this.visibilities.get(villageId);
    if (v === undefined) {
      v = villageVisibility(this.paths, villageId);
      this.visibilities.set(villageId, v);
    }
    return v;
  }

  /**
   * Parses the whole lines of `file` from offset to size (a line that does not parse is skipped)
   * and hands each record to `apply`; returns the offset reached.
   */
  private tail<T>(file: string, offset: number, size: number, parse: (line: string) => T, apply: (record: T) => void): number {
    while (offset < size) {
      const { records, nextOffset } = readJsonlFrom(file, offset, parse, () => {}, CATCH_UP_CHUNK);
      for (const r of records) apply(r);
      if (nextOffset === offset) break; // only a torn tail is left
      offset = nextOffset;
    }
    return offset;
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

  villagesAtTop(bundleId: string): string[] {
    this.catchUp({ wait: false });
    return this.holdings().get(bundleId) ?? [];
  }

  /**
   * A file at the top is public unless it is only a village's: one v0.7 accepted into a village
   * (audit), or whose v0.7 rows name no public visibility, and that was never indexed publicly.
   */
  publicAtTop(bundleId: string): boolean {
    this.catchUp({ wait: false });
    if (this.hasRows(bundleId, PUBLIC_SCOPE, false)) return true;
    if (this.holdings().has(bundleId)) return false;
    return this.unattributedRows(bundleId).length === 0;
  }

  refresh(): void {
    this.catchUp();
  }

  /** The rows v0.7 wrote for a bundle without its village (oldest first). */
  unattributedRows(bundleId: string): string[] {
    const rows = this.db.query("SELECT row FROM claims WHERE bundle_id = ? AND scope IS NULL AND derived = 0 ORDER BY seq").all(bundleId) as Array<{ row: string }>;
    return rows.map((r) => r.row);
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

/** A village's visibility for its index rows ("village" when its policy cannot be read). */
export function villageVisibility(paths: DataPaths, villageId: string): string {
  try {
    return villagePolicy(readVillage(paths, villageId)).visibility;
  } catch {
    return "village";
  }
}

function fileStamp(path: string): { ino: number; size: number } {
  try {
    const s = statSync(path);
    return { ino: s.ino, size: s.size };
  } catch {
    return { ino: 0, size: 0 };
  }
}
