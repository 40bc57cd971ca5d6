import { afterEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import type { ErrorCode } from "../../../src/core/errors.ts";
import type { VillagePolicy } from "../../../src/core/village-policy.ts";
import { tailAudit } from "../../../src/storage/audit.ts";
import { parseIndexRow } from "../../../src/storage/index-rows.ts";
import { readJsonl } from "../../../src/storage/jsonl.ts";
import { keypair, makeNode, signedBundle, VID, type BundleOptions, type Keypair, type Node } from "./helpers.ts";

const INBOX = `/villages/${VID}/inbox`;
let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

function body(value: unknown): string {
  return toJsonText(value as JsonValue);
}

describe("POST /villages/:id/inbox, step by step in the design's order", () => {
  test("an invalid village id is 400 before the token is looked at", async () => {
    node = makeNode();
    const res = await node.send("POST", "/villages/bad%20id/inbox", { body: "{}" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_village_id" });
  });

  test("a village that does not exist is 404 before the token is looked at", async () => {
    node = makeNode();
    const res = await node.send("POST", "/villages/elsewhere/inbox", { body: "{}" });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "village_not_found" });
  });

  test("no token is 401 missing_token with WWW-Authenticate, even with an oversized body", async () => {
    node = makeNode({ server: { maxBodyBytes: 100 } });
    const res = await node.send("POST", INBOX, { body: "x".repeat(1000) });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="links"');
    expect(await res.json()).toMatchObject({ code: "missing_token" });
  });

  test("a malformed Authorization header is 401 missing_token", async () => {
    node = makeNode();
    const res = await node.send("POST", INBOX, { headers: { authorization: "Basic YWxpY2U6cHc=" }, body: "{}" });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "missing_token" });
  });

  test("an unknown token is 401 invalid_token with error=invalid_token", async () => {
    node = makeNode();
    const res = await node.send("POST", INBOX, { token: "not-a-real-token", body: "{}" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="links", error="invalid_token"');
    expect(await res.json()).toMatchObject({ code: "invalid_token" });
  });

  test("a revoked token is 401 revoked_token", async () => {
    node = makeNode();
    const res = await node.send("POST", INBOX, { token: node.tokens.revoked, body: "{}" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(await res.json()).toMatchObject({ code: "revoked_token" });
  });

  test("an observer may not push: 403 forbidden naming the role and the right", async () => {
    node = makeNode({ server: { maxBodyBytes: 100 } });
    const res = await node.send("POST", INBOX, { token: node.tokens.observer, body: "x".repeat(1000) });
    expect(res.status).toBe(403);
    const answer = (await res.json()) as { code: string; detail: string };
    expect(answer.code).toBe("forbidden");
    expect(answer.detail).toContain('"observer"');
    expect(answer.detail).toContain("push");
  });

  test("past the policy's rate_limit_per_min the member gets 429 with Retry-After and RateLimit headers", async () => {
    node = makeNode({ policy: { rate_limit_per_min: 3 }, server: { maxBodyBytes: 2000 } });
    for (let i = 0; i < 3; i++) {
      const ok = await node.send("POST", INBOX, { token: node.tokens.member, body: body(signedBundle(node.key)) });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("ratelimit-policy")).toBe("3;w=60");
      expect(ok.headers.get("ratelimit")).toBe(`limit=3, remaining=${2 - i}, reset=30`);
    }
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: "x".repeat(5000) });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("30");
    expect(res.headers.get("ratelimit")).toBe("limit=3, remaining=0, reset=30");
    expect(res.headers.get("ratelimit-policy")).toBe("3;w=60");
    expect(await res.json()).toMatchObject({ code: "rate_limited" });
  });

  test("the rate limit is per member: another member of the village is not affected", async () => {
    node = makeNode({ policy: { rate_limit_per_min: 1 } });
    expect((await node.send("POST", INBOX, { token: node.tokens.member, body: body(signedBundle(node.key)) })).status).toBe(200);
    expect((await node.send("POST", INBOX, { token: node.tokens.member, body: "{}" })).status).toBe(429);
    expect((await node.send("POST", INBOX, { token: node.tokens.admin, body: body(signedBundle(node.key)) })).status).toBe(200);
  });

  test("a declared Content-Length over the limit is 413 before any of the body is read", async () => {
    node = makeNode({ server: { maxBodyBytes: 1000 } });
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(new Uint8Array(100));
      },
    });
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: stream, headers: { "content-length": "5000" } });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: "body_too_large" });
    expect(pulls).toBeLessThanOrEqual(1);
  });

  test("a chunked body is counted as it streams and cut off past the limit (an endless body ends)", async () => {
    node = makeNode({ server: { maxBodyBytes: 64 * 1024 } });
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(8192).fill(0x20));
      },
    });
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: endless });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: "body_too_large" });
  });

  test("a body of declared length that arrives in pieces is read whole", async () => {
    node = makeNode();
    const bytes = new TextEncoder().encode(body(signedBundle(node.key)));
    const cuts = [0, 7, Math.floor(bytes.length / 2), bytes.length];
    let piece = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (piece === cuts.length - 1) return controller.close();
        controller.enqueue(bytes.slice(cuts[piece], cuts[piece + 1]));
        piece++;
      },
    });
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: stream, headers: { "content-length": String(bytes.length) } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "accepted" });
  });

  test("a body of exactly the limit is read", async () => {
    const key = keypair();
    const text = body(signedBundle(key));
    node = makeNode({ server: { maxBodyBytes: Buffer.byteLength(text) } });
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: text });
    expect(res.status).toBe(200);
  });

  test.each([
    ["text/plain", 415],
    ["application/x-www-form-urlencoded", 415],
    ["application/json; charset=latin1", 415],
    ["application/jsonx", 415],
    ["application/json", 200],
    ["application/json; charset=utf-8", 200],
    ["Application/JSON;charset=UTF-8", 200],
  ])("Content-Type %p answers %p", async (type, status) => {
    node = makeNode();
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: body(signedBundle(node.key)), headers: { "content-type": type } });
    expect(res.status).toBe(status);
    if (status === 415) expect(await res.json()).toMatchObject({ code: "unsupported_media_type" });
  });

  test("a missing Content-Type is taken as JSON", async () => {
    node = makeNode();
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: new TextEncoder().encode(body(signedBundle(node.key))) });
    expect(res.status).toBe(200);
  });

  test("malformed JSON is 400 invalid_json", async () => {
    node = makeNode();
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: '{"bundle_id": ' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_json" });
  });

  test("a schema failure is 400 invalid_schema naming the field", async () => {
    node = makeNode();
    const bundle = { ...signedBundle(node.key), window_days: "seven" };
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: body(bundle) });
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { code: string; detail: string };
    expect(answer.code).toBe("invalid_schema");
    expect(answer.detail).toContain("window_days");
  });

  test("a bad signature is 400 invalid_signature, audited, and nothing is stored or quarantined", async () => {
    node = makeNode();
    const good = signedBundle(node.key);
    const forged = { ...good, signature: signedBundle(node.key).signature };
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: body(forged) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_signature" });
    expect(existsSync(node.paths.bundleFile(good.bundle_id, VID))).toBe(false);
    expect(existsSync(node.paths.quarantineFile(VID, good.bundle_id))).toBe(false);
    const rows = tailAudit(node.paths, { action: "ingest.reject" });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ bundle_id: good.bundle_id, village_id: VID, actor: "bob", reason: "invalid_signature" });
  });
});

