import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { leafHash, rootOfLeaves, verifyConsistency, verifyInclusion } from "../../../src/core/merkle.ts";
import { appendAudit } from "../../../src/storage/audit.ts";
import { AuditIndex } from "../../../src/storage/audit-index.ts";
import { auditLeafOf } from "../../../src/storage/audit-records.ts";
import { atomicWrite } from "../../../src/storage/atomic.ts";
import { DataPaths } from "../../../src/storage/paths.ts";

// servers, processes and disk syncs on a busy 2-core machine: bun ignores bunfig's timeout
setDefaultTimeout(30_000);

const dirs: string[] = [];
const open: AuditIndex[] = [];
afterEach(() => {
  for (const i of open.splice(0)) i.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fresh(): DataPaths {
  const dir = mkdtempSync(join(tmpdir(), "links-audit-index-"));
  dirs.push(dir);
  return new DataPaths(dir);
}

function index(paths: DataPaths): AuditIndex {
  const i = new AuditIndex(paths);
  open.push(i);
  return i;
}

const enc = new TextEncoder();
const hex = (h: Uint8Array) => Buffer.from(h).toString("hex");
const bid = (n: number) => n.toString(16).padStart(32, "0");

/** The stored lines of the audit file, and which of them belong to each scope, read naively. */
function linesByScope(paths: DataPaths): Map<string | null, string[]> {
  const out = new Map<string | null, string[]>();
  for (const line of readFileSync(paths.auditFile(), "utf8").split("\n")) {
    let row: { village_id?: unknown };
    try {
      row = JSON.parse(line);
    } catch {
      continue;
    }
    const scope = (row.village_id ?? null) as string | null;
    out.set(scope, [...(out.get(scope) ?? []), line]);
  }
  return out;
}

function expectedRoot(lines: string[]): string {
  return hex(rootOfLeaves(lines.map((l) => leafHash(enc.encode(l)))));
}

describe("the audit index", () => {
  test("keeps one tree per village and one for the public scope, over the stored lines", () => {
    const paths = fresh();
    for (let i = 0; i < 13; i++) appendAudit(paths, { action: "ingest.accept", village_id: i % 3 === 0 ? null : i % 3 === 1 ? "garden" : "orchard", bundle_id: bid(i) });
    // a row as Python Links writes it: spaces after separators, non-ASCII kept
    appendFileSync(paths.auditFile(), '{"ts": "2026-11-25T20:14:23.030340Z", "action": "member.add", "bundle_id": null, "village_id": "garden", "issuer_key_hash": null, "actor": "élodie", "reason": null, "policy_hash": null}\n');
    const idx = index(paths);
    const expected = linesByScope(paths);
    expect(idx.size("garden")).toBe(5);
    expect(idx.size("orchard")).toBe(4);
    expect(idx.size(null)).toBe(5);
    expect(idx.size("nowhere")).toBe(0);
    for (const scope of ["garden", "orchard", null]) {
      const lines = expected.get(scope) as string[];
      expect(idx.entries(scope, 0, 1000)).toEqual(lines);
      for (let n = 0; n <= lines.length; n++) expect(hex(idx.rootAt(scope, n))).toBe(expectedRoot(lines.slice(0, n)));
    }
    expect(idx.entries("garden", 4, 5)[0]).toContain('"actor": "élodie"');
  });

  test("serves proofs that verify against its roots", () => {
    const paths = fresh();
    for (let i = 0; i < 37; i++) appendAudit(paths, { action: "member.add", village_id: "garden", reason: `m${i}` });
    const idx = index(paths);
    const lines = idx.entries("garden", 0, 100);
    for (const size of [1, 2, 7, 16, 37]) {
      const root = idx.rootAt("garden", size);
      for (let i = 0; i < size; i++) {
        expect(verifyInclusion(i, size, leafHash(enc.encode(lines[i] as string)), idx.inclusionProof("garden", i, size), root)).toBe(true);
      }
      for (const from of [0, 1, 3, size]) {
        if (from > size) continue;
        expect(verifyConsistency(from, size, idx.rootAt("garden", from), root, idx.consistencyProof("garden", from, size))).toBe(true);
      }
    }
    expect(() => idx.rootAt("garden", 38)).toThrow("from 0 to the tree size 37");
    expect(() => idx.inclusionProof("garden", 0, 38)).toThrow("tree size 37");
    expect(() => idx.consistencyProof("garden", 3, 40)).toThrow("tree size 37");
    expect(() => idx.entries("garden", 38, 40)).toThrow("start must be");
    expect(() => idx.entries("garden", 5, 4)).toThrow("end must be");
    expect(idx.entries("garden", 30, 1000)).toHaveLength(7);
    expect(idx.entries("garden", 37, 40)).toEqual([]);
    expect(idx.newestEntries("garden", 3)).toEqual(idx.entries("garden", 34, 37));
    expect(idx.newestEntries("garden", 100)).toEqual(idx.entries("garden", 0, 37));
    expect(idx.newestEntries("nowhere", 3)).toEqual([]);
  });

  test("follows the file as it grows; a torn last line waits until it is whole", () => {
    const paths = fresh();
    appendAudit(paths, { action: "village.create", village_id: "garden" });
    const idx = index(paths);
    expect(idx.size("garden")).toBe(1);
    const row = '{"action":"member.add","village_id":"garden"}';
    appendFileSync(paths.auditFile(), row.slice(0, 20));
    expect(idx.size("garden")).toBe(1);
    appendFileSync(paths.auditFile(), `${row.slice(20)}\n`);
    expect(idx.size("garden")).toBe(2);
    expect(idx.entries("garden", 1, 2)).toEqual([row]);
  });

  test("skips blank lines, torn lines and rows of no valid scope, as audit verify does", () => {
    const paths = fresh();
    mkdirSync(dirname(paths.auditFile()), { recursive: true });
    appendFileSync(
      paths.auditFile(),
      ['{"action":"a","village_id":"garden"}', "", "   ", '{"action":"b","village_id":"gar', '{"action":"c","village_id":"../etc"}', '{"action":"d","village_id":7}', "[1,2]", '{"action":"e","village_id":"garden"}'].join("\n") + "\n",
    );
    const idx = index(paths);
    expect(idx.entries("garden", 0, 10).map((l) => JSON.parse(l).action)).toEqual(["a", "e"]);
    expect(idx.size(null)).toBe(0);
    expect(auditLeafOf(enc.encode('{"village_id":null}'))?.scope).toBeNull();
    expect(auditLeafOf(enc.encode("{}"))?.scope).toBeNull();
    expect(auditLeafOf(new Uint8Array([0x7b, 0xff, 0x7d]))).toBeNull();
  });

  test("lists a village's stored bundles in acceptance order, after a leaf cursor", () => {
    const paths = fresh();
    appendAudit(paths, { action: "village.create", village_id: "garden" });
    appendAudit(paths, { action: "ingest.accept", village_id: "garden", bundle_id: bid(1) });
    appendAudit(paths, { action: "ingest.quarantine", village_id: "garden", bundle_id: bid(2) });
    appendAudit(paths, { action: "ingest.accept", village_id: "orchard", bundle_id: bid(3) });
    appendAudit(paths, { action: "quarantine.approve", village_id: "garden", bundle_id: bid(2) });
    appendAudit(paths, { action: "quarantine.approve", village_id: "garden", bundle_id: bid(1), reason: "already stored" });
    appendAudit(paths, { action: "ingest.accept", village_id: "garden", bundle_id: "not-a-bundle-id" });
    appendAudit(paths, { action: "ingest.accept", village_id: "garden", bundle_id: bid(4) });
    const idx = index(paths);
    expect(idx.acceptedSince("garden", -1, 100)).toEqual([
      { leaf: 1, bundle_id: bid(1) },
      { leaf: 3, bundle_id: bid(2) },
      { leaf: 6, bundle_id: bid(4) },
    ]);
    expect(idx.acceptedSince("garden", 1, 1)).toEqual([{ leaf: 3, bundle_id: bid(2) }]);
    expect(idx.acceptedSince("garden", 6, 10)).toEqual([]);
    expect(idx.acceptedSince("orchard", -1, 10)).toEqual([{ leaf: 0, bundle_id: bid(3) }]);
    expect(idx.acceptedSince("nowhere", -1, 10)).toEqual([]);
  });

  test("picks up where it stopped after a restart, and is rebuilt the same when deleted", () => {
    const paths = fresh();
    for (let i = 0; i < 20; i++) appendAudit(paths, { action: "member.add", village_id: "garden", reason: `${i}` });
    const first = new AuditIndex(paths);
    const root20 = hex(first.rootAt("garden", 20));
    first.close();
    for (let i = 20; i < 33; i++) appendAudit(paths, { action: "member.add", village_id: "garden", reason: `${i}` });
    const again = new AuditIndex(paths);
    expect(hex(again.rootAt("garden", 20))).toBe(root20);
    const root33 = hex(again.rootAt("garden", 33));
    again.close();
    unlinkSync(paths.auditIndexFile());
    const rebuilt = index(paths);
    expect(hex(rebuilt.rootAt("garden", 33))).toBe(root33);
    expect(root33).toBe(expectedRoot(linesByScope(paths).get("garden") as string[]));
  });

  test("rebuilds when the file is replaced, shrinks, or its last indexed line changed", () => {
    const paths = fresh();
    for (let i = 0; i < 6; i++) appendAudit(paths, { action: "member.add", village_id: "garden", reason: `${i}` });
    const idx = index(paths);
    expect(idx.size("garden")).toBe(6);
    const lines = readFileSync(paths.auditFile(), "utf8").split("\n").filter(Boolean) as [string, string, string, string, string, string];
    // replaced (a new inode), with one row fewer
    atomicWrite(paths.auditFile(), `${lines.slice(1).join("\n")}\n`);
    expect(idx.size("garden")).toBe(5);
    expect(idx.entries("garden", 0, 10)).toEqual(lines.slice(1));
    // shrunk in place
    writeFileSync(paths.auditFile(), `${lines.slice(1, 4).join("\n")}\n`);
    expect(idx.size("garden")).toBe(3);
    // the last line rewritten and the file grown past where the index stopped
    writeFileSync(paths.auditFile(), `${lines.slice(1, 3).join("\n")}\n${lines[5]}\n${lines[4]}\n`);
    expect(idx.entries("garden", 0, 10)).toEqual([lines[1], lines[2], lines[5], lines[4]]);
    expect(hex(idx.rootAt("garden", 4))).toBe(expectedRoot([lines[1], lines[2], lines[5], lines[4]] as string[]));
  });

  test("refuses to serve a row edited in place under it (same size): audit_inconsistent", () => {
    const paths = fresh();
    appendAudit(paths, { action: "member.add", village_id: "garden", reason: "alice" });
    appendAudit(paths, { action: "member.add", village_id: "garden", reason: "bobby" });
    const idx = index(paths);
    expect(idx.entries("garden", 0, 2)).toHaveLength(2);
    writeFileSync(paths.auditFile(), readFileSync(paths.auditFile(), "utf8").replace("alice", "mallo"));
    expect(() => idx.entries("garden", 0, 2)).toThrow(expect.objectContaining({ code: "audit_inconsistent" }));
  });

  test("two indexes on one database stay right when each catches up in turn", () => {
    const paths = fresh();
    const a = index(paths);
    const b = index(paths);
    const all: string[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 5; i++) appendAudit(paths, { action: "member.add", village_id: "garden", reason: `${round}.${i}` });
      (round % 2 === 0 ? a : b).catchUp();
    }
    all.push(...(linesByScope(paths).get("garden") as string[]));
    expect(hex(a.rootAt("garden", 20))).toBe(expectedRoot(all));
    expect(hex(b.rootAt("garden", 20))).toBe(expectedRoot(all));
    appendAudit(paths, { action: "member.add", village_id: "garden", reason: "last" });
    a.catchUp();
    all.push(...(linesByScope(paths).get("garden") as string[]).slice(20));
    expect(hex(b.rootAt("garden", 21))).toBe(expectedRoot(all));
  });

  test("a read-only copy answers from what was indexed, without catching up", () => {
    const paths = fresh();
    expect(AuditIndex.openExisting(paths)).toBeNull();
    appendAudit(paths, { action: "member.add", village_id: "garden" });
    index(paths).catchUp();
    appendAudit(paths, { action: "member.add", village_id: "garden" });
    const ro = AuditIndex.openExisting(paths) as AuditIndex;
    open.push(ro);
    expect(ro.size("garden")).toBe(1);
    expect(ro.leafHashes("garden", 0, 10)).toHaveLength(1);
  });
});
