import { afterEach, describe, expect, test } from "bun:test";
import { JsonFloat, toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { decodeCursor, encodeCursor } from "../../../src/server/claims-query.ts";
import { addMember } from "../../../src/storage/members.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { makeNode, REMOTE, signedBundle, VID, type BundleOptions, type Node } from "./helpers.ts";

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

const text = (v: unknown): string => toJsonText(v as JsonValue);

async function push(n: Node, o: BundleOptions = {}): Promise<string> {
  const bundle = signedBundle(n.key, o);
  const res = await n.send("POST", `/villages/${VID}/inbox`, { token: n.tokens.member, body: text(bundle) });
  expect(res.status).toBe(200);
  return bundle.bundle_id;
}

describe("GET /villages/:id/claims/latest", () => {
  test("is 404 bundle_not_found while the village holds nothing", async () => {
    node = makeNode();
    const res = await node.send("GET", `/villages/${VID}/claims/latest`, { token: node.tokens.observer });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "bundle_not_found" });
  });

  test("answers the newest bundle, its values exactly as stored (1.0 stays 1.0)", async () => {
    node = makeNode();
    await push(node);
    const newest = await push(node, { value: new JsonFloat(1.0) });
    const res = await node.send("GET", `/villages/${VID}/claims/latest`, { token: node.tokens.observer });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(JSON.parse(body)).toMatchObject({ bundle_id: newest });
    expect(body).toContain('"value":1.0');
  });

  test("needs the pull right", async () => {
    node = makeNode({ policy: { capabilities: { observer: { can_pull: false, can_push: false, can_manage: false } } } });
    const res = await node.send("GET", `/villages/${VID}/claims/latest`, { token: node.tokens.observer });
    expect(res.status).toBe(403);
  });
});

describe("GET /villages/:id/claims", () => {
  test("pages through the village's rows with an opaque cursor", async () => {
    node = makeNode();
    for (let i = 0; i < 3; i++) await push(node, { claims: 2, subject: `s-${i}` });
    const first = (await (await node.send("GET", `/villages/${VID}/claims?limit=4`, { token: node.tokens.observer })).json()) as {
      claims: Array<{ subject: string }>;
      next_cursor: string | null;
    };
    expect(first.claims.map((r) => r.subject)).toEqual(["s-0", "s-0", "s-1", "s-1"]);
    expect(typeof first.next_cursor).toBe("string");
    const second = (await (
      await node.send("GET", `/villages/${VID}/claims?limit=4&cursor=${first.next_cursor}`, { token: node.tokens.observer })
    ).json()) as { claims: Array<{ subject: string }>; next_cursor: string | null };
    expect(second.claims.map((r) => r.subject)).toEqual(["s-2", "s-2"]);
    expect(second.next_cursor).toBeNull();
  });

  test("a full last page says there is nothing more", async () => {
    node = makeNode();
    await push(node, { claims: 2 });
    const page = (await (await node.send("GET", `/villages/${VID}/claims?limit=2`, { token: node.tokens.observer })).json()) as {
      next_cursor: string | null;
    };
    expect(page.next_cursor).toBeNull();
  });

  test("filters by subject, predicate and issuer", async () => {
    node = makeNode({ policy: { allowed_predicates: ["links.weighted_to", "links.mentions"] } });
    await push(node, { subject: "ann", predicate: "links.mentions", issuer: "i-1" });
    await push(node, { subject: "ann", issuer: "i-2" });
    await push(node, { subject: "ben", issuer: "i-1" });
    const get = async (q: string) =>
      ((await (await node.send("GET", `/villages/${VID}/claims?${q}`, { token: node.tokens.observer })).json()) as { claims: unknown[] })
        .claims.length;
    expect(await get("subject=ann")).toBe(2);
    expect(await get("subject=ann&predicate=links.mentions")).toBe(1);
    expect(await get("issuer=i-1")).toBe(2);
    expect(await get("subject=nobody")).toBe(0);
  });

  test("answers only this village's rows, never public ones or another village's", async () => {
    node = makeNode();
    await push(node);
    createVillage(node.paths, { villageId: "south", name: "South", adminId: "sam" });
    const southToken = addMember(node.paths, "south", "sam", "member");
    await node.send("POST", "/villages/south/inbox", { token: southToken, body: text(signedBundle(node.key)) });
    await node.send("POST", "/inbox", { body: text(signedBundle(node.key)) });
    const res = await node.send("GET", `/villages/${VID}/claims`, { token: node.tokens.observer });
    const { claims } = (await res.json()) as { claims: Array<{ village_id: string }> };
    expect(claims.map((r) => r.village_id)).toEqual([VID]);
  });

  test("a token of another village is not valid here", async () => {
    node = makeNode();
    createVillage(node.paths, { villageId: "south", name: "South", adminId: "sam" });
    const southToken = addMember(node.paths, "south", "sam", "admin");
    const res = await node.send("GET", `/villages/${VID}/claims`, { token: southToken });
    expect(res.status).toBe(401);
  });

  test.each([["limit=0"], ["limit=1001"], ["limit=-1"], ["limit=abc"], ["limit=1e3"], ["limit=10&limit=20"], ["subject=a&subject=b"]])(
    "%p is 400 invalid_argument",
    async (q) => {
      node = makeNode();
      const res = await node.send("GET", `/villages/${VID}/claims?${q}`, { token: node.tokens.observer });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: "invalid_argument" });
    },
  );

  test.each([["cursor=abc"], ["cursor=%21%21"], [`cursor=${"A".repeat(200)}`], [`cursor=${Buffer.from("o1:-1").toString("base64url")}`], [`cursor=${Buffer.from("o1:01").toString("base64url")}`]])(
    "%p is 400 invalid_cursor",
    async (q) => {
      node = makeNode();
      const res = await node.send("GET", `/villages/${VID}/claims?${q}`, { token: node.tokens.observer });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: "invalid_cursor" });
    },
  );

  test("cursors round-trip and only this node's form is accepted", () => {
    for (const n of [0, 1, 99, 123456789]) expect(decodeCursor(encodeCursor(n))).toBe(n);
    expect(() => decodeCursor(`${encodeCursor(5)}=`)).toThrow();
  });
});

describe("the public store", () => {
  test("/.well-known/links/claims/latest is 404 while no public bundle exists, even if villages hold some", async () => {
    node = makeNode();
    await push(node);
    const res = await node.send("GET", "/.well-known/links/claims/latest", { ip: REMOTE });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "bundle_not_found" });
  });

  test("POST /inbox stores a valid bundle publicly (accepted, then duplicate) and it becomes the latest", async () => {
    node = makeNode();
    const bundle = signedBundle(node.key);
    const first = await node.send("POST", "/inbox", { body: text(bundle), ip: REMOTE });
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ status: "accepted", bundle_id: bundle.bundle_id });
    const again = await node.send("POST", "/inbox", { body: text(bundle), ip: REMOTE });
    expect(await again.json()).toEqual({ status: "duplicate", bundle_id: bundle.bundle_id });
    const latest = await node.send("GET", "/.well-known/links/claims/latest", { ip: REMOTE });
    expect(await latest.json()).toMatchObject({ bundle_id: bundle.bundle_id });
  });

  test("POST /inbox refuses a bad signature with 400 and stores nothing", async () => {
    node = makeNode();
    const bundle = { ...signedBundle(node.key), signature: signedBundle(node.key).signature };
    const res = await node.send("POST", "/inbox", { body: text(bundle), ip: REMOTE });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_signature" });
    expect((await node.send("GET", "/.well-known/links/claims/latest")).status).toBe(404);
  });
});
