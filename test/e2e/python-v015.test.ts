/**
 * Mixed fleets: policy feeds between a Python Links v0.15 node and a `links` node, both ways,
 * through the real binary. The v0.15 side is played from recorded shapes
 * (test/fixtures/python-v015): a small server that answers exactly as v0.15 does, and v0.15's
 * puller algorithm run against a real `links serve`.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JsonValue } from "../../src/core/canonical.ts";
import { compareDatetimes } from "../../src/core/chain-time.ts";
import { addPolicySignature, normalizePolicyUpdate, policyHash, policyUpdateToJson } from "../../src/core/policy-update.ts";
import { startV015Node, type Artifact, type V015Node, type V015Options } from "../fixtures/python-v015/v015-node.ts";
import { v015Pull } from "../fixtures/python-v015/v015-puller.ts";
import { json, links, linksOk, makeTempDir, readJsonlFile, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";

interface FixtureKey {
  seed_b64: string;
  public_key_b64: string;
  key_hash: string;
}
interface Feed {
  village_id: string;
  signers: FixtureKey[];
  outsider: FixtureKey;
  base_policy: Record<string, JsonValue>;
  updates: Artifact[];
}
interface PullReport {
  status: string;
  code?: string;
  detail?: string;
  updates?: number;
  local_head?: string;
  remote_head?: string;
}

// each test runs several links processes: give them room on a busy 2-core machine
setDefaultTimeout(60_000);

const FEED = JSON.parse(readFileSync(join(import.meta.dir, "../fixtures/python-v015/feed.json"), "utf8")) as Feed;
const VID = FEED.village_id;
const [base, u1, u2, u3] = FEED.updates as [Artifact, Artifact, Artifact, Artifact];
const [s1, s2, s3] = FEED.signers as [FixtureKey, FixtureKey, FixtureKey];
const seedOf = (k: FixtureKey) => new Uint8Array(Buffer.from(k.seed_b64, "base64"));

/** The artifact with `changes`, signed afresh by `by` (v0.15's field order is kept). */
function resign(a: Artifact, changes: Record<string, JsonValue>, by: FixtureKey[]): Artifact {
  let u = normalizePolicyUpdate({ ...a, ...changes, public_key: null, signature: null, signatures: [] });
  for (const k of by) u = addPolicySignature(u, seedOf(k));
  return { ...(policyUpdateToJson(u) as Artifact), quorum_metadata: (u.generation === "v2" ? u.quorum : null) as JsonValue };
}

let tmp: TempDir;
let template = "";
let serial = 0;
const servers: Array<{ stop(): void }> = [];

function serve(opts: V015Options): V015Node {
  const node = startV015Node(opts);
  servers.push(node);
  return node;
}

/** A copy of the puller at the common base. */
function freshPuller(): string {
  const dir = tmp.join(`puller-${++serial}`);
  cpSync(template, dir, { recursive: true });
  return dir;
}

function fileState(data: string): string {
  const read = (f: string) => (existsSync(join(data, f)) ? readFileSync(join(data, f), "utf8") : "");
  return [read(`villages/${VID}/village.json`), read(`villages/${VID}/policy_history.jsonl`), read("store/audit/audit.log.jsonl")].join("\n--\n");
}

async function pull(url: string, data: string, apply = true): Promise<{ code: number; report: PullReport }> {
  const r = await links(["policy", "pull", url, VID, "--json", ...(apply ? ["--apply"] : []), "--data", data]);
  return { code: r.code, report: json<PullReport>(r) };
}

const headOf = (data: string): string => policyHash(JSON.parse(readFileSync(join(data, "villages", VID, "village.json"), "utf8")).policy);

beforeAll(async () => {
  tmp = makeTempDir("links-v015-");
  template = tmp.join("template");
  await linksOk(["villages", "create", VID, "Commons", "alice", "--data", template]);
  // the common base: the policy v0.15 stored first, applied here as a whole plain policy
  writeFileSync(tmp.join("base-policy.json"), JSON.stringify(FEED.base_policy));
  await linksOk(["policy", "apply-local", VID, tmp.join("base-policy.json"), "--data", template]);
  expect(headOf(template)).toBe(base.policy_hash as string);
});

afterAll(() => {
  for (const s of servers) s.stop();
  tmp?.remove();
});

