/**
 * Policy feed attacks: a real origin node serves a village's signed policy chain; a small Bun
 * relay in front of it replays, reorders, truncates, forks, re-signs with an outsider's key,
 * tampers with, or garbles what the origin says. `links policy pull <relay> <vid> --apply --json`
 * must refuse every one ({"status":"refused","code"}, exit 1) and leave the puller's village
 * exactly as it was (village.json, policy_history.jsonl, no policy.apply audit row). An honest
 * relay is the control: the same pull then applies the chain.
 */
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { addPolicySignature, newPolicyUpdate, policyHash, policyUpdateToJson, type PolicyUpdate } from "../../../src/core/policy-update.ts";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { LINKS_BIN, links, linksOk, type RunResult } from "../../e2e/harness.ts";
import { startNode, type RunningNode } from "../../e2e/node.ts";
import { figures } from "../lib/scale.ts";
import { runScenarioOnce } from "../lib/suite.ts";
import { HIGH_RATE } from "../lib/village.ts";

const VID = "pv";

interface Upstream {
  status: number;
  text: string;
  json: unknown;
}

/** What the relay answers instead: a status and a body (a value is sent as JSON, a string as is). */
type Answer = { status: number; body: unknown; raw?: boolean };
type Transform = (kind: "latest" | "updates", url: URL, upstream: Upstream) => Answer | null;

export interface Attack {
  name: string;
  /** "behind": the puller is at the chain's start; "ahead": it already holds the first two updates */
  puller: "behind" | "ahead";
  transform: Transform;
  /** codes the refusal may carry */
  codes: string[];
}

export interface AttackOutcome {
  name: string;
  exit: number;
  status: string | null;
  code: string | null;
  unchanged: boolean;
  ms: number;
  ok: boolean;
  why: string;
}

export interface PolicyFeedResult {
  honest: { exit: number; status: string | null; updates: number | null; headMatches: boolean };
  outcomes: AttackOutcome[];
}

interface Key {
  seed: Uint8Array;
  hash: string;
}

function key(): Key {
  const seed = generateSeed();
  return { seed, hash: sha256Hex(publicKeyFromSeed(seed)) };
}

function signed(u: PolicyUpdate, ...keys: Key[]): PolicyUpdate {
  return keys.reduce((acc, k) => addPolicySignature(acc, k.seed), u);
}

const asJson = (u: PolicyUpdate): JsonValue => policyUpdateToJson(u);

/** A relay in front of `origin` that lets `transform` rewrite the policy feed answers. */
function startRelay(origin: string, transform: () => Transform | null): { url: string; stop: () => void } {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(`${origin}${url.pathname}${url.search}`, { method: req.method, headers });
      const text = await res.text();
      const kind = url.pathname.endsWith("/policy/latest") ? "latest" : url.pathname.endsWith("/policy/updates") ? "updates" : null;
      const t = transform();
      let answer: Answer | null = null;
      if (kind && t) {
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          json = null;
        }
        answer = t(kind, url, { status: res.status, text, json });
      }
      if (answer === null) {
        const out = new Headers();
        for (const h of ["content-type", "etag"]) {
          const v = res.headers.get(h);
          if (v) out.set(h, v);
        }
        return new Response(res.status === 304 ? null : text, { status: res.status, headers: out });
      }
      const body = answer.raw ? String(answer.body) : toJsonText(answer.body as JsonValue);
      return new Response(answer.status === 304 ? null : body, { status: answer.status, headers: { "content-type": "application/json" } });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

function fileState(data: string): string {
  const dir = join(data, "villages", VID);
  const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8") : "");
  const audit = existsSync(join(data, "store/audit/audit.log.jsonl"))
    ? readFileSync(join(data, "store/audit/audit.log.jsonl"), "utf8")
        .split("\n")
        .filter((l) => l.includes('"policy.apply"')).length
    : 0;
  return `${read("village.json")}\n--\n${read("policy_history.jsonl")}\n--\n${audit}`;
}

/** Runs `links args...`, killing it (exit -1) if it has not finished within ms. */
async function linksWithin(args: string[], ms: number): Promise<RunResult> {
  const proc = Bun.spawn([LINKS_BIN, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, NO_COLOR: "1" } });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, ms);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return timedOut ? { code: -1, stdout, stderr: `still running after ${ms} ms (killed)\n${stderr}` } : { code, stdout, stderr };
}

