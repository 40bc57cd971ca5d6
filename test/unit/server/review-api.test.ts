/**
 * What the review page is built on: the villages a token belongs to, a village's recent audit
 * rows read from a bounded tail of the log, the quarantine list's previews, and the page itself
 * (its Content-Security-Policy and what it may load).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { appendAudit } from "../../../src/storage/audit.ts";
import { addMember } from "../../../src/storage/members.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { AUDIT_TAIL_BYTES, recentAudit } from "../../../src/server/routes/audit-recent.ts";
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

describe("GET /villages/:id/audit/recent", () => {
  test("the village's newest rows, oldest first, up to limit; other villages' rows are left out", async () => {
    node = makeNode();
    for (let i = 0; i < 5; i++) appendAudit(node.paths, { action: "member.add", village_id: VID, actor: `a${i}` });
    appendAudit(node.paths, { action: "member.add", village_id: "elsewhere", actor: "x" });
    const res = await node.send("GET", `/villages/${VID}/audit/recent?limit=3`, { token: node.tokens.admin });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { rows: { actor: string }[]; scanned_bytes: number };
    expect(body.rows.map((r) => r.actor)).toEqual(["a2", "a3", "a4"]);
    expect(body.scanned_bytes).toBeGreaterThan(0);
  });

  test("needs the manage right; a bad limit is 400", async () => {
    node = makeNode();
    const member = await node.send("GET", `/villages/${VID}/audit/recent`, { token: node.tokens.member });
    expect(member.status).toBe(403);
    for (const limit of ["0", "501", "x", "1&limit=2"]) {
      const res = await node.send("GET", `/villages/${VID}/audit/recent?limit=${limit}`, { token: node.tokens.admin });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: "invalid_argument" });
    }
  });

  test("reads only the end of a large log, starting on a whole line", () => {
    node = makeNode();
    appendAudit(node.paths, { action: "member.add", village_id: VID, actor: "long-ago" });
    const filler = `${JSON.stringify({ ts: "2024-01-01T00:00:00Z", action: "ingest.accept", village_id: "other", reason: "x".repeat(300) })}\n`;
    appendFileSync(node.paths.auditFile(), filler.repeat(Math.ceil((AUDIT_TAIL_BYTES * 1.5) / filler.length)));
    appendAudit(node.paths, { action: "member.add", village_id: VID, actor: "just-now" });
    const warnings: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (warnings.push(String(chunk)), true)) as typeof process.stderr.write;
    let result;
    try {
      result = recentAudit(node.paths, VID, 50);
    } finally {
      process.stderr.write = write;
    }
    expect(result.rows.map((r) => r.actor)).toEqual(["just-now"]);
    expect(result.scanned_bytes).toBeLessThanOrEqual(AUDIT_TAIL_BYTES);
    expect(result.scanned_bytes).toBeGreaterThan(AUDIT_TAIL_BYTES - filler.length);
    expect(warnings).toEqual([]);
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
