/**
 * Limits that hold per client address: requests without a token, unknown villages, IPv6 clients
 * grouped by prefix, and the public inbox's storage budget.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { createApp } from "../../../src/server/app.ts";
import { addressGroup } from "../../../src/server/net.ts";
import { FIXED_NOW, json, makeNode, peer, signedBundle, VID, type Node, type NodeOptions } from "./helpers.ts";

const FAILURES = 5;
let node: Node | undefined;
afterEach(async () => {
  await node?.cleanup();
  node = undefined;
});

function start(opts: NodeOptions["server"] = {}, policy: NodeOptions["policy"] = {}): Node {
  node = makeNode({ policy, server: { authFailuresPerMin: FAILURES, publicRatePerMin: 1000, allowInsecureRemote: true, ...opts } });
  return node;
}

const text = (v: unknown) => toJsonText(v as JsonValue);

/** Every route under /villages/:id, as a request without a token. */
const VILLAGE_ROUTES: Array<[string, string]> = [
  ["GET", `/villages/${VID}/claims`],
  ["GET", `/villages/${VID}/claims/latest`],
  ["POST", `/villages/${VID}/inbox`],
  ["POST", `/villages/${VID}/policy`],
  ["GET", `/villages/${VID}/quarantine`],
  ["POST", `/villages/${VID}/quarantine/${"a".repeat(32)}/approve`],
  ["POST", `/villages/${VID}/quarantine/${"a".repeat(32)}/reject`],
];

describe("when requests carry no token", () => {
  test("on every route that needs one, they count as failed authentications and the address is then refused", async () => {
    const n = start();
    let i = 0;
    for (const [method, path] of VILLAGE_ROUTES) {
      const ip = `198.51.100.${++i}`;
      for (let k = 0; k < FAILURES; k++) expect((await n.send(method, path, { ip, body: "{}" })).status).toBe(401);
      const refused = await n.send(method, path, { ip, body: "{}" });
      expect(refused.status).toBe(429);
      expect((await json(refused)).code).toBe("rate_limited");
      expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
      // and a real token from that address waits too
      expect((await n.send("GET", `/villages/${VID}/claims`, { ip, token: n.tokens.admin })).status).toBe(429);
    }
    expect((await n.send("GET", `/villages/${VID}/claims`, { ip: "198.51.100.200", token: n.tokens.admin })).status).toBe(200);
  });

  test("the policy feed of a private village needs a token, and a request without one counts as a failure", async () => {
    const n = start({}, { visibility: "private" });
    for (let k = 0; k < FAILURES; k++) expect((await n.send("GET", `/villages/${VID}/policy/latest`, { ip: "192.0.2.10" })).status).toBe(401);
    expect((await n.send("GET", `/villages/${VID}/policy/updates`, { ip: "192.0.2.10" })).status).toBe(429);
  });

  test("a read the village's visibility allows falls under the public per-address limit", async () => {
    const n = start({ publicRatePerMin: 3 });
    for (let k = 0; k < 3; k++) expect((await n.send("GET", `/villages/${VID}/policy/latest`, { ip: "192.0.2.20" })).status).toBe(200);
    const refused = await n.send("GET", `/villages/${VID}/policy/updates`, { ip: "192.0.2.20" });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("ratelimit-policy")).toBe("3;w=60");
  });

  test("villages that do not exist, or ids that cannot be one, count as failures (no free guessing of ids)", async () => {
    const n = start();
    const ip = "192.0.2.30";
    const misses = ["/villages/nope/claims", "/villages/no$pe/claims", "/villages/guess-2/policy/latest"];
    for (let k = 0; k < FAILURES; k++) {
      const res = await n.send("GET", misses[k % misses.length] as string, { ip });
      expect([400, 404]).toContain(res.status);
    }
    expect((await n.send("GET", `/villages/${VID}/policy/latest`, { ip })).status).toBe(429);
  });
});

