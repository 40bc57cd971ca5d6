/**
 * The audit trees: one RFC 9162 Merkle tree per village (and one for the public scope) over the
 * rows of store/audit/audit.log.jsonl, kept in a bun:sqlite database derived from that file
 * (store/index/audit.sqlite; deleting it is safe, it is rebuilt from the audit file).
 *
 * It tails the audit file by byte offset, as the claims database tails claims.jsonl: the offset
 * is stored in the same transaction as the rows, a torn last line waits until it is whole, and
 * the trees are rebuilt when the file was replaced, shrank, or its last indexed line changed.
 * For each row it keeps its scope, its leaf index there, where it is in the file, its action and
 * bundle, and its leaf hash; and the hash of every complete subtree, so that roots and proofs
 * read O(log n) stored hashes. It also follows store/audit/checkpoints.jsonl for the newest
 * checkpoint signed per scope.
 */
import { Database } from "bun:sqlite";
import { closeSync, constants, existsSync, openSync, readSync } from "node:fs";
import { dirname } from "node:path";
import { sha256Hex } from "../core/canonical.ts";
import { LinksError, storageError } from "../core/errors.ts";
import {
  CompactRange,
  consistencyProof,
  hashesEqual,
  inclusionProof,
  leafHash,
  rootAt,
  type SubtreeHashes,
} from "../core/merkle.ts";
import { auditLeafOf, completeLines, isBlankLine, parseCheckpointLine, type KeptCheckpoint } from "./audit-records.ts";
import { fileStamp, readFrom } from "./jsonl.ts";
import { makeDataDirs } from "./open.ts";
import type { DataPaths } from "./paths.ts";

const SCHEMA_VERSION = "1";

interface LeafRow {
  leaf: number;
  offset: number;
  length: number;
  hash: Uint8Array;
}

export class AuditIndex {
  private readonly db: Database;
  private readonly auditPath: string;
  private readonly checkpointsPath: string;
  private readonly readonly: boolean;
  private lastStamp = "";
  /** the audit offset this object last saw in the database: another writer moved it if it differs */
  private offsetSeen = -1;
  private readonly scopeIds = new Map<string | null, number>();
  /** the right edge of each scope's tree (by scope id), while offsetSeen holds */
  private readonly edges = new Map<number, CompactRange>();
  private readonly dirtySizes = new Map<number, number>();
  private lastWarning = 0;

  constructor(paths: DataPaths, opts: { readonly?: boolean } = {}) {
    this.auditPath = paths.auditFile();
    this.checkpointsPath = paths.checkpointsFile();
    this.readonly = opts.readonly ?? false;
    const file = paths.auditIndexFile();
    try {
      if (this.readonly) {
        this.db = new Database(file, { readonly: true });
      } else {
        makeDataDirs(dirname(file));
        this.db = new Database(file, { create: true });
        this.db.exec("PRAGMA journal_mode = WAL");
        // Derived data: a lost commit is read again from the audit file; NORMAL never corrupts.
        this.db.exec("PRAGMA synchronous = NORMAL");
        this.migrate();
      }
      this.db.exec("PRAGMA busy_timeout = 5000");
    } catch (e) {
      throw storageError(e, `opening the audit index ${file}`);
    }
  }

  /** The index as the last writer left it, read-only and never caught up; null if there is none. */
  static openExisting(paths: DataPaths): AuditIndex | null {
    if (!existsSync(paths.auditIndexFile())) return null;
    try {
      const index = new AuditIndex(paths, { readonly: true });
      if (index.meta("schema") !== SCHEMA_VERSION) {
        index.close();
        return null;
      }
      return index;
    } catch {
      return null;
    }
  }

  private migrate(): void {
    this.db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    if (this.meta("schema") !== SCHEMA_VERSION) {
      for (const t of ["scopes", "leaves", "nodes", "checkpoints"]) this.db.exec(`DROP TABLE IF EXISTS ${t}`);
      this.db.exec("DELETE FROM meta");
    }
    this.db.exec("CREATE TABLE IF NOT EXISTS scopes (id INTEGER PRIMARY KEY, village_id TEXT, size INTEGER NOT NULL)");
    this.db.exec(`CREATE TABLE IF NOT EXISTS leaves (
      scope INTEGER NOT NULL, leaf INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
      action TEXT, bundle_id TEXT, stored INTEGER NOT NULL, hash BLOB NOT NULL,
      PRIMARY KEY (scope, leaf)) WITHOUT ROWID`);
    this.db.exec("CREATE INDEX IF NOT EXISTS leaves_stored ON leaves (scope, leaf) WHERE stored = 1");
    this.db.exec(`CREATE TABLE IF NOT EXISTS nodes (
      scope INTEGER NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
      PRIMARY KEY (scope, level, idx)) WITHOUT ROWID`);
    this.db.exec(`CREATE TABLE IF NOT EXISTS checkpoints (
      scope INTEGER PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL, ts TEXT NOT NULL)`);
    this.setMeta("schema", SCHEMA_VERSION);
  }