export async function runPolicyFeedAttacks(o: { dir: string; pullTimeoutMs: number }): Promise<PolicyFeedResult> {
  const signer = key();
  const outsider = key();
  const origin = join(o.dir, "origin");
  await linksOk(["villages", "create", VID, "Policy village", "alice", "--data", origin]);
  const guarded = {
    rate_limit_per_min: HIGH_RATE,
    require_policy_signature: true,
    policy_signer_allowlist: [signer.hash],
    policy_signature_threshold_m: 1,
    max_window_days: 30,
  };
  writeFileSync(join(o.dir, "guarded.json"), JSON.stringify(guarded));
  await linksOk(["policy", "apply-local", VID, join(o.dir, "guarded.json"), "--merge", "--data", origin]);
  const village = () => JSON.parse(readFileSync(join(origin, "villages", VID, "village.json"), "utf8")) as { policy: Record<string, JsonValue> };
  const h0 = policyHash(village().policy as JsonValue);

  // The puller starts as a copy of the origin at h0: same genesis, same history.
  const behind = join(o.dir, "puller-behind");
  cpSync(origin, behind, { recursive: true });

  // Three signed updates on the origin.
  const chain: PolicyUpdate[] = [];
  let head = h0;
  for (let i = 1; i <= 3; i++) {
    const u = signed(newPolicyUpdate({ villageId: VID, policy: { ...village().policy, max_window_days: 30 + i }, actor: "alice", previousPolicyHash: head }), signer);
    const f = join(o.dir, `u${i}.json`);
    writeFileSync(f, toJsonText(asJson(u)));
    await linksOk(["policy", "apply-local", VID, f, "--data", origin]);
    chain.push(u);
    head = u.policy_hash;
  }
  const [u1, u2, u3] = chain as [PolicyUpdate, PolicyUpdate, PolicyUpdate];
  // A puller that already holds u1 and u2.
  const ahead = join(o.dir, "puller-ahead");
  cpSync(behind, ahead, { recursive: true });
  for (const i of [1, 2]) await linksOk(["policy", "apply-local", VID, join(o.dir, `u${i}.json`), "--data", ahead]);

  // Forged material.
  const resignedByOutsider = chain.map((u) => signed({ ...u, signatures: [], signature: null, public_key: null } as PolicyUpdate, outsider));
  const fork2 = signed(newPolicyUpdate({ villageId: VID, policy: { ...u1.policy, max_window_days: 99 }, actor: "mallory", previousPolicyHash: u1.policy_hash }), outsider);
  const takeover = signed(
    newPolicyUpdate({ villageId: VID, policy: { ...u1.policy, policy_signer_allowlist: [outsider.hash] }, actor: "mallory", previousPolicyHash: u1.policy_hash }),
    outsider,
  );
  const forkedFromStart = signed(newPolicyUpdate({ villageId: VID, policy: { ...village().policy, max_window_days: 7 }, actor: "alice", previousPolicyHash: null }), signer);
  const tampered = { ...asJson(u2) as Record<string, JsonValue>, policy: { ...(u2.policy as Record<string, JsonValue>), max_window_days: 400 } };
  const otherVillage = signed(newPolicyUpdate({ villageId: "elsewhere", policy: u1.policy, actor: "alice", previousPolicyHash: h0 }), signer);
  const expired = signed(normalizeExpiry(newPolicyUpdate({ villageId: VID, policy: u1.policy, actor: "alice", previousPolicyHash: h0 })), signer);
  const latestOf = (u: PolicyUpdate) => ({ status: 200, body: { policy_hash: u.policy_hash, artifact: asJson(u), signed: true } });
  const updatesOf = (us: Array<PolicyUpdate | JsonValue>, headHash: string) => ({
    status: 200,
    body: { updates: us.map((u) => ("policy_hash" in (u as object) && "generation" in (u as object) ? asJson(u as PolicyUpdate) : (u as JsonValue))), next_cursor: null, head: headHash },
  });
  const unknownSince = { status: 404, body: { detail: "no such policy in this chain", code: "unknown_policy_hash" } };

  const attacks: Attack[] = [
    {
      name: "replay: an older head served to a puller that is ahead",
      puller: "ahead",
      transform: (kind) => (kind === "latest" ? latestOf(u1) : unknownSince),
      codes: ["policy_rollback"],
    },
    {
      name: "replay: updates it already holds, served again after its head",
      puller: "ahead",
      transform: (kind) => (kind === "latest" ? latestOf(u3) : updatesOf([u1, u2, u3], u3.policy_hash)),
      codes: ["policy_lineage"],
    },
    { name: "reorder: the updates out of order", puller: "behind", transform: (kind) => (kind === "updates" ? updatesOf([u2, u1, u3], u3.policy_hash) : null), codes: ["policy_lineage"] },
    { name: "truncate: the last update left out", puller: "behind", transform: (kind) => (kind === "updates" ? updatesOf([u1, u2], u3.policy_hash) : null), codes: ["policy_lineage"] },
    { name: "truncate: the middle update left out", puller: "behind", transform: (kind) => (kind === "updates" ? updatesOf([u1, u3], u3.policy_hash) : null), codes: ["policy_lineage"] },
    {
      name: "truncate: the answer cut in half",
      puller: "behind",
      transform: (kind, _u, up) => (kind === "updates" ? { status: 200, body: up.text.slice(0, Math.floor(up.text.length / 2)), raw: true } : null),
      codes: ["remote_error", "invalid_json"],
    },
    {
      name: "fork: a different second update signed by an outsider",
      puller: "behind",
      transform: (kind) => (kind === "latest" ? latestOf(fork2) : updatesOf([u1, fork2], fork2.policy_hash)),
      codes: ["policy_signer_not_allowed", "policy_quorum_not_met"],
    },
    {
      name: "fork: a chain that does not contain the puller's head",
      puller: "behind",
      transform: (kind) => (kind === "latest" ? latestOf(forkedFromStart) : unknownSince),
      codes: ["policy_divergence"],
    },
    {
      name: "fork: a signer-list takeover signed only by the new signer",
      puller: "behind",
      transform: (kind) => (kind === "latest" ? latestOf(takeover) : updatesOf([u1, takeover], takeover.policy_hash)),
      codes: ["policy_signer_not_allowed", "policy_quorum_not_met"],
    },
    {
      name: "re-signed: the whole chain re-signed by an outsider",
      puller: "behind",
      transform: (kind) => (kind === "updates" ? updatesOf(resignedByOutsider, u3.policy_hash) : null),
      codes: ["policy_signer_not_allowed", "policy_quorum_not_met"],
    },
    {
      name: "tampered: a policy changed under its signature",
      puller: "behind",
      transform: (kind) => (kind === "updates" ? updatesOf([u1, tampered, u3], u3.policy_hash) : null),
      codes: ["policy_hash_mismatch", "invalid_signature", "policy_lineage"],
    },
    {
      name: "another village's update, signed by the right key",
      puller: "behind",
      transform: (kind) => (kind === "latest" ? latestOf(otherVillage) : updatesOf([otherVillage], otherVillage.policy_hash)),
      codes: ["village_mismatch"],
    },
    {
      name: "an expired update, signed by the right key",
      puller: "behind",
      transform: (kind) => (kind === "latest" ? latestOf(expired) : updatesOf([expired], expired.policy_hash)),
      codes: ["policy_expired"],
    },
    {
      name: "signatures stripped",
      puller: "behind",
      transform: (kind) => (kind === "updates" ? updatesOf(chain.map((u) => ({ ...asJson(u) as Record<string, JsonValue>, signatures: [], signature: null, public_key: null })), u3.policy_hash) : null),
      codes: ["policy_signature_required", "invalid_signature", "policy_quorum_not_met", "policy_signer_not_allowed"],
    },
    { name: "garbage: latest is not JSON", puller: "behind", transform: (kind) => (kind === "latest" ? { status: 200, body: "<html>", raw: true } : null), codes: ["remote_error", "invalid_json"] },
    { name: "garbage: latest without a policy_hash", puller: "behind", transform: (kind) => (kind === "latest" ? { status: 200, body: { artifact: null } } : null), codes: ["remote_error"] },
    { name: "garbage: updates is not an array", puller: "behind", transform: (kind) => (kind === "updates" ? { status: 200, body: { updates: "all of them" } } : null), codes: ["remote_error"] },
    { name: "garbage: updates holds numbers", puller: "behind", transform: (kind) => (kind === "updates" ? { status: 200, body: { updates: [1, 2, 3], next_cursor: null } } : null), codes: ["invalid_schema", "remote_error"] },
    { name: "garbage: the origin answers 500", puller: "behind", transform: (kind) => (kind === "updates" ? { status: 500, body: { detail: "boom", code: "internal_error" } } : null), codes: ["internal_error", "remote_error"] },
    {
      name: "endless: empty pages, each with a next cursor",
      puller: "behind",
      transform: (kind) => (kind === "updates" ? { status: 200, body: { updates: [], next_cursor: "YzE6MA", head: u3.policy_hash } } : null),
      codes: ["remote_error", "policy_lineage"],
    },
  ];

  const node: RunningNode = await startNode(origin);
  let current: Transform | null = null;
  const relay = startRelay(node.url, () => current);
  const outcomes: AttackOutcome[] = [];
  let honest: PolicyFeedResult["honest"];
  try {
    // The control: an honest relay, on a copy of the puller.
    const control = join(o.dir, "puller-control");
    cpSync(behind, control, { recursive: true });
    const r = await links(["policy", "pull", relay.url, VID, "--apply", "--json", "--data", control]);
    const body = parse(r);
    const after = JSON.parse(readFileSync(join(control, "villages", VID, "village.json"), "utf8")) as { policy: JsonValue };
    honest = { exit: r.code, status: (body?.status as string) ?? null, updates: (body?.updates as number) ?? null, headMatches: policyHash(after.policy) === u3.policy_hash };

    for (const a of attacks) {
      const data = a.puller === "behind" ? behind : ahead;
      const before = fileState(data);
      current = a.transform;
      const t0 = performance.now();
      const run = await linksWithin(["policy", "pull", relay.url, VID, "--apply", "--json", "--data", data], o.pullTimeoutMs);
      const ms = performance.now() - t0;
      current = null;
      const out = parse(run);
      const unchanged = fileState(data) === before;
      const code = (out?.code as string) ?? null;
      const status = (out?.status as string) ?? null;
      let why = "";
      if (run.code !== 1) why += `exit ${run.code}; `;
      if (status !== "refused") why += `status ${status}; `;
      if (!a.codes.includes(code ?? "")) why += `code ${code} not one of ${a.codes.join("/")}; `;
      if (!unchanged) why += "the puller's village changed; ";
      if (why && run.code !== 1) why += `stderr: ${run.stderr.trim().slice(0, 300)}`;
      outcomes.push({ name: a.name, exit: run.code, status, code, unchanged, ms, ok: why === "", why });
    }
  } finally {
    relay.stop();
    await node.stop();
  }
  for (const x of outcomes) console.log(`[faults] policy-feed attack: ${x.ok ? "refused" : "NOT REFUSED"} ${x.code ?? "-"} exit ${x.exit} ${x.ms.toFixed(0)} ms  ${x.name}${x.ok ? "" : `: ${x.why}`}`);
  figures("policy-feed", {
    attacks: outcomes.length,
    refused_and_unchanged: outcomes.filter((x) => x.ok).length,
    honest_pull: `${honest.status}:${honest.updates}`,
  });
  return { honest, outcomes };
}

