/**
 * What a script and a new user get from the real `dist/links`: one JSON document on failure too
 * with --json, usage mistakes in one form with exit 2, read commands that name a missing data
 * directory or village instead of answering nothing, derive's documented input format and its
 * skipped observations, and progress on a terminal only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorCode, json, links, linksOk, LINKS_BIN, makeTempDir, signedBundleFile, unsignedBundle, writeVectorKeyFile, type RunResult, type TempDir } from "./harness.ts";

let tmp: TempDir;
let data: string;
let missing: string;
let key: string;
let bundleFile: string;

beforeAll(async () => {
  tmp = makeTempDir("links-e2e-output-");
  data = tmp.join("data");
  missing = tmp.join("no-such-data");
  await linksOk(["villages", "create", "v1", "Village", "alice", "--data", data]);
  key = writeVectorKeyFile(tmp.path);
  bundleFile = (await signedBundleFile(tmp.path, "b", key)).file;
});
afterAll(() => tmp.remove());

const D = () => ["--data", data];

interface ErrorDoc {
  status: string;
  code: string;
  detail: string;
}

/** The one JSON error document on stdout, checked against the stderr line. */
function errorDoc(r: RunResult): ErrorDoc {
  const lines = r.stdout.split("\n").filter(Boolean);
  expect(lines).toHaveLength(1);
  const doc = json<ErrorDoc>(r);
  expect(Object.keys(doc).sort()).toEqual(["code", "detail", "status"]);
  expect(doc.status).toBe("error");
  expect(errorCode(r.stderr)).toBe(doc.code);
  return doc;
}

