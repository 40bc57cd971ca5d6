/**
 * An attacker's pass over the node's HTTP surface: the request line and headers, tokens, review
 * (quarantine approve / reject) races, and what leaks. Each test is one precise attack and what
 * must happen instead.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { startServer, type ServerHandle } from "../../../src/server/serve.ts";
import { defaultPolicy } from "../../../src/core/village-policy.ts";
import { tailAudit } from "../../../src/storage/audit.ts";
import { addMember, hashToken } from "../../../src/storage/members.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { LOOPBACK, makeNode, peer, PROXY, REMOTE, signedBundle, VID, type Node } from "./helpers.ts";

let node: Node | null = null;
let handle: ServerHandle | null = null;
let dir: string | null = null;
afterEach(async () => {
  await node?.cleanup();
  node = null;
  await handle?.stop();
  handle = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

const text = (v: unknown): string => toJsonText(v as JsonValue);

async function quarantine(n: Node, predicate = "links.mentions"): Promise<string> {
  const bundle = signedBundle(n.key, { predicate });
  const res = await n.send("POST", `/villages/${VID}/inbox`, { token: n.tokens.member, body: text(bundle) });
  expect(res.status).toBe(202);
  return bundle.bundle_id;
}

/** Sends raw bytes on a fresh connection and returns the status line and body. */
function rawRequest(port: number, request: string): Promise<{ status: number; body: string }> {
  return new Promise((resolveP, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(request));
    let out = "";
    s.on("data", (d) => (out += d.toString("latin1")));
    s.on("error", reject);
    s.on("close", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);
      resolveP({ status, body: out.slice(out.indexOf("\r\n\r\n") + 4) });
    });
  });
}

async function served(): Promise<{ port: number; paths: DataPaths; admin: string }> {
  dir = mkdtempSync(join(tmpdir(), "links-http-attacks-"));
  const dataDir = join(dir, "data");
  const paths = new DataPaths(dataDir);
  createVillage(paths, { villageId: "v1", name: "V", adminId: "a" });
  const admin = addMember(paths, "v1", "a", "admin");
  handle = await startServer({ bind: "127.0.0.1", port: 0, dataDir, handleSignals: false, announce: () => {}, logger: () => {}, syncIntervalMs: 0 });
  return { port: handle.port, paths, admin };
}