describe("when the policy does not allow the bundle, it is quarantined (202)", () => {
  const other = "f".repeat(64);
  const cases: Array<[ErrorCode, (k: Keypair) => Partial<VillagePolicy>, BundleOptions]> = [
    ["issuer_id_blocked", () => ({ issuer_id_blocklist: ["issuer-a"] }), {}],
    ["issuer_id_not_allowed", () => ({ issuer_id_allowlist: ["issuer-z"] }), {}],
    ["issuer_key_blocked", (k) => ({ issuer_blocklist: [k.keyHash] }), {}],
    ["issuer_key_not_allowed", () => ({ issuer_allowlist: [other] }), {}],
    ["issuer_key_not_allowed", () => ({ require_issuer_allowlist: true }), {}],
    ["window_too_large", () => ({ max_window_days: 30 }), { windowDays: 31, claimWindowDays: 7 }],
    ["window_too_large", () => ({ max_window_days: 30 }), { windowDays: 7, claimWindowDays: 31 }],
    ["predicate_not_allowed", () => ({}), { predicate: "links.mentions" }],
  ];

  test.each(cases)("%p (%#)", async (code, policy, options) => {
    node = makeNode({ policy });
    const bundle = signedBundle(node.key, options);
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: body(bundle) });
    expect(res.status).toBe(202);
    const answer = (await res.json()) as Record<string, unknown>;
    expect(answer).toMatchObject({ status: "quarantined", bundle_id: bundle.bundle_id, code, reason: code });
    expect(typeof answer.detail).toBe("string");
    expect(existsSync(node.paths.quarantineFile(VID, bundle.bundle_id))).toBe(true);
    expect(existsSync(node.paths.bundleFile(bundle.bundle_id, VID))).toBe(false);
    expect(tailAudit(node.paths, { action: "ingest.quarantine" })).toMatchObject([{ bundle_id: bundle.bundle_id, reason: code }]);
  });
});

describe("when the bundle is allowed", () => {
  test("it is stored: 200 accepted, the file on disk, one index row per claim, an audit row", async () => {
    node = makeNode();
    const bundle = signedBundle(node.key, { claims: 3 });
    const res = await node.send("POST", INBOX, { token: node.tokens.member, body: body(bundle) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "accepted", bundle_id: bundle.bundle_id });
    expect(existsSync(node.paths.bundleFile(bundle.bundle_id, VID))).toBe(true);
    expect(readJsonl(node.paths.claimsIndexFile(), parseIndexRow).filter((r) => r.village_id === VID)).toHaveLength(3);
    expect(tailAudit(node.paths, { action: "ingest.accept" })).toMatchObject([
      { bundle_id: bundle.bundle_id, village_id: VID, actor: "bob", issuer_key_hash: node.key.keyHash },
    ]);
  });

  test("sending it again is 200 duplicate and adds no index rows", async () => {
    node = makeNode();
    const bundle = signedBundle(node.key, { claims: 2 });
    await node.send("POST", INBOX, { token: node.tokens.member, body: body(bundle) });
    const res = await node.send("POST", INBOX, { token: node.tokens.admin, body: body(bundle) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "duplicate", bundle_id: bundle.bundle_id });
    expect(readJsonl(node.paths.claimsIndexFile(), parseIndexRow).filter((r) => r.village_id === VID)).toHaveLength(2);
    expect(tailAudit(node.paths, { action: "ingest.accept" })).toHaveLength(1);
  });
});
