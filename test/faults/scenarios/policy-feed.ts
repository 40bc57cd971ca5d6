/**
 * Policy feed attacks: a real origin node serves a village's signed policy chain; a small Bun
 * relay in front of it replays, reorders, truncates, forks, re-signs with an outsider's key,
 * tampers with, or garbles what the origin says. `links policy pull <relay> <vid> --apply --json`
 * must refuse every one ({"status":"refused","code"}, exit 1) and leave the puller's village
 * exactly as it was (village.json, policy_history.jsonl, no policy.apply audit row). An honest
 * relay is the control: the same pull then applies the chain.
 *
 * Then the same replays and rollbacks straight at a village: every kind of old or re-dated
 * signed artifact sent with `policy apply-remote` (HTTP, manage token) to the running origin and
 * with `policy apply-local` to a copy of it must be refused (exit 1, policy_replay or
 * policy_rollback) with the village unchanged.
 */
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { addPolicySignature, newPolicyUpdate, normalizePolicyUpdate, policyHash, policyUpdateToJson, signPolicyUpdateLegacy, type PolicyUpdate } from "../../../src/core/policy-update.ts";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { errorCode, lastLine, LINKS_BIN, links, linksOk, type RunResult } from "../../e2e/harness.ts";
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
  /** "behind": the puller is at the chain's start; "ahead": it already holds the first two updates; "back": u1..u4 */
  puller: "behind" | "ahead" | "back";
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

/** A signed artifact sent straight at a village (HTTP or apply-local). */
export interface DirectOutcome {
  name: string;
  via: "http" | "apply-local";
  exit: number;
  code: string | null;
  unchanged: boolean;
  ok: boolean;
  why: string;
}

