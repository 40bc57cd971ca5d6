/**
 * The village bundle feed, GET /villages/:id/bundles: order, cursors, page bounds, ETag and
 * who may read it.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { createApp } from "../../../src/server/app.ts";
import { decodeBundleCursor, encodeBundleCursor, FEED_PAGE } from "../../../src/server/routes/bundles.ts";
import { approveQuarantined } from "../../../src/storage/quarantine.ts";
import { updateVillage, withPolicy } from "../../../src/storage/villages.ts";
import { LOOPBACK, makeNode, peer, REMOTE, signedBundle, VID, type BundleOptions, type Node } from "./helpers.ts";

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

interface Page {
  bundles: Array<{ bundle_id: string; claims: unknown[] }>;
  next_cursor: string | null;
}

async function push(n: Node, o: BundleOptions = {}): Promise<string> {
  const bundle = signedBundle(n.key, o);
  const res = await n.send("POST", `/villages/${VID}/inbox`, { token: n.tokens.member, body: toJsonText(bundle as unknown as JsonValue) });
  expect([200, 202]).toContain(res.status);
  return bundle.bundle_id;
}

const feed = (n: Node, query = "", init: Parameters<Node["send"]>[2] = { token: n.tokens.observer }) =>
  n.send("GET", `/villages/${VID}/bundles${query === "" ? "" : `?${query}`}`, init);

async function page(n: Node, query = ""): Promise<Page> {
  const res = await feed(n, query);
  expect(res.status).toBe(200);
  return (await res.json()) as Page;
}

/** Every bundle id of the feed, following cursors, `limit` at a time. */
async function walk(n: Node, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let since: string | null = null;
  let pages = 0;
  for (;;) {
    const p = await page(n, `limit=${limit}${since ? `&since=${since}` : ""}`);
    pages++;
    ids.push(...p.bundles.map((b) => b.bundle_id));
    if (p.next_cursor === null) return { ids, pages };
    since = p.next_cursor;
  }
}

