/**
 * The operator's surface in the compiled binary: /metrics (strict format, real figures after a
 * push), /openapi.json (the same document the code builds in process), /admin (its inline assets
 * made it into the binary), and `serve --metrics-public`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { makeNode } from "../unit/server/helpers.ts";
import { parseExposition, sampleValue } from "../unit/server/prom-parse.ts";
import { lastLine, links, linksOk, makeTempDir, signedBundleFile, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";

const VID = "meadow";
let tmp: TempDir;
let node: RunningNode;
let token = "";

beforeAll(async () => {
  tmp = makeTempDir("links-surface-");
  const D = ["--data", tmp.join("data")];
  await linksOk(["villages", "create", VID, "Meadow", "alice", ...D]);
  token = lastLine((await linksOk(["villages", "add-member", VID, "bob", "--role", "member", ...D])).stdout);
  await linksOk(["keys", "gen", "--out-dir", tmp.join("k")]);
  node = await startNode(tmp.join("data"), ["--metrics-public", "--verify-workers", "1"]);
}, 30_000);

afterAll(async () => {
  await node?.stop();
  tmp?.remove();
}, 30_000);

describe("the compiled node's operator surface", () => {
  test("serve --help names --metrics-public", async () => {
    const help = await links(["serve", "--help"]);
    expect(`${help.stdout}${help.stderr}`).toContain("--metrics-public");
  }, 30_000);

  test("/metrics is well-formed and counts a push through the inbox and its group commit", async () => {
    const bundle = await signedBundleFile(tmp.path, "b", tmp.join("k", "ed25519.key"), { windowDays: 7 });
    const pushed = await fetch(`${node.url}/villages/${VID}/inbox`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: readFileSync(bundle.file),
    });
    expect(pushed.status).toBe(200);
    const res = await fetch(`${node.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const fams = parseExposition(text);
    expect(sampleValue(fams, "links_inbox_decisions_total", "links_inbox_decisions_total", { village: VID, decision: "accepted" })).toBe(1);
    expect(sampleValue(fams, "links_group_commit_batch_size", "links_group_commit_batch_size_sum")).toBe(1);
    expect(sampleValue(fams, "links_http_requests_total", "links_http_requests_total", { route: "/villages/:id/inbox", status: "200" })).toBe(1);
    // the compiled binary starts its verification worker (an entry point of its own in the build)
    expect(sampleValue(fams, "links_inbox_signatures_verified_total", "links_inbox_signatures_verified_total", { where: "worker" })).toBe(1);
    expect(sampleValue(fams, "links_inbox_signatures_verified_total", "links_inbox_signatures_verified_total", { where: "main" })).toBe(0);
    expect(text).not.toContain(bundle.bundleId);
    expect(text).not.toContain(token);
    console.log(`compiled node: /metrics has ${fams.size} families, ${text.length} bytes, strict format ok`);
  }, 30_000);

  test("/openapi.json is the document the code builds, with /metrics public under --metrics-public", async () => {
    const fromBinary = (await (await fetch(`${node.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, Record<string, unknown>>> };
    expect(fromBinary.paths["/metrics"]?.get?.["x-links-access"]).toBe("public");
    const local = makeNode({ server: { metricsPublic: true } });
    try {
      const inProcess = (await (await local.send("GET", "/openapi.json")).json()) as typeof fromBinary;
      expect(fromBinary).toEqual(inProcess);
    } finally {
      await local.cleanup();
    }
  }, 30_000);

  test("/admin carries its script and style inside the binary", async () => {
    const res = await fetch(`${node.url}/admin`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("script-src 'sha256-");
    const html = await res.text();
    expect(html).toContain('sessionStorage.getItem(KEY)');
    expect(html).toContain("grid-template-columns");
  }, 30_000);
});
