/**
 * An operator's story against a real `links serve` and real CLI processes: a village with
 * members, keys, derived and signed bundles pushed over HTTP (accepted, duplicate, quarantined,
 * tampered, wrong role, no token, revoked and rotated tokens), policy tightened and loosened
 * over HTTP, quarantine review over HTTP and from the CLI while the node runs, the rate limit,
 * pulling, the claims query, the audit log, and a clean SIGTERM.
 *
 * The tests of this file run in order and share the node and the data directory.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  errorCode,
  json,
  lastLine,
  links,
  linksOk,
  makeTempDir,
  readJsonlFile,
  signedBundleFile,
  type RunResult,
  type TempDir,
} from "./harness.ts";
import type { AuditRow } from "../../src/storage/audit.ts";
import type { IndexRow } from "../../src/storage/index-rows.ts";
import { startNode, type RunningNode } from "./node.ts";

interface ErrorBody {
  detail: string;
  code: string;
}

const VID = "v1";
let tmp: TempDir;
let data: string;
let node: RunningNode;
let nodeStopped = false;
const tok: Record<string, string> = {};
let key1: string;
let key1Hash: string;
let key2: string;
let key2Hash: string;

const D = () => ["--data", data];
const indexFile = () => join(data, "store/index/claims.jsonl");
const indexRows = () => readJsonlFile<IndexRow>(indexFile());
const rowsOf = (bundleId: string) => indexRows().filter((r) => r.bundle_id === bundleId);
const storedFile = (bundleId: string) => join(data, "store/bundles", VID, `${bundleId}.json`);
const heldFile = (bundleId: string) => join(data, "store/quarantine", VID, `${bundleId}.json`);
const bundleOf = (file: string) => JSON.parse(readFileSync(file, "utf8")) as { bundle_id: string; claims: unknown[] };

async function addMember(id: string, role: string): Promise<string> {
  const r = await linksOk(["villages", "add-member", VID, id, "--role", role, ...D()]);
  tok[id] = lastLine(r.stdout);
  return tok[id];
}

/** `links sync push-village` of a bundle file with a token (via --token unless told otherwise). */
function push(file: string, token: string | null, how: "flag" | "env" = "flag"): Promise<RunResult> {
  const args = ["sync", "push-village", node.url, VID, "--bundle", file];
  if (token !== null && how === "flag") args.push("--token", token);
  const env = { LINKS_TOKEN: token !== null && how === "env" ? token : undefined };
  return links(args, { env });
}

function http(method: string, path: string, token: string | null, body?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  return fetch(`${node.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
}

async function errorBody(res: Response): Promise<ErrorBody> {
  expect(res.headers.get("content-type") ?? "").toContain("application/json");
  const body = (await res.json()) as ErrorBody;
  expect(typeof body.detail).toBe("string");
  expect(typeof body.code).toBe("string");
  return body;
}

async function policyWith(change: Record<string, unknown>): Promise<string> {
  const v = json<{ policy: Record<string, unknown> }>(await linksOk(["villages", "show", VID, "--json", ...D()]));
  const file = tmp.join(`policy-${Object.keys(change).join("-")}-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify({ ...v.policy, ...change }, null, 2));
  return file;
}

async function applyRemote(file: string, token = tok.alice as string): Promise<RunResult> {
  return links(["policy", "apply-remote", node.url, VID, file, "--token", token, "--json"]);
}

/** Request-log lines the node wrote for a path (one JSON line per request on its stderr). */
function requestsTo(path: string): number {
  return node
    .log()
    .split("\n")
    .filter((l) => l.startsWith("{") && l.includes(`"path":${JSON.stringify(path)}`)).length;
}

/**
 * Waits until the node's request log has caught up: it logs each request before answering, but
 * its stderr reaches us a moment later. A request to a unique unknown path marks "now".
 */
