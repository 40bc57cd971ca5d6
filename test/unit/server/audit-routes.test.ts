import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { decodeBase64 } from "../../../src/core/base64.ts";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { leafHash, verifyConsistency, verifyInclusion } from "../../../src/core/merkle.ts";
import { openCheckpoint, type Checkpoint } from "../../../src/core/signed-note.ts";
import { addMember } from "../../../src/storage/members.ts";
import { defaultNodeName } from "../../../src/storage/node-identity.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { json, makeNode, signedBundle, VID, type Node } from "./helpers.ts";

// servers, processes and disk syncs on a busy 2-core machine: bun ignores bunfig's timeout
setDefaultTimeout(30_000);

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

const AUDIT = `/villages/${VID}/audit`;

async function push(n: Node, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const res = await n.send("POST", `/villages/${VID}/inbox`, { token: n.tokens.member, body: toJsonText(signedBundle(n.key) as unknown as JsonValue) });
    expect(res.status).toBe(200);
  }
}

async function nodeKey(n: Node): Promise<{ name: string; publicKey: Uint8Array }> {
  const body = await json(await n.send("GET", "/.well-known/links/node"));
  return { name: body.name as string, publicKey: decodeBase64(body.public_key as string) as Uint8Array };
}

async function checkpoint(n: Node): Promise<Checkpoint> {
  const res = await n.send("GET", `${AUDIT}/checkpoint`, { token: n.tokens.observer });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
  return openCheckpoint(await res.text(), await nodeKey(n));
}

/** The checkpoint once the node's background signer has covered `size` rows. */
async function checkpointOf(n: Node, size: number): Promise<Checkpoint> {
  for (let i = 0; i < 200; i++) {
    const c = await checkpoint(n);
    if (c.size >= size) return c;
    await Bun.sleep(25);
  }
  throw new Error(`no checkpoint of ${size} rows came`);
}

async function hashes(res: Response): Promise<Uint8Array[]> {
  expect(res.status).toBe(200);
  return ((await json(res)).hashes as string[]).map((h) => decodeBase64(h) as Uint8Array);
}