describe("GET /villages/:id/bundles", () => {
  test("gives the stored bundles in the order the node accepted them, as stored", async () => {
    node = makeNode();
    const ids = [await push(node), await push(node, { claims: 3 }), await push(node)];
    const first = await page(node);
    expect(first.bundles.map((b) => b.bundle_id)).toEqual(ids);
    expect(first.bundles[1]?.claims).toHaveLength(3);
    // past the last bundle there is nothing yet: an empty page and no cursor
    expect(await page(node, `since=${first.next_cursor}`)).toEqual({ bundles: [], next_cursor: null });
  });

  test("an empty village answers an empty page", async () => {
    node = makeNode();
    expect(await page(node)).toEqual({ bundles: [], next_cursor: null });
  });

  test("pages stop at limit, and the cursors walk the whole feed once", async () => {
    node = makeNode();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await push(node));
    const walked = await walk(node, 3);
    expect(walked.ids).toEqual(ids);
    expect(walked.pages).toBe(4); // 3 + 3 + 1, then the empty page
  });

  test("a bundle quarantined then approved joins the feed where it was approved; quarantined ones are not in it", async () => {
    node = makeNode({ policy: { allowed_predicates: ["links.weighted_to"] } });
    const a = await push(node);
    const held = await push(node, { predicate: "other.predicate" });
    const b = await push(node);
    expect((await walk(node, 10)).ids).toEqual([a, b]);
    // the policy now allows it: approval stores it, after b
    updateVillage(node.paths, VID, (v) => ({ village: withPolicy(v, { ...v.policy, allowed_predicates: ["links.weighted_to", "other.predicate"] }), result: null }));
    approveQuarantined(node.paths, VID, held, "alice");
    expect((await walk(node, 10)).ids).toEqual([a, b, held]);
  });

  test("a cursor stays valid across a restart of the app and a lost audit index", async () => {
    node = makeNode();
    const ids = [await push(node), await push(node), await push(node)];
    const first = await page(node, "limit=2");
    // a new app over the same data directory, with the derived audit index deleted
    await node.close();
    rmSync(node.paths.auditIndexFile(), { force: true });
    const again = makeNodeOver(node);
    const rest = await page(again, `since=${first.next_cursor}`);
    expect(rest.bundles.map((b) => b.bundle_id)).toEqual(ids.slice(2));
    await again.close();
  });

  test("pages are bounded in bytes too, and hold at least one bundle", async () => {
    node = makeNode();
    // bundles of 400 claims, about 150 KiB each: a 1 MiB page holds fewer than 14
    const ids: string[] = [];
    for (let i = 0; i < 14; i++) ids.push(await push(node, { claims: 400, subject: `${i}-${"x".repeat(100)}` }));
    const first = await feed(node, "limit=1000");
    const text = await first.text();
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(FEED_PAGE.maxBytes + 1024);
    const body = JSON.parse(text) as Page;
    expect(body.bundles.length).toBeGreaterThan(0);
    expect(body.bundles.length).toBeLessThan(ids.length);
    expect((await walk(node, 1000)).ids).toEqual(ids);
  });

  test("answers 304 to If-None-Match while nothing was added after since", async () => {
    node = makeNode();
    await push(node);
    const first = await feed(node);
    const cursor = ((await first.json()) as Page).next_cursor as string;
    const tail = await feed(node, `since=${cursor}`);
    const etag = tail.headers.get("etag") as string;
    expect(etag).toMatch(/^".+"$/);
    expect((await feed(node, `since=${cursor}`, { token: node.tokens.observer, headers: { "if-none-match": etag } })).status).toBe(304);
    await push(node);
    const changed = await feed(node, `since=${cursor}`, { token: node.tokens.observer, headers: { "if-none-match": etag } });
    expect(changed.status).toBe(200);
    expect(((await changed.json()) as Page).bundles).toHaveLength(1);
    // the tag names `since`: another position never matches it
    expect((await feed(node, "", { token: node.tokens.observer, headers: { "if-none-match": etag } })).status).toBe(200);
  });

  describe("when the cursor or limit is bad", () => {
    test.each([
      ["a cursor another route handed out", `since=${Buffer.from("o1:3").toString("base64url")}`, "invalid_cursor"],
      ["garbage", "since=%2F%2E%2E", "invalid_cursor"],
      ["a cursor past the end of the feed", `since=${encodeBundleCursor(999)}`, "invalid_cursor"],
      ["limit 0", "limit=0", "invalid_argument"],
      ["limit over the maximum", `limit=${FEED_PAGE.maxLimit + 1}`, "invalid_argument"],
      ["since given twice", `since=${encodeBundleCursor(0)}&since=${encodeBundleCursor(1)}`, "invalid_argument"],
    ])("%s is a 400 naming it", async (_what, query, code) => {
      node = makeNode();
      await push(node);
      await push(node);
      const res = await feed(node, query);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code });
    });

    test("cursors round-trip and refuse other spellings", () => {
      expect(decodeBundleCursor(encodeBundleCursor(41))).toBe(41);
      expect(() => decodeBundleCursor(Buffer.from("f1:041").toString("base64url"))).toThrow();
    });
  });

  describe("who may read it", () => {
    test("a village's feed needs a member token with the pull right", async () => {
      node = makeNode();
      expect((await feed(node, "", {})).status).toBe(401);
      expect((await feed(node, "", { token: node.tokens.revoked })).status).toBe(401);
      expect((await feed(node, "", { token: node.tokens.observer })).status).toBe(200);
    });

    test("a role without the pull right is refused", async () => {
      node = makeNode({ policy: { capabilities: { observer: { can_pull: false, can_push: false, can_manage: false } } } });
      const res = await feed(node);
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ code: "forbidden" });
    });

    test("a private village's feed is private too", async () => {
      node = makeNode({ policy: { visibility: "private" } });
      expect((await feed(node, "", { ip: REMOTE })).status).toBe(401);
      const res = await feed(node);
      expect(res.headers.get("cache-control")).toContain("private");
    });

    test("a public village's feed is open, without a token", async () => {
      node = makeNode({ policy: { visibility: "public" } });
      const id = await push(node);
      const res = await feed(node, "", {});
      expect(res.status).toBe(200);
      expect(((await res.json()) as Page).bundles.map((b) => b.bundle_id)).toEqual([id]);
    });
  });
});

/** A second app over the node's data directory (the first one closed). */
function makeNodeOver(n: Node): Node {
  const { app, close } = createApp({ dataDir: n.dataDir, logger: () => {} });
  return {
    ...n,
    app,
    close,
    send: (method, path, init = {}) => {
      const headers: Record<string, string> = { ...init.headers };
      if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
      return Promise.resolve(app.fetch(new Request(`http://links.test${path}`, { method, headers }), peer(LOOPBACK)));
    },
  };
}