describe("when an IPv6 client rotates its address", () => {
  test("addresses inside one /64 share one budget; another /64 has its own", async () => {
    const n = start();
    for (let k = 0; k < FAILURES; k++) {
      expect((await n.send("GET", `/villages/${VID}/claims`, { ip: `2001:db8:1:2::${(k + 1).toString(16)}` })).status).toBe(401);
    }
    expect((await n.send("GET", `/villages/${VID}/claims`, { ip: "2001:db8:1:2:ffff:eeee:dddd:cccc", token: n.tokens.admin })).status).toBe(429);
    expect((await n.send("GET", `/villages/${VID}/claims`, { ip: "2001:db8:1:3::1", token: n.tokens.admin })).status).toBe(200);
  });

  test("with --ipv6-prefix 128 each address counts alone", async () => {
    const n = start({ ipv6Prefix: 128 });
    for (let k = 0; k < FAILURES; k++) await n.send("GET", `/villages/${VID}/claims`, { ip: "2001:db8::1" });
    expect((await n.send("GET", `/villages/${VID}/claims`, { ip: "2001:db8::2", token: n.tokens.admin })).status).toBe(200);
    expect((await n.send("GET", `/villages/${VID}/claims`, { ip: "2001:db8::1", token: n.tokens.admin })).status).toBe(429);
  });

  test("an IPv4-mapped IPv6 address counts as its IPv4 address", async () => {
    const n = start();
    for (let k = 0; k < FAILURES; k++) await n.send("GET", `/villages/${VID}/claims`, { ip: "::ffff:192.0.2.77" });
    expect((await n.send("GET", `/villages/${VID}/claims`, { ip: "192.0.2.77", token: n.tokens.admin })).status).toBe(429);
  });

  test("the grouping itself", () => {
    expect(addressGroup("2001:DB8:1:2:3:4:5:6", 64)).toBe("2001:db8:1:2::/64");
    expect(addressGroup("2001:db8:1:2:3:4:5:6", 48)).toBe("2001:db8:1::/48");
    expect(addressGroup("2001:db8:1:2ff:3:4:5:6", 56)).toBe("2001:db8:1:200::/56");
    expect(addressGroup("2001:db8::9", 128)).toBe("2001:db8::9");
    expect(addressGroup("::ffff:10.1.2.3", 64)).toBe("10.1.2.3");
    expect(addressGroup("10.1.2.3", 64)).toBe("10.1.2.3");
    expect(addressGroup("unknown", 64)).toBe("unknown");
  });
});