describe("GET /.well-known/links/node", () => {
  test("names the node and its key, without a token", async () => {
    node = makeNode();
    const res = await node.send("GET", "/.well-known/links/node");
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.name).toBe(defaultNodeName());
    expect((decodeBase64(body.public_key as string) as Uint8Array).length).toBe(32);
    expect(body.key_hash).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("a village's audit log over HTTP", () => {
  test("the checkpoint is a signed note of the village's tree, re-signed as the tree grows", async () => {
    node = makeNode({ server: { checkpointIntervalMs: 20 } });
    await push(node, 3);
    const first = await checkpointOf(node, 3);
    expect(first.origin).toBe(`links/${defaultNodeName()}/${VID}`);
    await push(node, 2);
    const second = await checkpointOf(node, 5);
    const proof = await hashes(await node.send("GET", `${AUDIT}/proof/consistency?from=${first.size}&to=${second.size}`, { token: node.tokens.observer }));
    expect(verifyConsistency(first.size, second.size, first.rootHash, second.rootHash, proof)).toBe(true);
  });

  test("entries are the stored rows, and each is proved included in the signed tree", async () => {
    node = makeNode({ server: { checkpointIntervalMs: 20 } });
    await push(node, 4);
    const c = await checkpointOf(node, 4);
    const res = await node.send("GET", `${AUDIT}/entries?start=0&end=${c.size}`, { token: node.tokens.observer });
    expect(res.status).toBe(200);
    const entries = (await json(res)).entries as string[];
    expect(entries).toHaveLength(c.size);
    for (const [i, line] of entries.entries()) {
      expect(JSON.parse(line).village_id).toBe(VID);
      const proof = await hashes(await node.send("GET", `${AUDIT}/proof/inclusion?index=${i}&size=${c.size}`, { token: node.tokens.observer }));
      expect(verifyInclusion(i, c.size, leafHash(new TextEncoder().encode(line)), proof, c.rootHash)).toBe(true);
    }
  });

  test("entries: end is clamped to the tree size, start defaults to 0, an empty range is empty", async () => {
    node = makeNode();
    await push(node, 3);
    const get = async (q: string) => (await json(await node.send("GET", `${AUDIT}/entries${q}`, { token: node.tokens.observer }))).entries as string[];
    expect(await get("")).toHaveLength(3);
    expect(await get("?start=1&end=99")).toHaveLength(2);
    expect(await get("?start=3")).toEqual([]);
    expect(await get("?start=2&end=2")).toEqual([]);
  });

  test("a village never signed yet gets its first checkpoint when asked", async () => {
    node = makeNode({ server: { checkpointIntervalMs: 0 } });
    const c = await checkpoint(node);
    expect(c.size).toBe(0);
    expect(c.origin).toBe(`links/${defaultNodeName()}/${VID}`);
  });

  test("a row changed on disk under its index is refused (409 audit_inconsistent), never served", async () => {
    node = makeNode({ server: { checkpointIntervalMs: 0 } });
    await push(node, 3);
    const served = await node.send("GET", `${AUDIT}/entries`, { token: node.tokens.observer });
    expect((await json(served)).entries).toHaveLength(3);
    const file = node.paths.auditFile();
    const text = readFileSync(file, "utf8");
    const lines = text.split("\n");
    // the second row, edited to the same length: the index does not read it again
    lines[1] = (lines[1] as string).replace(/"ts":"(.)/, (_m, c: string) => `"ts":"${c === "1" ? "2" : "1"}`);
    expect(lines.join("\n")).not.toBe(text);
    writeFileSync(file, lines.join("\n"));
    for (const query of ["?start=0&end=3", "?last=2"]) {
      const res = await node.send("GET", `${AUDIT}/entries${query}`, { token: node.tokens.observer });
      expect(res.status).toBe(409);
      const body = await json(res);
      expect(body.code).toBe("audit_inconsistent");
      expect(body.detail).toContain("row 1 of village");
    }
    // rows before it are still served
    expect((await json(await node.send("GET", `${AUDIT}/entries?end=1`, { token: node.tokens.observer }))).entries).toHaveLength(1);
  });

  describe("bad requests are clear 400s", () => {
    const bad: Array<[string, string]> = [
      ["/entries?start=-1", "start must be a non-negative integer"],
      ["/entries?start=1.5", "start must be a non-negative integer"],
      ["/entries?start=x", "start must be a non-negative integer"],
      ["/entries?start=4", "start must be an integer from 0 to the tree size 2"],
      ["/entries?start=2&end=1", "must not be below start"],
      ["/entries?start=0&start=1", "given 2 times"],
      ["/proof/inclusion?size=2", "index is required"],
      ["/proof/inclusion?index=2&size=2", "must be below size"],
      ["/proof/inclusion?index=0&size=3", "from 0 to the tree size 2"],
      ["/proof/inclusion?index=01&size=2", "non-negative integer"],
      ["/proof/inclusion?index=0&size=99999999999999999", "non-negative integer"],
      ["/proof/consistency?from=1", "to is required"],
      ["/proof/consistency?from=2&to=1", "must not be above to"],
      ["/proof/consistency?from=1&to=3", "from 0 to the tree size 2"],
    ];
    for (const [query, detail] of bad) {
      test(`GET ${AUDIT}${query}`, async () => {
        node = makeNode();
        await push(node, 2);
        const res = await node.send("GET", `${AUDIT}${query}`, { token: node.tokens.observer });
        expect(res.status).toBe(400);
        const body = await json(res);
        expect(body.code).toBe("invalid_argument");
        expect(body.detail).toContain(detail);
      });
    }
  });

  describe("who may read it", () => {
    for (const path of ["/checkpoint", "/entries", "/proof/inclusion?index=0&size=1", "/proof/consistency?from=0&to=1"]) {
      test(`${path}: the pull right; no token 401, a revoked token 401, an unknown village 404`, async () => {
        node = makeNode();
        await push(node, 1);
        expect((await node.send("GET", `${AUDIT}${path}`)).status).toBe(401);
        expect((await node.send("GET", `${AUDIT}${path}`, { token: node.tokens.revoked })).status).toBe(401);
        expect((await node.send("GET", `${AUDIT}${path}`, { token: node.tokens.observer })).status).toBe(200);
        const other = await node.send("GET", `/villages/elsewhere/audit${path}`, { token: node.tokens.observer });
        expect(other.status).toBe(404);
        expect((await json(other)).code).toBe("village_not_found");
      });
    }

    test("a member of another village cannot read this one's log", async () => {
      node = makeNode();
      createVillage(node.paths, { villageId: "other", name: "Other", adminId: "zed" });
      const token = addMember(node.paths, "other", "zed", "admin");
      const res = await node.send("GET", `${AUDIT}/checkpoint`, { token });
      expect([401, 403]).toContain(res.status);
    });
  });
});