export interface PolicyFeedResult {
  honest: { exit: number; status: string | null; updates: number | null; headMatches: boolean };
  outcomes: AttackOutcome[];
  direct: DirectOutcome[];
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
  const adminToken = lastLine((await linksOk(["villages", "create", VID, "Policy village", "alice", "--data", origin])).stdout);
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
  // Replays and rollbacks. u4 takes the village back to u2's content (A -> B -> A); a puller
  // "back" holds u1..u4, so u3 (which follows u2's content) fits its lineage again.
  const u4 = signed(newPolicyUpdate({ villageId: VID, policy: u2.policy, actor: "alice", previousPolicyHash: u3.policy_hash }), signer);
  const back = join(o.dir, "puller-back");
  cpSync(ahead, back, { recursive: true });
  writeFileSync(join(o.dir, "u4.json"), toJsonText(asJson(u4)));
  for (const f of ["u3.json", "u4.json"]) await linksOk(["policy", "apply-local", VID, join(o.dir, f), "--data", back]);
  const extraSigned = signed(u2, outsider); // the same signed payload, one more signature
  const resignedSame = signed({ ...u2, signatures: [] } as PolicyUpdate, signer); // the same payload, signed afresh
  const redated = (u: PolicyUpdate, at: string, previous: string | null) =>
    signed(newPolicyUpdate({ villageId: VID, policy: { ...u.policy, max_window_days: 50 }, actor: "mallory", previousPolicyHash: previous, createdAt: at }), signer);
  const legacyV1 = (at: string, policy: PolicyUpdate["policy"]) =>
    signPolicyUpdateLegacy(normalizePolicyUpdate({ village_id: VID, created_at: at, actor: "mallory", policy, policy_hash: policyHash(policy) }), signer.seed);
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
      codes: ["policy_replay"],
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
    {
      name: "garbage: an update whose previous_policy_hash is a path, not a hash",
      puller: "behind",
      transform: (kind) => (kind === "updates" ? updatesOf([{ ...asJson(u1) as Record<string, JsonValue>, previous_policy_hash: "../../../etc/passwd" }, u2, u3], u3.policy_hash) : null),
      codes: ["remote_error"],
    },
    {
      name: "garbage: an update whose village_id is not a village id",
      puller: "behind",
      transform: (kind) => (kind === "updates" ? updatesOf([{ ...asJson(u1) as Record<string, JsonValue>, village_id: "pv/../other" }, u2, u3], u3.policy_hash) : null),
      codes: ["remote_error"],
    },
    {
      name: "garbage: a next_cursor that is not a cursor",
      puller: "behind",
      transform: (kind) => (kind === "updates" ? { status: 200, body: { updates: [asJson(u1)], next_cursor: "?since=x&cursor=../..", head: u3.policy_hash } } : null),
      codes: ["remote_error"],
    },
    { name: "garbage: the origin answers 500", puller: "behind", transform: (kind) => (kind === "updates" ? { status: 500, body: { detail: "boom", code: "internal_error" } } : null), codes: ["internal_error", "remote_error"] },
    {
      name: "endless: empty pages, each with a next cursor",
      puller: "behind",
      transform: (kind) => (kind === "updates" ? { status: 200, body: { updates: [], next_cursor: "YzE6MA", head: u3.policy_hash } } : null),
      codes: ["remote_error", "policy_lineage"],
    },
    {
      name: "replay: the puller's own head served again as the next update",
      puller: "ahead",
      transform: (kind) => (kind === "latest" ? latestOf(u3) : updatesOf([u2, u3], u3.policy_hash)),
      codes: ["policy_replay"],
    },
    {
      name: "replay: an update it holds, with one more signature",
      puller: "ahead",
      transform: (kind) => (kind === "latest" ? latestOf(u3) : updatesOf([extraSigned, u3], u3.policy_hash)),
      codes: ["policy_replay"],
    },
    {
      name: "replay: an update it holds, its signature replaced by a fresh one",
      puller: "ahead",
      transform: (kind) => (kind === "latest" ? latestOf(u3) : updatesOf([resignedSame, u3], u3.policy_hash)),
      codes: ["policy_replay"],
    },
    {
      name: "replay: A -> B -> A, then A->B again (lineage fits)",
      puller: "back",
      transform: (kind) => (kind === "latest" ? latestOf(u3) : updatesOf([u3], u3.policy_hash)),
      codes: ["policy_replay"],
    },
    {
      name: "replay: a run that repeats one of its own entries",
      puller: "behind",
      transform: (kind) => (kind === "latest" ? latestOf(u3) : updatesOf([u1, u2, u3, u4, u3], u3.policy_hash)),
      codes: ["policy_replay"],
    },
    {
      name: "rollback: an update dated before the puller's newest, with fresh lineage",
      puller: "ahead",
      transform: (kind) => {
        const old = redated(u2, "2020-01-01T00:00:00Z", u2.policy_hash);
        return kind === "latest" ? latestOf(old) : updatesOf([old], old.policy_hash);
      },
      codes: ["policy_rollback"],
    },
    {
      name: "rollback: an update dated at the same instant as the puller's newest",
      puller: "ahead",
      transform: (kind) => {
        const same = redated(u2, u2.created_at, u2.policy_hash);
        return kind === "latest" ? latestOf(same) : updatesOf([same], same.policy_hash);
      },
      codes: ["policy_rollback"],
    },
    {
      name: "rollback: a v2 update without lineage, dated before the puller's newest",
      puller: "ahead",
      transform: (kind) => {
        const old = redated(u2, "2020-01-01T00:00:00Z", null);
        return kind === "latest" ? latestOf(old) : updatesOf([old], old.policy_hash);
      },
      codes: ["policy_rollback"],
    },
    {
      name: "rollback: a v1 artifact (no lineage), dated before the puller's newest",
      puller: "ahead",
      transform: (kind) => {
        const old = legacyV1("2020-01-01T00:00:00Z", { ...u2.policy, max_window_days: 51 });
        return kind === "latest" ? latestOf(old) : updatesOf([old], old.policy_hash);
      },
      codes: ["policy_rollback"],
    },
  ];

  const node: RunningNode = await startNode(origin);
  let current: Transform | null = null;
  const relay = startRelay(node.url, () => current);
  const outcomes: AttackOutcome[] = [];
  const directOutcomes: DirectOutcome[] = [];
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
      const data = a.puller === "behind" ? behind : a.puller === "ahead" ? ahead : back;
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

    // Straight at the village: the origin takes u4 (back to u2's content), then every replay and
    // rollback is sent over HTTP to the origin and with apply-local to a copy of it.
    await linksOk(["policy", "apply-remote", node.url, VID, join(o.dir, "u4.json"), "--token", adminToken]);
    const local = join(o.dir, "direct-local");
    cpSync(origin, local, { recursive: true });
    const newest = u4.created_at;
    const direct: Array<{ name: string; artifact: PolicyUpdate; codes: string[] }> = [
      { name: "the head's own artifact again", artifact: u4, codes: ["policy_replay"] },
      { name: "an old artifact of the chain", artifact: u1, codes: ["policy_replay"] },
      { name: "A -> B -> A, then A->B again (lineage fits)", artifact: u3, codes: ["policy_replay"] },
      { name: "an artifact of the chain with one more signature", artifact: extraSigned, codes: ["policy_replay"] },
      { name: "an artifact of the chain signed afresh", artifact: resignedSame, codes: ["policy_replay"] },
      { name: "fresh lineage, dated before the newest artifact", artifact: redated(u4, "2020-01-01T00:00:00Z", u4.policy_hash), codes: ["policy_rollback"] },
      { name: "fresh lineage, dated at the newest artifact's instant", artifact: redated(u4, newest, u4.policy_hash), codes: ["policy_rollback"] },
      { name: "v2 without lineage, dated before the newest artifact", artifact: redated(u4, "2020-01-01T00:00:00Z", null), codes: ["policy_rollback"] },
      { name: "v1 (no lineage), dated before the newest artifact", artifact: legacyV1("2020-01-01T00:00:00Z", { ...u4.policy, max_window_days: 52 }), codes: ["policy_rollback"] },
    ];
    for (const [i, d] of direct.entries()) {
      const file = join(o.dir, `direct-${i}.json`);
      writeFileSync(file, toJsonText(asJson(d.artifact)));
      for (const via of ["http", "apply-local"] as const) {
        const data = via === "http" ? origin : local;
        const before = fileState(data);
        const run = via === "http"
          ? await links(["policy", "apply-remote", node.url, VID, file, "--token", adminToken])
          : await links(["policy", "apply-local", VID, file, "--data", local]);
        const code = errorCode(run.stderr);
        const unchanged = fileState(data) === before;
        let why = "";
        if (run.code !== 1) why += `exit ${run.code}; `;
        if (!d.codes.includes(code ?? "")) why += `code ${code} not one of ${d.codes.join("/")}; `;
        if (!unchanged) why += "the village changed; ";
        directOutcomes.push({ name: d.name, via, exit: run.code, code, unchanged, ok: why === "", why });
      }
    }
  } finally {
    relay.stop();
    await node.stop();
  }
  for (const x of outcomes) console.log(`[faults] policy-feed attack: ${x.ok ? "refused" : "NOT REFUSED"} ${x.code ?? "-"} exit ${x.exit} ${x.ms.toFixed(0)} ms  ${x.name}${x.ok ? "" : `: ${x.why}`}`);
  for (const x of directOutcomes) console.log(`[faults] policy replay via ${x.via}: ${x.ok ? "refused" : "NOT REFUSED"} ${x.code ?? "-"} exit ${x.exit}  ${x.name}${x.ok ? "" : `: ${x.why}`}`);
  figures("policy-feed", {
    attacks: outcomes.length,
    refused_and_unchanged: outcomes.filter((x) => x.ok).length,
    honest_pull: `${honest.status}:${honest.updates}`,
    direct_attacks: directOutcomes.length,
    direct_refused_and_unchanged: directOutcomes.filter((x) => x.ok).length,
  });
  return { honest, outcomes, direct: directOutcomes };
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
      expect(r.outcomes.length).toBeGreaterThan(25);
      expect(r.outcomes.filter((o) => !o.ok).map((o) => `${o.name}: ${o.why}`)).toEqual([]);
    });
  });

  describe("when old or re-dated signed artifacts are sent straight at the village", () => {
    test("every replay and rollback is refused over HTTP and by apply-local, and the village is unchanged", () => {
      const r = result();
      expect(r.direct.length).toBe(18);
      expect(r.direct.filter((o) => !o.ok).map((o) => `${o.via} ${o.name}: ${o.why}`)).toEqual([]);
    });
  });
}
