/**
 * A data directory laid out the way Python Links v0.7 wrote it keeps working with `dist/links`:
 * Python's JSON spacing (", " and ": "), index rows with "village_id": null, a village bundle
 * stored directly under store/bundles/, and a quarantine entry with no .meta.json (its reason is
 * only in the audit log).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  json,
  lastLine,
  links,
  linksOk,
  makeTempDir,
  readJsonlFile,
  sha256Hex,
  signedBundleFile,
  vectorKey,
  writeVectorKeyFile,
  type TempDir,
} from "./harness.ts";

/** Re-spaces compact JSON text the way Python's json.dumps separates items (", " and ": "). */
function pythonSpacing(compact: string): string {
  let out = "";
  let inString = false;
  let escaped = false;
  for (const ch of compact) {
    out += ch;
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === "\\") escaped = true;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "," || ch === ":") out += " ";
  }
  return out;
}

const py = (value: unknown) => pythonSpacing(JSON.stringify(value));

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

const VID = "garden";
const tokenHash = (name: string) => sha256Hex(`python-token-of-${name}`);

let tmp: TempDir;
let data: string;
let legacy: { file: string; bundleId: string };
let held: { file: string; bundleId: string };
const D = () => ["--data", data];

beforeAll(async () => {
  tmp = makeTempDir("links-e2e-python-");
  data = tmp.join("data");
  const key = writeVectorKeyFile(tmp.path);
  legacy = await signedBundleFile(tmp.path, "legacy", key, { subject: "wikipedia:en:Ada", object: "wikipedia:en:Grace", value: "2.0" });
  held = await signedBundleFile(tmp.path, "held", key, { subject: "wikipedia:en:Held", predicate: "links.mentions", value: "1" });

  write(
    join(data, "villages", VID, "village.json"),
    py({
      village_id: VID,
      name: "Community garden",
      description: "made by Python Links v0.7",
      created_at: "2026-11-20T08:00:00.123456Z",
      governance: { admins: ["alice"], decision_model: "admin-consensus" },
      policy: {
        visibility: "village",
        // the policy was widened after the held bundle arrived
        allowed_predicates: ["links.weighted_to", "links.mentions"],
        max_window_days: 30,
        min_signature_alg: "Ed25519",
        allow_unverified: false,
        retention_days: 90,
        rate_limit_per_min: 60,
        issuer_allowlist: [],
        issuer_blocklist: [],
        require_issuer_allowlist: false,
      },
    }),
  );
  const member = (id: string, role: string, ts: string) => py({ member_id: id, role, added_at: ts, token_hash: tokenHash(id), is_revoked: false });
  write(
    join(data, "villages", VID, "members.jsonl"),
    `${member("alice", "admin", "2026-11-20T08:00:00.200000Z")}\n${member("bob", "member", "2026-11-20T09:00:00.000001Z")}\n${member("eve", "member", "2026-11-20T10:00:00Z")}\n`,
  );
  write(
    join(data, "villages", VID, "revocations.jsonl"),
    `${py({ ts: "2026-11-21T10:00:00.500000Z", token_hash: tokenHash("eve"), actor: "alice", reason: "left the garden" })}\n`,
  );

  // Python v0.7's bug: a village bundle stored at the top of store/bundles, index rows without village.
  const legacyText = readFileSync(legacy.file, "utf8").trim();
  write(join(data, "store", "bundles", `${legacy.bundleId}.json`), pythonSpacing(legacyText));
  const legacyBundle = JSON.parse(legacyText) as { issuer: string; created_at: string; claims: { computed_at: string }[] };
  write(
    join(data, "store", "index", "claims.jsonl"),
    `${pythonSpacing(
      `{"bundle_id":"${legacy.bundleId}","issuer":"node-a","window_days":30,"created_at":"${legacyBundle.created_at}",` +
        `"village_id":null,"visibility":"village","subject":"wikipedia:en:Ada","predicate":"links.weighted_to",` +
        `"object":"wikipedia:en:Grace","value":2.0,"computed_at":"${legacyBundle.claims[0]?.computed_at}",` +
        `"derivation":"log(1 + count_30d)","evidence":[]}`,
    )}\n`,
  );

  // A quarantine entry as Python kept it: the bare bundle, no meta file.
  write(join(data, "store", "quarantine", VID, `${held.bundleId}.json`), pythonSpacing(readFileSync(held.file, "utf8").trim()));

  const auditRow = (row: Record<string, string | null>) =>
    py({ ts: null, action: null, bundle_id: null, village_id: VID, issuer_key_hash: null, actor: null, reason: null, policy_hash: null, ...row });
  write(
    join(data, "store", "audit", "audit.log.jsonl"),
    [
      auditRow({ ts: "2026-11-20T08:00:00.300000Z", action: "village.create", actor: "alice" }),
      auditRow({ ts: "2026-11-22T12:00:00.000100Z", action: "ingest.accept", bundle_id: legacy.bundleId, issuer_key_hash: vectorKey().issuer_key_hash, actor: "bob", policy_hash: "0123456789abcdef" }),
      auditRow({ ts: "2026-11-23T14:15:16.171819Z", action: "ingest.quarantine", bundle_id: held.bundleId, issuer_key_hash: vectorKey().issuer_key_hash, actor: "bob", reason: "predicate_not_allowed", policy_hash: "0123456789abcdef" }),
    ].join("\n") + "\n",
  );
});
afterAll(() => tmp.remove());

