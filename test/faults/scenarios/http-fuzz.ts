/**
 * Property-based fuzzing of a running node over HTTP: for every generated request (see
 * fuzz-requests.ts) the answer is never a 5xx, every error is JSON {"detail", "code"} without a
 * host path or a stack, no request hangs, and at the end the process is alive, /healthz answers,
 * every file of the data directory parses, and a canary next to the data directory was never
 * served nor touched.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lastLine, linksOk } from "../../e2e/harness.ts";
import { startNode, type RunningNode } from "../../e2e/node.ts";
import { signingKey } from "../lib/bundles.ts";
import { checkDataDir, snapshot } from "../lib/datadir.ts";
import { requestArb, rawOnlyArb, type FuzzContext, type FuzzRequest } from "../lib/fuzz-requests.ts";
import { errorContractProblem, rawRequest, runPool, StatusHistogram } from "../lib/http.ts";
import { faultsSeed, figures, type Sizes } from "../lib/scale.ts";
import { runScenarioOnce } from "../lib/suite.ts";
import { HIGH_RATE, makeVillage } from "../lib/village.ts";

export interface FuzzResult {
  sent: number;
  raw: number;
  /** requests fetch itself refused to send (e.g. a header value it will not encode) */
  clientRefused: number;
  /**
   * requests Bun's HTTP parser answered itself: an invalid header value (a bare 400) or an
   * unknown method on a raw socket (connection closed)
   */
  parserRefused: number;
  seconds: number;
  perSecond: number;
  statuses: StatusHistogram;
  /** 5xx answers, hangs, broken error bodies: "<label> <target>: <why>" */
  failures: string[];
  accepted: number;
  quarantined: number;
  aliveAtEnd: boolean;
  serverErrorLines: string[];
  corruptFiles: string[];
  canaryServed: number;
  outsideChanged: string[];
  seed: number;
}

/** Methods Bun's HTTP parser takes; it closes the connection on others. */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]);

const CANARY = `canary-${Math.random().toString(36).slice(2)}-never-serve-me`;

