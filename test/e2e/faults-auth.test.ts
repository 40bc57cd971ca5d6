/**
 * Authentication and rate limits of the real node: failed attempts from one address are limited
 * (the 21st is 429 and then even a valid token from there waits), requests without a token and
 * guesses at village ids count as failures, unauthenticated routes are limited per address, IPv6
 * clients are counted by /64, the public inbox has a storage budget, and tokens revoked or rotated
 * by the CLI stop working at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { lastLine, links, linksOk, makeTempDir, type TempDir } from "./harness.ts";
import { bundleText, makeBundle, signingKey } from "../faults/lib/bundles.ts";
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

/** A request without a token, as if from `client` behind the trusted proxy. */
async function tokenless(method: string, path: string, client: string): Promise<Response> {
  const res = await fetch(`${node.url}${path}`, {
    method,
    headers: { "x-forwarded-for": client, "x-forwarded-proto": "https", "content-type": "application/json" },
    ...(method === "POST" ? { body: "{}" } : {}),
  });
  await res.arrayBuffer();
  return res;
}

describe("when an address floods the village routes without a token", () => {
  test("every route that needs a token counts it as a failed authentication: 429 after 20", async () => {
    const routes: Array<[string, string]> = [
      ["GET", "/villages/v/claims"],
      ["GET", "/villages/v/claims/latest"],
      ["POST", "/villages/v/inbox"],
      ["POST", "/villages/v/policy"],
      ["GET", "/villages/v/quarantine"],
      ["POST", `/villages/v/quarantine/${"ab".repeat(16)}/approve`],
      ["POST", `/villages/v/quarantine/${"ab".repeat(16)}/reject`],
    ];
    let n = 0;
    const client = "203.0.113.50";
    const r = await untilLimited(() => {
      const [method, path] = routes[n++ % routes.length] as [string, string];
      return tokenless(method, path, client);
    }, 200);
    figures("tokenless-flood", { routes: routes.length, answered_401_before_limit: r.through, then: r.limited?.status ?? "none" });
    expect([...r.statuses]).toEqual([401]);
    expect(r.through).toBeGreaterThanOrEqual(20);
    expect(r.through).toBeLessThanOrEqual(40);
    expect((await get("/villages/v/claims", client, v.tokens.bob)).status).toBe(429);
  });

  test("guessing village ids counts too: unknown and impossible ids are failures", async () => {
    let n = 0;
    const client = "203.0.113.51";
    const r = await untilLimited(() => tokenless("GET", n++ % 2 === 0 ? `/villages/guess-${n}/policy/latest` : `/villages/no.such.${n}/claims`, client), 200);
    figures("village-id-guessing", { answered_4xx_before_limit: r.through, then: r.limited?.status ?? "none" });
    expect([...r.statuses].every((s) => s === 400 || s === 404)).toBe(true);
    expect(r.through).toBeLessThanOrEqual(40);
    expect(r.limited?.status).toBe(429);
  });

  test("a read the visibility allows (the policy feed of a non-private village) falls under the public limit", async () => {
    const r = await untilLimited(() => tokenless("GET", "/villages/w/policy/latest", "203.0.113.52"), 300);
    figures("tokenless-public-reads", { answered_200_before_limit: r.through });
    expect([...r.statuses]).toEqual([200]);
    expect(r.through).toBeGreaterThanOrEqual(120);
    expect(r.through).toBeLessThanOrEqual(240);
    expect(r.limited?.headers.get("ratelimit-policy")).toBe("120;w=60");
  });
});

