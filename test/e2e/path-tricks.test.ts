/**
 * Ids that would become paths are refused with a clear error and a non-zero exit in every CLI
 * position that takes one, and nothing is ever created outside the data directory.
 */
import { onLayout } from "../fixtures/data-layout.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  errorCode,
  links,
  linksOk,
  listFiles,
  makeTempDir,
  signedBundleFile,
  writeVectorKeyFile,
  type RunResult,
  type TempDir,
} from "./harness.ts";

/** Values that must never name a village (or a bundle) on disk. */
const BAD_IDS = [
  "../x",
  "../../x",
  "../../../x",
  "..",
  ".",
  "x/../v1", // normalizes to a real village: must still be refused
  "v1/",
  "%2F",
  "%2e%2e",
  "..%2Fx",
  "a\\b",
  "/etc/passwd",
  "v1\n",
  " v1",
  "a".repeat(65),
];
/** Member ids may hold dots and be up to 128 characters, so their list differs a little. */
const BAD_MEMBER_IDS = ["../x", "..", ".hidden", "%2F", "a/b", "a\\b", "/etc/passwd", "bob\n", "a".repeat(129)];
const BAD_BUNDLE_IDS = [
  "..",
  "%2F",
  "%2e%2e",
  "a\\b",
  "0".repeat(31),
  "0".repeat(33),
  "A".repeat(32),
  "a".repeat(65),
];
/** Path-looking refs: `quarantine approve` takes the path of a quarantine file too. */
const BAD_BUNDLE_PATHS = ["../x", "/etc/passwd", "../../../../etc/passwd", "x/../../x.json"];

let sandbox: TempDir;
let data: string;
let cwd: string;
let policyFile: string;
let bundleFile: string;
let heldId: string;
let sandboxBefore: string[];
let tmpBefore: Set<string>;
const passwdMtime = statSync("/etc/passwd").mtimeMs;

/** Everything in the sandbox that is not inside the data directory. */
const outsideData = () => listFiles(sandbox.path).filter((f) => !f.startsWith("data/deep/"));

beforeAll(async () => {
  sandbox = makeTempDir("links-e2e-paths-");
  // data two levels down, so "../x" and "../../x" would land inside the sandbox where we look
  data = sandbox.join("data", "deep");
  cwd = sandbox.join("cwd");
  mkdirSync(cwd);
  mkdirSync(data, { recursive: true });
  const key = writeVectorKeyFile(sandbox.path);
  await linksOk(["villages", "create", "v1", "Village", "alice", "--data", data]);
  const held = await signedBundleFile(sandbox.path, "held", key, { predicate: "links.mentions" });
  heldId = held.bundleId;
  expect((await links(["claims", "ingest", held.file, "--village-id", "v1", "--data", data])).code).toBe(3);
  bundleFile = (await signedBundleFile(sandbox.path, "ok", key)).file;
  policyFile = sandbox.join("policy.json");
  writeFileSync(policyFile, JSON.stringify({ allowed_predicates: ["links.weighted_to"] }));
  sandboxBefore = outsideData();
  tmpBefore = new Set(readdirSync(tmpdir()));
});
afterAll(() => sandbox.remove());

const D = () => ["--data", data];

/** Runs every case at once; resolves to [value, result] pairs. */
async function runAll(values: string[], argsFor: (v: string) => string[]): Promise<[string, RunResult][]> {
  return Promise.all(values.map(async (v) => [v, await links([...argsFor(v), ...D()], { cwd })] as [string, RunResult]));
}

function expectRefused(pairs: [string, RunResult][], codes: string[], argsFor: (v: string) => string[]): void {
  for (const [value, r] of pairs) {
    const what = `links ${argsFor(value).join(" ")}`;
    expect({ what, exit: r.code === 0 ? 0 : "non-zero" }).toEqual({ what, exit: "non-zero" });
    const code = errorCode(r.stderr);
    expect({ what, code, expected: code !== null && codes.includes(code) }).toEqual({ what, code, expected: true });
    expect(r.stderr).toMatch(/^links: error: invalid (village|member|bundle) id |is not a quarantine file under /m);
  }
}

interface Position {
  name: string;
  args: (v: string) => string[];
}

