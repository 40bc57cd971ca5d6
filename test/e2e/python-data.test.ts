/**
 * A data directory laid out the way Python Links v0.7 wrote it keeps working with `dist/links`:
 * Python's JSON spacing (", " and ": "), village bundles stored directly under store/bundles/
 * with index rows whose village_id is null (their village is only in the audit log), a public
 * bundle beside them, and a quarantine entry with no review metadata (its reason is only in the
 * audit log). Also the review metadata an earlier links kept beside held and rejected bundles
 * (`<id>.meta.json`, which Python takes for a held bundle).
 *
 * The fixture is built once; the CLI tests and the node tests each get their own copy.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
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
import { startNode, type RunningNode } from "./node.ts";

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
/** a second village, whose members must never see the garden's bundles */
const OTHER = "orchard";
const tokenHash = (name: string) => sha256Hex(`python-token-of-${name}`);
/** Python's tokens in this fixture are `python-token-of-<member>` */
const token = (name: string) => `python-token-of-${name}`;

type Signed = { file: string; bundleId: string };
let tmp: TempDir;
let data: string;
/** v0.7 village bundles at the top of store/bundles: rows with visibility "village", and with visibility null */
let legacy: Signed;
let legacy2: Signed;
/** a bundle v0.7 took from its public inbox */
let pub: Signed;
let held: Signed;
/** held and rejected with an earlier links' `<id>.meta.json` beside them */
let held2: Signed;
let spam: Signed;
const D = () => ["--data", data];

/** An index row as Python v0.7 wrote it: no village, and the given visibility. */
function v07Row(b: Signed, visibility: string | null): string {
  const bundle = JSON.parse(readFileSync(b.file, "utf8")) as { issuer: string; created_at: string; window_days: number; claims: Array<Record<string, unknown>> };
  return bundle.claims
    .map((c) =>
      py({
        bundle_id: b.bundleId, issuer: c.issuer, window_days: c.window_days, created_at: bundle.created_at, village_id: null, visibility,
        subject: c.subject, predicate: c.predicate, object: c.object, value: c.value, computed_at: c.computed_at, derivation: c.derivation, evidence: [],
      }),
    )
    .map((l) => `${l}\n`)
    .join("");
}

const topFile = (root: string, b: Signed) => join(root, "store", "bundles", `${b.bundleId}.json`);

