import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashesEqual, verifyConsistency } from "../../../src/core/merkle.ts";
import { openCheckpoint } from "../../../src/core/signed-note.ts";
import { appendAudit } from "../../../src/storage/audit.ts";
import { AuditIndex } from "../../../src/storage/audit-index.ts";
import { parseCheckpointLine, type KeptCheckpoint } from "../../../src/storage/audit-records.ts";
import { CheckpointSigner } from "../../../src/storage/checkpoints.ts";
import { NODE_NAME_RE } from "../../../src/core/audit-origin.ts";
import { defaultNodeName, identityFromKeyFile, loadNodeIdentity, nodePublicKeyFile, type NodeIdentity } from "../../../src/storage/node-identity.ts";
import { DataPaths } from "../../../src/storage/paths.ts";

// servers, processes and disk syncs on a busy 2-core machine: bun ignores bunfig's timeout
setDefaultTimeout(30_000);

const dirs: string[] = [];
const indexes: AuditIndex[] = [];
afterEach(() => {
  for (const i of indexes.splice(0)) i.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Setup {
  paths: DataPaths;
  index: AuditIndex;
  identity: NodeIdentity;
  signer: CheckpointSigner;
  refusals: string[];
}

function setup(): Setup {
  const dir = mkdtempSync(join(tmpdir(), "links-checkpoints-"));
  dirs.push(dir);
  const paths = new DataPaths(dir);
  const index = new AuditIndex(paths);
  indexes.push(index);
  const identity = loadNodeIdentity(paths, { name: "node-a" });
  const refusals: string[] = [];
  const signer = new CheckpointSigner(paths, index, identity, { onRefusal: (m) => refusals.push(m) });
  return { paths, index, identity, signer, refusals };
}

function kept(paths: DataPaths): KeptCheckpoint[] {
  return readFileSync(paths.checkpointsFile(), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => parseCheckpointLine(l) as KeptCheckpoint);
}

const rows = (paths: DataPaths, village: string | null, n: number, tag = "m") => {
  for (let i = 0; i < n; i++) appendAudit(paths, { action: "member.add", village_id: village, reason: `${tag}${i}` });
};

describe("the node identity", () => {
  test("is made once in the data directory (private key 0600) and read back the same", () => {
    const { paths, identity } = setup();
    expect(statSync(join(paths.nodeKeyDir(), "ed25519.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(nodePublicKeyFile(paths), "utf8").trim()).toBe(Buffer.from(identity.publicKey).toString("base64"));
    const again = loadNodeIdentity(paths, { name: "node-a" });
    expect(again.keyHash).toBe(identity.keyHash);
  });

  test("defaults to the host name, made fit to be a node name", () => {
    expect(defaultNodeName()).toMatch(NODE_NAME_RE);
  });

  test("refuses a node name that cannot be a key name or an origin segment", () => {
    const { paths } = setup();
    for (const bad of ["", "a b", "a+b", "a/b", "-a", "é"]) expect(() => loadNodeIdentity(paths, { name: bad })).toThrow("invalid node name");
  });

  test("reads a key given with --node-key, and says when the file is missing, not a key, or a public key", async () => {
    const { paths, identity } = setup();
    const other = await identityFromKeyFile(join(paths.nodeKeyDir(), "ed25519.key"), "n");
    expect(other.keyHash).toBe(identity.keyHash);
    expect(other.name).toBe("n");
    await expect(identityFromKeyFile(join(paths.root, "nope.key"), "n")).rejects.toMatchObject({ code: "not_found" });
    writeFileSync(join(paths.root, "bad.key"), "not a key\n", { mode: 0o600 });
    await expect(identityFromKeyFile(join(paths.root, "bad.key"), "n")).rejects.toMatchObject({ code: "invalid_key_file" });
    await expect(identityFromKeyFile(nodePublicKeyFile(paths), "n")).rejects.toMatchObject({ code: "invalid_key_file" });
  });
});

describe("the checkpoint signer", () => {
  test("signs one checkpoint per grown tree, kept in checkpoints.jsonl, that verifies with the node key", async () => {
    const { paths, index, identity, signer } = setup();
    rows(paths, "garden", 3);
    rows(paths, null, 2);
    expect(index.scopes()).toEqual([
      { villageId: "garden", size: 3, signedSize: null },
      { villageId: null, size: 2, signedSize: null },
    ]);
    expect(await signer.signGrown()).toBe(2);
    expect(await signer.signGrown()).toBe(0); // nothing grew: nothing signed
    rows(paths, "garden", 4, "x");
    expect(index.scopes()).toEqual([
      { villageId: "garden", size: 7, signedSize: 3 },
      { villageId: null, size: 2, signedSize: 2 },
    ]);
    expect(await signer.signGrown()).toBe(1);
    const lines = kept(paths);
    expect(lines.map((k) => [k.village_id, k.size])).toEqual([["garden", 3], [null, 2], ["garden", 7]]);
    for (const k of lines) {
      const c = openCheckpoint(k.note, { name: "node-a", publicKey: identity.publicKey });
      expect(c.origin).toBe(k.village_id === null ? "links/node-a/~public" : "links/node-a/garden");
      expect(c.size).toBe(k.size);
      expect(hashesEqual(c.rootHash, index.rootAt(k.village_id, k.size))).toBe(true);
    }
    expect(index.latestCheckpoint("garden")?.size).toBe(7);
  });

  test("signs a first checkpoint on demand, also of an empty tree", () => {
    const { paths, signer, identity } = setup();
    const empty = signer.latest("orchard");
    expect(empty?.size).toBe(0);
    expect(openCheckpoint(empty?.note as string, { name: "node-a", publicKey: identity.publicKey }).size).toBe(0);
    rows(paths, "orchard", 2);
    // one exists already: it is served as it is until the next pass
    expect(signer.latest("orchard")?.size).toBe(0);
  });

  test("signing at start and on a clean stop covers what was written meanwhile", async () => {
    const { paths, signer, index } = setup();
    rows(paths, "garden", 2);
    signer.start(60_000);
    expect(index.latestCheckpoint("garden")?.size).toBe(2);
    rows(paths, "garden", 3, "y");
    await signer.stop();
    expect(index.latestCheckpoint("garden")?.size).toBe(5);
  });

  describe("when the audit file was rewritten", () => {
    test("refuses to sign, says so, and the last good checkpoint stays the newest", async () => {
      const { paths, signer, index, refusals } = setup();
      rows(paths, "garden", 5);
      await signer.signGrown();
      const good = index.latestCheckpoint("garden") as KeptCheckpoint;
      // a row edited, and more appended: the tree grows but no longer extends the checkpoint
      writeFileSync(paths.auditFile(), readFileSync(paths.auditFile(), "utf8").replace('"m2"', '"m2, edited"'));
      rows(paths, "garden", 2, "z");
      index.catchUp();
      expect(await signer.signGrown()).toBe(0);
      expect(refusals).toHaveLength(1);
      expect(refusals[0]).toContain("refusing to sign an audit checkpoint for village garden");
      expect(refusals[0]).toContain("was rewritten");
      expect(signer.latest("garden")?.note).toBe(good.note);
      expect(kept(paths)).toHaveLength(1);
    });

    test("a row edited to the same length is not read again: the node keeps signing the history it read", async () => {
      const { paths, signer, index } = setup();
      rows(paths, "garden", 5);
      await signer.signGrown();
      writeFileSync(paths.auditFile(), readFileSync(paths.auditFile(), "utf8").replace('"m2"', '"mX"'));
      rows(paths, "garden", 2, "z");
      expect(await signer.signGrown()).toBe(1);
      const [a, b] = kept(paths) as [KeptCheckpoint, KeptCheckpoint];
      expect(verifyConsistency(a.size, b.size, a.root_hash, b.root_hash, index.consistencyProof("garden", a.size, b.size))).toBe(true);
      // serving the edited row is refused; links audit verify names it (audit-verify.test.ts)
      expect(() => index.entries("garden", 0, 7)).toThrow(expect.objectContaining({ code: "audit_inconsistent" }));
    });

    test("refuses when rows were lost, too", async () => {
      const { paths, signer, refusals } = setup();
      rows(paths, "garden", 5);
      await signer.signGrown();
      const lines = readFileSync(paths.auditFile(), "utf8").split("\n").filter(Boolean);
      writeFileSync(paths.auditFile(), `${lines.slice(0, 3).join("\n")}\n`);
      expect(await signer.signGrown()).toBe(0);
      expect(refusals[0]).toContain("fewer than the 5");
    });
  });

  describe("when checkpoints.jsonl was tampered with", () => {
    test("an older checkpoint line appended again is not taken for the newest: no fork is signed, none is served", async () => {
      const { paths, signer, index, refusals } = setup();
      rows(paths, "garden", 3);
      await signer.signGrown();
      rows(paths, "garden", 2, "n");
      await signer.signGrown();
      const [older, newest] = readFileSync(paths.checkpointsFile(), "utf8").split("\n").filter(Boolean) as [string, string];
      // the older (genuinely signed) line replayed at the end, and the rows it does not cover rewritten (a new file)
      appendFileSync(paths.checkpointsFile(), `${older}\n`);
      writeFileSync(paths.auditFile() + ".new", readFileSync(paths.auditFile(), "utf8").replace('"n0"', '"nX"'));
      renameSync(paths.auditFile() + ".new", paths.auditFile());
      rows(paths, "garden", 1, "z");
      index.catchUp();
      expect(index.latestCheckpoint("garden")?.note).toBe((parseCheckpointLine(newest) as KeptCheckpoint).note);
      expect(await signer.signGrown()).toBe(0);
      expect(refusals[0]).toContain("was rewritten");
      // every checkpoint the node signed is consistent with every other one
      const all = kept(paths).filter((k, i, a) => a.findIndex((o) => o.note === k.note) === i);
      expect(all.map((k) => k.size)).toEqual([3, 5]);
    });
  });

  test("a first checkpoint asked for while a signing pass waits on the disk does not make the pass cry 'lost rows'", async () => {
    const { paths, signer, refusals } = setup();
    rows(paths, "garden", 2);
    const pass = signer.signGrown(); // reads the grown trees (garden at 2), then waits for the disk
    rows(paths, "garden", 1, "late");
    expect(signer.latest("garden")?.size).toBe(3); // a peer asks: signed at 3 on the spot
    await pass;
    expect(refusals).toEqual([]);
    expect(kept(paths).map((k) => k.size)).toEqual([3]);
  });

  test("a torn last checkpoint line (a crash mid-write) is skipped; the next one starts on a fresh line", async () => {
    const { paths, signer, identity } = setup();
    rows(paths, "garden", 2);
    await signer.signGrown();
    appendFileSync(paths.checkpointsFile(), '{"note":"links/node-a/garden\\n9\\n');
    rows(paths, "garden", 1, "w");
    expect(await signer.signGrown()).toBe(1);
    const text = readFileSync(paths.checkpointsFile(), "utf8").split("\n");
    expect(text).toHaveLength(4); // two records, the torn one, the final ""
    const sizes = text.map((l) => parseCheckpointLine(l)).filter((k) => k !== null).map((k) => k.size);
    expect(sizes).toEqual([2, 3]);
    const last = parseCheckpointLine(text[2] as string) as KeptCheckpoint;
    expect(openCheckpoint(last.note, { name: "node-a", publicKey: identity.publicKey }).size).toBe(3);
  });

  test("consecutive checkpoints are consistent with each other", async () => {
    const { paths, signer, index } = setup();
    for (let round = 1; round <= 5; round++) {
      rows(paths, "garden", round, `r${round}.`);
      await signer.signGrown();
    }
    const sizes = kept(paths).map((k) => k.size);
    expect(sizes).toEqual([1, 3, 6, 10, 15]);
    const all = kept(paths);
    for (let i = 1; i < all.length; i++) {
      const a = all[i - 1] as KeptCheckpoint;
      const b = all[i] as KeptCheckpoint;
      expect(verifyConsistency(a.size, b.size, a.root_hash, b.root_hash, index.consistencyProof("garden", a.size, b.size))).toBe(true);
    }
  });
});
