/**
 * Signed policy updates travelling between three real nodes (the compiled binary, separate data
 * directories, real HTTP): every step is a `links` command an operator would run. Relays written
 * here (Bun.serve in front of node A) play the network: they alter, replay, hold back or expire
 * what A serves. Each test logs one line: what it tried, and what survived.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { errorCode, json, lastLine, links, linksOk, makeTempDir, readJsonlFile, type RunResult, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";

const VID = "ops";

interface Policy extends Record<string, unknown> {
  max_window_days: number;
  policy_signer_allowlist: string[];
  policy_signature_threshold_m: number;
  require_policy_signature: boolean;
}
interface Artifact extends Record<string, unknown> {
  policy: Policy;
  policy_hash: string;
  previous_policy_hash: string | null;
  expires_at: string | null;
}
interface PullReport {
  status: string;
  village_id: string;
  local_head: string;
  remote_head: string;
  updates: number;
  code?: string;
  detail?: string;
}
interface HistoryRow {
  policy_hash: string;
  previous_policy_hash: string | null;
  source: string;
  signed: boolean;
  signers: string[];
}

let tmp: TempDir;
const dirs = { A: "", B: "", C: "" };
type NodeName = keyof typeof dirs;
const nodes = {} as Record<NodeName, RunningNode>;
const tokens = {} as Record<NodeName, string>;
const keys: Array<{ key: string; hash: string }> = [];
const relays: Array<{ stop(): void }> = [];
let artifactSerial = 0;

const D = (n: NodeName): string[] => ["--data", dirs[n]];
const villageFile = (n: NodeName, vid = VID): string => `${dirs[n]}/villages/${vid}/village.json`;
const historyFile = (n: NodeName, vid = VID): string => `${dirs[n]}/villages/${vid}/policy_history.jsonl`;
const bytes = (path: string): string => readFileSync(path, "utf8");
const history = (n: NodeName, vid = VID): HistoryRow[] => readJsonlFile<HistoryRow>(historyFile(n, vid));

async function policyOf(n: NodeName, vid = VID): Promise<Policy> {
  return json<{ policy: Policy }>(await linksOk(["villages", "show", vid, "--json", ...D(n)])).policy;
}

async function headOf(n: NodeName, vid = VID): Promise<string> {
  const res = await fetch(`${nodes[n].url}/villages/${vid}/policy/latest`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { policy_hash: string }).policy_hash;
}

/** `policy pull <url> <vid> --json` (with --apply unless dry): exit code and report. */
async function pull(n: NodeName, url: string, opts: { apply?: boolean; vid?: string; extra?: string[] } = {}): Promise<{ r: RunResult; report: PullReport }> {
  const r = await links(["policy", "pull", url, opts.vid ?? VID, "--json", ...(opts.apply === false ? [] : ["--apply"]), ...(opts.extra ?? []), ...D(n)]);
  return { r, report: json<PullReport>(r) };
}

/** Exports an update of `vid` on node n to `policy` (edited by `edit` before signing), signed by the given keys. */
async function signedUpdate(
  n: NodeName,
  policy: Policy,
  signerIdx: number[],
  opts: { vid?: string; edit?: (a: Artifact) => void } = {},
): Promise<{ file: string; artifact: Artifact }> {
  const id = ++artifactSerial;
  const policyFile = tmp.join(`policy-${id}.json`);
  const file = tmp.join(`update-${id}.json`);
  writeFileSync(policyFile, JSON.stringify(policy, null, 2));
  await linksOk(["policy", "export", opts.vid ?? VID, "--policy", policyFile, "--out", file, ...D(n)]);
  if (opts.edit) {
    const a = JSON.parse(bytes(file)) as Artifact;
    opts.edit(a);
    writeFileSync(file, JSON.stringify(a, null, 2));
  }
  for (const i of signerIdx) await linksOk(["policy", "sign-add", file, (keys[i] as { key: string }).key, file]);
  return { file, artifact: JSON.parse(bytes(file)) as Artifact };
}

async function applyRemote(n: NodeName, file: string, vid = VID, token = tokens[n]): Promise<RunResult> {
  return await links(["policy", "apply-remote", nodes[n].url, vid, file, "--token", token, "--json"]);
}