async function logBarrier(): Promise<void> {
  const mark = `/log-barrier-${crypto.randomUUID()}`;
  expect((await fetch(`${node.url}${mark}`)).status).toBe(404);
  for (let i = 0; i < 200 && requestsTo(mark) === 0; i++) await Bun.sleep(10);
  expect(requestsTo(mark)).toBe(1);
}

async function audit(): Promise<AuditRow[]> {
  return json<AuditRow[]>(await linksOk(["audit", "tail", "--json", "--village-id", VID, "--limit", "10000", ...D()]));
}

beforeAll(async () => {
  tmp = makeTempDir("links-e2e-story-");
  data = tmp.join("data");
  const r = await linksOk(["villages", "create", VID, "Village One", "alice", ...D()]);
  tok.alice = lastLine(r.stdout);
  await addMember("bob", "member");
  await addMember("olga", "observer");
  for (const k of ["k1", "k2"]) mkdirSync(tmp.join(k));
  key1Hash = lastLine((await linksOk(["keys", "gen", "--out-dir", tmp.join("k1")])).stdout);
  key2Hash = lastLine((await linksOk(["keys", "gen", "--out-dir", tmp.join("k2")])).stdout);
  key1 = tmp.join("k1", "ed25519.key");
  key2 = tmp.join("k2", "ed25519.key");
  node = await startNode(data);
});

afterAll(async () => {
  if (node && !nodeStopped) await node.kill();
  tmp?.remove();
});