beforeAll(async () => {
  tmp = makeTempDir("links-e2e-python-");
  data = tmp.join("pristine");
  const key = writeVectorKeyFile(tmp.path);
  legacy = await signedBundleFile(tmp.path, "legacy", key, { subject: "wikipedia:en:Ada", object: "wikipedia:en:Grace", value: "2.0" });
  legacy2 = await signedBundleFile(tmp.path, "legacy2", key, { subject: "wikipedia:en:Lovelace", createdAt: "2024-05-02T12:00:00Z" });
  pub = await signedBundleFile(tmp.path, "pub", key, { subject: "wikipedia:en:Public" });
  held = await signedBundleFile(tmp.path, "held", key, { subject: "wikipedia:en:Held", predicate: "links.mentions", value: "1" });
  held2 = await signedBundleFile(tmp.path, "held2", key, { subject: "wikipedia:en:Held2", predicate: "links.mentions", value: "3" });
  spam = await signedBundleFile(tmp.path, "spam", key, { subject: "wikipedia:en:Spam", predicate: "links.spam" });

  write(
    join(data, "villages", OTHER, "village.json"),
    py({
      village_id: OTHER, name: "Orchard", description: "", created_at: "2026-11-20T08:00:00Z",
      governance: { admins: ["olive"], decision_model: "admin-consensus" },
      policy: { visibility: "village", allowed_predicates: ["links.weighted_to"], max_window_days: 30, min_signature_alg: "Ed25519", allow_unverified: false, retention_days: 90, rate_limit_per_min: 60, issuer_allowlist: [], issuer_blocklist: [], require_issuer_allowlist: false },
    }),
  );
  write(join(data, "villages", OTHER, "members.jsonl"), `${py({ member_id: "olive", role: "admin", added_at: "2026-11-20T08:00:00Z", token_hash: tokenHash("olive"), is_revoked: false })}\n`);

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

  // Python v0.7's bug: village bundles stored at the top of store/bundles, index rows without
  // their village; a public bundle beside them.
  for (const b of [legacy, legacy2, pub]) write(topFile(data, b), pythonSpacing(readFileSync(b.file, "utf8").trim()));
  const legacyText = readFileSync(legacy.file, "utf8").trim();
  const legacyBundle = JSON.parse(legacyText) as { issuer: string; created_at: string; claims: { computed_at: string }[] };
  write(
    join(data, "store", "index", "claims.jsonl"),
    `${pythonSpacing(
      `{"bundle_id":"${legacy.bundleId}","issuer":"node-a","window_days":30,"created_at":"${legacyBundle.created_at}",` +
        `"village_id":null,"visibility":"village","subject":"wikipedia:en:Ada","predicate":"links.weighted_to",` +
        `"object":"wikipedia:en:Grace","value":2.0,"computed_at":"${legacyBundle.claims[0]?.computed_at}",` +
        `"derivation":"log(1 + count_30d)","evidence":[]}`,
    )}\n${v07Row(pub, "public")}${v07Row(legacy2, null)}`,
  );

  // A quarantine entry as Python kept it: the bare bundle, no meta file.
  write(join(data, "store", "quarantine", VID, `${held.bundleId}.json`), pythonSpacing(readFileSync(held.file, "utf8").trim()));
  // Held and rejected bundles as an earlier links kept them: <id>.meta.json beside the bundle.
  const sidecar = (b: Signed, extra: Record<string, string>) =>
    JSON.stringify({ bundle_id: b.bundleId, village_id: VID, reason: "predicate_not_allowed", detail: "not allowed", received_at: "2026-11-24T09:00:00Z", actor: "bob", issuer_key_hash: vectorKey().issuer_key_hash, policy_hash: null, ...extra });
  write(join(data, "store", "quarantine", VID, `${held2.bundleId}.json`), readFileSync(held2.file, "utf8"));
  write(join(data, "store", "quarantine", VID, `${held2.bundleId}.meta.json`), sidecar(held2, {}));
  write(join(data, "store", "rejected", VID, `${spam.bundleId}.json`), readFileSync(spam.file, "utf8"));
  write(join(data, "store", "rejected", VID, `${spam.bundleId}.meta.json`), sidecar(spam, { rejection_reason: "spam" }));

  const auditRow = (row: Record<string, string | null>) =>
    py({ ts: null, action: null, bundle_id: null, village_id: VID, issuer_key_hash: null, actor: null, reason: null, policy_hash: null, ...row });
  write(
    join(data, "store", "audit", "audit.log.jsonl"),
    [
      auditRow({ ts: "2026-11-20T08:00:00.300000Z", action: "village.create", actor: "alice" }),
      auditRow({ ts: "2026-11-22T12:00:00.000100Z", action: "ingest.accept", bundle_id: legacy.bundleId, issuer_key_hash: vectorKey().issuer_key_hash, actor: "bob", policy_hash: "0123456789abcdef" }),
      auditRow({ ts: "2026-11-22T12:30:00.000100Z", action: "ingest.accept", bundle_id: pub.bundleId, village_id: null, actor: "public@192.0.2.7" }),
      auditRow({ ts: "2026-11-22T13:00:00.000100Z", action: "ingest.accept", bundle_id: legacy2.bundleId, issuer_key_hash: vectorKey().issuer_key_hash, actor: "bob", policy_hash: "0123456789abcdef" }),
      auditRow({ ts: "2026-11-23T14:15:16.171819Z", action: "ingest.quarantine", bundle_id: held.bundleId, issuer_key_hash: vectorKey().issuer_key_hash, actor: "bob", reason: "predicate_not_allowed", policy_hash: "0123456789abcdef" }),
    ].join("\n") + "\n",
  );
  const pristine = data;
  data = tmp.join("data");
  cpSync(pristine, data, { recursive: true });
  cpSync(pristine, tmp.join("node-data"), { recursive: true });
  cpSync(pristine, tmp.join("sidecar-data"), { recursive: true });
});
afterAll(() => tmp.remove());