  private meta(key: string): string | null {
    const row = this.db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null;
    return row?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.db.query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  /** Reads what the audit and checkpoint files gained since the last call; one stat each when nothing did. */
  catchUp(): void {
    if (this.readonly) return;
    const audit = fileStamp(this.auditPath);
    const kept = fileStamp(this.checkpointsPath);
    const stamp = `${audit.ino}:${audit.size}|${kept.ino}:${kept.size}`;
    if (stamp === this.lastStamp) return;
    const tx = this.db.transaction(() => {
      this.tailAudit(audit);
      this.tailCheckpoints(kept);
    });
    try {
      tx.immediate();
      this.lastStamp = stamp;
    } catch (e) {
      // Rolled back: what this object holds in memory may be ahead of the database now.
      this.forgetCaches();
      // A full disk (or a busy database) must not take reads down: answer from what is indexed.
      this.warnOnce(`the audit index could not catch up with ${this.auditPath} (${(e as Error).message}); answering from the rows indexed so far`);
    } finally {
      this.dirtySizes.clear();
    }
  }

  private forgetCaches(): void {
    this.edges.clear();
    this.scopeIds.clear();
    this.offsetSeen = -1;
    this.lastStamp = "";
  }

  private tailAudit(file: { ino: number; size: number }): void {
    let offset = Number(this.meta("audit_offset") ?? 0);
    if (offset !== this.offsetSeen) this.edges.clear();
    const ino = String(file.ino);
    // "0": there was no file yet, so a file there now replaced nothing
    const knownIno = this.meta("audit_ino") ?? "0";
    if ((knownIno !== "0" && knownIno !== ino) || file.size < offset || !this.tailUnchanged(offset)) {
      this.db.exec("DELETE FROM leaves");
      this.db.exec("DELETE FROM nodes");
      this.db.exec("UPDATE scopes SET size = 0");
      this.db.exec("DELETE FROM meta WHERE key = 'audit_tail'");
      this.edges.clear();
      if (offset > 0) this.warnOnce(`${this.auditPath} was replaced or changed; the audit trees are rebuilt from it`);
      offset = 0;
    }
    let tail: { start: number; bytes: Uint8Array } | null = null;
    const lines = completeLines(this.auditPath, offset);
    for (let next = lines.next(); ; next = lines.next()) {
      if (next.done) {
        offset = next.value;
        break;
      }
      this.addLine(next.value.offset, next.value.line);
      tail = { start: next.value.offset, bytes: next.value.withNewline };
    }
    for (const [id, size] of this.dirtySizes) this.db.query("UPDATE scopes SET size = ? WHERE id = ?").run(size, id);
    if (tail !== null) this.setMeta("audit_tail", `${tail.start}:${sha256Hex(tail.bytes)}`);
    this.setMeta("audit_offset", String(offset));
    this.setMeta("audit_ino", ino);
    this.offsetSeen = offset;
  }

  /** Whether the last line indexed is still the same bytes (an edit that kept the size is caught later, by the hashes). */
  private tailUnchanged(offset: number): boolean {
    const tail = this.meta("audit_tail");
    if (offset === 0 || tail === null) return true;
    const [start, hash] = tail.split(":");
    const from = Number(start);
    const bytes = readFrom(this.auditPath, from, offset - from);
    return bytes !== null && sha256Hex(bytes) === hash;
  }

  private addLine(offset: number, line: Uint8Array): void {
    const leaf = auditLeafOf(line);
    if (leaf === null) {
      if (!isBlankLine(line)) this.warnOnce(`skipped a line of ${this.auditPath} at byte ${offset} that is not an audit row`);
      return;
    }
    const scope = this.scopeId(leaf.scope, true) as number;
    const edge = this.edge(scope);
    const hash = leafHash(line);
    this.db
      .query("INSERT INTO leaves (scope, leaf, offset, length, action, bundle_id, stored, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .run(scope, edge.size, offset, line.length, leaf.action, leaf.bundle_id, leaf.stored ? 1 : 0, hash);
    const insertNode = this.db.query("INSERT OR REPLACE INTO nodes (scope, level, idx, hash) VALUES (?, ?, ?, ?)");
    for (const n of edge.append(hash)) insertNode.run(scope, n.level, n.index, n.hash);
    this.dirtySizes.set(scope, edge.size);
  }

  private tailCheckpoints(file: { ino: number; size: number }): void {
    let offset = Number(this.meta("checkpoints_offset") ?? 0);
    const ino = String(file.ino);
    if (this.meta("checkpoints_ino") !== ino || file.size < offset) {
      this.db.exec("DELETE FROM checkpoints");
      offset = 0;
    }
    // The newest checkpoint of a scope is its largest: the node only ever signs a tree that grew,
    // so a line of a smaller (or the same) size after it is an old one appended again, and must
    // not become what is served, nor the baseline the next checkpoint is proved against.
    const upsert = this.db.query(
      "INSERT INTO checkpoints (scope, size, root, note, ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT(scope) DO UPDATE SET size = excluded.size, root = excluded.root, note = excluded.note, ts = excluded.ts WHERE excluded.size > checkpoints.size",
    );
    const decoder = new TextDecoder();
    const lines = completeLines(this.checkpointsPath, offset);
    for (let next = lines.next(); ; next = lines.next()) {
      if (next.done) {
        offset = next.value;
        break;
      }
      const text = decoder.decode(next.value.line);
      if (text.trim() === "") continue;
      const c = parseCheckpointLine(text);
      if (c === null) {
        this.warnOnce(`skipped a malformed line of ${this.checkpointsPath} at byte ${next.value.offset}`);
        continue;
      }
      upsert.run(this.scopeId(c.village_id, true) as number, c.size, c.root_hash, c.note, c.ts);
    }
    this.setMeta("checkpoints_offset", String(offset));
    this.setMeta("checkpoints_ino", ino);
  }

  private scopeId(villageId: string | null, create: boolean): number | null {
    const known = this.scopeIds.get(villageId);
    if (known !== undefined) return known;
    const row = this.db.query("SELECT id FROM scopes WHERE village_id IS ?").get(villageId) as { id: number } | null;
    let id = row?.id ?? null;
    if (id === null && create) {
      id = Number(this.db.query("INSERT INTO scopes (village_id, size) VALUES (?, 0)").run(villageId).lastInsertRowid);
    }
    if (id !== null) this.scopeIds.set(villageId, id);
    return id;
  }

  private storedSize(scope: number): number {
    const row = this.db.query("SELECT size FROM scopes WHERE id = ?").get(scope) as { size: number } | null;
    return row?.size ?? 0;
  }

  private edge(scope: number): CompactRange {
    let edge = this.edges.get(scope);
    if (!edge) {
      edge = CompactRange.fromStore(this.subtrees(scope), this.storedSize(scope));
      this.edges.set(scope, edge);
    }
    return edge;
  }

  private subtrees(scope: number): SubtreeHashes {
    const leafQuery = this.db.query("SELECT hash FROM leaves WHERE scope = ? AND leaf = ?");
    const nodeQuery = this.db.query("SELECT hash FROM nodes WHERE scope = ? AND level = ? AND idx = ?");
    return (level, index) => {
      const row = (level === 0 ? leafQuery.get(scope, index) : nodeQuery.get(scope, level, index)) as { hash: Uint8Array } | null;
      if (!row) throw new LinksError("storage_error", `the audit index lacks the hash of node ${level}:${index}; delete ${this.db.filename} to rebuild it`);
      return new Uint8Array(row.hash);
    };
  }

  private warnOnce(message: string): void {
    const now = Date.now();
    if (now - this.lastWarning < 60_000) return;
    this.lastWarning = now;
    process.stderr.write(`links: warning: ${message}\n`);
  }

  /** Every scope with rows (or a checkpoint), with its tree size and the size of its newest checkpoint (null: none). */
  scopes(): Array<{ villageId: string | null; size: number; signedSize: number | null }> {
    this.catchUp();
    const rows = this.db
      .query("SELECT s.village_id, s.size, c.size AS signed FROM scopes s LEFT JOIN checkpoints c ON c.scope = s.id ORDER BY s.id")
      .all() as Array<{ village_id: string | null; size: number; signed: number | null }>;
    return rows.map((r) => ({ villageId: r.village_id, size: r.size, signedSize: r.signed }));
  }

  /** How many rows the scope's tree holds. */
  size(scope: string | null): number {
    this.catchUp();
    const id = this.scopeId(scope, false);
    return id === null ? 0 : this.storedSize(id);
  }

  private checkSize(scope: string | null, size: number, what: string): number {
    const have = this.size(scope);
    if (!Number.isSafeInteger(size) || size < 0 || size > have) {
      throw new LinksError("invalid_argument", `${what} must be an integer from 0 to the tree size ${have}, got ${size}`);
    }
    return this.scopeId(scope, false) ?? -1;
  }

  private leafRows(scope: number, start: number, end: number): LeafRow[] {
    return this.db
      .query("SELECT leaf, offset, length, hash FROM leaves WHERE scope = ? AND leaf >= ? AND leaf < ? ORDER BY leaf")
      .all(scope, start, end) as LeafRow[];
  }

  /**
   * The stored lines (without their newline) of rows start to end - 1 of the scope's tree, end
   * clamped to the tree size. Each is checked against its leaf hash: a file changed under the
   * index is refused (audit_inconsistent), never served as if it were the signed history.
   */
  entries(scope: string | null, start: number, end: number): string[] {
    const size = this.size(scope);
    if (!Number.isSafeInteger(start) || start < 0 || start > size) {
      throw new LinksError("invalid_argument", `start must be an integer from 0 to the tree size ${size}, got ${start}`);
    }
    if (!Number.isSafeInteger(end) || end < start) throw new LinksError("invalid_argument", `end must be an integer not below start ${start}, got ${end}`);
    return this.readRows(scope, start, Math.min(end, size));
  }

  /** The newest `count` rows of the scope's tree (all of them if it holds fewer), oldest first, checked as entries() does. */
  newestEntries(scope: string | null, count: number): string[] {
    const size = this.size(scope);
    return this.readRows(scope, Math.max(0, size - count), size);
  }

  /** Rows start to end - 1 (end within the indexed tree), each checked against its leaf hash. */
  private readRows(scope: string | null, start: number, end: number): string[] {
    const id = this.scopeId(scope, false);
    if (id === null || start >= end) return [];
    const rows = this.leafRows(id, start, end);
    const decoder = new TextDecoder("utf-8", { fatal: true });
    let fd: number;
    try {
      fd = openSync(this.auditPath, constants.O_RDONLY);
    } catch (e) {
      throw storageError(e, `reading ${this.auditPath}`);
    }
    try {
      return rows.map((r) => {
        const buf = new Uint8Array(r.length);
        const got = readSync(fd, buf, 0, r.length, r.offset);
        if (got !== r.length || !hashesEqual(leafHash(buf), new Uint8Array(r.hash))) {
          throw new LinksError("audit_inconsistent", `row ${r.leaf} of ${scope === null ? "the public tree" : `village ${scope}`} no longer matches ${this.auditPath}: the file changed under its index (run links audit verify)`);
        }
        return decoder.decode(buf);
      });
    } finally {
      closeSync(fd);
    }
  }

  /** The leaf hashes of rows start to end - 1 (fewer if the tree is smaller). */
  leafHashes(scope: string | null, start: number, end: number): Uint8Array[] {
    const id = this.scopeId(scope, false);
    if (id === null) return [];
    return this.leafRows(id, start, end).map((r) => new Uint8Array(r.hash));
  }

  rootAt(scope: string | null, size: number): Uint8Array {
    const id = this.checkSize(scope, size, "size");
    return rootAt(this.subtrees(id), size);
  }

  inclusionProof(scope: string | null, index: number, size: number): Uint8Array[] {
    const id = this.checkSize(scope, size, "size");
    return inclusionProof(this.subtrees(id), index, size);
  }

  consistencyProof(scope: string | null, from: number, to: number): Uint8Array[] {
    const id = this.checkSize(scope, to, "to");
    return consistencyProof(this.subtrees(id), from, to);
  }

  /**
   * Rows that stored a bundle in this village (action ingest.accept, or quarantine.approve that
   * stored it), leaf index > after, in leaf order: the village's acceptance order. The leaf
   * index is a cursor that survives restarts and reindexing (the audit file is append-only);
   * after = -1 starts from the beginning.
   */
  acceptedSince(villageId: string, after: number, limit: number): Array<{ leaf: number; bundle_id: string }> {
    this.catchUp();
    const id = this.scopeId(villageId, false);
    if (id === null) return [];
    return this.db
      .query("SELECT leaf, bundle_id FROM leaves WHERE scope = ? AND stored = 1 AND leaf > ? ORDER BY leaf LIMIT ?")
      .all(id, after, limit) as Array<{ leaf: number; bundle_id: string }>;
  }

  /** The newest (largest) checkpoint kept in store/audit/checkpoints.jsonl for the scope. */
  latestCheckpoint(scope: string | null): KeptCheckpoint | null {
    this.catchUp();
    const id = this.scopeId(scope, false);
    if (id === null) return null;
    const row = this.db.query("SELECT size, root, note, ts FROM checkpoints WHERE scope = ?").get(id) as
      | { size: number; root: Uint8Array; note: string; ts: string }
      | null;
    return row ? { village_id: scope, size: row.size, root_hash: new Uint8Array(row.root), note: row.note, ts: row.ts } : null;
  }

  close(): void {
    this.db.close();
  }
}
