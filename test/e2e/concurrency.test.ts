/**
 * Real `links` processes at once on one village: no lost update, no torn line; and a writer
 * killed with SIGKILL in the middle of its work leaves a data directory the next command can use.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { json, LINKS_BIN, lastLine, links, linksOk, listFiles, makeTempDir, readJsonlFile, type TempDir } from "./harness.ts";

let tmp: TempDir;
beforeAll(() => {
  tmp = makeTempDir("links-e2e-concurrency-");
});
afterAll(() => tmp.remove());

/** Every JSONL file under dir ends with a newline and each of its lines is whole JSON. */
function expectNoTornLine(dir: string): void {
  const jsonl = listFiles(dir).filter((f) => f.endsWith(".jsonl"));
  expect(jsonl.length).toBeGreaterThan(0);
  for (const f of jsonl) {
    const text = readFileSync(join(dir, f), "utf8");
    expect({ file: f, endsWithNewline: text.endsWith("\n") }).toEqual({ file: f, endsWithNewline: true });
    readJsonlFile(join(dir, f)); // throws, naming the line, on a torn or interleaved record
  }
}

describe("when many links processes change one village at the same time", () => {
  const N = 6;
  let data: string;
  let results: { code: number; stderr: string; stdout: string }[];

  beforeAll(async () => {
    data = tmp.join("busy");
    await linksOk(["villages", "create", "busy", "Busy", "alice", "--data", data]);
    const jobs: Promise<{ code: number; stdout: string; stderr: string }>[] = [];
    for (let i = 0; i < N; i++) {
      jobs.push(links(["villages", "add-member", "busy", `member-${i}`, "--data", data]));
      jobs.push(links(["villages", "allow-issuer-id", "busy", `issuer-${i}`, "--data", data]));
      jobs.push(links(["villages", "block-issuer-id", "busy", `blocked-${i}`, "--data", data]));
    }
    results = await Promise.all(jobs);
  });

  test("every process succeeds", () => {
    for (const r of results) expect({ code: r.code, stderr: r.stderr.includes("error") ? r.stderr : "" }).toEqual({ code: 0, stderr: "" });
  });

  test("every member added is listed, each with its own token", async () => {
    const members = json<{ member_id: string }[]>(await linksOk(["villages", "members", "busy", "--json", "--data", data]));
    const ids = members.map((m) => m.member_id).sort();
    expect(ids).toEqual(["alice", ...Array.from({ length: N }, (_, i) => `member-${i}`)].sort());
    const tokens = results.filter((r) => r.stderr.includes("token for member-")).map((r) => lastLine(r.stdout));
    expect(new Set(tokens).size).toBe(N);
  });

  test("no issuer list update is lost", async () => {
    const v = json<{ policy: { issuer_id_allowlist: string[]; issuer_id_blocklist: string[] } }>(
      await linksOk(["villages", "show", "busy", "--json", "--data", data]),
    );
    expect([...v.policy.issuer_id_allowlist].sort()).toEqual(Array.from({ length: N }, (_, i) => `issuer-${i}`));
    expect([...v.policy.issuer_id_blocklist].sort()).toEqual(Array.from({ length: N }, (_, i) => `blocked-${i}`));
  });

  test("every JSONL file parses line by line and the audit log has a row per change", async () => {
    expectNoTornLine(data);
    const audit = readJsonlFile<{ action: string }>(join(data, "store/audit/audit.log.jsonl"));
    expect(audit.filter((r) => r.action === "member.add")).toHaveLength(N + 1);
    expect(audit.filter((r) => r.action === "issuer.allow")).toHaveLength(N);
    expect(audit.filter((r) => r.action === "issuer.block")).toHaveLength(N);
  });
});

describe("when a links writer is killed with SIGKILL mid-stream", () => {
  let data: string;
  let killedAfter: number;

  beforeAll(async () => {
    data = tmp.join("killed");
    await linksOk(["villages", "create", "k", "Killed", "alice", "--data", data]);
    // A shell loop adding members one `links` call after another, in its own process group.
    const script = `i=0; while [ $i -lt 100000 ]; do "$0" villages add-member k "m$i" --data "$1" >/dev/null 2>&1; i=$((i+1)); done`;
    const loop = Bun.spawn(["sh", "-c", script, LINKS_BIN, data], { detached: true, stdout: "ignore", stderr: "ignore" });
    const rows = () => readJsonlFile(join(data, "villages/k/members.jsonl"), true).length;
    await Bun.sleep(300);
    // on a loaded machine, give the loop a little longer to add its first members
    for (let waited = 0; rows() < 3 && waited < 5000; waited += 50) await Bun.sleep(50);
    try {
      process.kill(-loop.pid, "SIGKILL"); // the shell and the links process it is running
    } finally {
      loop.kill("SIGKILL");
    }
    await loop.exited;
    killedAfter = readJsonlFile<{ member_id: string }>(join(data, "villages/k/members.jsonl"), true).length;
  });

  test("the loop really got going before it was killed", () => {
    expect(killedAfter).toBeGreaterThan(2);
  });

  test("villages members --json still works", async () => {
    const r = await links(["villages", "members", "k", "--json", "--data", data]);
    expect(r.code).toBe(0);
    const members = json<{ member_id: string }[]>(r);
    expect(members[0]?.member_id).toBe("alice");
    expect(members.length).toBeGreaterThanOrEqual(killedAfter - 1);
  });

  test("the next add-member succeeds and its row starts on a fresh line", async () => {
    const r = await linksOk(["villages", "add-member", "k", "after-the-crash", "--data", data]);
    expect(lastLine(r.stdout)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const text = readFileSync(join(data, "villages/k/members.jsonl"), "utf8");
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.slice(0, -1).split("\n");
    const last = JSON.parse(lines[lines.length - 1] ?? "") as { member_id: string };
    expect(last.member_id).toBe("after-the-crash");
    const members = json<{ member_id: string }[]>(await linksOk(["villages", "members", "k", "--json", "--data", data]));
    expect(members.map((m) => m.member_id)).toContain("after-the-crash");
    // Every line but a torn one left by the kill is whole JSON.
    const bad = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    expect(bad.length).toBeLessThanOrEqual(1);
  });

  test("the audit log still takes whole rows after the kill", async () => {
    await linksOk(["villages", "add-member", "k", "one-more", "--data", data]);
    const text = readFileSync(join(data, "store/audit/audit.log.jsonl"), "utf8");
    const lines = text.slice(0, -1).split("\n");
    expect((JSON.parse(lines[lines.length - 1] ?? "") as { reason: string }).reason).toBe("one-more as member");
  });
});
