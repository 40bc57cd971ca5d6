/**
 * The node's query index: a bun:sqlite database derived from store/index/claims.jsonl. The JSONL
 * file is the record; the database tails it (the byte offset it has read is stored in the same
 * transaction as the rows), so it is never ahead of the file, and it rebuilds itself when the
 * file was replaced (reindex) or shrank (a crash lost an unsynced tail). Deleting it is safe.
 */
import { Database } from "bun:sqlite";
import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { storageError } from "../core/errors.ts";
import { parseIndexRow, type ClaimFilter } from "./claims-index.ts";
import { readJsonlFrom } from "./jsonl.ts";
import type { DataPaths } from "./paths.ts";
import type { IndexRow } from "./store.ts";

const SCHEMA_VERSION = "1";
/** bytes of JSONL read at a time while catching up (bounds the memory it takes) */
const CATCH_UP_CHUNK = 4 * 1024 * 1024;

interface RowKeys {
  bundle_id: string;
  village_id: string | null;
  visibility: string | null;
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

export class ClaimsDb {
  private readonly db: Database;
  private readonly jsonl: string;
  private lastStamp = "";

  constructor(paths: DataPaths) {
    this.jsonl = paths.claimsIndexFile();
    const file = paths.claimsSqliteFile();
    try {
      mkdirSync(dirname(file), { recursive: true });
      this.db = new Database(file, { create: true });
      this.db.exec("PRAGMA journal_mode = WAL");
      // Derived data: a crash may lose the newest rows, which the next catch-up reads again.
      this.db.exec("PRAGMA synchronous = OFF");
      this.db.exec("PRAGMA busy_timeout = 5000");
      this.migrate();
    } catch (e) {
      throw storageError(e, `opening the claims database ${file}`);
    }
  }

  private migrate(): void {
    this.db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    const version = this.meta("schema");
    if (version !== SCHEMA_VERSION) {
      this.db.exec("DROP TABLE IF EXISTS claims");
      this.db.exec("DELETE FROM meta");
    }
    this.db.exec(`CREATE TABLE IF NOT EXISTS claims (
      seq INTEGER PRIMARY KEY,
      bundle_id TEXT NOT NULL,
      village_id TEXT,
      visibility TEXT,
      subject TEXT NOT NULL,
      predicate TEXT NOT NULL,
      issuer TEXT NOT NULL,
      row TEXT NOT NULL)`);
    this.db.exec("CREATE INDEX IF NOT EXISTS claims_subject ON claims (subject, seq)");
    this.db.exec("CREATE INDEX IF NOT EXISTS claims_village ON claims (village_id, seq)");
    this.db.exec("CREATE INDEX IF NOT EXISTS claims_bundle ON claims (bundle_id)");
    this.setMeta("schema", SCHEMA_VERSION);
  }

  private meta(key: string): string | null {
    const row = this.db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null;
    return row?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.db.query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  /** Reads what the JSONL gained since the last call; cheap (one stat) when nothing changed. */
  catchUp(): void {
    let ino = 0;
    let size = 0;
    try {
      const s = statSync(this.jsonl);
      ino = s.ino;
      size = s.size;
    } catch {
      // no index yet
    }
    const stamp = `${ino}:${size}`;
    if (stamp === this.lastStamp) return;
    const begin = this.db.transaction(() => {
      let offset = Number(this.meta("offset") ?? 0);
      if (String(ino) !== (this.meta("ino") ?? String(ino)) || size < offset) {
        this.db.exec("DELETE FROM claims");
        offset = 0;
      }
      const insert = this.db.query(
        "INSERT INTO claims (bundle_id, village_id, visibility, subject, predicate, issuer, row) VALUES (?, ?, ?, ?, ?, ?, ?)",
      );
      while (offset < size) {
        const { records, nextOffset } = readJsonlFrom(this.jsonl, offset, (line) => ({ line, row: keysOf(line) }), () => {}, CATCH_UP_CHUNK);
        for (const { line, row } of records) {
          insert.run(row.bundle_id, row.village_id ?? null, row.visibility ?? null, row.subject, row.predicate, row.issuer, line);
        }
        if (nextOffset === offset) break; // only a torn tail is left
        offset = nextOffset;
      }
      this.setMeta("offset", String(offset));
      this.setMeta("ino", String(ino));
    });
    try {
      begin.immediate();
      this.lastStamp = stamp;
    } catch (e) {
      // A full disk (or a busy database) must not take reads down: answer from what is indexed
      // and catch up on a later call.
      this.warnOnce(`the claims database could not catch up with ${this.jsonl} (${(e as Error).message}); answering from the rows indexed so far`);
    }
  }

  private lastWarning = 0;

  private warnOnce(message: string): void {
    const now = Date.now();
    if (now - this.lastWarning < 60_000) return;
    this.lastWarning = now;
    process.stderr.write(`links: warning: ${message}\n`);
  }

  /** Rows matching the filter with seq > after, oldest first. */
  query(filter: ClaimFilter, limit: number, after = 0): ClaimRowWithSeq[] {
    this.catchUp();
    const where = ["seq > ?"];
    const args: Array<string | number | null> = [after];
    const eq = (column: string, value: string | undefined) => {
      if (value === undefined) return;
      where.push(`${column} = ?`);
      args.push(value);
    };
    eq("subject", filter.subject);
    eq("predicate", filter.predicate);
    eq("issuer", filter.issuer);
    eq("village_id", filter.villageId);
    args.push(limit);
    // The planner likes the (village_id, seq) index for its order, and would then walk a whole
    // village to find one subject: a subject is far more selective, so name its index.
    const index = filter.subject !== undefined ? "INDEXED BY claims_subject" : filter.villageId !== undefined ? "INDEXED BY claims_village" : "";
    const rows = this.db.query(`SELECT seq, row FROM claims ${index} WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`).all(...args) as Array<{ seq: number; row: string }>;
    return rows.map((r) => ({ seq: r.seq, row: parseIndexRow(r.row) }));
  }

  /** The bundle most recently indexed for a village (null: the public store), or null. */
  latestBundleId(villageId: string | null): string | null {
    this.catchUp();
    const row = (villageId === null
      ? this.db.query("SELECT bundle_id FROM claims WHERE village_id IS NULL AND visibility = 'public' ORDER BY seq DESC LIMIT 1").get()
      : this.db.query("SELECT bundle_id FROM claims WHERE village_id = ? ORDER BY seq DESC LIMIT 1").get(villageId)) as { bundle_id: string } | null;
    return row?.bundle_id ?? null;
  }

  close(): void {
    this.db.close();
  }
}