describe("the request line and the Host header", () => {
  test.each([["a/b"], ["a?b"], ["a#b"], ["a@b"], ["https://evil"], ["a b"]])(
    "a Host of %p cannot make the node answer a path other than the one requested",
    async (host) => {
      const { port } = await served();
      // "/villages/" is 10 characters: a router that mis-reads the path would see "/metrics".
      const res = await rawRequest(port, `GET /aaaaaaaa/metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ code: "invalid_argument" });
    },
  );

  test("HTTP/1.0 without a Host is 400 too (it was answered for another path); real hosts are served", async () => {
    const { port } = await served();
    const bare = await rawRequest(port, "GET /xx/metrics HTTP/1.0\r\n\r\n");
    expect(bare.status).toBe(400);
    expect(JSON.parse(bare.body)).toMatchObject({ code: "invalid_argument" });
    for (const host of ["127.0.0.1", `127.0.0.1:${port}`, `[::1]:${port}`, "links.example.org"]) {
      const ok = await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(ok.status).toBe(200);
    }
  });
});

describe("quarantine review under attack", () => {
  async function allowMentions(n: Node, vid = VID, token = n.tokens.admin): Promise<void> {
    const policy = defaultPolicy({ allowed_predicates: ["links.weighted_to", "links.mentions"] });
    const res = await n.send("POST", `/villages/${vid}/policy`, { token, body: text(policy) });
    expect(res.status).toBe(200);
  }

  test("a bundle held in one village cannot be approved or rejected through another village's admin", async () => {
    node = makeNode();
    const bid = await quarantine(node);
    createVillage(node.paths, { villageId: "south", name: "South", adminId: "sam" });
    const sam = addMember(node.paths, "south", "sam", "admin");
    await allowMentions(node, "south", sam);
    for (const action of ["approve", "reject"]) {
      const res = await node.send("POST", `/villages/south/quarantine/${bid}/${action}`, { token: sam, body: { reason: "x" } });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ code: "bundle_not_found" });
    }
    // and the admin of the holding village cannot use the other village's token either
    const cross = await node.send("POST", `/villages/${VID}/quarantine/${bid}/approve`, { token: sam });
    expect(cross.status).toBe(401);
    expect(existsSync(node.paths.quarantineFile(VID, bid))).toBe(true);
    expect(existsSync(node.paths.bundleFile(bid, "south"))).toBe(false);
  });

  test("approve twice, approve after reject, reject after approve: the first decision stands, the rest are 404", async () => {
    node = makeNode();
    await allowMentions(node);
    // held before the policy allowed it: quarantine it with a predicate still forbidden, then allow it
    const a = await quarantine(node, "links.other");
    const b = await quarantine(node, "links.other");
    const policy = defaultPolicy({ allowed_predicates: ["links.weighted_to", "links.mentions", "links.other"] });
    expect((await node.send("POST", `/villages/${VID}/policy`, { token: node.tokens.admin, body: text(policy) })).status).toBe(200);
    const [first, second] = await Promise.all([
      node.send("POST", `/villages/${VID}/quarantine/${a}/approve`, { token: node.tokens.admin }),
      node.send("POST", `/villages/${VID}/quarantine/${a}/approve`, { token: node.tokens.admin }),
    ]);
    expect([first.status, second.status].sort()).toEqual([200, 404]);
    expect((await node.send("POST", `/villages/${VID}/quarantine/${a}/reject`, { token: node.tokens.admin, body: { reason: "late" } })).status).toBe(404);
    expect((await node.send("POST", `/villages/${VID}/quarantine/${b}/reject`, { token: node.tokens.admin, body: { reason: "no" } })).status).toBe(200);
    expect((await node.send("POST", `/villages/${VID}/quarantine/${b}/approve`, { token: node.tokens.admin })).status).toBe(404);
    expect(existsSync(node.paths.bundleFile(a, VID))).toBe(true);
    expect(existsSync(node.paths.bundleFile(b, VID))).toBe(false);
    expect(existsSync(node.paths.rejectedFile(VID, b))).toBe(true);
    expect(existsSync(node.paths.rejectedFile(VID, a))).toBe(false);
    const decisions = tailAudit(node.paths, { villageId: VID }).filter((r) => String(r.action).startsWith("quarantine."));
    expect(decisions.map((r) => [r.action, r.bundle_id])).toEqual([["quarantine.approve", a], ["quarantine.reject", b]]);
  });

  test("HTTP approvals racing CLI rejections in another process: each bundle ends in exactly one place", async () => {
    node = makeNode();
    const bids: string[] = [];
    for (let i = 0; i < 16; i++) bids.push(await quarantine(node, "links.other"));
    const policy = defaultPolicy({ allowed_predicates: ["links.weighted_to", "links.other"] });
    expect((await node.send("POST", `/villages/${VID}/policy`, { token: node.tokens.admin, body: text(policy) })).status).toBe(200);
    const child = Bun.spawn(
      [process.execPath, "-e", CHILD_REJECTER, node.dataDir, VID, ...[...bids].reverse()],
      { stdout: "pipe", stderr: "pipe" },
    );
    const reader = child.stdout.getReader();
    let out = new TextDecoder().decode((await reader.read()).value);
    expect(out).toContain("ready");
    const approved = new Set<string>();
    for (const bid of bids) {
      const res = await node.send("POST", `/villages/${VID}/quarantine/${bid}/approve`, { token: node.tokens.admin });
      expect([200, 404]).toContain(res.status);
      if (res.status === 200) approved.add(bid);
      await Bun.sleep(10);
    }
    for (let step = await reader.read(); !step.done; step = await reader.read()) out += new TextDecoder().decode(step.value);
    const rejected = new Set(out.split("\n").filter((l) => l.startsWith("rejected ")).map((l) => l.slice(9)));
    expect(await child.exited).toBe(0);
    for (const bid of bids) {
      const stored = existsSync(node.paths.bundleFile(bid, VID));
      const gone = existsSync(node.paths.rejectedFile(VID, bid));
      expect([stored, gone, approved.has(bid), rejected.has(bid)]).toEqual(stored ? [true, false, true, false] : [false, true, false, true]);
      expect(existsSync(node.paths.quarantineFile(VID, bid))).toBe(false);
    }
    const decisions = tailAudit(node.paths, { villageId: VID }).filter((r) => String(r.action).startsWith("quarantine."));
    expect(decisions.length).toBe(bids.length);
  });
});

const CHILD_REJECTER = `
const { rejectQuarantined } = await import(${JSON.stringify(join(import.meta.dir, "../../../src/storage/quarantine.ts"))});
const { DataPaths } = await import(${JSON.stringify(join(import.meta.dir, "../../../src/storage/paths.ts"))});
const [dataDir, vid, ...bids] = process.argv.slice(1);
const paths = new DataPaths(dataDir);
process.stdout.write("ready\\n");
for (const bid of bids) {
  try { rejectQuarantined(paths, vid, bid, "cli", "race"); process.stdout.write("rejected " + bid + "\\n"); }
  catch (e) { if (e.code !== "bundle_not_found") throw e; }
  await Bun.sleep(2);
}
`;

describe("revocations the node reads", () => {
  test.each([
    ["only the token hash (an operator's hand-written line)", (h: string) => ({ token_hash: h })],
    ["ts null", (h: string) => ({ ts: null, token_hash: h, actor: "ops", reason: "leaked" })],
    ["a numeric actor and reason", (h: string) => ({ ts: "2030-01-01T00:00:00Z", token_hash: h, actor: 7, reason: 1 })],
    ["a line that is not JSON", (h: string) => `revoke ${h} (leaked in chat)`],
  ])("a revocation row with %s still revokes the token (it never fails open)", async (_what, row) => {
    node = makeNode();
    const before = await node.send("GET", `/villages/${VID}/claims`, { token: node.tokens.member });
    expect(before.status).toBe(200);
    const line = row(hashToken(node.tokens.member));
    appendFileSync(node.paths.revocationsFile(VID), `${typeof line === "string" ? line : JSON.stringify(line)}\n`);
    const after = await node.send("GET", `/villages/${VID}/claims`, { token: node.tokens.member });
    expect(after.status).toBe(401);
    expect(await after.json()).toMatchObject({ code: "revoked_token" });
    expect((await node.send("GET", "/me/villages", { token: node.tokens.member })).status).toBe(401);
    // the other members are untouched
    expect((await node.send("GET", `/villages/${VID}/claims`, { token: node.tokens.admin })).status).toBe(200);
  });
});

describe("bodies", () => {
  test.each([["gzip"], ["deflate"], ["br"], ["gzip, identity"], ["x-bomb"]])(
    "a body with Content-Encoding %p is 415 unsupported_media_type (never decompressed), and nothing is stored",
    async (encoding) => {
      node = makeNode();
      const bundle = signedBundle(node.key);
      const plain = new TextEncoder().encode(text(bundle));
      const body = encoding === "gzip" ? Bun.gzipSync(plain) : encoding === "deflate" ? Bun.deflateSync(plain) : plain;
      for (const path of [`/villages/${VID}/inbox`, "/inbox"]) {
        const res = await node.send("POST", path, { token: path === "/inbox" ? undefined : node.tokens.member, body, headers: { "content-encoding": encoding, "content-type": "application/json" } });
        expect(res.status).toBe(415);
        expect(await res.json()).toMatchObject({ code: "unsupported_media_type" });
      }
      expect(existsSync(node.paths.bundleFile(bundle.bundle_id, VID))).toBe(false);
      expect(existsSync(node.paths.bundleFile(bundle.bundle_id, null))).toBe(false);
    },
  );

  test("Content-Encoding: identity is the body as it is", async () => {
    node = makeNode();
    const bundle = signedBundle(node.key);
    const res = await node.send("POST", `/villages/${VID}/inbox`, { token: node.tokens.member, body: text(bundle), headers: { "content-encoding": "identity" } });
    expect(res.status).toBe(200);
  });
});

describe("where a token may come from", () => {
  test("only the Authorization header: a valid token in the query string, a cookie or another header is 401 missing_token", async () => {
    node = makeNode();
    const t = node.tokens.admin;
    const tries: Array<[string, Record<string, string>]> = [
      [`?token=${t}`, {}],
      [`?access_token=${t}`, {}],
      ["", { cookie: `token=${t}; links.admin.token=${t}` }],
      ["", { "x-token": t, "x-access-token": t, "proxy-authorization": `Bearer ${t}` }],
    ];
    for (const [query, headers] of tries) {
      const res = await node.send("GET", `/villages/${VID}/quarantine${query}`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: "missing_token" });
    }
  });

  test("two Authorization headers, one of them valid, are refused; so are odd spellings of the scheme", async () => {
    node = makeNode();
    const t = node.tokens.admin;
    const twice = new Headers();
    twice.append("authorization", `Bearer ${t}`);
    twice.append("authorization", "Bearer someone-else");
    const res = await node.app.fetch(new Request(`http://links.test/villages/${VID}/quarantine`, { headers: twice }), peer(LOOPBACK));
    expect(res.status).toBe(401);
    for (const header of [`Bearer\t${t}`, `Bearer:${t}`, `Bearer${t}`, `Basic ${t}`, `Token ${t}`, `Bearer "${t}"`, `Bearer ${t}, Bearer ${t}`, `Bearer ${"A".repeat(600)}`]) {
      const r = await node.send("GET", `/villages/${VID}/quarantine`, { headers: { authorization: header } });
      expect(r.status).toBe(401);
    }
    // the scheme is case-insensitive (RFC 9110), and spaces around the token are allowed
    for (const header of [`bearer ${t}`, `BEARER  ${t}`, `Bearer ${t} `]) {
      expect((await node.send("GET", `/villages/${VID}/quarantine`, { headers: { authorization: header } })).status).toBe(200);
    }
  });
});

describe("what a stranger can read", () => {
  test("no public route names a village, a member, a token hash or the data directory", async () => {
    node = makeNode({ policy: { visibility: "private" } });
    createVillage(node.paths, { villageId: "secret-garden", name: "Secret <garden>", adminId: "sam", policy: { visibility: "private" } });
    addMember(node.paths, "secret-garden", "sam", "admin");
    const secrets = ["secret-garden", "Secret", VID, "alice", hashToken(node.tokens.admin), node.dataDir, node.parent];
    const paths = ["/healthz", "/openapi.json", "/admin", "/.well-known/links/node", "/.well-known/links/claims/latest", "/nope", "/villages/secret-garden/claims",
      "/villages/secret-garden/policy/latest", `/villages/secret-garden/quarantine/${"a".repeat(32)}/approve`, "/metrics", "/me/villages"];
    for (const p of paths) {
      for (const ip of [REMOTE, LOOPBACK]) {
        const res = await node.send("GET", p, { ip });
        const body = await res.text();
        const shown = p === "/metrics" && ip === LOOPBACK ? [] : secrets.filter((s) => body.includes(s) && !p.includes(s));
        expect({ p, ip, shown }).toEqual({ p, ip, shown: [] });
      }
    }
  });
});

describe("per-address limits behind a trusted proxy", () => {
  test("spellings of one client's address in X-Forwarded-For share one failure budget", async () => {
    node = makeNode({ server: { trustProxy: [PROXY], authFailuresPerMin: 4 } });
    const forms = ["2001:db8:1:2::5", "[2001:DB8:1:2:0:0:0:5]:443", "2001:0db8:0001:0002::0005", "2001:db8:1:2:ffff::9"];
    const send = (xff: string) =>
      node!.send("GET", `/villages/${VID}/claims`, { ip: PROXY, token: "wrong-token", headers: { "x-forwarded-for": xff, "x-forwarded-proto": "https" } });
    for (const xff of forms) expect((await send(`198.51.100.7, ${xff}`)).status).toBe(401);
    expect((await send("2001:db8:1:2::77")).status).toBe(429);
    // the IPv4-mapped form of an IPv4 client is that client
    for (let i = 0; i < 4; i++) expect((await send(i % 2 ? "203.0.113.50" : "::ffff:203.0.113.50")).status).toBe(401);
    expect((await send("::ffff:cb00:7132")).status).toBe(429);
    // another /64 is another client
    expect((await send("2001:db8:1:3::5")).status).toBe(401);
  });
});