const villagePositions: Position[] = [
  { name: "villages create <village_id>", args: (v) => ["villages", "create", v, "Name", "alice"] },
  { name: "villages show <village_id>", args: (v) => ["villages", "show", v] },
  { name: "villages members <village_id>", args: (v) => ["villages", "members", v, "--json"] },
  { name: "villages add-member <village_id>", args: (v) => ["villages", "add-member", v, "bob"] },
  { name: "villages revoke-member <village_id>", args: (v) => ["villages", "revoke-member", v, "alice"] },
  { name: "villages rotate-token <village_id>", args: (v) => ["villages", "rotate-token", v, "alice"] },
  { name: "villages allow-issuer-id <village_id>", args: (v) => ["villages", "allow-issuer-id", v, "node-a"] },
  { name: "villages block-issuer-key <village_id>", args: (v) => ["villages", "block-issuer-key", v, "0".repeat(64)] },
  { name: "claims ingest --village-id", args: (v) => ["claims", "ingest", bundleFile, "--village-id", v] },
  { name: "claims query --village-id", args: (v) => ["claims", "query", "--village-id", v] },
  { name: "quarantine list --village-id", args: (v) => ["quarantine", "list", "--village-id", v] },
  { name: "quarantine approve --village-id", args: (v) => ["quarantine", "approve", heldId, "--village-id", v] },
  { name: "quarantine reject --village-id", args: (v) => ["quarantine", "reject", heldId, "--village-id", v, "--reason", "x"] },
  { name: "audit tail --village-id", args: (v) => ["audit", "tail", "--village-id", v] },
  { name: "policy apply-local <village_id>", args: (v) => ["policy", "apply-local", v, policyFile] },
  { name: "policy export <village_id>", args: (v) => ["policy", "export", v, "--out", join(cwd, "exported.json")] },
];

describe("a village id that could become a path", () => {
  for (const pos of villagePositions) {
    test(`is refused by ${pos.name} with invalid_village_id`, async () => {
      expectRefused(await runAll(BAD_IDS, pos.args), ["invalid_village_id"], pos.args);
    });
  }
});

describe("a member id that could become a path", () => {
  const positions: Position[] = [
    { name: "villages create <admin>", args: (v) => ["villages", "create", "fresh", "Name", v] },
    { name: "villages add-member <member_id>", args: (v) => ["villages", "add-member", "v1", v] },
  ];
  for (const pos of positions) {
    test(`is refused by ${pos.name} with invalid_member_id`, async () => {
      expectRefused(await runAll(BAD_MEMBER_IDS, pos.args), ["invalid_member_id"], pos.args);
    });
  }

  test("leaves no half-created village behind when the admin id is refused", async () => {
    const r = await links(["villages", "list", "--json", ...D()]);
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ village_id: "v1" })]);
  });
});

describe("a bundle id that could become a path", () => {
  const positions: Position[] = [
    { name: "quarantine approve <bundle>", args: (v) => ["quarantine", "approve", v] },
    { name: "quarantine show <bundle>", args: (v) => ["quarantine", "show", v] },
    { name: "quarantine reject <bundle>", args: (v) => ["quarantine", "reject", v, "--reason", "x"] },
  ];
  for (const pos of positions) {
    test(`is refused by ${pos.name} with invalid_bundle_id`, async () => {
      expectRefused(await runAll(BAD_BUNDLE_IDS, pos.args), ["invalid_bundle_id"], pos.args);
    });

    // The positional also takes the path of a quarantine file; a path outside the quarantine
    // folder is refused as not being one (invalid_argument), never opened.
    test(`is refused by ${pos.name} when it is a path outside the quarantine folder`, async () => {
      expectRefused(await runAll(BAD_BUNDLE_PATHS, pos.args), ["invalid_bundle_id", "invalid_argument"], pos.args);
    });
  }

  test("the path of a real quarantine file is still accepted (the refusals above are not blanket)", async () => {
    const r = await links(["quarantine", "show", join(data, "store", "quarantine", "v1", `${heldId}.json`), ...D()], { cwd });
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { bundle_id: string }).bundle_id).toBe(heldId);
  });

  test("the held bundle is still in quarantine afterwards", async () => {
    const r = await linksOk(["quarantine", "list", "--json", ...D()]);
    expect((JSON.parse(r.stdout) as { bundle_id: string }[]).map((e) => e.bundle_id)).toEqual([heldId]);
  });
});

describe("an id holding a NUL character", () => {
  test("never reaches links as an id", async () => {
    // POSIX argv strings end at NUL, and Bun refuses to spawn with one ("must be a string
    // without null bytes"). If the runtime refuses, there is nothing to test: skip that case.
    let result: RunResult | null = null;
    try {
      result = await links(["villages", "show", "v1\0../../x", ...D()], { cwd });
    } catch (e) {
      expect(String(e)).toMatch(/null bytes|NUL|invalid/i);
      return;
    }
    expect(result.code).not.toBe(0);
  });
});

describe("after every trick", () => {
  test("nothing new exists outside the data directory", () => {
    expect(outsideData()).toEqual(sandboxBefore);
    // Other programs may create their own temp dirs meanwhile: look for what a trick would make.
    const trickNames = new Set(["x", "x.json", "passwd", "etc", "v1", "%2F", "%2e%2e", "..%2Fx", "a\\b", "b", "exported.json", "data", "villages", "store", "fresh"]);
    const newInTmp = readdirSync(tmpdir()).filter((n) => !tmpBefore.has(n));
    expect(newInTmp.filter((n) => trickNames.has(n))).toEqual([]);
    expect(statSync("/etc/passwd").mtimeMs).toBe(passwdMtime);
  });

  test("the data directory holds only the village v1 and the store", () => {
    const files = listFiles(data);
    for (const f of files) {
      expect(onLayout(f) ? "on layout" : f).toBe("on layout");
    }
    expect(files).toContain("villages/v1/village.json");
  });
});