async function send(node: RunningNode, req: FuzzRequest): Promise<{ status: number; contentType: string | null; body: string } | "refused" | "parser-closed"> {
  if (req.raw) {
    // Only what HTTP/1.1 allows in a request line: other bytes are percent-encoded (as UTF-8).
    const target = [...req.target].map((ch) => (/^[\x21-\x7e]$/.test(ch) ? ch : encodeURIComponent(ch))).join("");
    const head = [`${req.method} ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
    for (const [k, v] of Object.entries(req.headers)) head.push(`${k}: ${v.replace(/[\r\n]/g, "")}`);
    const body = req.body ?? new Uint8Array(0);
    if (req.body !== null) head.push(`Content-Length: ${body.length}`);
    const bytes = Buffer.concat([Buffer.from(`${head.join("\r\n")}\r\n\r\n`, "latin1"), Buffer.from(body)]);
    const r = await rawRequest(node.port, bytes, 30_000);
    if (r.noAnswer) {
      // Bun's HTTP parser drops a connection whose method it does not know, before the app
      if (!KNOWN_METHODS.has(req.method)) return "parser-closed";
      return { status: 0, contentType: null, body: "no answer" };
    }
    return { status: r.status, contentType: r.headers["content-type"] ?? null, body: r.body };
  }
  let res: Response;
  try {
    res = await fetch(`${node.url}${req.target}`, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    const name = (e as Error).name;
    if (name === "TimeoutError" || name === "AbortError") return { status: 0, contentType: null, body: "timed out (30 s)" };
    // fetch refuses some methods, header values and URLs before anything is sent
    if (e instanceof TypeError || /invalid|header|method|url/i.test((e as Error).message)) return "refused";
    return { status: 0, contentType: null, body: `connection failed: ${(e as Error).message}` };
  }
  return { status: res.status, contentType: res.headers.get("content-type"), body: await res.text() };
}

export async function runHttpFuzz(o: { dir: string; requests: number; concurrency: number; seed: number; chunk?: number }): Promise<FuzzResult> {
  const data = join(o.dir, "data");
  writeFileSync(join(o.dir, "secret.json"), JSON.stringify({ secret: CANARY }));
  const canaryMtime = statSync(join(o.dir, "secret.json")).mtimeMs;
  const v = await makeVillage(data, "fuzz", {
    members: ["bob", ["olga", "observer"], "rex", "rot"],
    scratch: o.dir,
  });
  await linksOk(["villages", "revoke-member", "fuzz", "rex", "--data", data]);
  const rotated = await linksOk(["villages", "rotate-token", "fuzz", "rot", "--data", data]);
  const other = await makeVillage(data, "other", { scratch: o.dir });
  const outsideBefore = snapshot(o.dir, (rel) => rel.startsWith("data/"));
  const ctx: FuzzContext = {
    vid: "fuzz",
    otherVid: "other",
    tokens: {
      admin: v.tokens.alice as string,
      member: v.tokens.bob as string,
      observer: v.tokens.olga as string,
      revoked: v.tokens.rex as string,
      rotatedOld: v.tokens.rot as string,
      other: other.tokens.alice as string,
    },
    keys: [signingKey(), signingKey(), signingKey()],
    quarantined: [],
    stored: [],
    basePolicy: { rate_limit_per_min: HIGH_RATE },
  };
  void lastLine(rotated.stdout); // the new token is not used: only the old one, which must fail

  const result: FuzzResult = {
    sent: 0,
    raw: 0,
    clientRefused: 0,
    parserRefused: 0,
    seconds: 0,
    perSecond: 0,
    statuses: new StatusHistogram(),
    failures: [],
    accepted: 0,
    quarantined: 0,
    aliveAtEnd: false,
    serverErrorLines: [],
    corruptFiles: [],
    canaryServed: 0,
    outsideChanged: [],
    seed: o.seed,
  };
  const node = await startNode(data, ["--trust-proxy", "127.0.0.1"]);
  const chunk = o.chunk ?? 500;
  const arb = fc.oneof({ weight: 49, arbitrary: requestArb(ctx) }, { weight: 1, arbitrary: rawOnlyArb(ctx) });
  const started = performance.now();
  try {
    // Until `requests` really went out (fetch refuses a few generated ones before sending).
    for (let round = 0; result.sent < o.requests; round++) {
      const n = Math.min(chunk, Math.ceil((o.requests - result.sent) * 1.01) + 1);
      const batch = fc.sample(arb, { numRuns: n, seed: o.seed + round });
      await runPool(batch, o.concurrency, async (req) => {
        const r = await send(node, req);
        if (r === "refused") {
          result.clientRefused++;
          return;
        }
        if (r === "parser-closed") {
          result.parserRefused++;
          result.sent++;
          return;
        }
        result.sent++;
        if (req.raw) result.raw++;
        if (r.status === 400 && r.body === "" && r.contentType === null) {
          // A bare 400 is Bun's HTTP parser (a header value with a control character, a target
          // such as "*" or dot segments above the root): the app never saw the request and
          // always answers JSON.
          result.parserRefused++;
          result.statuses.add(r.status);
          return;
        }
        result.statuses.add(r.status);
        const where = `${req.label} ${req.method} ${req.target.slice(0, 160)}`;
        if (r.status === 0 || r.status >= 500) result.failures.push(`${where}: ${r.status} ${r.body.slice(0, 200)}`);
        const problem = errorContractProblem(r.status, r.contentType, r.body, req.method.toUpperCase(), [data, o.dir]);
        if (problem && r.status !== 0) result.failures.push(`${where}: ${r.status} ${problem}`);
        if (r.body.includes(CANARY)) result.canaryServed++;
        if (r.status === 200 || r.status === 202) {
          try {
            const b = JSON.parse(r.body) as { status?: string; bundle_id?: string };
            if (b.status === "accepted" && b.bundle_id) {
              result.accepted++;
              if (ctx.stored.length < 5000) ctx.stored.push(b.bundle_id);
            } else if (b.status === "quarantined" && b.bundle_id) {
              result.quarantined++;
              if (ctx.quarantined.length < 5000) ctx.quarantined.push(b.bundle_id);
            }
          } catch {
            // not every 2xx names a bundle
          }
        }
      });
      // The fuzzer may apply odd (valid) policies: put the high rate limit back now and then.
      if (round % 4 === 3) await restorePolicy(node, ctx, data, o.dir);
    }
    result.seconds = (performance.now() - started) / 1000;
    result.perSecond = Math.round(result.sent / result.seconds);
    const health = await fetch(`${node.url}/healthz`);
    result.aliveAtEnd = health.status === 200 && ((await health.json()) as { status?: string }).status === "ok";
  } finally {
    result.serverErrorLines = node
      .log()
      .split("\n")
      .filter((l) => l.includes('"level":"error"'))
      .map((l) => l.slice(0, 400));
    await node.stop();
  }
  result.corruptFiles = checkDataDir(data).corrupt;
  if (readFileSync(join(o.dir, "secret.json"), "utf8") !== JSON.stringify({ secret: CANARY }) || statSync(join(o.dir, "secret.json")).mtimeMs !== canaryMtime) {
    result.outsideChanged.push("secret.json");
  }
  const outsideAfter = snapshot(o.dir, (rel) => rel.startsWith("data/") || rel.endsWith("-policy.json"));
  for (const [rel, stamp] of outsideAfter) if (outsideBefore.get(rel) !== stamp && !rel.endsWith("-policy.json")) result.outsideChanged.push(rel);
  for (const rel of outsideBefore.keys()) if (!outsideAfter.has(rel) && !rel.endsWith("-policy.json")) result.outsideChanged.push(`${rel} (gone)`);

  figures("http-fuzz", {
    requests_fuzzed: result.sent,
    raw_socket: result.raw,
    refused_by_fetch_before_sending: result.clientRefused,
    refused_by_http_parser: result.parserRefused,
    seconds: result.seconds.toFixed(1),
    requests_per_s: result.perSecond,
    concurrency: o.concurrency,
    seed: o.seed,
    "5xx": result.statuses.count((s) => s >= 500),
    contract_failures: result.failures.length,
    accepted: result.accepted,
    quarantined: result.quarantined,
    crashes: result.aliveAtEnd ? 0 : 1,
    server_error_log_lines: result.serverErrorLines.length,
    corrupt_files: result.corruptFiles.length,
    canary_served: result.canaryServed,
    outside_changed: result.outsideChanged.length,
  });
  console.log(`[faults] http-fuzz statuses: ${result.statuses}`);
  for (const f of result.failures.slice(0, 10)) console.log(`[faults] http-fuzz FAILURE: ${f}`);
  for (const l of result.serverErrorLines.slice(0, 3)) console.log(`[faults] http-fuzz server error: ${l}`);
  return result;
}

async function restorePolicy(node: RunningNode, ctx: FuzzContext, data: string, scratch: string): Promise<void> {
  const res = await fetch(`${node.url}/villages/${ctx.vid}/policy`, {
    method: "POST",
    headers: { authorization: `Bearer ${ctx.tokens.admin}`, "content-type": "application/json", "x-forwarded-for": "10.255.255.1", "x-forwarded-proto": "https" },
    body: JSON.stringify(ctx.basePolicy),
  });
  await res.text();
  if (res.status !== 200) {
    const file = join(scratch, "restore-policy.json");
    writeFileSync(file, JSON.stringify(ctx.basePolicy));
    await linksOk(["policy", "apply-local", ctx.vid, file, "--replace", "--data", data]);
  }
}

/**
 * The HTTP fuzzing tests, sized by the caller: `npm test` (SIZES.fast) and `npm run test:faults`
 * (faultsSizes()). `acceptedAbove`: how many accepted bundles show the fuzz reached deep.
 */
export function httpFuzzSuite(sizes: Sizes, opts: { timeoutMs: number; acceptedAbove: number }): void {
  const result = runScenarioOnce("links-faults-fuzz-", opts.timeoutMs, (dir) =>
    runHttpFuzz({ dir, requests: sizes.fuzzRequests, concurrency: sizes.fuzzConcurrency, seed: faultsSeed() }),
  );

  describe(`when a running node gets ${sizes.fuzzRequests} fuzzed requests`, () => {
    test("it really was fuzzed, deep: bundles were accepted and quarantined", () => {
      const r = result();
      expect(r.sent).toBeGreaterThan(sizes.fuzzRequests * 0.9);
      expect(r.accepted).toBeGreaterThan(opts.acceptedAbove);
      expect(r.quarantined).toBeGreaterThan(0);
    });
    test("no answer is a 5xx, none hangs, every error is JSON {detail, code} without host paths", () => {
      expect(result().failures).toEqual([]);
    });
    test("the node is alive at the end and logged no unexpected failure", () => {
      const r = result();
      expect(r.aliveAtEnd).toBe(true);
      expect(r.serverErrorLines).toEqual([]);
    });
    test("every file it wrote parses, and nothing outside its data directory was served or touched", () => {
      const r = result();
      expect(r.corruptFiles).toEqual([]);
      expect(r.canaryServed).toBe(0);
      expect(r.outsideChanged).toEqual([]);
    });
  });
}
