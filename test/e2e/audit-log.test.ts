/**
 * The tamper-evident audit log with the real binary: a node signs checkpoints of a village's
 * audit tree; an independent implementation (Python's `cryptography` and `hashlib`, else a
 * node:crypto script) verifies a checkpoint and recomputes its root from the served entries;
 * proofs served over HTTP verify; `links audit verify` names the first bad row of an edited,
 * deleted, inserted or reordered audit file; and kill -9 while checkpoints are being written
 * leaves a log whose every checkpoint still verifies.
 *
 * The tests of this file run in order and share the first node's data directory.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeBase64 } from "../../src/core/base64.ts";
import { toJsonText, type JsonValue } from "../../src/core/canonical.ts";
import { leafHash, verifyConsistency, verifyInclusion } from "../../src/core/merkle.ts";
import { openCheckpoint, type Checkpoint } from "../../src/core/signed-note.ts";
import { keypair, signedBundle } from "../unit/server/helpers.ts";
import { errorCode, json, lastLine, links, linksOk, makeTempDir, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";

// servers, processes and disk syncs on a busy 2-core machine: bun ignores bunfig's timeout
setDefaultTimeout(60_000);

const VID = "garden";
const NAME = "node-e2e";
let tmp: TempDir;
let data: string;
let token: string;
let node: RunningNode;
const issuer = keypair();

async function push(url: string, count: number): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, async () => {
      const res = await fetch(`${url}/villages/${VID}/inbox`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: toJsonText(signedBundle(issuer) as unknown as JsonValue),
      });
      expect(res.status).toBe(200);
    }),
  );
}

async function get(url: string, path: string): Promise<Response> {
  return fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
}

async function nodeKey(url: string): Promise<{ name: string; publicKey: Uint8Array; public_key: string }> {
  const body = (await (await fetch(`${url}/.well-known/links/node`)).json()) as { name: string; public_key: string };
  return { ...body, publicKey: decodeBase64(body.public_key) as Uint8Array };
}

/** The served checkpoint once it covers at least `size` rows. */
async function checkpointOf(url: string, size: number): Promise<{ note: string; c: Checkpoint }> {
  const key = await nodeKey(url);
  for (let i = 0; i < 300; i++) {
    const note = await (await get(url, `/villages/${VID}/audit/checkpoint`)).text();
    const c = openCheckpoint(note, key);
    if (c.size >= size) return { note, c };
    await Bun.sleep(50);
  }
  throw new Error(`no checkpoint of ${size} rows`);
}

const gardenRows = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l.includes(`"village_id":"${VID}"`));

beforeAll(async () => {
  tmp = makeTempDir("links-e2e-audit-");
  data = tmp.join("data");
  token = lastLine((await linksOk(["villages", "create", VID, "Garden", "alice", "--data", data])).stdout);
  node = await startNode(data, ["--node-name", NAME, "--checkpoint-interval", "0.1"]);
});

afterAll(async () => {
  await node?.kill();
  tmp?.remove();
});

/** Verifies a signed checkpoint and the root of its entries with code that is not ours. */
const PYTHON = `
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
inp = json.load(sys.stdin)
note, name, pub = inp["note"], inp["name"], base64.b64decode(inp["public_key"])
text, sigs = note.rsplit("\\n\\n", 1)
text += "\\n"
key_id = hashlib.sha256(name.encode() + b"\\n\\x01" + pub).digest()[:4]
ok = False
for line in sigs.splitlines():
    dash, signer, blob = line.split(" ")
    raw = base64.b64decode(blob)
    if dash == "\\u2014" and signer == name and raw[:4] == key_id:
        Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], text.encode())
        ok = True
assert ok, "no signature by the node key"
origin, size, root = text.splitlines()[:3]
def mth(hs):
    if len(hs) == 1: return hs[0]
    k = 1
    while k * 2 < len(hs): k *= 2
    return hashlib.sha256(b"\\x01" + mth(hs[:k]) + mth(hs[k:])).digest()
leaves = [hashlib.sha256(b"\\x00" + e.encode()).digest() for e in inp["entries"][: int(size)]]
assert base64.b64encode(mth(leaves)).decode() == root, "root mismatch"
print(json.dumps({"origin": origin, "size": int(size)}))
`;