function parse(r: RunResult): Record<string, unknown> | null {
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** An update that expired a year ago (v2 artifacts carry expires_at, inside what is signed). */
function normalizeExpiry(u: PolicyUpdate): PolicyUpdate {
  return { ...u, expires_at: "2020-01-01T00:00:00Z" } as PolicyUpdate;
}

/**
 * The policy feed tests: the same attacks in `npm test` and `npm run test:faults`, which gives a
 * pull that never ends a longer `pullTimeoutMs`.
 */
export function policyFeedSuite(opts: { timeoutMs: number; pullTimeoutMs: number }): void {
  const result = runScenarioOnce("links-faults-feed-", opts.timeoutMs, (dir) => runPolicyFeedAttacks({ dir, pullTimeoutMs: opts.pullTimeoutMs }));

  describe("when a relay tampers with the policy feed", () => {
    test("an honest relay is the control: the pull applies the whole chain", () => {
      expect(result().honest).toEqual({ exit: 0, status: "applied", updates: 3, headMatches: true });
    });
    test("every attack is refused with its code, exit 1, and the puller's village is unchanged", () => {
      const r = result();
      expect(r.outcomes.length).toBeGreaterThan(15);
      expect(r.outcomes.filter((o) => !o.ok).map((o) => `${o.name}: ${o.why}`)).toEqual([]);
    });
  });
}
