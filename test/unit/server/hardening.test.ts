import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { keypair, makeNode, REMOTE, signedBundle, snapshotTree, VID, type Node } from "./helpers.ts";

const BID = "0123456789abcdef0123456789abcdef";

/** Path segments as they appear in the URL: encoded separators, dot segments, NUL, overlong ids. */
const TRICKS = [
  "%2F", "..%2F..%2Fetc", "%2e%2e", "%2E%2E%2F%2E%2E", "..", ".", "%2e", "%5C", "..%5C..%5Cwindows",
  "%2Fetc%2Fpasswd", "C:%5Cwindows", "%00", "a%00b", "v".repeat(65), "0".repeat(33), "%252F", "%",
  "%zz", "a%20b", "%C0%AE%C0%AE", "%E2%80%AE", "~root", "%0A", "a%2Fb", "A".repeat(32),
];

/** Every id position of every village route. */
const POSITIONS: Array<{ method: string; path: (vid: string, bid: string) => string; body?: string }> = [
  { method: "POST", path: (v) => `/villages/${v}/inbox`, body: "{}" },
  { method: "GET", path: (v) => `/villages/${v}/claims/latest` },
  { method: "GET", path: (v) => `/villages/${v}/claims` },
  { method: "POST", path: (v) => `/villages/${v}/policy`, body: "{}" },
  { method: "GET", path: (v) => `/villages/${v}/quarantine` },
  { method: "POST", path: (v, b) => `/villages/${v}/quarantine/${b}/approve` },
  { method: "POST", path: (v, b) => `/villages/${v}/quarantine/${b}/reject`, body: '{"reason":"x"}' },
];

let node: Node;
beforeAll(() => {
  node = makeNode({ policy: { rate_limit_per_min: 1_000_000 }, server: { publicRatePerMin: 1_000_000, authFailuresPerMin: 1_000_000 } });
});
afterAll(async () => {
  await node.cleanup();
});

async function expectJsonAnswer(res: Response, what: string): Promise<Record<string, unknown>> {
  if (res.status >= 500) throw new Error(`${what}: status ${res.status}`);
  expect(res.headers.get("content-type")).toContain("application/json");
  return (await res.json()) as Record<string, unknown>;
}

async function expectJsonError(res: Response, what: string): Promise<Record<string, unknown>> {
  if (res.status >= 500 || res.status < 400) throw new Error(`${what}: status ${res.status}`);
  expect(res.headers.get("content-type")).toContain("application/json");
  const answer = (await res.json()) as Record<string, unknown>;
  expect(typeof answer.code).toBe("string");
  expect(typeof answer.detail).toBe("string");
  return answer;
}

describe("path tricks in every id position", () => {
  test("get a JSON 4xx and nothing is read or written outside the data directory", async () => {
    // Decoys beside the data directory: a traversal that reached them would change the tree.
    mkdirSync(join(node.parent, "outside", "villages", VID), { recursive: true });
    const before = snapshotTree(node.parent);
    let requests = 0;
    for (const pos of POSITIONS) {
      for (const trick of TRICKS) {
        const urls = [pos.path(trick, BID)];
        if (pos.path(VID, "BID").includes("BID")) urls.push(pos.path(VID, trick));
        for (const url of urls) {
          const res = await node.send(pos.method, url, { token: node.tokens.admin, body: pos.body });
          const answer = await expectJsonError(res, `${pos.method} ${url}`);
          expect(["invalid_village_id", "invalid_bundle_id", "village_not_found", "not_found", "method_not_allowed", "bundle_not_found", "invalid_schema"]).toContain(
            answer.code as string,
          );
          requests++;
        }
      }
    }
    expect(requests).toBeGreaterThan(200);
    expect(snapshotTree(node.parent)).toEqual(before);
    rmSync(join(node.parent, "outside"), { recursive: true });
  });

  test("an encoded slash in the village id is refused as an invalid id, not routed", async () => {
    const res = await node.send("GET", `/villages/..%2F..%2Fetc/claims`, { token: node.tokens.admin });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_village_id" });
  });

  test("a village id of 65 characters is refused; 64 is a well-formed id", async () => {
    const long = await node.send("GET", `/villages/${"v".repeat(65)}/claims`, { token: node.tokens.admin });
    expect(await long.json()).toMatchObject({ code: "invalid_village_id" });
    const max = await node.send("GET", `/villages/${"v".repeat(64)}/claims`, { token: node.tokens.admin });
    expect(await max.json()).toMatchObject({ code: "village_not_found" });
  });
});

describe("unknown routes and methods", () => {
  test("an unknown route is 404 not_found as JSON", async () => {
    const answer = await expectJsonError(await node.send("GET", "/wp-admin"), "GET /wp-admin");
    expect(answer.code).toBe("not_found");
  });

  test.each([
    ["GET", `/villages/${VID}/inbox`, "POST"],
    ["PUT", `/villages/${VID}/inbox`, "POST"],
    ["DELETE", `/villages/${VID}/claims`, "GET, HEAD"],
    ["POST", "/healthz", "GET, HEAD"],
    ["PATCH", `/villages/${VID}/policy`, "POST"],
    ["OPTIONS", "/inbox", "POST"],
    ["PROPFIND", `/villages/${VID}/quarantine`, "GET, HEAD"],
  ])("%s %s is 405 method_not_allowed with Allow: %s", async (method, path, allow) => {
    const res = await node.send(method, path, { token: node.tokens.admin });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe(allow);
    expect(await res.json()).toMatchObject({ code: "method_not_allowed" });
  });

  test("HEAD on a GET route answers like GET without a body", async () => {
    const res = await node.send("HEAD", "/healthz");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });
});