describe("an operator's story with a running node", () => {
  let derived: { file: string; bundleId: string; claims: number };
  let mentions: { file: string; bundleId: string };
  let wide: { file: string; bundleId: string };
  let foreign: { file: string; bundleId: string };

  test("a bundle derived, built and signed on the command line is accepted when pushed", async () => {
    const obs = [
      ["wikipedia:en:Alice", "wikipedia:en:Bob", "2024-05-01T12:00:00Z"],
      ["wikipedia:en:Alice", "wikipedia:en:Carol", "2024-05-02T12:00:00Z"],
      ["wikipedia:en:Alice", "wikipedia:en:Carol", "2024-05-03T12:00:00Z"],
      ["wikipedia:en:Dan", "wikipedia:en:Alice", "2024-05-03T12:00:00Z"],
    ].map(([a, t, ts], i) => JSON.stringify({ observation_id: i + 1, timestamp: ts, actor_entity_id: a, kind: "user_talk_edit", target_entity_id: t }));
    writeFileSync(tmp.join("obs.jsonl"), `${obs.join("\n")}\n`);
    await linksOk(["derive", "--observations", tmp.join("obs.jsonl"), "--out", tmp.join("edges.json")]);
    await linksOk(["claims", "build", "--edges", tmp.join("edges.json"), "--issuer", "node-a", "--window-days", "30", "--out", tmp.join("built.json")]);
    const signed = await linksOk(["claims", "sign", tmp.join("built.json"), "--key", key1, "--out", tmp.join("derived.json")]);
    derived = { file: tmp.join("derived.json"), bundleId: lastLine(signed.stdout), claims: bundleOf(tmp.join("derived.json")).claims.length };
    expect(derived.claims).toBe(3);

    const r = await push(derived.file, tok.bob as string);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining(`accepted ${derived.bundleId}`) });
    expect(bundleOf(storedFile(derived.bundleId)).bundle_id).toBe(derived.bundleId);
    expect(rowsOf(derived.bundleId)).toHaveLength(3);
    expect(rowsOf(derived.bundleId).every((row) => row.village_id === VID)).toBe(true);
    console.log(`pushed a derived bundle of ${derived.claims} claims with --token: exit ${r.code}, stored, ${rowsOf(derived.bundleId).length} index rows`);
  });

  test("pushing the same bundle again (token from LINKS_TOKEN) is a duplicate that adds no index rows", async () => {
    const before = indexRows().length;
    const r = await push(derived.file, tok.bob as string, "env");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`duplicate ${derived.bundleId}`);
    expect(indexRows()).toHaveLength(before);
    console.log(`pushed the same bundle again via LINKS_TOKEN: exit ${r.code}, "duplicate", index rows ${before} -> ${indexRows().length}`);
  });

  test("a bundle with a predicate the policy does not allow exits 3 and is held in quarantine", async () => {
    mentions = await signedBundleFile(tmp.path, "mentions", key1, { predicate: "links.mentions", subject: "spam:1" });
    const r = await push(mentions.file, tok.bob as string);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`quarantined ${mentions.bundleId}`);
    expect(r.stderr).toContain("[predicate_not_allowed]");
    const list = json<{ bundle_id: string; village_id: string; reason: string; actor: string }[]>(
      await linksOk(["quarantine", "list", "--json", ...D()]),
    );
    expect(list).toContainEqual(expect.objectContaining({ bundle_id: mentions.bundleId, village_id: VID, reason: "predicate_not_allowed", actor: "bob" }));
    expect(existsSync(storedFile(mentions.bundleId))).toBe(false);
    expect(rowsOf(mentions.bundleId)).toHaveLength(0);
    console.log(`pushed a links.mentions bundle: exit ${r.code}, quarantined as predicate_not_allowed, not stored`);
  });

  test("a signed bundle with a changed value is refused (exit 1), audited as ingest.reject and not stored", async () => {
    const original = await signedBundleFile(tmp.path, "to-tamper", key1, { subject: "tamper:1", value: "0.75" });
    const text = readFileSync(original.file, "utf8");
    expect(text).toContain('"value":0.75');
    const tampered = tmp.join("tampered.json");
    writeFileSync(tampered, text.replace('"value":0.75', '"value":0.5'));
    const filesBefore = readdirSync(join(data, "store/bundles", VID)).sort();
    const rejectsBefore = (await audit()).filter((a) => a.action === "ingest.reject").length;

    const r = await push(tampered, tok.bob as string);
    expect(r.code).toBe(1);
    const code = errorCode(r.stderr);
    expect(["invalid_signature", "bundle_id_mismatch"]).toContain(code as string);
    const rejects = (await audit()).filter((a) => a.action === "ingest.reject");
    expect(rejects).toHaveLength(rejectsBefore + 1);
    expect(rejects[rejects.length - 1]).toMatchObject({ reason: code, actor: "bob", village_id: VID });
    expect(readdirSync(join(data, "store/bundles", VID)).sort()).toEqual(filesBefore);
    expect(existsSync(storedFile(original.bundleId))).toBe(false);
    expect(existsSync(heldFile(original.bundleId))).toBe(false);
    expect(indexRows().some((row) => row.subject === "tamper:1")).toBe(false);
    console.log(`pushed a signed bundle with a changed value: exit ${r.code} [${code}], ingest.reject audited, nothing stored or held`);
  });

  test("an observer's token may not push: exit 1, 403 forbidden", async () => {
    const r = await push(derived.file, tok.olga as string);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("forbidden");
    const res = await http("POST", `/villages/${VID}/inbox`, tok.olga as string, readFileSync(derived.file, "utf8"));
    expect(res.status).toBe(403);
    expect((await errorBody(res)).code).toBe("forbidden");
    console.log(`observer pushed: CLI exit ${r.code} [forbidden], HTTP ${res.status}`);
  });

  test("without a token the CLI refuses before sending, and the node answers 401 with WWW-Authenticate: Bearer", async () => {
    await logBarrier();
    const sentBefore = requestsTo(`/villages/${VID}/inbox`);
    const r = await push(derived.file, null);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("missing_token");
    expect(r.stderr).toContain("--token");
    const res = await http("POST", `/villages/${VID}/inbox`, null, readFileSync(derived.file, "utf8"));
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate") ?? "").toMatch(/^Bearer\b/);
    expect((await errorBody(res)).code).toBe("missing_token");
    // Exactly one inbox request reached the node: the raw fetch, not the CLI.
    await logBarrier();
    expect(requestsTo(`/villages/${VID}/inbox`)).toBe(sentBefore + 1);
    console.log(`pushed with no token: CLI exit ${r.code} [missing_token] without sending; raw POST -> ${res.status}, ${res.headers.get("www-authenticate")}`);
  });

  test("a member revoked while the node runs is refused on the next push (401 revoked_token)", async () => {
    await addMember("rita", "member"); // added while the node runs: its cache must notice
    const ritas = await signedBundleFile(tmp.path, "rita", key1, { subject: "rita:1" });
    const ok = await push(ritas.file, tok.rita as string);
    expect(ok.code).toBe(0);
    await linksOk(["villages", "revoke-member", VID, "rita", "--reason", "left the village", ...D()]);
    const r = await push(ritas.file, tok.rita as string);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("revoked_token");
    const res = await http("POST", `/villages/${VID}/inbox`, tok.rita as string, readFileSync(ritas.file, "utf8"));
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate") ?? "").toMatch(/^Bearer\b/);
    expect((await errorBody(res)).code).toBe("revoked_token");
    console.log(`member added and revoked while the node runs: push before exit ${ok.code}, after exit ${r.code} [revoked_token], HTTP ${res.status}`);
  });

  test("after rotate-token the old token is refused (401) and the new one works", async () => {
    const oldToken = tok.bob as string;
    const r = await linksOk(["villages", "rotate-token", VID, "bob", ...D()]);
    tok.bob = lastLine(r.stdout);
    expect(tok.bob).not.toBe(oldToken);
    const rotated = await signedBundleFile(tmp.path, "rotated", key1, { subject: "rotated:1" });
    const old = await push(rotated.file, oldToken);
    expect(old.code).toBe(1);
    expect(["revoked_token", "invalid_token"]).toContain(errorCode(old.stderr) as string);
    const res = await http("GET", `/villages/${VID}/claims?limit=1`, oldToken);
    expect(res.status).toBe(401);
    const fresh = await push(rotated.file, tok.bob);
    expect(fresh.code).toBe(0);
    expect(fresh.stderr).toContain(`accepted ${rotated.bundleId}`);
    console.log(`rotated bob's token: old token exit ${old.code} [${errorCode(old.stderr)}] / HTTP ${res.status}, new token exit ${fresh.code} (accepted)`);
  });

  test("a token that starts with '-' is taken as the value of --token, not as an unknown option", async () => {
    // Tokens are base64url: one in 64 starts with "-", and most of those hold a "_" too. These
    // are no member's, so the node answers 401 invalid_token. Before the fix the CLI stopped with
    // "unknown option" (exit 2), or, with a "_" in the token, crashed in citty's parser (exit 70).
    for (const token of [`-${"A".repeat(42)}`, `-${"A".repeat(20)}_${"B".repeat(21)}`]) {
      const r = await push(derived.file, token);
      expect({ token, code: r.code, error: errorCode(r.stderr) }).toEqual({ token, code: 1, error: "invalid_token" });
    }
    const direct = await links(["sync", "pull-village", node.url, VID, "--no-ingest", "--token", `-x_${tok.olga}`.slice(0, 43)]);
    expect(errorCode(direct.stderr)).toBe("invalid_token");
    console.log("pushed and pulled with --token -AAA... and -AAA_BBB...: exit 1 [invalid_token] from the node, no usage error or crash");
  });

  test("a stricter max_window_days applied over HTTP quarantines a 30-day bundle (exit 3)", async () => {
    const tighten = await applyRemote(await policyWith({ max_window_days: 14 }));
    expect(tighten.code).toBe(0);
    expect(json<{ status: string; policy_hash: string }>(tighten)).toMatchObject({ status: "applied", policy_hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const shown = json<{ policy: { max_window_days: number } }>(await linksOk(["villages", "show", VID, "--json", ...D()]));
    expect(shown.policy.max_window_days).toBe(14);

    wide = await signedBundleFile(tmp.path, "wide", key1, { subject: "wide:1", windowDays: 30 });
    const r = await push(wide.file, tok.bob as string);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("[window_too_large]");
    const narrow = await signedBundleFile(tmp.path, "narrow", key1, { subject: "narrow:1", windowDays: 7 });
    const n = await push(narrow.file, tok.bob as string);
    expect(n.code).toBe(0);
    console.log(`applied max_window_days 14 over HTTP: 30-day bundle exit ${r.code} [window_too_large], 7-day bundle exit ${n.code}`);
  });

  test("approving over HTTP is refused with the policy's reason while it forbids, and stores the bundle once loosened", async () => {
    const path = `/villages/${VID}/quarantine/${wide.bundleId}/approve`;
    const refused = await http("POST", path, tok.alice as string);
    expect(refused.status).toBe(422);
    const body = await errorBody(refused);
    expect(body.code).toBe("window_too_large");
    expect(body.detail).toContain("still does not allow");
    expect(existsSync(heldFile(wide.bundleId))).toBe(true);
    expect(existsSync(storedFile(wide.bundleId))).toBe(false);

    const member = await http("POST", path, tok.bob as string);
    expect(member.status).toBe(403);

    const loosen = await applyRemote(await policyWith({ max_window_days: 30 }));
    expect(loosen.code).toBe(0);
    const approved = await http("POST", path, tok.alice as string);
    expect(approved.status).toBe(200);
    expect(await approved.json()).toEqual({ status: "approved", bundle_id: wide.bundleId });
    expect(existsSync(storedFile(wide.bundleId))).toBe(true);
    expect(existsSync(heldFile(wide.bundleId))).toBe(false);
    expect(rowsOf(wide.bundleId)).toHaveLength(1);
    console.log(`approve over HTTP: ${refused.status} [${body.code}] while max_window_days 14, member ${member.status}, ${approved.status} after loosening to 30 (stored)`);
  });

  test("a key off the allowlist is held; approval is refused until villages allow-issuer-key adds it", async () => {
    await linksOk(["villages", "allow-issuer-key", VID, key1Hash, ...D()]);
    foreign = await signedBundleFile(tmp.path, "foreign", key2, { subject: "wikipedia:en:Alice", object: "wikipedia:en:Eve" });
    const r = await push(foreign.file, tok.bob as string);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("[issuer_key_not_allowed]");

    const path = `/villages/${VID}/quarantine/${foreign.bundleId}/approve`;
    const refused = await http("POST", path, tok.alice as string);
    expect(refused.status).toBe(422);
    expect((await errorBody(refused)).code).toBe("issuer_key_not_allowed");
    expect(existsSync(heldFile(foreign.bundleId))).toBe(true);

    await linksOk(["villages", "allow-issuer-key", VID, readFileSync(tmp.join("k2", "ed25519.pub"), "utf8").trim(), ...D()]);
    const v = json<{ policy: { issuer_allowlist: string[] } }>(await linksOk(["villages", "show", VID, "--json", ...D()]));
    expect(v.policy.issuer_allowlist).toEqual([key1Hash, key2Hash]);
    const approved = await http("POST", path, tok.alice as string);
    expect(approved.status).toBe(200);
    expect(existsSync(storedFile(foreign.bundleId))).toBe(true);
    expect(rowsOf(foreign.bundleId)).toHaveLength(1);
    console.log(`key2 bundle with only key1 allowlisted: push exit ${r.code}, approve ${refused.status} [issuer_key_not_allowed], after allow-issuer-key ${approved.status} (stored)`);
  });

  test("quarantine reject from the CLI on the same data directory, while the node runs, moves the bundle to store/rejected", async () => {
    const r = await linksOk(["quarantine", "reject", mentions.bundleId, "--reason", "spam", ...D()]);
    expect(r.stderr).toContain(`rejected ${mentions.bundleId}`);
    expect(readFileSync(join(data, "store/rejected", VID, `${mentions.bundleId}.json`), "utf8")).toBe(readFileSync(mentions.file, "utf8"));
    expect(existsSync(heldFile(mentions.bundleId))).toBe(false);
    const list = await http("GET", `/villages/${VID}/quarantine`, tok.alice as string);
    expect(list.status).toBe(200);
    const entries = ((await list.json()) as { entries: { bundle_id: string }[] }).entries;
    expect(entries.map((e) => e.bundle_id)).not.toContain(mentions.bundleId);
    const again = await http("POST", `/villages/${VID}/quarantine/${mentions.bundleId}/approve`, tok.alice as string);
    expect(again.status).toBe(404);
    expect((await errorBody(again)).code).toBe("bundle_not_found");
    console.log(`rejected ${mentions.bundleId.slice(0, 8)}... with the CLI while serving: in store/rejected, gone from GET quarantine (${entries.length} held), approve now ${again.status}`);
  });

  test("sync pull-village --no-ingest prints the village's newest bundle", async () => {
    const r = await linksOk(["sync", "pull-village", node.url, VID, "--no-ingest", "--token", tok.olga as string, ...D()]);
    const pulled = JSON.parse(r.stdout) as { bundle_id: string };
    expect(pulled.bundle_id).toBe(foreign.bundleId); // the last one stored (approved just now)
    expect(pulled).toEqual(JSON.parse(readFileSync(storedFile(foreign.bundleId), "utf8")));
    console.log(`pull-village --no-ingest with the observer's token printed ${pulled.bundle_id} (the newest, approved last)`);
  });

  test("GET /villages/v1/claims?subject= pages through exactly that subject's index rows with next_cursor", async () => {
    const subject = "wikipedia:en:Alice";
    const expected = indexRows().filter((row) => row.village_id === VID && row.subject === subject);
    expect(expected.length).toBeGreaterThanOrEqual(3);
    const got: IndexRow[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/villages/${VID}/claims?subject=${encodeURIComponent(subject)}&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const res = await http("GET", q, tok.olga as string);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { claims: IndexRow[]; next_cursor: string | null };
      expect(page.claims.length).toBeLessThanOrEqual(2);
      got.push(...page.claims);
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(got).toEqual(expected);
    expect(pages).toBe(Math.ceil(expected.length / 2));
    const bad = await http("GET", `/villages/${VID}/claims?cursor=nope!`, tok.olga as string);
    expect(bad.status).toBe(400);
    expect((await errorBody(bad)).code).toBe("invalid_cursor");
    console.log(`claims?subject=${subject}&limit=2: ${got.length} rows over ${pages} pages, equal to the index; a forged cursor -> ${bad.status}`);
  });

  test("at rate_limit_per_min 5, a member's 6th push within the minute is 429 with Retry-After and RateLimit headers", async () => {
    const applied = await applyRemote(await policyWith({ rate_limit_per_min: 5 }));
    expect(applied.code).toBe(0);
    const body = readFileSync(derived.file, "utf8");

    // The limiter counts per wall-clock minute: if a burst straddles a minute boundary, try
    // again with a fresh member.
    let attempt = 0;
    for (;;) {
      const who = `rl${attempt}`;
      const token = await addMember(who, "member");
      const window = Math.floor(Date.now() / 60_000);
      const answers = await Promise.all(Array.from({ length: 6 }, () => http("POST", `/villages/${VID}/inbox`, token, body)));
      // The CLI honours Retry-After when it fits its 30 s budget: it would sleep until the next
      // minute and succeed. When it would, send it through a proxy that stretches Retry-After,
      // so the CLI's own handling of a refusal it cannot wait out is what we see.
      const secondsLeft = 60 - (Date.now() % 60_000) / 1000;
      const proxy = secondsLeft > 32 ? null : retryAfterStretcher(node.url);
      const cli = await links(["sync", "push-village", proxy?.url ?? node.url, VID, "--bundle", derived.file, "--token", token]);
      proxy?.stop();
      if (Math.floor(Date.now() / 60_000) !== window && attempt === 0) {
        attempt++;
        continue;
      }
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      for (const a of answers) {
        expect(a.headers.get("ratelimit-policy")).toBe("5;w=60");
        expect(a.headers.get("ratelimit") ?? "").toMatch(/^limit=5, remaining=[0-4], reset=\d+$/);
      }
      const limited = answers.find((a) => a.status === 429) as Response;
      const retryAfter = Number(limited.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(limited.headers.get("ratelimit")).toMatch(/^limit=5, remaining=0, reset=\d+$/);
      const err = await errorBody(limited);
      expect(err.code).toBe("rate_limited");
      const remaining = answers.filter((a) => a.status === 200).map((a) => Number(/remaining=(\d)/.exec(a.headers.get("ratelimit") ?? "")?.[1]));
      expect(remaining.sort()).toEqual([0, 1, 2, 3, 4]);
      expect(cli.code).toBe(1);
      expect(errorCode(cli.stderr)).toBe("rate_limited");
      console.log(
        `pushed 6 bundles at once at limit 5: 5 x 200 (remaining 4..0), 1 x 429, Retry-After ${retryAfter}; ` +
          `CLI push ${proxy ? "(via a Retry-After-stretching proxy) " : ""}exit ${cli.code} [rate_limited]`,
      );
      break;
    }
  });

  test("the audit log of the village holds every decision of the story", async () => {
    const rows = await audit();
    const actions = new Set(rows.map((r) => r.action));
    const wanted = ["ingest.accept", "ingest.quarantine", "ingest.reject", "quarantine.approve", "quarantine.reject", "policy.apply", "member.add", "member.revoke", "member.rotate"];
    for (const a of wanted) expect({ action: a, present: actions.has(a) }).toEqual({ action: a, present: true });
    expect(rows.find((r) => r.action === "quarantine.reject")).toMatchObject({ bundle_id: mentions.bundleId, reason: "spam" });
    expect(rows.filter((r) => r.action === "quarantine.approve").map((r) => [r.bundle_id, r.actor])).toEqual([
      [wide.bundleId, "alice"],
      [foreign.bundleId, "alice"],
    ]);
    expect(rows.filter((r) => r.action === "ingest.quarantine").map((r) => r.reason)).toEqual([
      "predicate_not_allowed",
      "window_too_large",
      "issuer_key_not_allowed",
    ]);
    expect(rows.filter((r) => r.action === "policy.apply").filter((r) => r.actor === "alice")).toHaveLength(3);
    console.log(`audit tail --village-id v1: ${rows.length} rows, ${actions.size} actions, all of ${wanted.length} expected present`);
  });

  test("SIGTERM stops the node with exit code 0", async () => {
    const code = await node.stop();
    nodeStopped = true;
    expect(code).toBe(0);
    expect(node.log()).toContain("links: stopping");
    const after = await fetch(`${node.url}/healthz`).then(
      () => "answered",
      () => "refused",
    );
    expect(after).toBe("refused");
    // the request log names members, never their tokens
    const log = node.log();
    for (const [who, token] of Object.entries(tok)) expect({ who, inLog: log.includes(token) }).toEqual({ who, inLog: false });
    console.log(`SIGTERM: exit ${code}, the port no longer answers; none of ${Object.keys(tok).length} tokens in the node's log`);
  });
});

/**
 * A pass-through HTTP proxy in this process that rewrites Retry-After to an hour, so a client that
 * honours Retry-After within a budget gives up at once instead of sleeping.
 */
function retryAfterStretcher(target: string): { url: string; stop(): void } {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(`${target}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: await req.arrayBuffer() }),
      });
      const out = new Headers(res.headers);
      out.delete("content-length");
      out.delete("content-encoding");
      if (out.has("retry-after")) out.set("retry-after", "3600");
      return new Response(await res.arrayBuffer(), { status: res.status, headers: out });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => void server.stop(true) };
}