describe("links policy pull from a Python Links v0.15 node", () => {
  test("drift, a dry run and --apply take v0.15's chain from the common base, every update checked", async () => {
    const v015 = serve({ villages: { [VID]: [base, u1, u2, u3] } });
    const data = freshPuller();
    const drift = await links(["policy", "drift", v015.url, VID, "--json", "--data", data]);
    expect(drift.code).toBe(3);
    expect(json<PullReport>(drift)).toMatchObject({ status: "drift", remote_head: u3.policy_hash });

    const dry = await pull(v015.url, data, false);
    expect(dry.code).toBe(3);
    expect(dry.report).toMatchObject({ status: "behind", updates: 3 });

    const applied = await pull(v015.url, data);
    expect(applied.code).toBe(0);
    expect(applied.report).toMatchObject({ status: "applied", updates: 3, local_head: base.policy_hash, remote_head: u3.policy_hash });
    expect(headOf(data)).toBe(u3.policy_hash as string);
    const rows = readJsonlFile<{ policy_hash: string; source: string; signed: boolean; signers: string[] }>(join(data, "villages", VID, "policy_history.jsonl"));
    expect(rows.slice(-3).map((r) => [r.policy_hash, r.source, r.signed, r.signers.length])).toEqual([
      [u1.policy_hash as string, "pull", true, 2],
      [u2.policy_hash as string, "pull", true, 2],
      [u3.policy_hash as string, "pull", true, 2],
    ]);
    expect(v015.requests.filter((r) => r.includes("/policy/updates"))[0]).toBe(`GET /villages/${VID}/policy/updates?since=${base.policy_hash}&limit=100`);

    const before = fileState(data);
    const again = await pull(v015.url, data);
    expect(again.code).toBe(0);
    expect(again.report.status).toBe("aligned");
    expect(fileState(data)).toBe(before);
    console.log("links pulled v0.15's chain base -> u1 -> u2 -> u3: drift (exit 3), behind 3 (exit 3), applied 3, then aligned with nothing changed");
  });

  test("from a v0.15 node that never stored the base, the whole feed is walked by lineage", async () => {
    const v015 = serve({ villages: { [VID]: [u3, u1, u2] } });
    const data = freshPuller();
    const r = await pull(v015.url, data);
    expect(r.code).toBe(0);
    expect(r.report).toMatchObject({ status: "applied", updates: 3 });
    // v0.15 answers [] for a since it does not hold; links asks once more without it
    expect(v015.requests.filter((q) => q.includes("/policy/updates"))).toEqual([
      `GET /villages/${VID}/policy/updates?since=${base.policy_hash}&limit=100`,
      `GET /villages/${VID}/policy/updates?limit=100`,
    ]);
    console.log("v0.15 feed without the base: since answered [], the whole feed walked by lineage, 3 applied");
  });

  // Each attack: what the v0.15 node (or the network in front of it) serves, the puller it is
  // served to, and the codes a refusal may carry.
  const upToU3 = async (): Promise<string> => {
    const data = freshPuller();
    const r = await pull(serve({ villages: { [VID]: [base, u1, u2, u3] } }).url, data);
    expect(r.code).toBe(0);
    return data;
  };
  const back = resign(u3, { policy: FEED.base_policy, policy_hash: base.policy_hash as string, policy_version_id: base.policy_hash as string, previous_policy_hash: u3.policy_hash as string, created_at: "2026-11-30T13:16:00Z" }, [s1, s2]);
  const latestIs = (a: Artifact) => (path: string) => (path.endsWith("/policy/latest") ? Response.json(a) : null);
  const attacks: Array<{ name: string; puller: () => Promise<string>; node: V015Options; codes: string[] }> = [
    { name: "a policy changed under its signatures", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1, { ...u2, policy: { ...(u2.policy as object), max_window_days: 400 } }, u3] } }, codes: ["policy_hash_mismatch"] },
    { name: "an update re-signed by a key outside the allowlist", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1, resign(u2, {}, [FEED.outsider]), u3] } }, codes: ["policy_quorum_not_met"] },
    { name: "an update signed by one allowlisted key where two are needed", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1, resign(u2, {}, [s2]), u3] } }, codes: ["policy_quorum_not_met"] },
    { name: "an unsigned update (a v0.15 plain POST) inside the run", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1, { ...u2, signatures: [] }, u3] } }, codes: ["policy_signature_required"] },
    { name: "the middle update left out", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1, u3] } }, codes: ["policy_divergence"] },
    { name: "an expired update", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1, resign(u2, { expires_at: "2026-11-30T13:15:10Z" }, [s2, s3]), u3] } }, codes: ["policy_expired"] },
    { name: "an update dated before the one it follows (fresh lineage)", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1, resign(u2, { created_at: "2026-11-30T13:15:07.000001Z" }, [s2, s3]), u3] } }, codes: ["policy_rollback"] },
    { name: "an update dated at the same instant as the one it follows", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1, resign(u2, { created_at: u1.created_at as string }, [s2, s3]), u3] } }, codes: ["policy_rollback"] },
    { name: "another village's updates, signed by the right keys", puller: async () => freshPuller(), node: { villages: { [VID]: [base, resign(u1, { village_id: "elsewhere" }, [s1, s2])] } }, codes: ["village_mismatch"] },
    { name: "an older head served to a puller that holds the newer one", puller: upToU3, node: { villages: { [VID]: [base, u1] } }, codes: ["policy_rollback"] },
    {
      name: "A -> B -> A, then A->B served again",
      puller: async () => {
        const data = await upToU3();
        expect((await pull(serve({ villages: { [VID]: [base, u1, u2, u3, back] } }).url, data)).report.status).toBe("applied");
        expect(headOf(data)).toBe(base.policy_hash as string);
        return data;
      },
      node: { villages: { [VID]: [base, u1] }, answer: latestIs(u1) },
      codes: ["policy_replay"],
    },
    {
      name: "A -> B -> A, then A->B served again with one more signature",
      puller: async () => {
        const data = await upToU3();
        await pull(serve({ villages: { [VID]: [base, u1, u2, u3, back] } }).url, data);
        return data;
      },
      node: { villages: { [VID]: [base, addSignature(u1, s3)] }, answer: latestIs(addSignature(u1, s3)) },
      codes: ["policy_replay"],
    },
    { name: "latest that is not an artifact", puller: async () => freshPuller(), node: { villages: {}, answer: (p) => (p.endsWith("/latest") ? Response.json({ detail: "ok" }) : null) }, codes: ["remote_error"] },
    { name: "updates that are neither an array nor a page", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1] }, answer: (p) => (p.endsWith("/updates") ? Response.json({ items: [u1] }) : null) }, codes: ["remote_error"] },
    { name: "an array holding something that is not an artifact", puller: async () => freshPuller(), node: { villages: { [VID]: [base, u1] }, answer: (p) => (p.endsWith("/updates") ? Response.json([u1, 42]) : null) }, codes: ["invalid_schema"] },
  ];

  describe("tampered v0.15 feeds are refused and the puller is unchanged", () => {
    for (const a of attacks) {
      test(a.name, async () => {
        const data = await a.puller();
        const before = fileState(data);
        const v015 = serve(a.node);
        const r = await pull(v015.url, data);
        expect(r.code).toBe(1);
        expect(r.report.status).toBe("refused");
        expect(a.codes).toContain(r.report.code as string);
        expect(fileState(data)).toBe(before);
        console.log(`v0.15 attack refused (${r.report.code}), puller unchanged: ${a.name}`);
      });
    }
  });
});