const NODE_JS = `
const { createHash, createPublicKey, verify } = require("node:crypto");
const inp = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const sha = (...b) => { const h = createHash("sha256"); for (const x of b) h.update(x); return h.digest(); };
const pub = Buffer.from(inp.public_key, "base64");
const cut = inp.note.lastIndexOf("\\n\\n");
const text = inp.note.slice(0, cut + 1);
const keyId = sha(Buffer.from(inp.name + "\\n"), Buffer.from([1]), pub).subarray(0, 4);
const key = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), pub]), format: "der", type: "spki" });
let ok = false;
for (const line of inp.note.slice(cut + 2).split("\\n").filter(Boolean)) {
  const [dash, signer, blob] = line.split(" ");
  const raw = Buffer.from(blob, "base64");
  if (dash === "\\u2014" && signer === inp.name && raw.subarray(0, 4).equals(keyId)) {
    if (!verify(null, Buffer.from(text), key, raw.subarray(4))) throw new Error("bad signature");
    ok = true;
  }
}
if (!ok) throw new Error("no signature by the node key");
const [origin, size, root] = text.split("\\n");
const mth = (hs) => { if (hs.length === 1) return hs[0]; let k = 1; while (k * 2 < hs.length) k *= 2; return sha(Buffer.from([1]), mth(hs.slice(0, k)), mth(hs.slice(k))); };
const leaves = inp.entries.slice(0, Number(size)).map((e) => sha(Buffer.from([0]), Buffer.from(e)));
if (mth(leaves).toString("base64") !== root) throw new Error("root mismatch");
console.log(JSON.stringify({ origin, size: Number(size) }));
`;

/** python3 with cryptography when it is there, else node; never skipped silently. */
async function independentVerifier(): Promise<string[]> {
  const py = Bun.spawnSync(["python3", "-c", "import cryptography"], { stdout: "ignore", stderr: "ignore" });
  if (py.exitCode === 0) return ["python3", "-c", PYTHON];
  const nodeJs = Bun.which("node");
  if (nodeJs) return [nodeJs, "-e", NODE_JS];
  throw new Error("no independent implementation to check a checkpoint with: install python3 with the cryptography package, or Node.js");
}