describe("a data directory written by Python Links v0.7", () => {
  test("the fixture really uses Python's spacing", () => {
    expect(readFileSync(join(data, "villages", VID, "village.json"), "utf8")).toContain('"village_id": "garden", "name": ');
    expect(readFileSync(join(data, "store", "index", "claims.jsonl"), "utf8")).toContain('"village_id": null, ');
    expect(readFileSync(join(data, "store", "bundles", `${legacy.bundleId}.json`), "utf8")).toContain('"value": 2.0, ');
  });

  test("villages list shows the Python village", async () => {
    const list = json<unknown[]>(await linksOk(["villages", "list", "--json", ...D()]));
    expect(list).toEqual([{ village_id: VID, name: "Community garden", visibility: "village", created_at: "2026-11-20T08:00:00.123456Z" }]);
  });

  test("villages show returns the village as Python wrote it", async () => {
    const v = json<{ village_id: string; description: string; governance: unknown; policy: { allowed_predicates: string[] } }>(
      await linksOk(["villages", "show", VID, "--json", ...D()]),
    );
    expect(v.village_id).toBe(VID);
    expect(v.description).toBe("made by Python Links v0.7");
    expect(v.governance).toEqual({ admins: ["alice"], decision_model: "admin-consensus" });
    expect(v.policy.allowed_predicates).toEqual(["links.weighted_to", "links.mentions"]);
  });

  test("villages members reads Python's rows and applies revocations.jsonl", async () => {
    const list = json<{ member_id: string; role: string; revoked: boolean }[]>(await linksOk(["villages", "members", VID, "--json", ...D()]));
    expect(list.map((m) => [m.member_id, m.role, m.revoked])).toEqual([
      ["alice", "admin", false],
      ["bob", "member", false],
      ["eve", "member", true],
    ]);
  });

  test("claims query finds the legacy row whose village_id is null", async () => {
    const rows = json<{ bundle_id: string; village_id: string | null; value: number }[]>(
      await linksOk(["claims", "query", "--subject", "wikipedia:en:Ada", "--json", ...D()]),
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ bundle_id: legacy.bundleId, village_id: null, value: 2 });
    const text = await linksOk(["claims", "query", "--subject", "wikipedia:en:Ada", "--json", ...D()]);
    expect(text.stdout).toContain('"value":2.0'); // the float stays a float
  });

  test("ingesting the legacy bundle into its village again is a duplicate with no new index rows", async () => {
    const before = readFileSync(join(data, "store", "index", "claims.jsonl"), "utf8");
    const r = await linksOk(["claims", "ingest", legacy.file, "--village-id", VID, "--json", ...D()]);
    expect(json(r)).toEqual({ bundle_id: legacy.bundleId, status: "duplicate" });
    expect(readFileSync(join(data, "store", "index", "claims.jsonl"), "utf8")).toBe(before);
  });

  test("quarantine list reads the reason, time and actor of a meta-less entry from the audit log", async () => {
    const list = json<Record<string, unknown>[]>(await linksOk(["quarantine", "list", "--json", ...D()]));
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      bundle_id: held.bundleId,
      village_id: VID,
      reason: "predicate_not_allowed",
      received_at: "2026-11-23T14:15:16.171819Z",
      actor: "bob",
      issuer_key_hash: vectorKey().issuer_key_hash,
    });
  });

  test("quarantine show prints the held bundle and why it is held", async () => {
    const r = await linksOk(["quarantine", "show", held.bundleId, ...D()]);
    expect(r.stderr).toContain("predicate_not_allowed");
    const shown = json<{ reason: string; bundle: { bundle_id: string } }>(r);
    expect(shown.reason).toBe("predicate_not_allowed");
    expect(shown.bundle.bundle_id).toBe(held.bundleId);
  });

  test("quarantine approve stores the bundle under the village and indexes it with its village", async () => {
    const r = await linksOk(["quarantine", "approve", held.bundleId, "--actor", "alice", ...D()]);
    expect(r.stderr).toContain(`approved ${held.bundleId} into ${VID}`);
    expect(existsSync(join(data, "store", "bundles", VID, `${held.bundleId}.json`))).toBe(true);
    expect(existsSync(join(data, "store", "quarantine", VID, `${held.bundleId}.json`))).toBe(false);
    const rows = json<{ bundle_id: string; village_id: string | null; predicate: string }[]>(
      await linksOk(["claims", "query", "--subject", "wikipedia:en:Held", "--json", ...D()]),
    );
    expect(rows).toEqual([expect.objectContaining({ bundle_id: held.bundleId, village_id: VID, predicate: "links.mentions" })]);
    expect(json(await linksOk(["quarantine", "list", "--json", ...D()]))).toEqual([]);
    const auditRows = json<{ action: string; bundle_id: string | null; actor: string | null }[]>(
      await linksOk(["audit", "tail", "--json", "--village-id", VID, ...D()]),
    );
    expect(auditRows.map((a) => a.action)).toEqual(["village.create", "ingest.accept", "ingest.quarantine", "quarantine.approve"]);
    expect(auditRows[3]).toMatchObject({ bundle_id: held.bundleId, actor: "alice" });
  });

  test("a new member is appended on its own line after Python's rows", async () => {
    const r = await linksOk(["villages", "add-member", VID, "carol", ...D()]);
    expect(lastLine(r.stdout)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = readJsonlFile<{ member_id: string }>(join(data, "villages", VID, "members.jsonl"));
    expect(rows.map((m) => m.member_id)).toEqual(["alice", "bob", "eve", "carol"]);
    const list = json<{ member_id: string }[]>(await linksOk(["villages", "members", VID, "--json", ...D()]));
    expect(list.map((m) => m.member_id)).toEqual(["alice", "bob", "eve", "carol"]);
  });

  test("reading the Python files prints no warning about bad lines", async () => {
    for (const args of [["villages", "members", VID], ["claims", "query"], ["audit", "tail"], ["quarantine", "list"]]) {
      const r = await links([...args, ...D()]);
      expect(r.code).toBe(0);
      expect(r.stderr).not.toContain("warning");
    }
  });

  // A Python v0.7 village bundle sits at the top of store/bundles (Python's bug); its old index
  // row ("visibility": "village") must survive a reindex instead of turning public.
  test("claims reindex does not relabel a legacy village bundle as public", async () => {
    await linksOk(["claims", "reindex", ...D()]);
    const rows = json<{ bundle_id: string; visibility: string }[]>(
      await linksOk(["claims", "query", "--subject", "wikipedia:en:Ada", "--json", ...D()]),
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.visibility).not.toBe("public");
  });
});
