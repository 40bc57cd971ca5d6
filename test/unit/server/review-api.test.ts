/**
 * What the review page is built on: the villages a token belongs to, a village's newest audit
 * rows (the newest rows of its audit tree), the quarantine list's previews, and the page itself
 * (its Content-Security-Policy and what it may load).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { appendAudit } from "../../../src/storage/audit.ts";
import { addMember } from "../../../src/storage/members.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { quarantinePreview } from "../../../src/server/quarantine-preview.ts";
import { makeNode, signedBundle, VID, type Node } from "./helpers.ts";

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

describe("GET /me/villages", () => {
  test("lists each village the token belongs to, with its rights under that village's policy", async () => {
    node = makeNode();
    createVillage(node.paths, {
      villageId: "south-field",
      name: "South <field>",
      adminId: "sam",
      policy: { capabilities: { member: { can_pull: true, can_push: false, can_manage: true } } },
    });
    const southMember = addMember(node.paths, "south-field", "mia", "member");
    const admin = await node.send("GET", "/me/villages", { token: node.tokens.admin });
    expect(admin.status).toBe(200);
    expect(await admin.json()).toEqual({
      villages: [{ village_id: VID, name: "North field", member_id: "alice", role: "admin", rights: ["pull", "push", "manage"] }],
    });
    const member = await node.send("GET", "/me/villages", { token: node.tokens.member });
    expect(((await member.json()) as { villages: { rights: string[] }[] }).villages[0]?.rights).toEqual(["pull", "push"]);
    const mia = await node.send("GET", "/me/villages", { token: southMember });
    expect(await mia.json()).toEqual({
      villages: [{ village_id: "south-field", name: "South <field>", member_id: "mia", role: "member", rights: ["pull", "manage"] }],
    });
  });

  test("no token is 401 missing_token; an unknown token 401 invalid_token; a revoked one 401 revoked_token", async () => {
    node = makeNode();
    const none = await node.send("GET", "/me/villages");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="links"');
    expect(await none.json()).toMatchObject({ code: "missing_token" });
    const wrong = await node.send("GET", "/me/villages", { token: "x".repeat(43) });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe('Bearer realm="links", error="invalid_token"');
    expect(await wrong.json()).toMatchObject({ code: "invalid_token" });
    const revoked = await node.send("GET", "/me/villages", { token: node.tokens.revoked });
    expect(await revoked.json()).toMatchObject({ code: "revoked_token" });
  });

  test("failed tokens count against the address like any failed authentication", async () => {
    node = makeNode({ server: { authFailuresPerMin: 2 } });
    for (let i = 0; i < 2; i++) expect((await node.send("GET", "/me/villages", { token: `guess-${i}` })).status).toBe(401);
    const blocked = await node.send("GET", "/me/villages", { token: node.tokens.admin });
    expect(blocked.status).toBe(429);
    expect(await blocked.json()).toMatchObject({ code: "rate_limited" });
    const elsewhere = await node.send("GET", "/me/villages", { token: node.tokens.admin, ip: "127.0.0.2" });
    expect(elsewhere.status).toBe(200);
  });

  test("requests without a token count against the address too, as on the village routes", async () => {
    node = makeNode({ server: { authFailuresPerMin: 2 } });
    for (let i = 0; i < 2; i++) expect((await node.send("GET", "/me/villages")).status).toBe(401);
    const blocked = await node.send("GET", "/me/villages", { token: node.tokens.admin });
    expect(blocked.status).toBe(429);
    expect(await blocked.json()).toMatchObject({ code: "rate_limited" });
  });

  test("a directory that is not a village is passed over", async () => {
    node = makeNode();
    mkdirSync(join(node.dataDir, "villages", "ghost"), { recursive: true });
    writeFileSync(join(node.dataDir, "villages", "ghost", "members.jsonl"), "");
    const res = await node.send("GET", "/me/villages", { token: node.tokens.admin });
    expect(((await res.json()) as { villages: unknown[] }).villages).toHaveLength(1);
  });
});

describe("GET /villages/:id/audit/entries?last=N (the page's audit rows)", () => {
  const newest = async (n: Node, query: string, token = n.tokens.admin) => n.send("GET", `/villages/${VID}/audit/entries?${query}`, { token });
  const actors = async (res: Response) => ((await res.json()) as { entries: string[] }).entries.map((l) => JSON.parse(l).actor as string);

  test("the village's newest rows, oldest first, up to last; other villages' rows are left out", async () => {
    node = makeNode();
    for (let i = 0; i < 5; i++) appendAudit(node.paths, { action: "member.add", village_id: VID, actor: `a${i}` });
    appendAudit(node.paths, { action: "member.add", village_id: "elsewhere", actor: "x" });
    const res = await newest(node, "last=3");
    expect(res.status).toBe(200);
    expect(await actors(res)).toEqual(["a2", "a3", "a4"]);
  });

  test("a quiet village's rows are found however much other villages wrote since", async () => {
    node = makeNode();
    appendAudit(node.paths, { action: "member.add", village_id: VID, actor: "long-ago" });
    const filler = `${JSON.stringify({ ts: "2024-01-01T00:00:00Z", action: "ingest.accept", village_id: "other", reason: "x".repeat(300) })}\n`;
    appendFileSync(node.paths.auditFile(), filler.repeat(Math.ceil((1.5 * 1024 * 1024) / filler.length)));
    appendAudit(node.paths, { action: "member.add", village_id: VID, actor: "just-now" });
    expect(await actors(await newest(node, "last=50"))).toEqual(["long-ago", "just-now"]);
  });

  test("a page over its byte bound keeps the newest rows", async () => {
    node = makeNode();
    for (const actor of ["old", "older-than-new", "new"]) appendAudit(node.paths, { action: "member.add", village_id: VID, actor, reason: "r".repeat(600 * 1024) });
    expect(await actors(await newest(node, "last=3"))).toEqual(["new"]);
  });

  test("needs the pull right (a role that may only manage is 403); a bad last, or last with start or end, is 400", async () => {
    node = makeNode();
    expect((await newest(node, "last=3", node.tokens.revoked)).status).toBe(401);
    expect((await newest(node, "last=3", node.tokens.member)).status).toBe(200);
    createVillage(node.paths, {
      villageId: "manage-only",
      name: "Manage only",
      adminId: "max",
      policy: { capabilities: { admin: { can_pull: false, can_push: false, can_manage: true } } },
    });
    const manager = addMember(node.paths, "manage-only", "mo", "admin");
    const refused = await node.send("GET", "/villages/manage-only/audit/entries?last=3", { token: manager });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: "forbidden" });
    const bad: Array<[string, string]> = [
      ["last=0", "last must be from 1 to 1000, got 0"],
      ["last=1001", "last must be from 1 to 1000, got 1001"],
      ["last=x", "last must be a non-negative integer"],
      ["last=1&last=2", "given 2 times"],
      ["last=3&start=0", "give either last, or start and end, not both"],
      ["last=3&end=5", "give either last, or start and end, not both"],
    ];
    for (const [query, detail] of bad) {
      const res = await newest(node, query);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: "invalid_argument", detail: expect.stringContaining(detail) });
    }
  });
});

describe("the quarantine list's preview", () => {
  test("shows the issuer and the first three claims of a held bundle", async () => {
    node = makeNode({ policy: { allowed_predicates: ["links.weighted_to"] } });
    const held = signedBundle(node.key, { predicate: "links.other", claims: 5, issuer: "iss\u202e<b>" });
    expect((await node.send("POST", `/villages/${VID}/inbox`, { token: node.tokens.member, body: held })).status).toBe(202);
    const res = await node.send("GET", `/villages/${VID}/quarantine`, { token: node.tokens.admin });
    const [entry] = ((await res.json()) as { entries: Record<string, unknown>[] }).entries;
    expect(entry).toMatchObject({ bundle_id: held.bundle_id, issuer: "iss\u202e<b>", claims_count: 5, reason: "predicate_not_allowed" });
    expect(entry?.claims_preview).toHaveLength(3);
    expect(entry).not.toHaveProperty("file");
  });

  test("a held file that does not parse shows no issuer and no claims", () => {
    node = makeNode();
    const file = join(node.parent, "broken.json");
    writeFileSync(file, "{not json");
    expect(quarantinePreview(file)).toEqual({ issuer: null, claims_count: 0, claims_preview: [] });
    writeFileSync(file, '{"issuer":7,"claims":[{"subject":12345678901234567890,"predicate":"p"},"x"]}');
    expect(quarantinePreview(file)).toEqual({
      issuer: null,
      claims_count: 2,
      claims_preview: [
        { subject: "12345678901234567890", predicate: "p", object: null },
        { subject: "null", predicate: "null", object: null },
      ],
    });
  });
});

describe("the quarantine list in pages", () => {
  test("limit and cursor walk every held bundle once, in bundle id order, with the total on each page", async () => {
    node = makeNode({ policy: { allowed_predicates: ["links.weighted_to"] } });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const b = signedBundle(node.key, { predicate: "links.other" });
      expect((await node.send("POST", `/villages/${VID}/inbox`, { token: node.tokens.member, body: b })).status).toBe(202);
      ids.push(b.bundle_id);
    }
    type Page = { entries: { bundle_id: string }[]; total: number; next_cursor: string | null };
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await node.send("GET", `/villages/${VID}/quarantine?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: node.tokens.admin });
      const page = (await res.json()) as Page;
      expect(page.total).toBe(5);
      expect(page.entries.length).toBeLessThanOrEqual(2);
      seen.push(...page.entries.map((e) => e.bundle_id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].sort());
    const all = (await (await node.send("GET", `/villages/${VID}/quarantine`, { token: node.tokens.admin })).json()) as Page;
    expect([all.entries.length, all.total, all.next_cursor]).toEqual([5, 5, null]);
  });

  test("a bad limit or cursor is a 400 naming it", async () => {
    node = makeNode();
    for (const [query, code] of [["limit=0", "invalid_argument"], ["limit=501", "invalid_argument"], ["cursor=../x", "invalid_cursor"], ["limit=1&limit=2", "invalid_argument"]]) {
      const res = await node.send("GET", `/villages/${VID}/quarantine?${query}`, { token: node.tokens.admin });
      expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([400, code as string]);
    }
  });
});

describe("GET /admin", () => {
  test("is one self-contained page whose inline script and style are allowed by hash, and nothing else", async () => {
    node = makeNode();
    const res = await node.send("GET", "/admin");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("set-cookie")).toBeNull();
    const html = await res.text();
    const csp = res.headers.get("content-security-policy") ?? "";
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? "";
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? "";
    const b64 = (text: string) => Buffer.from(sha256Hex(text), "hex").toString("base64");
    expect(csp.split("; ")).toEqual([
      "default-src 'none'",
      `script-src 'sha256-${b64(script)}'`,
      `style-src 'sha256-${b64(style)}'`,
      "connect-src 'self'",
      "img-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ]);
    expect(script.length).toBeGreaterThan(1000);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).not.toMatch(/\s(src|href|on[a-z]+)=/i);
    expect(html).not.toMatch(/https?:\/\//);
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function|document\.cookie|localStorage/);
  });
});

describe("GET /me/villages with one village's revocations damaged", () => {
  test("the other villages are still listed; the damaged one alone is 503 storage_error", async () => {
    node = makeNode();
    createVillage(node.paths, { villageId: "south-field", name: "South", adminId: "sam" });
    const mia = addMember(node.paths, "south-field", "mia", "member");
    // a revocations line that names no token hash: nobody's token is accepted in that village
    appendFileSync(node.paths.revocationsFile(VID), '{"ts":"2026-11-30T00:00:00Z","token_ha\n');
    const res = await node.send("GET", "/me/villages", { token: mia });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { villages: { village_id: string }[] }).villages.map((v) => v.village_id)).toEqual(["south-field"]);
    const alice = await node.send("GET", "/me/villages", { token: node.tokens.admin });
    expect(alice.status).toBe(503);
    expect(await alice.json()).toMatchObject({ code: "storage_error" });
    // a stranger's token is a failed authentication as ever, and learns nothing of the damage
    const stranger = await node.send("GET", "/me/villages", { token: "x".repeat(43) });
    expect(stranger.status).toBe(401);
    expect(JSON.stringify(await stranger.json())).not.toContain(VID);
  });
});
