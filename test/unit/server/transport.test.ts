import { afterEach, describe, expect, test } from "bun:test";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { createApp } from "../../../src/server/app.ts";
import { LOOPBACK, makeNode, peer, PROXY, REMOTE, signedBundle, VID, type Node } from "./helpers.ts";

let node: Node;
afterEach(async () => {
  await node?.cleanup();
});

const LATEST = `/villages/${VID}/claims`;

describe("the loopback guard: bearer tokens over plain HTTP", () => {
  test("from a remote peer are refused with 403 tls_required", async () => {
    node = makeNode();
    const res = await node.send("GET", LATEST, { token: node.tokens.member, ip: REMOTE });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: "tls_required" });
  });

  test("from a remote peer are refused even when the token is wrong (the token is never looked at)", async () => {
    node = makeNode();
    const res = await node.send("GET", LATEST, { token: "guess", ip: REMOTE });
    expect(res.status).toBe(403);
  });

  test("over TLS to the node itself, from a remote peer, are accepted; the same request over plain HTTP is not", async () => {
    node = makeNode();
    const ask = (scheme: string) =>
      node.app.fetch(new Request(`${scheme}://links.test${LATEST}`, { headers: { authorization: `Bearer ${node.tokens.member}` } }), peer(REMOTE));
    expect((await ask("https")).status).toBe(200);
    expect((await ask("HTTPS")).status).toBe(200);
    expect((await ask("http")).status).toBe(403);
  });

  test.each([["127.0.0.1"], ["127.8.9.10"], ["::1"], ["::ffff:127.0.0.1"]])("from the loopback peer %p are accepted", async (ip) => {
    node = makeNode();
    const res = await node.send("GET", LATEST, { token: node.tokens.member, ip });
    expect(res.status).toBe(200);
  });

  test("through a trusted proxy that received HTTPS are accepted", async () => {
    node = makeNode({ server: { trustProxy: [PROXY] } });
    const res = await node.send("GET", LATEST, {
      token: node.tokens.member,
      ip: PROXY,
      headers: { "x-forwarded-proto": "https", "x-forwarded-for": REMOTE },
    });
    expect(res.status).toBe(200);
  });

  test("through a trusted proxy that received plain HTTP are refused", async () => {
    node = makeNode({ server: { trustProxy: [PROXY] } });
    const res = await node.send("GET", LATEST, { token: node.tokens.member, ip: PROXY, headers: { "x-forwarded-proto": "http" } });
    expect(res.status).toBe(403);
  });

  test("through a trusted proxy that does not say X-Forwarded-Proto are refused, on loopback too", async () => {
    for (const proxy of [PROXY, LOOPBACK]) {
      node = makeNode({ server: { trustProxy: [proxy] } });
      const res = await node.send("GET", LATEST, { token: node.tokens.member, ip: proxy, headers: { "x-forwarded-for": REMOTE } });
      expect(res.status).toBe(403);
      const body = (await res.json()) as { code: string; detail: string };
      expect(body.code).toBe("tls_required");
      expect(body.detail).toContain("X-Forwarded-Proto: https");
      await node.cleanup();
    }
    node = makeNode({ server: { trustProxy: [LOOPBACK] } });
  });

  test("from an untrusted peer claiming X-Forwarded-Proto: https are refused", async () => {
    node = makeNode({ server: { trustProxy: [PROXY] } });
    const res = await node.send("GET", LATEST, { token: node.tokens.member, ip: REMOTE, headers: { "x-forwarded-proto": "https" } });
    expect(res.status).toBe(403);
  });

  test("from a remote peer are accepted when the operator allowed insecure remote requests", async () => {
    node = makeNode({ server: { allowInsecureRemote: true } });
    const res = await node.send("GET", LATEST, { token: node.tokens.member, ip: REMOTE });
    expect(res.status).toBe(200);
  });

  test("requests without a token from remote peers are not affected", async () => {
    node = makeNode();
    const res = await node.send("GET", "/healthz", { ip: REMOTE });
    expect(res.status).toBe(200);
  });
});

