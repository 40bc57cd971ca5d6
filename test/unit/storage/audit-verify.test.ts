import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { appendAudit } from "../../../src/storage/audit.ts";
import { AuditIndex } from "../../../src/storage/audit-index.ts";
import { verifyAuditLog, type TreeReport } from "../../../src/storage/audit-verify.ts";
import { CheckpointSigner } from "../../../src/storage/checkpoints.ts";
import { loadNodeIdentity, type NodeIdentity } from "../../../src/storage/node-identity.ts";
import { DataPaths } from "../../../src/storage/paths.ts";

// servers, processes and disk syncs on a busy 2-core machine: bun ignores bunfig's timeout
setDefaultTimeout(30_000);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * A data directory whose garden tree has 12 rows (checkpoints at 3, 6, 9, 12), with orchard
 * and public rows in between, as a node signing every few rows leaves it.
 */
async function signedLog(): Promise<{ paths: DataPaths; identity: NodeIdentity; garden: () => string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "links-audit-verify-"));
  dirs.push(dir);
  const paths = new DataPaths(dir);
  const identity = loadNodeIdentity(paths, { name: "node-a" });
  const index = new AuditIndex(paths);
  const signer = new CheckpointSigner(paths, index, identity);
  for (let i = 0; i < 12; i++) {
    appendAudit(paths, { action: "member.add", village_id: "garden", reason: `garden row ${i}` });
    if (i % 2 === 0) appendAudit(paths, { action: "member.add", village_id: "orchard", reason: `orchard row ${i}` });
    if (i % 5 === 0) appendAudit(paths, { action: "ingest.accept", village_id: null, reason: `public row ${i}` });
    if (i % 3 === 2) await signer.signGrown();
  }
  index.close();
  const garden = () => readFileSync(paths.auditFile(), "utf8").split("\n").filter((l) => l.includes('"garden"'));
  return { paths, identity, garden };
}

function rewrite(paths: DataPaths, edit: (lines: string[]) => string[]): void {
  const lines = readFileSync(paths.auditFile(), "utf8").split("\n").filter(Boolean);
  writeFileSync(paths.auditFile(), `${edit(lines).join("\n")}\n`);
}

function tree(report: ReturnType<typeof verifyAuditLog>, scope: string | null): TreeReport {
  return report.trees.find((t) => t.village_id === scope) as TreeReport;
}

describe("links audit verify, on an untouched log", () => {
  test("every tree is ok and every checkpoint verifies", async () => {
    const { paths, identity } = await signedLog();
    const report = verifyAuditLog(paths, { publicKey: identity.publicKey });
    expect(report.status).toBe("ok");
    expect(report.trees.map((t) => [t.village_id, t.rows, t.checkpoints, t.verified, t.status])).toEqual([
      [null, 3, 3, 3, "ok"],
      ["garden", 12, 4, 4, "ok"],
      ["orchard", 6, 4, 4, "ok"],
    ]);
    expect(report.warnings).toEqual([]);
  });

  test("a tree without checkpoints is reported unsigned, not bad", async () => {
    const { paths, identity } = await signedLog();
    appendAudit(paths, { action: "village.create", village_id: "meadow" });
    const report = verifyAuditLog(paths, { publicKey: identity.publicKey });
    expect(report.status).toBe("ok");
    expect(tree(report, "meadow").status).toBe("unsigned");
  });

  test("rows added after the newest checkpoint are fine: they are simply not covered yet", async () => {
    const { paths, identity } = await signedLog();
    appendAudit(paths, { action: "member.add", village_id: "garden" });
    expect(verifyAuditLog(paths, { publicKey: identity.publicKey }).status).toBe("ok");
  });
});

