/**
 * Traversal tricks in every id position, over HTTP (fetch and raw sockets, so literal ".." and
 * "\" reach the server) and on the command line. Next to the data directory sit a canary file
 * and a second, real data directory whose village and token would be accepted if an id ever
 * escaped: neither is ever served, read into a decision, or changed; nothing outside the data
 * directory changes, and every file inside it has a name the layout allows.
 */
import { DATA_LAYOUT as LAYOUT } from "../../fixtures/data-layout.ts";
import { describe, expect, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { links, listFiles } from "../../e2e/harness.ts";
import { startNode } from "../../e2e/node.ts";
import { bundleText, makeBundle, signingKey } from "../lib/bundles.ts";
import { snapshot } from "../lib/datadir.ts";
import { errorContractProblem, rawRequest, StatusHistogram } from "../lib/http.ts";
import { figures, type Sizes } from "../lib/scale.ts";
import { runScenarioOnce } from "../lib/suite.ts";
import { HIGH_RATE, makeVillage } from "../lib/village.ts";

/** Ids aimed at the canary and at the village of the neighbouring data directory. */
export const TRICKS = [
  "..",
  "../secret.json",
  "../../secret.json",
  "../secret",
  "../outside/villages/evil",
  "../../outside/villages/evil",
  "../../../outside/villages/evil",
  "..%2Fsecret.json",
  "..%2F..%2Foutside%2Fvillages%2Fevil",
  "%2e%2e%2fsecret.json",
  "%252e%252e%252fsecret.json",
  "..\\secret.json",
  "..\\..\\outside\\villages\\evil",
  "%c0%ae%c0%ae%c0%afsecret.json",
  "%e0%80%ae%e0%80%ae/secret.json",
  "\uff0e\uff0e\uff0fsecret.json",
  "/etc/passwd",
  "evil/../../secret.json",
  "v1/../../secret.json",
  "secret.json\u0000",
  "evil\u0000",
  "....//secret.json",
  ".",
  "./v1",
  "v1/.",
  "~/secret.json",
];


export interface PathsResult {
  httpRequests: number;
  cliRuns: number;
  problems: string[];
  outsideChanged: string[];
  offLayout: string[];
}

const VID = "v1";

export async function runPaths(o: { dir: string; cliSample: number }): Promise<PathsResult> {
  const data = join(o.dir, "data");
  const outside = join(o.dir, "outside");
  const marker = `canary-${Math.random().toString(36).slice(2)}`;
  writeFileSync(join(o.dir, "secret.json"), JSON.stringify({ bundle_id: "0".repeat(32), secret: marker }));
  writeFileSync(join(o.dir, "secret"), marker);
  // A real village in a neighbouring data directory: its admin token must never work in ours.
  const evil = await makeVillage(outside, "evil", { scratch: o.dir, admin: "mallory" });
  const evilToken = evil.tokens.mallory as string;
  const v = await makeVillage(data, VID, { members: ["bob"], scratch: o.dir });
  const key = signingKey();
  const problems: string[] = [];
  // Behind a "proxy" on loopback, each request from its own client address: the failed
  // authentications of the neighbour's token then never trip the per-address limit, so every
  // trick reaches as deep as it can.
  const node = await startNode(data, ["--trust-proxy", "127.0.0.1"]);
  let clients = 0;
  const client = () => {
    clients++;
    return { "X-Forwarded-For": `10.1.${(clients >> 8) & 255}.${clients & 255}`, "X-Forwarded-Proto": "https" };
  };
  const held = await fetch(`${node.url}/villages/${VID}/inbox`, {
    method: "POST",
    headers: { authorization: `Bearer ${v.tokens.bob}`, "content-type": "application/json" },
    body: bundleText(makeBundle(key, "held", { predicate: "links.held" })),
  });
  const heldId = ((await held.json()) as { bundle_id: string }).bundle_id;
  const before = snapshot(o.dir, (rel) => rel.startsWith("data/") || rel.endsWith("-policy.json"));
  const secretStat = statSync(join(o.dir, "secret.json")).mtimeMs;

  let httpRequests = 0;
  const statuses = new StatusHistogram();
  const judge = (where: string, status: number, contentType: string | null, body: string, method: string) => {
    httpRequests++;
    statuses.add(status);
    if (status >= 500 || status === 0) problems.push(`${where}: ${status} ${body.slice(0, 160)}`);
    if (body.includes(marker)) problems.push(`${where}: served the canary`);
    if (body.includes('"evil"') || body.includes("Village evil")) problems.push(`${where}: served the neighbouring village`);
    // A bare 400 (no body) is Bun's HTTP parser refusing the request line itself.
    if (!(status === 400 && body === "" && contentType === null)) {
      const p = errorContractProblem(status, contentType, body, method, [data, o.dir]);
      if (p) problems.push(`${where}: ${status} ${p}`);
    }
  };

  const routes = (id: string, bid: string): Array<[string, string]> => [
    ["GET", `/villages/${id}/claims`],
    ["GET", `/villages/${id}/claims/latest`],
    ["GET", `/villages/${id}/quarantine`],
    ["GET", `/villages/${id}/policy/latest`],
    ["GET", `/villages/${id}/policy/updates`],
    ["POST", `/villages/${id}/inbox`],
    ["POST", `/villages/${id}/policy`],
    ["POST", `/villages/${VID}/quarantine/${bid}/approve`],
    ["POST", `/villages/${VID}/quarantine/${bid}/reject`],
    ["POST", `/villages/${id}/quarantine/${heldId}/approve`],
  ];
  const bodyFor = (path: string) =>
    path.endsWith("/reject") ? JSON.stringify({ reason: "x" }) : path.endsWith("/policy") ? JSON.stringify({ rate_limit_per_min: HIGH_RATE }) : bundleText(makeBundle(key, "trick"));
  try {
    for (const trick of TRICKS) {
      for (const token of [v.tokens.alice as string, evilToken]) {
        // through fetch: the id percent-encoded (the URL parser would resolve a literal "..")
        const enc = encodeURIComponent(trick);
        for (const [method, path] of routes(enc, enc)) {
          const res = await fetch(`${node.url}${path}?subject=${enc}`, {
            method,
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...client() },
            body: method === "POST" ? bodyFor(path) : undefined,
          });
          judge(`fetch ${method} ${path}`, res.status, res.headers.get("content-type"), await res.text(), method);
        }
        // on a raw socket: the id exactly as written (only bytes outside printable ASCII encoded)
        const literal = [...trick].map((c) => (/^[\x21-\x7e]$/.test(c) ? c : encodeURIComponent(c))).join("");
        for (const [method, path] of routes(literal, literal)) {
          const body = method === "POST" ? bodyFor(path) : "";
          const forwarded = Object.entries(client()).map(([k, val]) => `${k}: ${val}`);
          const head = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close", `Authorization: Bearer ${token}`, "Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`, ...forwarded];
          const r = await rawRequest(node.port, `${head.join("\r\n")}\r\n\r\n${body}`);
          judge(`raw ${method} ${path}`, r.status, r.headers["content-type"] ?? null, r.body, method);
        }
      }
    }
  } finally {
    await node.stop();
  }
  // The request log names the member a token belonged to: the neighbour's admin never appears.
  const asMallory = node.log().split("\n").filter((l) => l.includes('"member":"mallory"'));
  problems.push(...asMallory.map((l) => `the neighbouring village's token authenticated: ${l.slice(0, 200)}`));

  // The CLI: every command that takes an id, with the tricks (all of them, or a sample).
  // (an argv string cannot hold a NUL byte)
  const argvTricks = TRICKS.filter((t) => !t.includes("\u0000"));
  const tricks = o.cliSample >= argvTricks.length ? argvTricks : argvTricks.filter((_, i) => i % Math.ceil(argvTricks.length / o.cliSample) === 0);
  const bundleFile = join(o.dir, "b.json");
  writeFileSync(bundleFile, bundleText(makeBundle(key, "cli")));
  const policyFile = join(o.dir, "p.json");
  writeFileSync(policyFile, JSON.stringify({ rate_limit_per_min: 5 }));
  const commands = (id: string): string[][] => [
    ["villages", "show", id],
    ["villages", "members", id],
    ["villages", "add-member", id, "mallory"],
    ["villages", "create", id, "x", "mallory"],
    ["villages", "allow-issuer-id", id, "x"],
    ["policy", "apply-local", id, policyFile],
    ["claims", "ingest", bundleFile, "--village-id", id],
    ["claims", "query", "--village-id", id],
    ["quarantine", "approve", id],
    ["quarantine", "reject", id, "--reason", "x"],
    ["quarantine", "show", id],
    ["audit", "tail", "--village-id", id],
  ];
  let cliRuns = 0;
  const jobs: Promise<void>[] = [];
  for (const trick of tricks) {
    for (const args of commands(trick)) {
      jobs.push(
        links([...args, "--data", data]).then((r) => {
          cliRuns++;
          if (r.code === 0) problems.push(`links ${args.join(" ")}: exit 0`);
          if (r.code !== 1 && r.code !== 2) problems.push(`links ${args.join(" ")}: exit ${r.code} ${r.stderr.slice(0, 160)}`);
          if (`${r.stdout}${r.stderr}`.includes(marker)) problems.push(`links ${args.join(" ")}: printed the canary`);
        }),
      );
      if (jobs.length >= 4) await Promise.all(jobs.splice(0));
    }
  }
  await Promise.all(jobs);

  const after = snapshot(o.dir, (rel) => rel.startsWith("data/") || rel.endsWith("-policy.json"));
  const outsideChanged: string[] = [];
  for (const [rel, stamp] of after) if (before.get(rel) !== stamp && rel !== "b.json" && rel !== "p.json") outsideChanged.push(rel);
  for (const rel of before.keys()) if (!after.has(rel)) outsideChanged.push(`${rel} (gone)`);
  if (readFileSync(join(o.dir, "secret.json"), "utf8").includes(marker) === false || statSync(join(o.dir, "secret.json")).mtimeMs !== secretStat) {
    outsideChanged.push("secret.json");
  }
  const offLayout = listFiles(data).filter((f) => !LAYOUT.some((re) => re.test(f)));
  figures("paths", {
    tricks: TRICKS.length,
    http_requests: httpRequests,
    cli_runs: cliRuns,
    problems: problems.length,
    outside_changed: outsideChanged.length,
    files_off_layout: offLayout.length,
  });
  console.log(`[faults] paths statuses: ${statuses}`);
  for (const p of problems.slice(0, 10)) console.log(`[faults] paths PROBLEM: ${p}`);
  return { httpRequests, cliRuns, problems, outsideChanged, offLayout };
}

/**
 * The traversal tests, sized by the caller: `npm test` (SIZES.fast: every trick over HTTP, a
 * sample on the command line) and `npm run test:faults` (faultsSizes(): every trick everywhere).
 */
export function pathsSuite(sizes: Sizes, opts: { timeoutMs: number }): void {
  const result = runScenarioOnce("links-faults-paths-", opts.timeoutMs, (dir) =>
    runPaths({ dir, cliSample: sizes.fullPathCorpus ? TRICKS.length : 4 }),
  );

  describe("when every id position gets traversal tricks", () => {
    test("no answer or command serves the canary or the neighbouring village, accepts its token, or fails badly", () => {
      const r = result();
      expect(r.httpRequests).toBeGreaterThan(500);
      expect(r.problems).toEqual([]);
    });
    test("nothing outside the data directory changed, and every file inside it has a name the layout allows", () => {
      const r = result();
      expect(r.outsideChanged).toEqual([]);
      expect(r.offLayout).toEqual([]);
    });
  });
}