/** A relay in front of `target`: `handle` may answer a request itself; anything else is forwarded as is. */
function startRelay(target: string, handle: (url: URL, forward: () => Promise<Response>) => Promise<Response>): string {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const url = new URL(req.url);
      const forward = () => {
        const headers = new Headers(req.headers);
        headers.delete("host");
        return fetch(`${target}${url.pathname}${url.search}`, { method: req.method, headers });
      };
      return handle(url, forward);
    },
  });
  relays.push({ stop: () => server.stop(true) });
  return `http://127.0.0.1:${server.port}`;
}

const jsonResponse = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** The signed artifacts A serves after `since`, in chain order. */
async function chainOfA(since: string): Promise<Artifact[]> {
  const res = await fetch(`${nodes.A.url}/villages/${VID}/policy/updates?since=${since}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { updates: Artifact[] }).updates;
}

let baseHead = "";
let u1: Artifact;
let u2: Artifact;

beforeAll(async () => {
  tmp = makeTempDir("links-policy-pull-");
  for (const n of ["A", "B", "C"] as const) dirs[n] = tmp.join(`node-${n}`);

  const gens = await Promise.all([1, 2, 3].map((i) => linksOk(["keys", "gen", "--out-dir", tmp.join(`k${i}`)])));
  expect(gens).toHaveLength(3);
  for (const i of [1, 2, 3]) {
    const hash = lastLine((await linksOk(["keys", "hash", tmp.join(`k${i}`, "ed25519.pub")])).stdout);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    keys.push({ key: tmp.join(`k${i}`, "ed25519.key"), hash });
  }

  await Promise.all(
    (["A", "B", "C"] as const).map(async (n) => {
      const r = await linksOk(["villages", "create", VID, "Operations", "alice", "--max-window-days", "30", ...D(n)]);
      tokens[n] = lastLine(r.stdout);
    }),
  );
  const base: Policy = {
    ...(await policyOf("A")),
    policy_signer_allowlist: keys.map((k) => k.hash),
    policy_signature_threshold_m: 2,
    require_policy_signature: true,
  };
  const baseFile = tmp.join("base-policy.json");
  writeFileSync(baseFile, JSON.stringify(base, null, 2));
  await Promise.all((["A", "B", "C"] as const).map((n) => linksOk(["policy", "apply-local", VID, baseFile, ...D(n)])));

  const started = await Promise.all((["A", "B", "C"] as const).map((n) => startNode(dirs[n])));
  nodes.A = started[0] as RunningNode;
  nodes.B = started[1] as RunningNode;
  nodes.C = started[2] as RunningNode;
});

afterAll(async () => {
  for (const r of relays) r.stop();
  await Promise.all(Object.values(nodes).map((n) => n.stop()));
  tmp?.remove();
});

describe("three nodes of village ops", () => {
  test("start aligned: the same base policy gives the same head everywhere", async () => {
    for (const n of ["B", "C"] as const) {
      const r = await linksOk(["policy", "drift", nodes.A.url, VID, "--json", ...D(n)]);
      const report = json<{ status: string; local_head: string; remote_head: string }>(r);
      expect(report.status).toBe("aligned");
      expect(report.local_head).toBe(report.remote_head);
    }
    baseHead = await headOf("A");
    expect(await headOf("B")).toBe(baseHead);
    expect(await headOf("C")).toBe(baseHead);
    // each chain: the genesis entry (following nothing), then the unsigned base policy
    expect(history("B").map((r) => [r.source, r.signed])).toEqual([["create", false], ["local", false]]);
    expect(history("B")[0]?.previous_policy_hash).toBeNull();
    expect(history("B")[1]?.policy_hash).toBe(baseHead);
    console.log(`setup: A, B, C created ops and applied the same base policy: drift aligned at ${baseHead.slice(0, 12)}`);
  });

  test("a 2-of-3 update made on A verifies, is behind on B, then pulled and applied once", async () => {
    const { file, artifact } = await signedUpdate("A", { ...(await policyOf("A")), max_window_days: 14 }, [0, 1]);
    u1 = artifact;
    expect(artifact.previous_policy_hash).toBe(baseHead);

    const verify = await linksOk(["policy", "verify", file, "--village-id", VID, ...D("A")]);
    for (const k of keys.slice(0, 2)) expect(verify.stderr).toContain(`key ${k.hash} verifies, allowlisted`);
    expect(verify.stderr).toContain(`quorum of ${VID}: 2 of 2 required allowlisted signer(s): met`);

    const applied = await applyRemote("A", file);
    expect(applied.code).toBe(0);
    expect(json<{ status: string; policy_hash: string }>(applied)).toEqual({ status: "applied", policy_hash: u1.policy_hash });
    expect(await headOf("A")).toBe(u1.policy_hash);

    const dry = await links(["policy", "pull", nodes.A.url, VID, ...D("B")]);
    expect(dry.code).toBe(3);
    expect(dry.stderr).toContain("behind by 1");
    expect((await policyOf("B")).max_window_days).toBe(30);

    const { r, report } = await pull("B", nodes.A.url);
    expect(r.code).toBe(0);
    expect(report).toMatchObject({ status: "applied", updates: 1, local_head: baseHead, remote_head: u1.policy_hash });
    expect(await policyOf("B")).toEqual(await policyOf("A"));
    expect(history("B").at(-1)).toMatchObject({ policy_hash: u1.policy_hash, previous_policy_hash: baseHead, source: "pull", signed: true });
    expect(history("B").at(-1)?.signers.sort()).toEqual(keys.slice(0, 2).map((k) => k.hash).sort());

    const before = bytes(historyFile("B"));
    const again = await pull("B", nodes.A.url);
    expect(again.r.code).toBe(0);
    expect(again.report.status).toBe("aligned");
    expect(bytes(historyFile("B"))).toBe(before);
    console.log("2-of-3 update on A: B dry run behind 1 (exit 3), applied 1, re-pull aligned with B's history unchanged");
  });

  test("a 1-signature update is refused on A with policy_quorum_not_met and A is unchanged", async () => {
    const { file } = await signedUpdate("A", { ...(await policyOf("A")), max_window_days: 3 }, [2]);
    const verify = await links(["policy", "verify", file, "--village-id", VID, ...D("A")]);
    expect(verify.code).toBe(5); // the signature itself is good, the village's quorum is not met
    expect(verify.stderr).toContain("1 of 2 required allowlisted signer(s): NOT met");
    expect(verify.stderr).toContain("valid v2 policy update");
    const before = bytes(villageFile("A"));
    const r = await applyRemote("A", file);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("policy_quorum_not_met");
    expect(bytes(villageFile("A"))).toBe(before);
    expect(await headOf("A")).toBe(u1.policy_hash);
    console.log("1-of-3 update sent to A: refused (policy_quorum_not_met), A unchanged");
  });

  test("policy/latest answers 304 to an If-None-Match naming its ETag", async () => {
    const first = await fetch(`${nodes.A.url}/villages/${VID}/policy/latest`);
    expect(first.status).toBe(200);
    const etag = first.headers.get("etag");
    expect(etag).toBe(`"${u1.policy_hash}"`);
    const body = (await first.json()) as { policy_hash: string; signed: boolean; artifact: Artifact };
    expect(body).toMatchObject({ policy_hash: u1.policy_hash, signed: true });
    expect(body.artifact).toEqual(u1);
    const second = await fetch(`${nodes.A.url}/villages/${VID}/policy/latest`, { headers: { "if-none-match": etag as string } });
    expect(second.status).toBe(304);
    expect(second.headers.get("etag")).toBe(etag);
    expect(await second.text()).toBe("");
    console.log("ETag on A's policy/latest: If-None-Match answered 304 with no body");
  });

  test("a relay that alters max_window_days in transit is refused and C is unchanged; straight from A it applies", async () => {
    const relay = startRelay(nodes.A.url, async (url, forward) => {
      const res = await forward();
      if (!url.pathname.endsWith("/policy/updates") || res.status !== 200) return res;
      const page = (await res.json()) as { updates: Artifact[] };
      for (const u of page.updates) u.policy.max_window_days = 365;
      return jsonResponse(page);
    });
    const village = bytes(villageFile("C"));
    const chain = bytes(historyFile("C"));
    const { r, report } = await pull("C", relay);
    expect(r.code).toBe(1);
    expect(report.status).toBe("refused");
    expect(report.code).toBe("policy_hash_mismatch");
    expect(bytes(villageFile("C"))).toBe(village);
    expect(bytes(historyFile("C"))).toBe(chain);

    const direct = await pull("C", nodes.A.url);
    expect(direct.r.code).toBe(0);
    expect(direct.report).toMatchObject({ status: "applied", updates: 1 });
    expect((await policyOf("C")).max_window_days).toBe(14);
    console.log("relay altered max_window_days: pull refused (policy_hash_mismatch), C unchanged; the same pull from A applied");
  });

  test("a change made on B alone, while A moved on, is refused as divergence and B is unchanged", async () => {
    const { file, artifact } = await signedUpdate("A", { ...(await policyOf("A")), max_window_days: 21 }, [1, 2]);
    u2 = artifact;
    expect((await applyRemote("A", file)).code).toBe(0);

    const local = tmp.join("b-local.json");
    writeFileSync(local, JSON.stringify({ ...(await policyOf("B")), max_window_days: 60 }));
    await linksOk(["policy", "apply-local", VID, local, ...D("B")]);
    const village = bytes(villageFile("B"));

    const drift = await links(["policy", "drift", nodes.A.url, VID, ...D("B")]);
    expect(drift.code).toBe(3);
    const { r, report } = await pull("B", nodes.A.url);
    expect(r.code).toBe(1);
    expect(report).toMatchObject({ status: "refused", code: "policy_divergence" });
    expect(bytes(villageFile("B"))).toBe(village);
    expect((await policyOf("B")).max_window_days).toBe(60);
    console.log("B changed its policy locally while A applied another update: pull refused (policy_divergence), B unchanged");
  });

  test("A pulling from C, which is still at an older head, is refused as a rollback", async () => {
    expect(await headOf("C")).toBe(u1.policy_hash);
    const village = bytes(villageFile("A"));
    const { r, report } = await pull("A", nodes.C.url);
    expect(r.code).toBe(1);
    expect(report).toMatchObject({ status: "refused", code: "policy_rollback" });
    expect(report.detail).toContain(`the node's policy ${u1.policy_hash} is older than ours (${u2.policy_hash})`);
    expect(bytes(villageFile("A"))).toBe(village);
    console.log("A (at u2) pulled from C (at u1): refused (policy_rollback), A unchanged");
  });

  test("a relay that replays an older signed update after our head is refused (policy_replay)", async () => {
    const caughtUp = await pull("C", nodes.A.url);
    expect(caughtUp.report).toMatchObject({ status: "applied", updates: 1, remote_head: u2.policy_hash });
    const older = (await chainOfA(baseHead))[0] as Artifact;
    expect(older.policy_hash).toBe(u1.policy_hash);
    const relay = startRelay(nodes.A.url, async (url) => {
      if (url.pathname.endsWith("/policy/latest")) return jsonResponse({ policy_hash: older.policy_hash, artifact: older, signed: true });
      return jsonResponse({ updates: [older], next_cursor: null, head: older.policy_hash });
    });
    const village = bytes(villageFile("C"));
    const { r, report } = await pull("C", relay);
    expect(r.code).toBe(1);
    expect(report).toMatchObject({ status: "refused", code: "policy_replay" });
    expect(bytes(villageFile("C"))).toBe(village);
    expect(await headOf("C")).toBe(u2.policy_hash);
    console.log("relay replayed u1 after C's head u2: pull refused (policy_replay: u1 is in C's chain), C unchanged at u2");
  });

  test("a relay that serves an older head, as an old node would, is refused as a rollback", async () => {
    const relay = startRelay(nodes.A.url, async (url) => {
      if (url.pathname.endsWith("/policy/latest")) return jsonResponse({ policy_hash: u1.policy_hash, artifact: u1, signed: true });
      return jsonResponse({ detail: "not in this chain", code: "unknown_policy_hash" }, 404);
    });
    const village = bytes(villageFile("C"));
    const { r, report } = await pull("C", relay);
    expect(r.code).toBe(1);
    expect(report).toMatchObject({ status: "refused", code: "policy_rollback" });
    expect(bytes(villageFile("C"))).toBe(village);
    console.log("relay held C back to u1: pull refused (policy_rollback), C unchanged");
  });

  test("an expired update is refused by apply-remote on A and on pull through a node that took it", async () => {
    const { file, artifact } = await signedUpdate("A", { ...(await policyOf("A")), max_window_days: 7 }, [0, 2], {
      edit: (a) => {
        a.expires_at = "2020-01-01T00:00:00Z";
      },
    });
    expect(artifact.expires_at).toBe("2020-01-01T00:00:00Z");
    const verified = await links(["policy", "verify", file, ...D("A")]);
    expect(verified.code).toBe(4); // the signatures verify, but it has expired
    expect(verified.stderr).toContain("expired at 2020-01-01T00:00:00Z");

    const before = bytes(villageFile("A"));
    const refused = await applyRemote("A", file);
    expect(refused.code).toBe(1);
    expect(errorCode(refused.stderr)).toBe("policy_expired");
    expect(bytes(villageFile("A"))).toBe(before);

    // a node that applied it (before it expired, say) serves it after u2
    const relay = startRelay(nodes.A.url, async (url) => {
      if (url.pathname.endsWith("/policy/latest")) return jsonResponse({ policy_hash: artifact.policy_hash, artifact, signed: true });
      return jsonResponse({ updates: [artifact], next_cursor: null, head: artifact.policy_hash });
    });
    const village = bytes(villageFile("C"));
    const { r, report } = await pull("C", relay);
    expect(r.code).toBe(1);
    expect(report).toMatchObject({ status: "refused", code: "policy_expired" });
    expect(bytes(villageFile("C"))).toBe(village);
    console.log("update expired before signing: apply-remote on A refused (policy_expired), pull via relay refused (policy_expired), A and C unchanged");
  });

  test("a relay that pages forever with empty pages is refused, not followed", async () => {
    const relay = startRelay(nodes.A.url, async (url) => {
      if (url.pathname.endsWith("/policy/latest")) return jsonResponse({ policy_hash: "f".repeat(64), artifact: {}, signed: true });
      return jsonResponse({ updates: [], next_cursor: "more", head: "f".repeat(64) });
    });
    const village = bytes(villageFile("C"));
    const { r, report } = await pull("C", relay);
    expect(r.code).toBe(1);
    expect(report).toMatchObject({ status: "refused", code: "remote_error" });
    expect(bytes(villageFile("C"))).toBe(village);
    console.log("relay answered empty pages with a cursor forever: pull refused (remote_error) at once, C unchanged");
  });
});

