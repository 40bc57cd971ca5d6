/**
 * Claims too many for one bundle, with the real `dist/links` and a real node: `claims build
 * --max-bytes` splits them into a directory of bundles that each fit, `claims sign`, `claims
 * ingest` and `sync push-village` take that directory, a node's 413 says how to split, and a
 * missing village is named as local or remote.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorCode, json, lastLine, links, linksOk, makeTempDir, signedBundleFile, writeVectorKeyFile, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";

let tmp: TempDir;
let key: string;
let edgesFile: string;
const EDGES = 80;
const MAX = 4096;

interface Claim {
  subject: string;
  object: string;
  value: number;
}
interface BundleFile {
  bundle_id: string;
  claims: Claim[];
}

const readBundle = (file: string) => JSON.parse(readFileSync(file, "utf8")) as BundleFile;
const numbered = (dir: string) =>
  readdirSync(dir)
    .filter((n) => /^\d+\.json$/.test(n))
    .sort((a, b) => parseInt(a) - parseInt(b));

beforeAll(() => {
  tmp = makeTempDir("links-e2e-bundles-");
  key = writeVectorKeyFile(tmp.path);
  edgesFile = tmp.join("edges.json");
  const edges = Array.from({ length: EDGES }, (_, i) => ({
    from_entity_id: `wikipedia:en:User_${String(i).padStart(3, "0")}`,
    to_entity_id: `wikipedia:en:Ünïcode_${i % 7}`,
    weight: Math.log1p((i % 5) + 1),
    window_days: 30,
    derivation: "log(1 + count_30d)",
  }));
  // pretty-printed on purpose: build reads any layout of the array
  writeFileSync(edgesFile, JSON.stringify(edges, null, 2));
});
afterAll(() => tmp.remove());

async function build(out: string, extra: string[] = []) {
  return links(["claims", "build", "--edges", edgesFile, "--issuer", "node-a", "--window-days", "30", "--out", out, ...extra]);
}

describe("claims build --max-bytes", () => {
  let unsigned: string;
  let signed: string;
  let built: { bundles: { file: string; bundle_id: string; claims: number; signed_bytes: number }[]; claims: number; directory: boolean };

  beforeAll(async () => {
    unsigned = tmp.join("unsigned");
    signed = tmp.join("signed");
    const r = await build(unsigned, ["--max-bytes", "4KiB", "--json"]);
    expect(r.code).toBe(0);
    built = json(r);
  });

  test("writes a directory of <n>.json bundles when the claims need several", () => {
    expect(built.directory).toBe(true);
    expect(built.bundles.length).toBeGreaterThan(3);
    expect(numbered(unsigned)).toEqual(built.bundles.map((_, i) => `${i + 1}.json`));
    expect(built.claims).toBe(EDGES);
  });

  test("holds every claim exactly once, in the order of the edges", () => {
    const claims = numbered(unsigned).flatMap((n) => readBundle(join(unsigned, n)).claims);
    const edges = JSON.parse(readFileSync(edgesFile, "utf8")) as { from_entity_id: string; to_entity_id: string; weight: number }[];
    expect(claims.map((c) => [c.subject, c.object, c.value])).toEqual(edges.map((e) => [e.from_entity_id, e.to_entity_id, e.weight]));
  });

  test("claims sign takes the directory; every signed file is at most --max-bytes and verifies", async () => {
    const r = await linksOk(["claims", "sign", unsigned, "--key", key, "--out", signed]);
    const names = numbered(signed);
    expect(names).toEqual(numbered(unsigned));
    expect(r.stdout.trim().split("\n")).toEqual(names.map((n) => readBundle(join(signed, n)).bundle_id));
    names.forEach((n, i) => {
      const size = statSync(join(signed, n)).size;
      expect(size).toBeLessThanOrEqual(MAX);
      expect(size).toBe(built.bundles[i]?.signed_bytes as number);
    });
    const verified = await Promise.all(names.map((n) => links(["claims", "verify", join(signed, n)])));
    expect(verified.map((v) => v.code)).toEqual(names.map(() => 0));
  });

  test("one bundle when the claims fit: --out stays a file, as before", async () => {
    const out = tmp.join("one.json");
    const r = await linksOk(["claims", "build", "--edges", edgesFile, "--issuer", "node-a", "--window-days", "30", "--out", out]);
    expect(readBundle(out).claims).toHaveLength(EDGES);
    expect(lastLine(r.stdout)).toBe(readBundle(out).bundle_id);
  });

  test("an existing directory as --out gets <n>.json even for one bundle", async () => {
    const dir = tmp.join("always-dir");
    mkdirSync(dir);
    await linksOk(["claims", "build", "--edges", edgesFile, "--issuer", "node-a", "--window-days", "30", "--out", dir]);
    expect(numbered(dir)).toEqual(["1.json"]);
  });

  test("a rebuild with fewer bundles removes the stale <n>.json files and says so", async () => {
    const dir = tmp.join("rebuild");
    await linksOk(["claims", "build", "--edges", edgesFile, "--issuer", "node-a", "--window-days", "30", "--out", dir, "--max-bytes", "3KiB"]);
    const before = numbered(dir).length;
    const r = await linksOk(["claims", "build", "--edges", edgesFile, "--issuer", "node-a", "--window-days", "30", "--out", dir, "--max-bytes", "8KiB"]);
    const after = numbered(dir).length;
    expect(after).toBeLessThan(before);
    expect(r.stderr).toContain(`removed ${before - after} bundle files left in ${dir} by an earlier build`);
    const claims = numbered(dir).flatMap((n) => readBundle(join(dir, n)).claims);
    expect(claims).toHaveLength(EDGES);
  });

  test("several bundles cannot go into an existing file: refused, the file untouched", async () => {
    const file = tmp.join("a-file.json");
    writeFileSync(file, "keep me");
    const r = await build(file, ["--max-bytes", "4KiB"]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("file_exists");
    expect(readFileSync(file, "utf8")).toBe("keep me");
  });

  test("a claim that alone does not fit is refused, naming it", async () => {
    // an empty signed bundle of node-a is about 330 bytes; each claim here adds about 250
    const r = await build(tmp.join("too-small"), ["--max-bytes", "450"]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("invalid_argument");
    expect(r.stderr).toMatch(/claim 1 alone makes a signed bundle of \d+ bytes, over --max-bytes 450/);
  });

  test("claims ingest takes the directory: every claim indexed once, a second run all duplicates", async () => {
    const data = tmp.join("ingest-data");
    await linksOk(["villages", "create", "v1", "V", "alice", "--data", data]);
    const first = json<{ status: string; accepted: number; duplicate: number; quarantined: number; bundles: { file: string; status: string }[] }>(
      await linksOk(["claims", "ingest", signed, "--village-id", "v1", "--data", data, "--json"]),
    );
    expect(first).toMatchObject({ status: "ok", accepted: built.bundles.length, duplicate: 0, quarantined: 0 });
    expect(first.bundles.map((b) => b.file)).toEqual(numbered(signed).map((n) => join(signed, n)));
    const rows = json<unknown[]>(await linksOk(["claims", "query", "--village-id", "v1", "--data", data, "--json"]));
    expect(rows).toHaveLength(EDGES);
    const again = await linksOk(["claims", "ingest", signed, "--village-id", "v1", "--data", data]);
    expect(again.stderr).toContain(`ingested ${built.bundles.length} bundles into v1: 0 accepted, ${built.bundles.length} duplicate, 0 quarantined`);
  });

  test("a refusal in the middle of claims ingest names the bundle and what was ingested before it", async () => {
    const data = tmp.join("ingest-half-bad-data");
    await linksOk(["villages", "create", "v2", "V", "alice", "--data", data]);
    const dir = tmp.join("ingest-half-bad");
    mkdirSync(dir);
    const fresh = await Promise.all([1, 2, 3].map((i) => signedBundleFile(tmp.path, `ing-${i}`, key, { subject: `ing-${i}` })));
    fresh.forEach((b, i) => copyFileSync(b.file, join(dir, `${i + 1}.json`)));
    writeFileSync(join(dir, "2.json"), readFileSync(join(dir, "2.json"), "utf8").replace("ing-2", "ing-X"));
    const r = await links(["claims", "ingest", dir, "--village-id", "v2", "--data", data, "--json"]);
    expect(r.code).toBe(1);
    const doc = json<{ status: string; code: string; detail: string }>(r);
    expect(doc).toMatchObject({ status: "error", code: "bundle_id_mismatch" });
    expect(doc.detail).toContain(`${join(dir, "2.json")}:`);
    expect(doc.detail).toContain("bundle 2 of 3; the 1 before it were ingested, the rest not tried");
    const rows = json<{ subject: string }[]>(await linksOk(["claims", "query", "--village-id", "v2", "--data", data, "--json"]));
    expect(rows.map((row) => row.subject)).toEqual(["ing-1"]);
  });
});

describe("sync push-village with a node", () => {
  let data: string;
  let node: RunningNode;
  let small: RunningNode;
  let token: string;
  let smallToken: string;
  let signed: string;

  beforeAll(async () => {
    data = tmp.join("node-data");
    token = lastLine((await linksOk(["villages", "create", "garden", "Garden", "alice", "--data", data])).stdout);
    node = await startNode(data);
    const smallData = tmp.join("small-node-data");
    smallToken = lastLine((await linksOk(["villages", "create", "garden", "Garden", "alice", "--data", smallData])).stdout);
    small = await startNode(smallData, ["--max-body", "2KiB"]);
    const unsigned = tmp.join("push-unsigned");
    signed = tmp.join("push-signed");
    await linksOk(["claims", "build", "--edges", edgesFile, "--issuer", "node-a", "--window-days", "30", "--out", unsigned, "--max-bytes", "8KiB"]);
    await linksOk(["claims", "sign", unsigned, "--key", key, "--out", signed]);
  });
  afterAll(async () => {
    await node.stop();
    await small.stop();
  });

  test("takes a directory and prints one JSON document summarizing each bundle", async () => {
    const r = await linksOk(["sync", "push-village", node.url, "garden", "--bundle", signed, "--token", token, "--json"]);
    const doc = json<{ status: string; accepted: number; duplicate: number; bundles: { file: string; status: string; bundle_id: string }[] }>(r);
    const names = numbered(signed);
    expect(doc).toMatchObject({ status: "ok", accepted: names.length, duplicate: 0, quarantined: 0 });
    expect(doc.bundles.map((b) => [b.file, b.status, b.bundle_id])).toEqual(names.map((n) => [join(signed, n), "accepted", readBundle(join(signed, n)).bundle_id]));
    const again = await linksOk(["sync", "push-village", node.url, "garden", "--bundle", signed, "--token", token]);
    expect(again.stderr).toContain(`pushed ${names.length} bundles to ${node.url} village garden: 0 accepted, ${names.length} duplicate, 0 quarantined`);
  });

  test("with one bundle, --json prints the node's answer as it is", async () => {
    const one = await signedBundleFile(tmp.path, "push-one", key, { subject: "s-one" });
    const r = await linksOk(["sync", "push-village", node.url, "garden", "--bundle", one.file, "--token", token, "--json"]);
    expect(json(r)).toEqual({ status: "accepted", bundle_id: one.bundleId });
  });

  test("a bundle over the node's body limit: 413 body_too_large saying how to split", async () => {
    const big = join(signed, "1.json");
    expect(statSync(big).size).toBeGreaterThan(2048);
    const r = await links(["sync", "push-village", small.url, "garden", "--bundle", big, "--token", smallToken]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("body_too_large");
    expect(r.stderr).toContain("links claims build --max-bytes 2048");
  });

  test("a refusal in the middle names the bundle and what was pushed before it", async () => {
    const dir = tmp.join("half-bad");
    mkdirSync(dir);
    const fresh = await Promise.all([1, 2, 3].map((i) => signedBundleFile(tmp.path, `mid-${i}`, key, { subject: `mid-${i}` })));
    fresh.forEach((b, i) => copyFileSync(b.file, join(dir, `${i + 1}.json`)));
    writeFileSync(join(dir, "2.json"), readFileSync(join(dir, "2.json"), "utf8").replace("mid-2", "mid-X"));
    const r = await links(["sync", "push-village", node.url, "garden", "--bundle", dir, "--token", token, "--json"]);
    expect(r.code).toBe(1);
    const doc = json<{ status: string; code: string; detail: string }>(r);
    expect(doc.status).toBe("error");
    expect(doc.code).toBe("bundle_id_mismatch");
    expect(doc.detail).toContain(`${join(dir, "2.json")}:`);
    expect(doc.detail).toContain("bundle 2 of 3; the 1 before it were pushed, the rest not tried");
    const rows = json<{ subject: string }[]>(await linksOk(["claims", "query", "--village-id", "garden", "--data", data, "--json"]));
    expect(rows.some((row) => row.subject === "mid-1")).toBe(true);
    expect(rows.some((row) => row.subject === "mid-3")).toBe(false);
  });

  test("a bundle file that cannot be read in the middle is named with what was pushed before it", async () => {
    const dir = tmp.join("half-unreadable");
    mkdirSync(dir);
    const fresh = await Promise.all([1, 3].map((i) => signedBundleFile(tmp.path, `unreadable-${i}`, key, { subject: `unreadable-${i}` })));
    copyFileSync(fresh[0]!.file, join(dir, "1.json"));
    mkdirSync(join(dir, "2.json")); // a directory where a bundle file should be
    copyFileSync(fresh[1]!.file, join(dir, "3.json"));
    const r = await links(["sync", "push-village", node.url, "garden", "--bundle", dir, "--token", token, "--json"]);
    expect(r.code).toBe(1);
    const doc = json<{ code: string; detail: string }>(r);
    expect(doc.detail).toContain(`${join(dir, "2.json")}`);
    expect(doc.detail).toContain("bundle 2 of 3; the 1 before it were pushed, the rest not tried");
  });

  test("a village missing on the node is named as the remote one", async () => {
    const r = await links(["sync", "push-village", node.url, "orchard", "--bundle", join(signed, "1.json"), "--token", token]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("village_not_found");
    expect(r.stderr).toContain(`village orchard does not exist on the remote node ${node.url}`);
  });

  test("pull-village names a missing local village as local, before asking the node", async () => {
    const local = tmp.join("puller");
    await linksOk(["villages", "create", "other", "Other", "bob", "--data", local]);
    const r = await links(["sync", "pull-village", node.url, "garden", "--token", token, "--data", local]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("village_not_found");
    expect(r.stderr).toContain(`the local village garden does not exist in ${local}`);
  });

  test("pull-village names a village missing on the node as remote", async () => {
    const local = tmp.join("puller2");
    await linksOk(["villages", "create", "orchard", "Orchard", "bob", "--data", local]);
    const r = await links(["sync", "pull-village", node.url, "orchard", "--token", token, "--data", local]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("village_not_found");
    expect(r.stderr).toContain(`village orchard does not exist on the remote node ${node.url}`);
  });
});