describe("the node's options", () => {
  test("a bad option is refused (invalid_argument) before the data directory is touched", () => {
    const parent = mkdtempSync(join(tmpdir(), "links-options-"));
    const dataDir = join(parent, "data");
    try {
      const bad: Array<[Partial<Parameters<typeof createApp>[0]>, RegExp]> = [
        [{ ipv6Prefix: 0 }, /ipv6Prefix must be an integer from 1 to 128/],
        [{ trustProxy: ["proxy.example"] }, /not an IP address/],
        [{ publicInboxQuotaBytes: 10 }, /per-address budget/],
        [{ publicInboxTotalBytes: 0 }, /total budget/],
        [{ checkpointIntervalMs: -1 }, /checkpointIntervalMs must be a whole number of 0 or more, got -1/],
        [{ verifyWorkers: 1.5 }, /verifyWorkers must be a whole number of 0 or more, got 1.5/],
        [{ nodeName: "-bad name" }, /invalid node name/],
        [{ rateLimitCapacity: 0 }, /rateLimitCapacity must be a positive integer/],
      ];
      for (const [opts, detail] of bad) {
        expect(() => createApp({ dataDir, logger: () => {}, ...opts })).toThrow(expect.objectContaining({ code: "invalid_argument", detail: expect.stringMatching(detail) }));
        expect(existsSync(dataDir)).toBe(false);
      }
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});

describe("the public inbox", () => {
  test("turned off, it answers 403 public_inbox_disabled and stores nothing", async () => {
    const n = start({ publicInbox: false });
    const res = await n.send("POST", "/inbox", { body: text(signedBundle(n.key)), ip: "203.0.113.1" });
    expect(res.status).toBe(403);
    const body = await json(res);
    expect(body.code).toBe("public_inbox_disabled");
    expect(String(body.detail)).toContain("village inbox");
  });

  test("an address that used its daily budget is refused with Retry-After until midnight UTC; others go on", async () => {
    const n = start({ publicInboxQuotaBytes: 2048 });
    const ip = "203.0.113.2";
    // a one-claim bundle is under 1 KiB: two fit in 2 KiB
    for (let k = 0; k < 2; k++) expect((await json(await n.send("POST", "/inbox", { body: text(signedBundle(n.key)), ip }))).status).toBe("accepted");
    const refused = await n.send("POST", "/inbox", { body: text(signedBundle(n.key)), ip });
    expect(refused.status).toBe(429);
    expect((await json(refused)).code).toBe("public_inbox_quota_exceeded");
    const midnight = Date.UTC(2030, 0, 2);
    expect(Number(refused.headers.get("retry-after"))).toBe(Math.ceil((midnight - FIXED_NOW) / 1000));
    expect((await n.send("POST", "/inbox", { body: text(signedBundle(n.key)), ip: "203.0.113.3" })).status).toBe(200);
    // the same /64 is the same client
    const v6 = "2001:db8:5:5::1";
    for (let k = 0; k < 2; k++) expect((await n.send("POST", "/inbox", { body: text(signedBundle(n.key)), ip: v6 })).status).toBe(200);
    expect((await n.send("POST", "/inbox", { body: text(signedBundle(n.key)), ip: "2001:db8:5:5::2" })).status).toBe(429);
  });

  test("duplicates and refused bundles cost nothing of the budget", async () => {
    const n = start({ publicInboxQuotaBytes: 1024 });
    const ip = "203.0.113.4";
    const bundle = signedBundle(n.key);
    const bad = { ...signedBundle(n.key), signature: signedBundle(n.key).signature };
    expect((await n.send("POST", "/inbox", { body: text(bad), ip })).status).toBe(400);
    expect((await n.send("POST", "/inbox", { body: text(bundle), ip })).status).toBe(200);
    expect((await n.send("POST", "/inbox", { body: text(signedBundle(n.key)), ip })).status).toBe(429);
  });

  test("when the total is used up it answers 507 public_inbox_full without Retry-After, and village inboxes go on", async () => {
    const n = start({ publicInboxTotalBytes: 2500 });
    let accepted = 0;
    let full: Response | undefined;
    for (let k = 0; k < 10 && full === undefined; k++) {
      const res = await n.send("POST", "/inbox", { body: text(signedBundle(n.key)), ip: `203.0.113.${10 + k}` });
      if (res.status === 200) accepted++;
      else full = res;
    }
    expect(accepted).toBeGreaterThan(0);
    expect(full?.status).toBe(507);
    expect((await json(full as Response)).code).toBe("public_inbox_full");
    expect(full?.headers.get("retry-after")).toBeNull();
    expect(n.logs.some((l) => (l as { level?: string }).level === "error")).toBe(false);
    const village = await n.send("POST", `/villages/${VID}/inbox`, { token: n.tokens.member, body: text(signedBundle(n.key)) });
    expect(village.status).toBe(200);
  });

  test("the total is counted again from the stored bundles when the node starts", async () => {
    const n = start({ publicInboxTotalBytes: 1_000_000 });
    for (let k = 0; k < 3; k++) expect((await n.send("POST", "/inbox", { body: text(signedBundle(n.key)), ip: `203.0.113.${30 + k}` })).status).toBe(200);
    await n.close();
    node = undefined; // closed here; removed below
    // a restart with a total just under what is stored: full at once
    const again = createApp({ dataDir: n.dataDir, now: () => FIXED_NOW, logger: () => {}, publicInboxTotalBytes: 1500 });
    try {
      const req = new Request("http://links.test/inbox", { method: "POST", body: text(signedBundle(n.key)) });
      const res = await again.app.fetch(req, peer("203.0.113.40"));
      expect(res.status).toBe(507);
    } finally {
      await again.close();
      rmSync(n.parent, { recursive: true, force: true });
    }
  });
});