describe("villages without a signer allowlist, and private villages", () => {
  test("a puller whose policy has an empty signer allowlist refuses and says there is no signer to check against", async () => {
    const vid = "open";
    const created = await Promise.all(
      (["A", "C"] as const).map((n) => linksOk(["villages", "create", vid, "Open", "alice", ...D(n)])),
    );
    const tokenA = lastLine((created[0] as RunResult).stdout);
    const { file } = await signedUpdate("A", { ...(await policyOf("A", vid)), max_window_days: 5 }, [0, 1], { vid });
    expect((await applyRemote("A", file, vid, tokenA)).code).toBe(0);
    const village = bytes(villageFile("C", vid));
    const { r, report } = await pull("C", nodes.A.url, { vid });
    expect(r.code).toBe(1);
    expect(report).toMatchObject({ status: "refused", code: "policy_signer_not_allowed" });
    expect(report.detail).toContain("no signer to check");
    expect(bytes(villageFile("C", vid))).toBe(village);
    console.log("C's open village has no policy signers: pull of A's 2-signature update refused (policy_signer_not_allowed: no signer to check against), C unchanged");
  });

  test("a private village's feed needs a member token with the pull right", async () => {
    const vid = "closed";
    await Promise.all((["A", "B"] as const).map((n) => linksOk(["villages", "create", vid, "Closed", "alice", "--visibility", "private", ...D(n)])));
    const observer = lastLine((await linksOk(["villages", "add-member", vid, "olga", "--role", "observer", ...D("A")])).stdout);
    const anonymous = await pull("B", nodes.A.url, { vid });
    expect(anonymous.r.code).toBe(1);
    expect(anonymous.report).toMatchObject({ status: "refused", code: "missing_token" });
    const member = await pull("B", nodes.A.url, { vid, extra: ["--token", observer] });
    expect(member.r.code).toBe(0);
    expect(member.report.status).toBe("aligned");
    const raw = await fetch(`${nodes.A.url}/villages/${vid}/policy/updates`);
    expect(raw.status).toBe(401);
    console.log("private village closed: pull without a token refused (missing_token), with an observer's token aligned");
  });
});