describe("a data directory written by Python Links v0.7", () => {
  test("the fixture really uses Python's spacing", () => {
    expect(readFileSync(join(data, "villages", VID, "village.json"), "utf8")).toContain('"village_id": "garden", "name": ');
    expect(readFileSync(join(data, "store", "index", "claims.jsonl"), "utf8")).toContain('"village_id": null, ');
    expect(readFileSync(join(data, "store", "bundles", `${legacy.bundleId}.json`), "utf8")).toContain('"value": 2.0, ');
  });

  test("villages list shows the Python villages", async () => {
    const list = json<unknown[]>(await linksOk(["villages", "list", "--json", ...D()]));
    expect(list).toEqual([
      { village_id: VID, name: "Community garden", visibility: "village", created_at: "2026-11-20T08:00:00.123456Z" },
      { village_id: OTHER, name: "Orchard", visibility: "village", created_at: "2026-11-20T08:00:00Z" },
    ]);
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
    expect(list.map((e) => e.bundle_id).sort()).toEqual([held.bundleId, held2.bundleId].sort());
    expect(list.find((e) => e.bundle_id === held.bundleId)).toMatchObject({
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
    expect(json<Array<{ bundle_id: string }>>(await linksOk(["quarantine", "list", "--json", ...D()])).map((e) => e.bundle_id)).toEqual([held2.bundleId]);
    const auditRows = json<{ action: string; bundle_id: string | null; actor: string | null }[]>(
      await linksOk(["audit", "tail", "--json", "--village-id", VID, ...D()]),
    );
    expect(auditRows.map((a) => a.action)).toEqual(["village.create", "ingest.accept", "ingest.accept", "ingest.quarantine", "quarantine.approve"]);
    expect(auditRows[4]).toMatchObject({ bundle_id: held.bundleId, actor: "alice" });
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

describe("review metadata an earlier links kept beside held and rejected bundles", () => {
  const root = () => tmp.join("sidecar-data");
  const folder = (kind: "quarantine" | "rejected") => join(root(), "store", kind, VID);
  /** Every *.json directly in a folder, as Python lists it: each must be a bundle named by its id. */
  const pythonView = (dir: string) =>
    readdirSync(dir)
      .filter((n) => n.endsWith(".json"))
      .map((n) => [n, (JSON.parse(readFileSync(join(dir, n), "utf8")) as { bundle_id?: string }).bundle_id]);

  test("quarantine show reads an old sidecar in place", async () => {
    expect(pythonView(folder("quarantine")).map(([n]) => n)).toContain(`${held2.bundleId}.meta.json`);
    const shown = json<{ reason: string; detail: string; actor: string }>(await linksOk(["quarantine", "show", held2.bundleId, "--data", root()]));
    expect(shown).toMatchObject({ reason: "predicate_not_allowed", detail: "not allowed", actor: "bob" });
  });

  test("quarantine list moves the sidecars into meta/: every *.json left in the folders is a bundle", async () => {
    const list = json<Array<{ bundle_id: string; detail: string | null }>>(await linksOk(["quarantine", "list", "--json", "--data", root()]));
    expect(list.find((e) => e.bundle_id === held2.bundleId)?.detail).toBe("not allowed");
    for (const kind of ["quarantine", "rejected"] as const) {
      for (const [name, id] of pythonView(folder(kind))) expect(name).toBe(`${id}.json`);
    }
    expect(JSON.parse(readFileSync(join(folder("quarantine"), "meta", `${held2.bundleId}.json`), "utf8"))).toMatchObject({ reason: "predicate_not_allowed", actor: "bob" });
    expect(JSON.parse(readFileSync(join(folder("rejected"), "meta", `${spam.bundleId}.json`), "utf8"))).toMatchObject({ rejection_reason: "spam" });
  });

  test("approving the entry stores it and removes its metadata", async () => {
    await linksOk(["quarantine", "approve", held2.bundleId, "--actor", "alice", "--data", root()]);
    expect(existsSync(join(root(), "store", "bundles", VID, `${held2.bundleId}.json`))).toBe(true);
    expect(existsSync(join(folder("quarantine"), "meta", `${held2.bundleId}.json`))).toBe(false);
    expect(existsSync(join(folder("quarantine"), `${held2.bundleId}.meta.json`))).toBe(false);
  });
});

describe("a node serving a Python Links v0.7 data directory", () => {
  let node: RunningNode;
  const root = () => tmp.join("node-data");
  beforeAll(async () => {
    node = await startNode(root());
  });
  afterAll(async () => {
    await node?.stop();
  });

  const get = async (path: string, member?: string) => {
    const res = await fetch(`${node.url}${path}`, { headers: member ? { authorization: `Bearer ${token(member)}` } : {} });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const post = async (path: string, file: string, member?: string) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (member) headers.authorization = `Bearer ${token(member)}`;
    const res = await fetch(`${node.url}${path}`, { method: "POST", headers, body: readFileSync(file) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  type Rows = { claims: Array<{ bundle_id: string; village_id: string | null; subject: string }> };
  const claimsOf = async (vid: string, member: string, query = "") => (await get(`/villages/${vid}/claims${query}`, member)).body as unknown as Rows;

  /** What each scope answers: the garden's bundles, the orchard's, the public store's newest. */
  async function scopes() {
    const garden = await claimsOf(VID, "bob");
    const orchard = await claimsOf(OTHER, "olive");
    return {
      garden: [...new Set(garden.claims.map((c) => c.bundle_id))].sort(),
      gardenVillageIds: [...new Set(garden.claims.map((c) => c.village_id))],
      gardenLatest: (await get(`/villages/${VID}/claims/latest`, "bob")).body.bundle_id,
      orchard: orchard.claims.map((c) => c.bundle_id),
      orchardLatest: await get(`/villages/${OTHER}/claims/latest`, "olive"),
      publicLatest: (await get("/.well-known/links/claims/latest")).body.bundle_id,
    };
  }

  test("the village's members get the bundles v0.7 accepted into it: claims, by subject and issuer, latest", async () => {
    const s = await scopes();
    expect(s.garden).toEqual([legacy.bundleId, legacy2.bundleId].sort());
    expect(s.gardenVillageIds).toEqual([VID]);
    expect(s.gardenLatest).toBe(legacy2.bundleId); // the one v0.7 accepted last
    expect((await claimsOf(VID, "bob", "?subject=wikipedia:en:Ada")).claims.map((c) => c.bundle_id)).toEqual([legacy.bundleId]);
    expect((await claimsOf(VID, "bob", "?issuer=node-a")).claims).toHaveLength(2);
  });

  test("the public store and another village do not see them", async () => {
    const s = await scopes();
    expect(s.publicLatest).toBe(pub.bundleId);
    expect(s.orchard).toEqual([]);
    expect(s.orchardLatest.status).toBe(404);
    expect((await get(`/villages/${VID}/claims`)).status).toBe(401);
  });

  test("pushed again: a duplicate in their village, stored and served in another village and in the public store", async () => {
    expect((await post(`/villages/${VID}/inbox`, legacy.file, "bob")).body).toEqual({ status: "duplicate", bundle_id: legacy.bundleId });
    expect((await post(`/villages/${OTHER}/inbox`, legacy.file, "olive")).body).toEqual({ status: "accepted", bundle_id: legacy.bundleId });
    expect(existsSync(join(root(), "store", "bundles", OTHER, `${legacy.bundleId}.json`))).toBe(true);
    expect((await post("/inbox", legacy2.file)).body).toEqual({ status: "accepted", bundle_id: legacy2.bundleId });
    expect((await post("/inbox", legacy2.file)).body).toEqual({ status: "duplicate", bundle_id: legacy2.bundleId });
    const s = await scopes();
    expect(s.orchard).toEqual([legacy.bundleId]);
    expect(s.publicLatest).toBe(legacy2.bundleId);
    expect(s.garden).toEqual([legacy.bundleId, legacy2.bundleId].sort());
  });

  test("after a stop, two reindexes (identical files) and a new start, every scope answers the same", async () => {
    const before = await scopes();
    expect(await node.stop()).toBe(0);
    await linksOk(["claims", "reindex", "--data", root()]);
    const first = readFileSync(join(root(), "store", "index", "claims.jsonl"), "utf8");
    await linksOk(["claims", "reindex", "--data", root()]);
    expect(readFileSync(join(root(), "store", "index", "claims.jsonl"), "utf8")).toBe(first);
    node = await startNode(root());
    const after = await scopes();
    expect({ ...after, gardenLatest: null }).toEqual({ ...before, gardenLatest: null });
    expect([legacy.bundleId, legacy2.bundleId]).toContain(after.gardenLatest as string);
  });
});