describe("with --json, a failure prints exactly one error document on stdout", () => {
  const cases: [string, () => string[], string, number][] = [
    ["villages list on a missing data directory", () => ["villages", "list", "--json", "--data", missing], "data_dir_not_found", 1],
    ["villages show of an unknown village", () => ["villages", "show", "nope", "--json", ...D()], "village_not_found", 1],
    ["claims query of an unknown village", () => ["claims", "query", "--village-id", "nope", "--json", ...D()], "village_not_found", 1],
    ["quarantine list of an unknown village", () => ["quarantine", "list", "--village-id", "nope", "--json", ...D()], "village_not_found", 1],
    ["audit tail of an unknown village", () => ["audit", "tail", "--village-id", "nope", "--json", ...D()], "village_not_found", 1],
    ["claims ingest of a missing file", () => ["claims", "ingest", tmp.join("none.json"), "--json", ...D()], "not_found", 1],
    ["claims build of a missing edges file", () => ["claims", "build", "--edges", tmp.join("none.json"), "--issuer", "n", "--window-days", "30", "--out", tmp.join("o.json"), "--json"], "not_found", 1],
    ["claims sign with a missing key", () => ["claims", "sign", bundleFile, "--key", tmp.join("none.key"), "--out", tmp.join("o.json"), "--json"], "not_found", 1],
    ["keys gen over existing keys", () => ["keys", "gen", "--out-dir", tmp.join("keys-twice"), "--json"], "file_exists", 1],
    ["sync push-village to a node that does not answer", () => ["sync", "push-village", "http://127.0.0.1:1", "v1", "--bundle", bundleFile, "--token", "t", "--json"], "unavailable", 1],
    ["policy apply-local on an unknown village", () => ["policy", "apply-local", "nope", bundleFile, "--json", ...D()], "village_not_found", 1],
    ["a bad --limit", () => ["claims", "query", "--limit", "0", "--json", ...D()], "usage", 2],
    ["an unknown option", () => ["villages", "list", "--bogus", "--json", ...D()], "usage", 2],
    ["a missing required option", () => ["claims", "build", "--json"], "usage", 2],
    ["--json on a command that has no --json", () => ["villages", "add-member", "v1", "bob", "--json", ...D()], "usage", 2],
  ];

  beforeAll(async () => {
    mkdirSync(tmp.join("keys-twice"));
    await linksOk(["keys", "gen", "--out-dir", tmp.join("keys-twice")]);
  });

  for (const [what, args, code, exit] of cases) {
    test(`${what}: {"status":"error","code":"${code}"}, exit ${exit}`, async () => {
      const r = await links(args());
      expect(r.code).toBe(exit);
      const doc = errorDoc(r);
      expect(doc.code).toBe(code);
      expect(doc.detail.length).toBeGreaterThan(10);
    });
  }

  test("a command that printed its own JSON result adds no second document", async () => {
    const unsigned = tmp.join("unsigned.json");
    writeFileSync(unsigned, unsignedBundle({}));
    const r = await links(["claims", "verify", unsigned, "--json"]);
    expect(r.code).toBe(1);
    expect(r.stdout.split("\n").filter(Boolean)).toHaveLength(1);
    expect(json<{ valid: boolean; code: string }>(r)).toMatchObject({ valid: false, code: "bundle_id_mismatch" });
  });

  test("without --json nothing is printed on stdout on failure", async () => {
    const r = await links(["villages", "list", "--data", missing]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
  });
});

describe("usage mistakes", () => {
  const cases: [string, string[], RegExp][] = [
    ["an unknown command", ["villages", "frobnicate"], /^unknown command "frobnicate"$/],
    ["an unknown option", ["claims", "query", "--frobnicate"], /^unknown option "--frobnicate"$/],
    ["a missing required option", ["sync", "push-village", "http://x", "v1"], /^missing required option --bundle$/],
    ["a missing required argument", ["claims", "sign", "--key", "k", "--out", "o"], /^missing required argument FILE$/],
    ["an invalid choice", ["villages", "create", "v9", "N", "a", "--visibility", "everyone"], /^invalid value "everyone" for --visibility: expected one of private, village, public$/],
    ["an extra argument", ["claims", "verify", "a.json", "b.json"], /^unexpected argument "b.json"$/],
    ["a bad number", ["derive", "--observations", "x", "--out", "y", "--window-days", "ten"], /^--window-days must be a positive integer, got "ten"$/],
    ["a bad size", ["claims", "build", "--edges", "x", "--issuer", "i", "--window-days", "30", "--out", "y", "--max-bytes", "big"], /^--max-bytes must be a size like/],
    ["a limit too small for any bundle", ["claims", "build", "--edges", "x", "--issuer", "i", "--window-days", "30", "--out", "y", "--max-bytes", "100"], /^--max-bytes 100 is too small/],
  ];
  for (const [what, args, message] of cases) {
    test(`${what}: "links: error: <what> [usage]", a hint to --help, exit 2, nothing on stdout`, async () => {
      const r = await links(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(2);
      const m = /^links: error: (.*) \[usage\]$/.exec(lines[0] as string);
      expect(m?.[1]).toMatch(message);
      expect(lines[1]).toMatch(/^Run "links [a-z -]+ --help" for usage\.$/);
    });
  }

  test("a group without its command shows the group's usage, then the same error form", async () => {
    const r = await links(["villages"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("USAGE links villages");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines.at(-2)).toMatch(/^links: error: "links villages" needs a command: one of create, list, .* \[usage\]$/);
    expect(lines.at(-1)).toBe('Run "links villages --help" for usage.');
  });
});

describe("a read command on a missing data directory", () => {
  const reads: string[][] = [
    ["villages", "list"],
    ["villages", "show", "v1"],
    ["villages", "members", "v1"],
    ["claims", "query"],
    ["claims", "reindex"],
    ["quarantine", "list"],
    ["quarantine", "show", "0".repeat(32)],
    ["audit", "tail"],
    ["policy", "export", "v1", "--out", "/dev/null"],
  ];
  for (const args of reads) {
    test(`links ${args.join(" ")} exits 1 naming the directory, and creates nothing`, async () => {
      const r = await links([...args, "--data", missing]);
      expect(r.code).toBe(1);
      expect(errorCode(r.stderr)).toBe("data_dir_not_found");
      expect(r.stderr).toContain(missing);
      expect(existsSync(missing)).toBe(false);
    });
  }

  test("a mistyped LINKS_DATA is named the same way", async () => {
    const r = await links(["villages", "list"], { env: { LINKS_DATA: missing } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`data directory ${missing} does not exist`);
  });

  test("create commands create it: villages create and a public claims ingest", async () => {
    const a = tmp.join("fresh-a");
    await linksOk(["villages", "create", "v1", "V", "alice", "--data", a]);
    expect(existsSync(join(a, "villages", "v1", "village.json"))).toBe(true);
    const b = tmp.join("fresh-b");
    await linksOk(["claims", "ingest", bundleFile, "--data", b]);
    expect(existsSync(join(b, "store", "index", "claims.jsonl"))).toBe(true);
  });
});

describe("a --village-id that does not exist", () => {
  for (const args of [["claims", "query"], ["quarantine", "list"], ["audit", "tail"], ["audit", "verify"]]) {
    test(`links ${args.join(" ")} answers village_not_found, not an empty list`, async () => {
      const r = await links([...args, "--village-id", "v2", ...D()]);
      expect(r.code).toBe(1);
      expect(errorCode(r.stderr)).toBe("village_not_found");
      expect(r.stderr).toContain('village "v2" does not exist');
      const ok = await linksOk([...args, "--village-id", "v1", "--json", ...D()]);
      expect(json(ok)).toBeDefined();
    });
  }
});

describe("derive", () => {
  const line = (o: Record<string, unknown>) => JSON.stringify(o);
  const base = { timestamp: "2024-05-30T12:00:00Z", actor_entity_id: "a", kind: "user_talk_edit", target_entity_id: "b" };

  test("--help documents every field, which are required, an example line and the exit status", async () => {
    const r = await linksOk(["derive", "--help"]);
    for (const field of ["observation_id", "timestamp", "actor_entity_id", "kind", "target_entity_id", "context", "evidence_uri"]) {
      expect(r.stdout).toMatch(new RegExp(`^  ${field} +(required|optional) `, "m"));
    }
    expect(r.stdout).toContain("EXIT STATUS");
    expect(r.stdout).toContain("no_edges");
    // the example line is a real observation: derive takes it
    const example = /^  (\{"observation_id".*\})$/m.exec(r.stdout)?.[1] as string;
    expect(example).toBeDefined();
    const obs = tmp.join("example.jsonl");
    writeFileSync(obs, `${example}\n`);
    const d = await linksOk(["derive", "--observations", obs, "--out", tmp.join("example-edges.json"), "--json"]);
    expect(json<{ edges: number }>(d).edges).toBe(1);
  });

  test("reports skipped observations by reason, in the summary and in --json", async () => {
    const obs = tmp.join("mixed.jsonl");
    writeFileSync(
      obs,
      [
        line({ ...base, observation_id: 1 }),
        line({ ...base, observation_id: 1 }),
        line({ ...base, observation_id: 2, kind: "page_edit" }),
        line({ ...base, observation_id: 3, target_entity_id: null }),
        line({ ...base, observation_id: 4, timestamp: "2024-01-01T00:00:00Z" }),
        "{not json",
        line({ ...base, observation_id: 5, timestamp: "yesterday" }),
        "",
        line({ ...base, observation_id: 6, actor_entity_id: "c" }),
      ].join("\n"),
    );
    const out = tmp.join("mixed-edges.json");
    const r = await linksOk(["derive", "--observations", obs, "--out", out, "--json"]);
    expect(json(r)).toEqual({
      status: "ok",
      edges: 2,
      observations: 8,
      counted: 2,
      skipped: { invalid: 2, other_kind: 1, no_target: 1, outside_window: 1, duplicate: 1 },
      window_days: 30,
      window_end: "2024-05-30T12:00:00Z",
      unknown_fields: {},
      out,
      graphml: null,
    });
    expect(r.stderr).toContain("line 6 is not an observation");
    expect(r.stderr).toContain("line 7 is not an observation");
    const text = await linksOk(["derive", "--observations", obs, "--out", out]);
    expect(text.stderr).toContain(
      `derived 2 edges from 8 observations: 2 counted, 6 skipped (2 invalid, 1 other kind, 1 no target, 1 outside the window, 1 duplicate) -> ${out}`,
    );
    expect(JSON.parse(readFileSync(out, "utf8"))).toHaveLength(2);
  });

  test("a wrong target field name is not a success: exit 1, what was skipped, the right name, no file", async () => {
    const obs = tmp.join("wrong-field.jsonl");
    writeFileSync(obs, `${line({ observation_id: 1, timestamp: base.timestamp, actor_entity_id: "a", kind: "user_talk_edit", target_id: "b" })}\n`);
    const out = tmp.join("wrong-field-edges.json");
    const r = await links(["derive", "--observations", obs, "--out", out]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("no_edges");
    expect(r.stderr).toContain("1 no target");
    expect(r.stderr).toContain("target_entity_id");
    expect(r.stderr).toMatch(/warning: fields that are not part of the observation format were ignored: "target_id" \(1 line\)/);
    expect(existsSync(out)).toBe(false);
  });

  test("reads standard input with --observations -", async () => {
    const input = [line({ ...base, observation_id: 1 }), line({ ...base, observation_id: 2, target_entity_id: "c" })].join("\n");
    const out = tmp.join("stdin-edges.json");
    const r = await linksOk(["derive", "--observations", "-", "--out", out, "--json"], { stdin: input });
    expect(json<{ edges: number; counted: number }>(r)).toMatchObject({ edges: 2, counted: 2 });
  });
});

/** Runs the binary with a terminal on its stdin, stdout and stderr (util-linux `script`). */
async function onTerminal(args: string[]): Promise<{ code: number; output: string }> {
  const quoted = [LINKS_BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const proc = Bun.spawn(["script", "-qefc", quoted, "/dev/null"], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, LINKS_DATA: undefined } });
  const [output, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return { code, output };
}

describe.skipIf(!Bun.which("script"))("progress on a terminal", () => {
  let obs: string;
  let edges: string;

  beforeAll(() => {
    obs = tmp.join("progress.jsonl");
    const lines = Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({ observation_id: i, timestamp: "2024-05-30T12:00:00Z", actor_entity_id: `u${i % 17}`, kind: "user_talk_edit", target_entity_id: `u${i % 23}` }),
    );
    writeFileSync(obs, `${lines.join("\n")}\n`);
    edges = tmp.join("progress-edges.json");
  });

  /** A bar: carriage return, the label, the bar, and 100% once done. */
  const bar = (label: string) => new RegExp(`\\r${label}[^\\r\\n]* \\[#{24}\\] 100%`);

  test("derive, build, sign, ingest and reindex draw a bar on stderr from the start to 100%", async () => {
    const d = await onTerminal(["derive", "--observations", obs, "--out", edges]);
    expect(d.code).toBe(0);
    expect(d.output).toMatch(/\rderive: finding the window \[\.{24}\] +0%/);
    expect(d.output).toMatch(bar("derive: counting"));
    const dir = tmp.join("progress-bundles");
    const b = await onTerminal(["claims", "build", "--edges", edges, "--issuer", "n", "--window-days", "30", "--out", dir, "--max-bytes", "4KiB"]);
    expect(b.output).toMatch(bar("build"));
    const signed = tmp.join("progress-signed");
    const s = await onTerminal(["claims", "sign", dir, "--key", key, "--out", signed]);
    expect(s.output).toMatch(bar("sign"));
    const i = await onTerminal(["claims", "ingest", signed, "--village-id", "v1", ...D()]);
    expect(i.output).toMatch(bar("ingest"));
    const x = await onTerminal(["claims", "reindex", ...D()]);
    expect(x.output).toMatch(bar("reindex"));
  });

  test("--json on a terminal draws nothing: stdout holds the one document", async () => {
    const r = await onTerminal(["derive", "--observations", obs, "--out", edges, "--json"]);
    expect(r.code).toBe(0);
    expect(r.output).toContain('"status":"ok"');
    expect(r.output).not.toMatch(/\[[#.]{24}\]/);
  });

  test("piped, nothing of a bar reaches stderr", async () => {
    const r = await linksOk(["derive", "--observations", obs, "--out", edges]);
    expect(r.stderr).not.toContain("\r");
    expect(r.stderr).not.toMatch(/\[[#.]{24}\]/);
    expect(r.stderr).toMatch(/^derived \d+ edges/);
  });
});
