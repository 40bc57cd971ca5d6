/**
 * Authentication and rate limits of the real node: failed attempts from one address are limited
 * (the 21st is 429 and then even a valid token from there waits), unauthenticated routes are
 * limited per address, and tokens revoked or rotated by the CLI stop working at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { lastLine, linksOk, makeTempDir, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";
import { figures } from "../faults/lib/scale.ts";
import { makeVillage, type TestVillage } from "../faults/lib/village.ts";

let tmp: TempDir;
let node: RunningNode;
let v: TestVillage;
let w: TestVillage;
let data: string;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-auth-");
  data = join(tmp.path, "data");
  v = await makeVillage(data, "v", { members: ["bob", "carol", "dave"], scratch: tmp.path });
  w = await makeVillage(data, "w", { scratch: tmp.path });
  node = await startNode(data, ["--trust-proxy", "127.0.0.1"]);
}, 60_000);
afterAll(async () => {
  await node?.stop();
  tmp.remove();
});

/** A request as if from `client` behind the trusted proxy (loopback) that received HTTPS. */
async function get(path: string, client: string, token?: string): Promise<Response> {
  const headers: Record<string, string> = { "x-forwarded-for": client, "x-forwarded-proto": "https" };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${node.url}${path}`, { headers });
  await res.arrayBuffer();
  return res;
}

/** Sends until the first 429 (at most `max`); returns how many were let through first. */
async function untilLimited(send: () => Promise<Response>, max: number): Promise<{ through: number; limited: Response | null; statuses: Set<number> }> {
  const statuses = new Set<number>();
  for (let i = 0; i < max; i++) {
    const res = await send();
    if (res.status === 429) return { through: i, limited: res, statuses };
    statuses.add(res.status);
  }
  return { through: max, limited: null, statuses };
}

describe("when one address keeps failing to authenticate", () => {
  test("the 21st failure is 429 with Retry-After, and a valid token from that address waits too", async () => {
    let n = 0;
    const r = await untilLimited(() => get("/villages/v/claims", "203.0.113.7", `wrong-token-${n++}`), 60);
    figures("auth-failures", { refused_401_before_limit: r.through, then: r.limited?.status ?? "none" });
    // 20 per fixed one-minute window: 20, or up to 40 if the run straddles a window boundary
    expect(r.through).toBeGreaterThanOrEqual(20);
    expect(r.through).toBeLessThanOrEqual(40);
    expect([...r.statuses]).toEqual([401]);
    expect(r.limited?.headers.get("retry-after")).toMatch(/^\d+$/);
    expect((await get("/villages/v/claims", "203.0.113.7", v.tokens.bob)).status).toBe(429);
  });

  test("another address is not affected", async () => {
    expect((await get("/villages/v/claims", "203.0.113.8", v.tokens.bob)).status).toBe(200);
  });
});

describe("when an address calls the routes that need no token", () => {
  test("it is limited per address (120 a minute), with RateLimit headers; /healthz never is", async () => {
    const client = "198.51.100.20";
    const r = await untilLimited(() => get("/.well-known/links/claims/latest", client), 300);
    figures("public-rate-limit", { let_through_before_429: r.through });
    expect(r.through).toBeGreaterThanOrEqual(120);
    expect(r.through).toBeLessThanOrEqual(240);
    expect(r.limited?.headers.get("ratelimit-policy")).toBe("120;w=60");
    expect(r.limited?.headers.get("retry-after")).toMatch(/^\d+$/);
    const inbox = await fetch(`${node.url}/inbox`, {
      method: "POST",
      headers: { "x-forwarded-for": client, "x-forwarded-proto": "https", "content-type": "application/json" },
      body: "{}",
    });
    expect(inbox.status).toBe(429);
    expect(((await inbox.json()) as { code: string }).code).toBe("rate_limited");
    for (let i = 0; i < 150; i++) expect((await get("/healthz", client)).status).toBe(200);
  });
});

describe("when the CLI revokes or rotates tokens while the node runs", () => {
  test("a revoked token is refused at once", async () => {
    expect((await get("/villages/v/claims", "192.0.2.1", v.tokens.carol)).status).toBe(200);
    await linksOk(["villages", "revoke-member", "v", "carol", "--data", data]);
    expect((await get("/villages/v/claims", "192.0.2.1", v.tokens.carol)).status).toBe(401);
  });

  test("a rotated-out token is refused at once and the new one passes", async () => {
    const r = await linksOk(["villages", "rotate-token", "v", "dave", "--data", data]);
    const fresh = lastLine(r.stdout);
    expect((await get("/villages/v/claims", "192.0.2.2", v.tokens.dave)).status).toBe(401);
    expect((await get("/villages/v/claims", "192.0.2.2", fresh)).status).toBe(200);
  });

  test("another village's admin token is refused", async () => {
    expect((await get("/villages/v/claims", "192.0.2.3", w.tokens.alice)).status).toBe(401);
    expect((await get("/villages/w/claims", "192.0.2.3", w.tokens.alice)).status).toBe(200);
  });

  test("a token over plain HTTP from a remote client is refused (403 tls_required)", async () => {
    const res = await fetch(`${node.url}/villages/v/claims`, {
      headers: { authorization: `Bearer ${v.tokens.bob}`, "x-forwarded-for": "192.0.2.4", "x-forwarded-proto": "http" },
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe("tls_required");
  });
});