describe("the client address", () => {
  test("is the connection's peer; X-Forwarded-For from an untrusted peer is ignored", async () => {
    node = makeNode();
    await node.send("GET", "/healthz", { ip: REMOTE, headers: { "x-forwarded-for": "198.51.100.1" } });
    expect(node.logs.at(-1)).toMatchObject({ ip: REMOTE });
  });

  test("behind a trusted proxy is the right-most untrusted X-Forwarded-For hop", async () => {
    node = makeNode({ server: { trustProxy: [PROXY, "10.0.0.3"] } });
    await node.send("GET", "/healthz", { ip: PROXY, headers: { "x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.0.0.3" } });
    expect(node.logs.at(-1)).toMatchObject({ ip: "198.51.100.7" });
  });

  test("a trusted proxy that is not an IP address is refused when the app is built", () => {
    expect(() => createApp({ dataDir: "/tmp/x", trustProxy: ["proxy.example"] })).toThrow(/not an IP address/);
  });
});

describe("failed authentications from one address", () => {
  test("the 21st attempt is 429, and so is a valid token from that address until the window ends", async () => {
    node = makeNode();
    for (let i = 0; i < 20; i++) {
      const res = await node.send("GET", LATEST, { token: `wrong-${i}` });
      expect(res.status).toBe(401);
    }
    const blocked = await node.send("GET", LATEST, { token: "wrong-21" });
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get("retry-after")).toBe("30");
    expect(blocked.headers.get("ratelimit")).toBe("limit=20, remaining=0, reset=30");
    expect(await blocked.json()).toMatchObject({ code: "rate_limited" });

    const valid = await node.send("GET", LATEST, { token: node.tokens.member });
    expect(valid.status).toBe(429);
    const elsewhere = await node.send("GET", LATEST, { token: node.tokens.member, ip: "127.0.0.2" });
    expect(elsewhere.status).toBe(200);
  });

  test("revoked tokens count as failures", async () => {
    node = makeNode({ server: { authFailuresPerMin: 2 } });
    expect((await node.send("GET", LATEST, { token: node.tokens.revoked })).status).toBe(401);
    expect((await node.send("GET", LATEST, { token: node.tokens.revoked })).status).toBe(401);
    expect((await node.send("GET", LATEST, { token: node.tokens.revoked })).status).toBe(429);
  });

  test("behind a trusted proxy they are counted per forwarded client, not for the proxy", async () => {
    node = makeNode({ server: { trustProxy: [PROXY], authFailuresPerMin: 1 } });
    const via = (client: string, token: string) =>
      node.send("GET", LATEST, { token, ip: PROXY, headers: { "x-forwarded-for": client, "x-forwarded-proto": "https" } });
    expect((await via("198.51.100.1", "wrong")).status).toBe(401);
    expect((await via("198.51.100.1", node.tokens.member)).status).toBe(429);
    expect((await via("198.51.100.2", node.tokens.member)).status).toBe(200);
  });
});

describe("routes without a token", () => {
  test("are limited per client address, with RateLimit headers", async () => {
    node = makeNode({ server: { publicRatePerMin: 2 } });
    const bundle = toJsonText(signedBundle(node.key) as unknown as JsonValue);
    const first = await node.send("POST", "/inbox", { body: bundle, ip: REMOTE });
    expect(first.status).toBe(200);
    expect(first.headers.get("ratelimit-policy")).toBe("2;w=60");
    expect(first.headers.get("ratelimit")).toBe("limit=2, remaining=1, reset=30");
    expect((await node.send("GET", "/.well-known/links/claims/latest", { ip: REMOTE })).status).toBe(200);
    const limited = await node.send("POST", "/inbox", { body: bundle, ip: REMOTE });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("30");
    expect((await node.send("POST", "/inbox", { body: bundle, ip: LOOPBACK })).status).toBe(200);
  });

  test("/healthz is never limited", async () => {
    node = makeNode({ server: { publicRatePerMin: 1 } });
    for (let i = 0; i < 50; i++) {
      const res = await node.send("GET", "/healthz", { ip: REMOTE });
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit")).toBeNull();
    }
  });
});

describe("the request log", () => {
  test("has one line per request with who and how it ended, and never a token", async () => {
    node = makeNode();
    await node.send("GET", `${LATEST}?subject=s`, { token: node.tokens.member });
    await node.send("GET", LATEST, { token: "wrong-token-value" });
    expect(node.logs).toHaveLength(2);
    expect(node.logs[0]).toMatchObject({ method: "GET", path: LATEST, status: 200, village: VID, member: "bob", ip: LOOPBACK });
    expect(node.logs[1]).toMatchObject({ status: 401, member: null });
    expect(typeof (node.logs[0] as { ms: unknown }).ms).toBe("number");
    const all = JSON.stringify(node.logs);
    expect(all).not.toContain(node.tokens.member);
    expect(all).not.toContain("wrong-token-value");
    expect(all.toLowerCase()).not.toContain("bearer");
  });
});