describe("a node's audit log, checked from outside", () => {
  test("an independent implementation verifies the checkpoint and recomputes its root from the entries", async () => {
    await push(node.url, 12);
    const { note, c } = await checkpointOf(node.url, 12);
    const key = await nodeKey(node.url);
    expect(key.name).toBe(NAME);
    const entries = (await (await get(node.url, `/villages/${VID}/audit/entries?start=0&end=${c.size}`)).json()) as { entries: string[] };
    const cmd = await independentVerifier();
    const proc = Bun.spawn(cmd, { stdin: new Blob([JSON.stringify({ note, name: key.name, public_key: key.public_key, entries: entries.entries })]), stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(JSON.parse(out)).toEqual({ origin: `links/${NAME}/${VID}`, size: c.size });
    console.log(`[audit] checkpoint of ${c.size} rows verified by ${cmd[0]}`);
  });

  test("inclusion and consistency proofs served over HTTP verify", async () => {
    const first = await checkpointOf(node.url, 1);
    await push(node.url, 5);
    const second = await checkpointOf(node.url, first.c.size + 5);
    const proof = (await (await get(node.url, `/villages/${VID}/audit/proof/consistency?from=${first.c.size}&to=${second.c.size}`)).json()) as { hashes: string[] };
    expect(verifyConsistency(first.c.size, second.c.size, first.c.rootHash, second.c.rootHash, proof.hashes.map((h) => decodeBase64(h) as Uint8Array))).toBe(true);
    const entries = ((await (await get(node.url, `/villages/${VID}/audit/entries?end=${second.c.size}`)).json()) as { entries: string[] }).entries;
    for (const i of [0, 7, second.c.size - 1]) {
      const p = (await (await get(node.url, `/villages/${VID}/audit/proof/inclusion?index=${i}&size=${second.c.size}`)).json()) as { hashes: string[] };
      const leaf = leafHash(new TextEncoder().encode(entries[i] as string));
      expect(verifyInclusion(i, second.c.size, leaf, p.hashes.map((h) => decodeBase64(h) as Uint8Array), second.c.rootHash)).toBe(true);
    }
  });

  test("links audit verify passes on the untouched log, while the node runs and after it stops", async () => {
    const running = await linksOk(["audit", "verify", "--data", data]);
    expect(running.stdout).toContain(`village ${VID}: `);
    expect(running.stdout).toContain(", ok");
    expect(await node.stop()).toBe(0);
    const stopped = json<{ status: string; trees: Array<{ village_id: string; rows: number; latest_size: number }> }>(await linksOk(["audit", "verify", "--json", "--data", data]));
    expect(stopped.status).toBe("ok");
    const garden = stopped.trees.find((t) => t.village_id === VID);
    // the clean stop signed the last rows too
    expect(garden?.latest_size).toBe(garden?.rows);
  });
});

describe("links audit verify when the audit file was tampered with", () => {
  const cases: Array<[string, (lines: string[], garden: string[]) => string[], number]> = [
    ["edited", (l, g) => l.map((x) => (x === g[6] ? x.replace('"actor":"alice"', '"actor":"mallory"') : x)), 6],
    ["deleted", (l, g) => l.filter((x) => x !== g[9]), 9],
    ["inserted", (l, g) => l.flatMap((x) => (x === g[4] ? [x, x.replace('"actor":"alice"', '"actor":"mallory"')] : [x])), 5],
    ["reordered", (l, g) => l.map((x) => (x === g[10] ? (g[11] as string) : x === g[11] ? (g[10] as string) : x)), 10],
  ];
  for (const [what, edit, bad] of cases) {
    test(`a row ${what}: exit 1 naming the first bad index ${bad}`, async () => {
      const copy = tmp.join(`tampered-${what}`);
      cpSync(data, copy, { recursive: true });
      const file = join(copy, "store/audit/audit.log.jsonl");
      const lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
      writeFileSync(file, `${edit(lines, gardenRows(file)).join("\n")}\n`);
      const r = await links(["audit", "verify", "--data", copy]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`village ${VID}: BAD (first bad index ${bad})`);
      expect(errorCode(r.stderr)).toBe("audit_inconsistent");
      const j = json<{ status: string; trees: Array<{ village_id: string; first_bad_index: number | null }> }>(await links(["audit", "verify", "--json", "--village-id", VID, "--data", copy]));
      expect(j.status).toBe("bad");
      expect(j.trees).toEqual([expect.objectContaining({ village_id: VID, first_bad_index: bad })]);
    });
  }

  test("with the node's key given, a checkpoint signed by another key fails", async () => {
    const keys = tmp.join("other-key");
    await linksOk(["keys", "gen", "--out-dir", keys]);
    const r = await links(["audit", "verify", "--public-key", join(keys, "ed25519.pub"), "--data", data]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("does not verify with the node's key");
  });

  test("an unusable node name or key file stops serve before it listens", async () => {
    const badName = await links(["serve", "--port", "0", "--node-name", "no spaces", "--data", data]);
    expect(badName.code).toBe(1);
    expect(badName.stderr).toContain("invalid node name");
    const missing = await links(["serve", "--port", "0", "--node-key", tmp.join("nope.key"), "--data", data]);
    expect(missing.code).toBe(1);
    expect(errorCode(missing.stderr)).toBe("not_found");
  });
});

describe("kill -9 while checkpoints are being written", () => {
  test("leaves a log whose every checkpoint verifies, and the node goes on signing consistently", async () => {
    const crash = tmp.join("crash");
    const keyDir = tmp.join("crash-key");
    await linksOk(["keys", "gen", "--out-dir", keyDir]);
    token = lastLine((await linksOk(["villages", "create", VID, "Garden", "alice", "--data", crash])).stdout);
    const args = ["--node-name", NAME, "--node-key", join(keyDir, "ed25519.key"), "--checkpoint-interval", "0.01"];
    let kills = 0;
    for (let round = 0; round < 3; round++) {
      const n = await startNode(crash, args);
      const pushing = push(n.url, 40).catch(() => {});
      await Bun.sleep(60 + Math.floor(Math.random() * 120));
      await n.kill();
      kills++;
      await pushing;
    }
    const last = await startNode(crash, args);
    await push(last.url, 5);
    expect(await last.stop()).toBe(0);
    const r = await links(["audit", "verify", "--json", "--public-key", join(keyDir, "ed25519.pub"), "--data", crash]);
    const report = json<{ status: string; warnings: string[]; trees: Array<{ village_id: string; checkpoints: number; verified: number; rows: number; latest_size: number }> }>(r);
    expect(r.code).toBe(0);
    expect(report.status).toBe("ok");
    const garden = report.trees.find((t) => t.village_id === VID);
    expect(garden?.verified).toBe(garden?.checkpoints);
    expect(garden?.latest_size).toBe(garden?.rows);
    // sizes only ever grow, in the order they were signed
    const sizes = readFileSync(join(crash, "store/audit/checkpoints.jsonl"), "utf8")
      .split("\n")
      .flatMap((l) => {
        try {
          const c = JSON.parse(l) as { village_id: string; size: number };
          return c.village_id === VID ? [c.size] : [];
        } catch {
          return [];
        }
      });
    expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
    console.log(`[audit] ${kills} kills while signing: ${garden?.checkpoints} checkpoints of up to ${garden?.latest_size} rows, all verify; warnings: ${report.warnings.length}`);
  }, 60_000);
});
