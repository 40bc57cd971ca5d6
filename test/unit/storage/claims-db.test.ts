/**
 * The claims database: every query a village's members can make runs on an index (shown with
 * SQLite's EXPLAIN QUERY PLAN, not by timing), and it keeps answering the same after being
 * deleted and rebuilt from claims.jsonl and the audit log.
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireVerified } from "../../../src/core/bundle.ts";
import { ClaimsDb } from "../../../src/storage/claims-db.ts";
import { claimsQuery } from "../../../src/storage/claims-table.ts";
import type { ClaimFilter } from "../../../src/storage/index-rows.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { storeBundles } from "../../../src/storage/store.ts";
import { keypair, signedBundle } from "../server/helpers.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fresh(): DataPaths {
  const dir = mkdtempSync(join(tmpdir(), "links-claimsdb-"));
  dirs.push(dir);
  return new DataPaths(dir);
}

/** Rows in two villages and the public store, several issuers and predicates. */
function populate(paths: DataPaths, db: ClaimsDb): void {
  const key = keypair();
  const items = [];
  for (let i = 0; i < 60; i++) {
    const b = requireVerified(signedBundle(key, { issuer: `issuer-${i % 3}`, predicate: i % 2 ? "links.mentions" : "links.weighted_to", claims: 3 }));
    items.push({ bundle: b, villageId: i % 3 === 0 ? null : i % 3 === 1 ? "a" : "b", visibility: i % 3 === 0 ? "public" : "village" });
  }
  storeBundles(paths, items, db);
  db.catchUp();
}

/** The plan SQLite chooses for a claims query, one line per step. */
function plan(paths: DataPaths, filter: ClaimFilter): string[] {
  const { sql, args } = claimsQuery(filter, 100, 0);
  const raw = new Database(paths.claimsSqliteFile(), { readonly: true });
  try {
    return (raw.query(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail);
  } finally {
    raw.close();
  }
}

describe("a village's claims query", () => {
  const cases: Array<[string, ClaimFilter, string]> = [
    ["by issuer", { villageId: "a", issuer: "issuer-1" }, "claims_issuer"],
    ["by predicate", { villageId: "a", predicate: "links.mentions" }, "claims_predicate"],
    ["by issuer and predicate", { villageId: "a", issuer: "issuer-1", predicate: "links.mentions" }, "claims_issuer"],
    ["by subject", { villageId: "a", subject: "subject-1" }, "claims_subject"],
    ["by subject and issuer", { villageId: "a", subject: "subject-1", issuer: "issuer-1" }, "claims_subject"],
    ["by subject and predicate", { villageId: "a", subject: "subject-1", predicate: "links.mentions" }, "claims_subject"],
    ["with no filter", { villageId: "a" }, "claims_scope"],
  ];
  for (const [name, filter, index] of cases) {
    test(`${name} searches ${index} and never scans the table or sorts`, () => {
      const paths = fresh();
      const db = new ClaimsDb(paths);
      try {
        populate(paths, db);
        const steps = plan(paths, filter);
        expect(steps.join(" | ")).toContain(`USING INDEX ${index} (`);
        for (const s of steps) {
          expect(s).not.toMatch(/^SCAN claims\b(?! USING)/);
          expect(s).not.toContain("TEMP B-TREE");
        }
        // the answer is the village's own rows matching the filter, oldest first
        const rows = db.query(filter, 1000);
        expect(rows.length).toBeGreaterThan(0);
        for (const { row } of rows) {
          expect(row.village_id).toBe("a");
          if (filter.issuer) expect(row.issuer).toBe(filter.issuer);
          if (filter.predicate) expect(row.predicate).toBe(filter.predicate);
          if (filter.subject) expect(row.subject).toBe(filter.subject);
        }
        expect(rows.map((r) => r.seq)).toEqual(rows.map((r) => r.seq).sort((x, y) => x - y));
      } finally {
        db.close();
      }
    });
  }
});

describe("when the claims database is deleted", () => {
  test("it rebuilds itself with the same answers", () => {
    const paths = fresh();
    const db = new ClaimsDb(paths);
    populate(paths, db);
    const filters: ClaimFilter[] = [{ villageId: "a" }, { villageId: "b", predicate: "links.mentions" }, { issuer: "issuer-0" }, {}];
    const before = filters.map((f) => db.query(f, 1000).map((r) => r.row));
    const latest = [db.latestBundleId(null), db.latestBundleId("a"), db.latestBundleId("b")];
    db.close();
    rmSync(paths.claimsSqliteFile());
    const again = new ClaimsDb(paths);
    try {
      expect(filters.map((f) => again.query(f, 1000).map((r) => r.row))).toEqual(before);
      expect([again.latestBundleId(null), again.latestBundleId("a"), again.latestBundleId("b")]).toEqual(latest);
      expect(latest.every((id) => id !== null)).toBe(true);
    } finally {
      again.close();
    }
  });
});