describe("links audit verify, when the audit file was tampered with", () => {
  const cases: Array<[string, (lines: string[], garden: string[]) => string[], number]> = [
    ["a row edited in place (same length)", (l) => l.map((x) => x.replace("garden row 4", "garden row X")), 4],
    ["a row edited (another length)", (l) => l.map((x) => x.replace("garden row 7", "garden row 7, or so they say")), 7],
    ["a row deleted", (l, g) => l.filter((x) => x !== g[5]), 5],
    ["a row inserted", (l, g) => l.flatMap((x) => (x === g[2] ? [x, x.replace("garden row 2", "garden row 2b")] : [x])), 3],
    ["two rows swapped", (l, g) => l.map((x) => (x === g[8] ? (g[9] as string) : x === g[9] ? (g[8] as string) : x)), 8],
    ["the newest rows deleted", (l, g) => l.filter((x) => x !== g[10] && x !== g[11]), 10],
  ];
  for (const [what, edit, bad] of cases) {
    test(`${what}: exits bad, naming the first bad index ${bad} of the garden tree`, async () => {
      const { paths, identity, garden } = await signedLog();
      const g = garden();
      rewrite(paths, (l) => edit(l, g));
      const report = verifyAuditLog(paths, { publicKey: identity.publicKey });
      expect(report.status).toBe("bad");
      const t = tree(report, "garden");
      expect(t.status).toBe("bad");
      expect(t.first_bad_index).toBe(bad);
      expect(t.detail).toContain(`row ${bad} is not the one`);
      // the other trees are not touched by a garden row
      expect(tree(report, "orchard").status).toBe("ok");
      expect(tree(report, null).status).toBe("ok");
    });
  }

  test("without the audit index (deleted, or rebuilt from the changed file) it narrows the first bad row to a range", async () => {
    const { paths, identity } = await signedLog();
    rewrite(paths, (l) => l.map((x) => x.replace("garden row 7", "garden row Z")));
    unlinkSync(paths.auditIndexFile());
    const t = tree(verifyAuditLog(paths, { publicKey: identity.publicKey }), "garden");
    expect(t.status).toBe("bad");
    expect(t.first_bad_index).toBeNull();
    expect(t.first_bad_range).toEqual([6, 8]);
    expect(t.detail).toContain("a row from 6 to 8");
  });

  test("the file cut short breaks every tree it held rows of past the cut", async () => {
    const { paths, identity, garden } = await signedLog();
    const g = garden();
    rewrite(paths, (l) => l.slice(0, l.indexOf(g[10] as string)));
    const report = verifyAuditLog(paths, { publicKey: identity.publicKey });
    expect(tree(report, "garden").first_bad_index).toBe(10);
    expect(tree(report, "orchard").first_bad_index).toBe(5);
  });

  test("a row moved into another village's tree breaks both trees", async () => {
    const { paths, identity, garden } = await signedLog();
    const g = garden();
    rewrite(paths, (l) => l.map((x) => (x === g[1] ? x.replace('"village_id":"garden"', '"village_id":"orchard"') : x)));
    const report = verifyAuditLog(paths, { publicKey: identity.publicKey });
    expect(tree(report, "garden").first_bad_index).toBe(1);
    expect(tree(report, "orchard").status).toBe("bad");
  });

  test("a checkpoint line edited or signed by another key is reported", async () => {
    const { paths, identity } = await signedLog();
    const lines = readFileSync(paths.checkpointsFile(), "utf8").split("\n");
    lines[1] = (lines[1] as string).replace('"size":', '"size":1,"x":');
    writeFileSync(paths.checkpointsFile(), lines.join("\n"));
    const forgedBy = loadNodeIdentity(new DataPaths(join(paths.root, "other")), { name: "node-a" });
    const report = verifyAuditLog(paths, { publicKey: forgedBy.publicKey });
    expect(report.status).toBe("bad");
    for (const t of report.trees) expect(t.detail).toContain("does not verify with the node's key [invalid_signature]");
    expect(verifyAuditLog(paths, { publicKey: identity.publicKey }).trees.filter((t) => t.status === "bad").length).toBe(1);
  });

  test("torn last lines (a crash mid-append) are warnings, not failures", async () => {
    const { paths, identity } = await signedLog();
    appendFileSync(paths.auditFile(), '{"action":"member.add","village_id":"gar');
    appendFileSync(paths.checkpointsFile(), '{"note":"links/node-a/garden\\n');
    const report = verifyAuditLog(paths, { publicKey: identity.publicKey });
    expect(report.status).toBe("ok");
    expect(report.warnings).toHaveLength(2);
    expect(report.warnings.join("\n")).toContain("unfinished");
  });

  test("needs the node's public key once there are checkpoints; one village can be checked alone", async () => {
    const { paths, identity } = await signedLog();
    expect(() => verifyAuditLog(paths, { publicKey: null })).toThrow(expect.objectContaining({ code: "not_found" }));
    const alone = verifyAuditLog(paths, { publicKey: identity.publicKey, villageId: "orchard" });
    expect(alone.trees.map((t) => t.village_id)).toEqual(["orchard"]);
    expect(verifyAuditLog(paths, { publicKey: publicKeyFromSeed(generateSeed()), villageId: "nowhere" }).trees).toEqual([]);
  });
});