describe("when an IPv6 client rotates its address inside its /64", () => {
  test("the rotated addresses share one failure budget; another /64 does not", async () => {
    let n = 0;
    const r = await untilLimited(() => get("/villages/v/claims", `2001:db8:77:1:${(++n).toString(16)}:0:0:1`, `wrong-${n}`), 100);
    figures("ipv6-rotation", { distinct_addresses_tried: n, refused_401_before_limit: r.through, then: r.limited?.status ?? "none" });
    expect(r.through).toBeGreaterThanOrEqual(20);
    expect(r.through).toBeLessThanOrEqual(40);
    expect((await get("/villages/v/claims", "2001:db8:77:1:ffff::9", v.tokens.bob)).status).toBe(429);
    expect((await get("/villages/v/claims", "2001:db8:77:2::9", v.tokens.bob)).status).toBe(200);
    // an IPv4-mapped address is its IPv4 address
    for (let i = 0; i < 40; i++) await get("/villages/v/claims", "::ffff:198.51.100.99", `wrong-v4-${i}`);
    expect((await get("/villages/v/claims", "198.51.100.99", v.tokens.bob)).status).toBe(429);
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

  test("a token through the trusted proxy without X-Forwarded-Proto is refused (403 tls_required)", async () => {
    const res = await fetch(`${node.url}/villages/v/claims`, { headers: { authorization: `Bearer ${v.tokens.bob}`, "x-forwarded-for": "192.0.2.5" } });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe("tls_required");
  });

  test("a token over plain HTTP from a remote client is refused (403 tls_required)", async () => {
    const res = await fetch(`${node.url}/villages/v/claims`, {
      headers: { authorization: `Bearer ${v.tokens.bob}`, "x-forwarded-for": "192.0.2.4", "x-forwarded-proto": "http" },
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe("tls_required");
  });
});

describe("when the public inbox is flooded", () => {
  let inboxTmp: TempDir;
  beforeAll(() => {
    inboxTmp = makeTempDir("links-faults-inbox-");
  });
  afterAll(() => inboxTmp.remove());

  /** POSTs a fresh signed bundle to /inbox as `client`; returns the answer. */
  async function postPublic(url: string, client: string): Promise<{ status: number; code?: string; retryAfter: string | null; bytes: number }> {
    const text = bundleText(makeBundle(key, "public"));
    const res = await fetch(`${url}/inbox`, {
      method: "POST",
      headers: { "x-forwarded-for": client, "x-forwarded-proto": "https", "content-type": "application/json" },
      body: text,
    });
    const body = (await res.json()) as { code?: string };
    return { status: res.status, code: body.code, retryAfter: res.headers.get("retry-after"), bytes: text.length };
  }
  const key = signingKey();

  test("one address (or one IPv6 /64) stops at its daily budget, the total stops everyone, and the total holds across a restart", async () => {
    const data = join(inboxTmp.path, "budget");
    const flags = ["--trust-proxy", "127.0.0.1", "--public-inbox-quota", "4KiB", "--public-inbox-total", "12KiB"];
    let n1 = await startNode(data, flags);
    try {
      const statuses: number[] = [];
      let quota: Awaited<ReturnType<typeof postPublic>> | undefined;
      for (let i = 0; i < 20 && quota === undefined; i++) {
        const r = await postPublic(n1.url, "198.51.100.70");
        if (r.status === 200) statuses.push(r.status);
        else quota = r;
      }
      expect(quota?.status).toBe(429);
      expect(quota?.code).toBe("public_inbox_quota_exceeded");
      expect(Number(quota?.retryAfter)).toBeGreaterThan(0);
      expect(Number(quota?.retryAfter)).toBeLessThanOrEqual(86_400);
      const perAddress = statuses.length;
      // rotating inside one /64 does not buy a new budget
      let v6 = 0;
      let v6Refused: Awaited<ReturnType<typeof postPublic>> | undefined;
      for (let i = 0; i < 20 && v6Refused === undefined; i++) {
        const r = await postPublic(n1.url, `2001:db8:99:1::${(i + 1).toString(16)}`);
        if (r.status === 200) v6++;
        else v6Refused = r;
      }
      expect(v6).toBe(perAddress);
      expect(v6Refused?.code).toBe("public_inbox_quota_exceeded");
      // many addresses: the total stops them all
      let others = 0;
      let full: Awaited<ReturnType<typeof postPublic>> | undefined;
      for (let i = 0; i < 40 && full === undefined; i++) {
        const r = await postPublic(n1.url, `192.0.2.${100 + i}`);
        if (r.status === 200) others++;
        else full = r;
      }
      expect(full?.status).toBe(507);
      expect(full?.code).toBe("public_inbox_full");
      expect(full?.retryAfter).toBeNull();
      figures("public-inbox-flood", {
        quota: "4KiB/day", total: "12KiB", bundle_bytes: quota?.bytes ?? 0,
        accepted_from_one_address: perAddress, accepted_from_one_ipv6_64: v6, accepted_from_others_until_full: others,
        then: `${full?.status} ${full?.code}`,
      });
      expect((await n1.stop())).toBe(0);
      n1 = await startNode(data, flags);
      const afterRestart = await postPublic(n1.url, "192.0.2.250");
      figures("public-inbox-restart", { first_public_push_after_restart: `${afterRestart.status} ${afterRestart.code}` });
      expect(afterRestart.status).toBe(507);
    } finally {
      await n1.stop();
    }
  });

  test("--public-inbox off answers 403 public_inbox_disabled and stores nothing", async () => {
    const data = join(inboxTmp.path, "off");
    const off = await startNode(data, ["--trust-proxy", "127.0.0.1", "--public-inbox", "off"]);
    try {
      const r = await postPublic(off.url, "198.51.100.80");
      expect(r.status).toBe(403);
      expect(r.code).toBe("public_inbox_disabled");
      const listed = await links(["claims", "query", "--data", data, "--json"]);
      expect(JSON.parse(listed.stdout)).toEqual([]);
    } finally {
      await off.stop();
    }
  });
});