function addSignature(a: Artifact, k: FixtureKey): Artifact {
  const u = addPolicySignature(normalizePolicyUpdate(a), seedOf(k));
  return { ...(policyUpdateToJson(u) as Artifact), quorum_metadata: (u.generation === "v2" ? u.quorum : null) as JsonValue };
}

describe("Python Links v0.15 pulling from a links node", () => {
  let node: RunningNode;
  let data = "";
  let head = "";

  /** export the current policy with `changes`, edit the artifact, sign it with `by`, apply it locally */
  async function signedStep(changes: Record<string, JsonValue>, edit: Record<string, JsonValue>, by: FixtureKey[]): Promise<void> {
    const n = ++serial;
    const current = JSON.parse(readFileSync(join(data, "villages", VID, "village.json"), "utf8")).policy;
    writeFileSync(tmp.join(`p${n}.json`), JSON.stringify({ ...current, ...changes }));
    await linksOk(["policy", "export", VID, "--policy", tmp.join(`p${n}.json`), "--out", tmp.join(`a${n}.json`), "--data", data]);
    const exported = JSON.parse(readFileSync(tmp.join(`a${n}.json`), "utf8"));
    expect(exported.policy_version_id).toBe(exported.policy_hash);
    writeFileSync(tmp.join(`a${n}.json`), JSON.stringify(resign(exported, edit, by)));
    await linksOk(["policy", "apply-local", VID, tmp.join(`a${n}.json`), "--data", data]);
  }

  beforeAll(async () => {
    data = freshPuller();
    // a signed update exported long before the base was applied here (its time is the signer's)
    await signedStep({ max_window_days: 21 }, { created_at: "2020-01-01T00:00:00Z" }, [s1, s2]);
    // a v1 artifact (no lineage) and a v2 artifact with null lineage, each fresh
    const v1 = normalizePolicyUpdate({ village_id: VID, created_at: "2021-01-01T00:00:00Z", actor: "alice", policy: { ...FEED.base_policy, max_window_days: 22 }, policy_hash: policyHash({ ...FEED.base_policy, max_window_days: 22 }) });
    expect(v1.generation).toBe("v1");
    writeFileSync(tmp.join("v1.json"), JSON.stringify(policyUpdateToJson(addPolicySignature(addPolicySignature(v1, seedOf(s1)), seedOf(s3)))));
    await linksOk(["policy", "apply-local", VID, tmp.join("v1.json"), "--data", data]);
    await signedStep({ max_window_days: 23 }, { created_at: "2022-01-01T00:00:00Z", previous_policy_hash: null }, [s2, s3]);
    // a plain local change, then a signed update made now
    writeFileSync(tmp.join("plain.json"), JSON.stringify({ ...JSON.parse(readFileSync(join(data, "villages", VID, "village.json"), "utf8")).policy, retention_days: 30 }));
    await linksOk(["policy", "apply-local", VID, tmp.join("plain.json"), "--data", data]);
    await signedStep({ max_window_days: 24 }, {}, [s1, s3]);
    head = headOf(data);
    node = await startNode(data);
  });

  afterAll(async () => {
    await node?.stop();
  });

  test("its puller reads updates_page, every item parses, and it selects the links head", async () => {
    const r = await v015Pull(node.url, VID);
    expect(r.outcome).toBe("selected");
    if (r.outcome !== "selected") return;
    expect(r.requests).toEqual([`GET /villages/${VID}/policy/manifest`, `GET /villages/${VID}/policy/updates_page?limit=200`]);
    expect(r.source).toBe("updates_page");
    expect(r.head.policy_hash).toBe(head);
    expect(r.updates.map((u) => u.policy_hash).at(-1)).toBe(head);
    console.log(`v0.15 puller against links: manifest 404, updates_page 200 with ${r.updates.length} items, all parse, head selected = links head`);
  });

  test("with small pages it follows links' cursors to the same head", async () => {
    const r = await v015Pull(node.url, VID, { pageLimit: 2 });
    expect(r.outcome).toBe("selected");
    if (r.outcome !== "selected") return;
    expect(r.requests.length).toBeGreaterThan(3);
    expect(r.head.policy_hash).toBe(head);
  });

  test("created_at never goes backwards along the published chain, so the newest entry is the last", async () => {
    const page = (await (await fetch(`${node.url}/villages/${VID}/policy/updates_page?limit=500`)).json()) as { items: Artifact[] };
    const times = page.items.map((u) => u.created_at as string);
    for (let i = 1; i < times.length; i++) expect(compareDatetimes(times[i] as string, times[i - 1] as string)).toBe(1);
    // the signed update from 2020 keeps its own signed time; the entries before it moved before it
    expect(times).toContain("2020-01-01T00:00:00Z");
    // genesis, base, the 2020 update, v1, null lineage, the plain change, the last update
    expect(page.items.length).toBe(7);
  });

  test("updates_page echoes its query in v0.15's envelope and keeps v0.15's limit bounds", async () => {
    const body = (await (await fetch(`${node.url}/villages/${VID}/policy/updates_page?limit=3`)).json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["cursor", "items", "limit", "next_cursor", "since", "village_id"]);
    expect(body).toMatchObject({ village_id: VID, since: null, cursor: null, limit: 3 });
    expect(typeof body.next_cursor).toBe("string");
    const defaults = (await (await fetch(`${node.url}/villages/${VID}/policy/updates_page`)).json()) as Record<string, unknown>;
    expect(defaults).toMatchObject({ limit: 100, next_cursor: null });
    for (const bad of ["0", "501", "x"]) {
      const res = await fetch(`${node.url}/villages/${VID}/policy/updates_page?limit=${bad}`);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: "invalid_argument" });
    }
  });

  test("by_hash answers the chain entry alone; an unknown hash is 404 'policy update not found'; a bad one 400", async () => {
    const latest = (await (await fetch(`${node.url}/villages/${VID}/policy/latest`)).json()) as Artifact & { artifact: Artifact };
    const res = await fetch(`${node.url}/villages/${VID}/policy/by_hash/${head}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(latest.artifact);
    const missing = await fetch(`${node.url}/villages/${VID}/policy/by_hash/${"0".repeat(64)}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ detail: "policy update not found", code: "policy_update_not_found" });
    const bad = await fetch(`${node.url}/villages/${VID}/policy/by_hash/XYZ`);
    expect(bad.status).toBe(400);
  });

  test("policy/latest reads as the head artifact (v0.15's drift), and there is no manifest to misread", async () => {
    const body = (await (await fetch(`${node.url}/villages/${VID}/policy/latest`)).json()) as Artifact;
    const read = normalizePolicyUpdate(body);
    expect(read.policy_hash).toBe(head);
    expect(body.signed).toBe(true);
    expect((await fetch(`${node.url}/villages/${VID}/policy/manifest`)).status).toBe(404);
  });

  test("a links node asked for a since it does not hold fails the v0.15 puller loudly instead of 'No updates.'", async () => {
    const r = await v015Pull(node.url, VID, { since: "ab".repeat(32) });
    expect(r.outcome).toBe("failed");
  });
});