describe("bad input never gets a 5xx", () => {
  const deep = "[".repeat(100_000);
  const bodies: Array<string | Uint8Array> = [
    "", " ", "{", "[]", "null", "true", "42", '"x"', "1e999999", deep, `{"a":${"1".repeat(5000)}}`,
    "\ufeff{}", '{"a":NaN}', '{"a":1,"a":2}', '{"bundle_id":5}', '{"claims":"x"}', '{"claims":[null]}',
    `{"bundle_id":"${"x".repeat(10_000)}"}`, '{"window_days":1e400}', '{"window_days":-1}', '{"reason":null}',
    new Uint8Array([0xff, 0xfe, 0x00, 0x7b]), new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]),
    toJsonText({ ...signedBundle(keypair()), claims: "many" } as unknown as JsonValue),
    JSON.stringify({ policy: {}, policy_hash: "x" }), JSON.stringify({ policy: "x", policy_hash: "y", signatures: "z" }),
    JSON.stringify({ policy: {}, policy_hash: 1, expires_at: "yesterday" }), JSON.stringify({ capabilities: { admin: 1 } }),
    JSON.stringify({ max_window_days: 1.5 }), JSON.stringify({ issuer_allowlist: ["nothex"] }),
  ];
  const headerSets: Array<Record<string, string>> = [
    {},
    { "content-type": "text/plain" },
    { "content-type": "application/json; charset=utf-16" },
    { "content-type": ";;;" },
    { "content-length": "99999999999" },
  ];
  const targets = [
    `/villages/${VID}/inbox`, `/villages/${VID}/policy`, `/villages/${VID}/quarantine/${BID}/reject`,
    `/villages/${VID}/quarantine/${BID}/approve`, "/inbox",
  ];

  test("for any body, Content-Type and route (a plain policy object may legitimately apply)", async () => {
    const own = makeNode({ policy: { rate_limit_per_min: 1_000_000 }, server: { publicRatePerMin: 1_000_000 } });
    try {
      let n = 0;
      for (const target of targets) {
        for (const body of bodies) {
          for (const headers of headerSets) {
            const res = await own.send("POST", target, { token: own.tokens.admin, body, headers });
            const what = `POST ${target} ${String(body).slice(0, 40)} ${JSON.stringify(headers)}`;
            if (target.endsWith("/policy")) await expectJsonAnswer(res, what);
            else await expectJsonError(res, what);
            n++;
          }
        }
      }
      expect(n).toBe(targets.length * bodies.length * headerSets.length);
    } finally {
      await own.cleanup();
    }
  });

  test("for huge bodies, with and without Content-Length", async () => {
    const huge = new Uint8Array(2 * 1024 * 1024).fill(0x20);
    const stream = () =>
      new ReadableStream<Uint8Array>({
        pull(c) {
          c.enqueue(new Uint8Array(65536));
        },
      });
    // approve takes no body and ignores one
    for (const target of targets.filter((t) => !t.endsWith("/approve"))) {
      for (const send of [
        { body: huge },
        { body: huge, headers: { "content-length": String(huge.length) } },
        { body: stream() },
      ]) {
        const res = await node.send("POST", target, { token: node.tokens.admin, ...send });
        expect((await expectJsonError(res, target)).code).toBe("body_too_large");
      }
    }
  });

  test("for odd query strings and Authorization headers", async () => {
    const queries = ["limit=", "limit=%00", "cursor=", "cursor=%FF%FE", "subject=%zz", "limit=99999999999999999999", `subject=${"s".repeat(5000)}`];
    for (const q of queries) {
      const res = await node.send("GET", `/villages/${VID}/claims?${q}`, { token: node.tokens.admin });
      expect(res.status).toBeLessThan(500);
    }
    const auths = ["Bearer", "Bearer ", "bearer  x y", `Bearer ${"a".repeat(10_000)}`, "Bearer ~~~", "Token abc", "Bearer \u00e9"];
    for (const authorization of auths) {
      const res = await node.send("GET", `/villages/${VID}/claims`, { headers: { authorization } });
      expect((await expectJsonError(res, authorization)).code).toMatch(/missing_token|invalid_token/);
    }
  });

  test("from remote peers too (403 tls_required, never a 5xx)", async () => {
    const res = await node.send("POST", `/villages/${VID}/inbox`, { token: "x", body: "{", ip: REMOTE });
    expect((await expectJsonError(res, "remote")).code).toBe("tls_required");
  });
});

describe("server-side failures", () => {
  test("an unexpected error is 500 internal_error with no stack for the client, the stack in the log", async () => {
    const own = makeNode();
    try {
      own.app.get("/test-only/boom", () => {
        throw new Error("secret internals at /srv/x.ts:12");
      });
      const res = await own.send("GET", "/test-only/boom");
      expect(res.status).toBe(500);
      const body = await res.text();
      expect(JSON.parse(body)).toEqual({ detail: "internal error", code: "internal_error" });
      expect(body).not.toContain("secret");
      const logged = own.logs.find((l) => (l as { level?: string }).level === "error") as { stack?: string; message?: string };
      expect(logged.message).toContain("secret internals");
      expect(logged.stack).toContain("Error");
    } finally {
      await own.cleanup();
    }
  });

  test("a storage failure answers its code without the host's paths", async () => {
    const other = makeNode();
    try {
      // The village file replaced by a directory: reading it fails with EISDIR.
      rmSync(other.paths.villageFile(VID));
      mkdirSync(other.paths.villageFile(VID));
      const res = await other.send("GET", `/villages/${VID}/claims`, { token: other.tokens.admin });
      expect(res.status).toBe(503);
      const body = await res.text();
      expect(JSON.parse(body)).toMatchObject({ code: "storage_error" });
      expect(body).not.toContain(other.dataDir);
    } finally {
      await other.cleanup();
    }
  });
});
