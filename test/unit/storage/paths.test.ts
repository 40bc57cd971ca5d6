import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import type { ErrorCode } from "../../../src/core/errors.ts";
import {
  assertBundleId,
  assertMemberId,
  assertVillageId,
  DataPaths,
} from "../../../src/storage/paths.ts";

const GOOD_VID = "north-field_01";
const GOOD_BID = "0123456789abcdef0123456789abcdef";

/** Ids that must never reach a file name, in any position. */
const BAD_IDS: unknown[] = [
  "../x",
  "..",
  ".",
  "%2F",
  "%2e%2e",
  "a/b",
  "a\\b",
  "/etc/passwd",
  "C:\\x",
  "a\u0000b",
  "",
  "v".repeat(65), // too long for a village id (a member id may be 128)
  "vіllage", // Cyrillic і
  "ｖillage", // fullwidth v
  "village\u200b", // zero-width space
  "a b",
  " village",
  "village\n",
  "village\t",
  undefined,
  null,
  42,
  ["village"],
  { toString: () => "village" },
];

const dp = new DataPaths("/srv/links-data");

/** `except`: corpus entries that are legitimate in that position (tested on their own below). */
type Position = { name: string; code: ErrorCode; call: (id: unknown) => unknown; except?: unknown[] };
const LONG_VID = "v".repeat(65);
const positions: Position[] = [
  { name: "assertVillageId", code: "invalid_village_id", call: (id) => assertVillageId(id) },
  { name: "assertBundleId", code: "invalid_bundle_id", call: (id) => assertBundleId(id) },
  { name: "assertMemberId", code: "invalid_member_id", call: (id) => assertMemberId(id), except: [LONG_VID] },
  ...(
    [
      "villageDir",
      "villageFile",
      "membersFile",
      "revocationsFile",
      "policyHistoryFile",
      "policyChainDir",
      "quarantineDir",
      "rejectedDir",
    ] as const
  ).map((m) => ({
    name: `DataPaths.${m}`,
    code: "invalid_village_id" as const,
    call: (id: unknown) => dp[m](id as string),
  })),
  { name: "bundleFile (bundle id)", code: "invalid_bundle_id", call: (id) => dp.bundleFile(id as string) },
  {
    name: "bundleFile (village id)",
    code: "invalid_village_id",
    call: (id) => dp.bundleFile(GOOD_BID, id as string),
    except: [undefined, null], // no village: the public bundle path
  },
  ...(["quarantineFile", "quarantineMetaFile", "legacyQuarantineMetaFile", "rejectedFile", "rejectedMetaFile", "legacyRejectedMetaFile"] as const).flatMap((m) => [
    {
      name: `DataPaths.${m} (village id)`,
      code: "invalid_village_id" as const,
      call: (id: unknown) => dp[m](id as string, GOOD_BID),
    },
    {
      name: `DataPaths.${m} (bundle id)`,
      code: "invalid_bundle_id" as const,
      call: (id: unknown) => dp[m](GOOD_VID, id as string),
    },
  ]),
];

describe("every id position refuses the corpus of bad ids", () => {
  for (const pos of positions) {
    test(`${pos.name} throws ${pos.code} for each of them`, () => {
      for (const bad of BAD_IDS.filter((b) => !pos.except?.includes(b))) {
        expect(() => pos.call(bad)).toThrow(expect.objectContaining({ code: pos.code }));
      }
    });
  }
});

describe("id checks", () => {
  test("accept well-formed ids and return them unchanged", () => {
    for (const v of ["a", "A-z_09", "v".repeat(64), GOOD_VID]) expect(assertVillageId(v)).toBe(v);
    expect(assertBundleId(GOOD_BID)).toBe(GOOD_BID);
    for (const m of ["alice", "alice@example.org", "bob.smith_2-x", "m".repeat(128)]) {
      expect(assertMemberId(m)).toBe(m);
    }
  });

  test("refuse ids that are almost right", () => {
    expect(() => assertBundleId(GOOD_BID.toUpperCase())).toThrow(expect.objectContaining({ code: "invalid_bundle_id" }));
    expect(() => assertBundleId(GOOD_BID.slice(1))).toThrow(expect.objectContaining({ code: "invalid_bundle_id" }));
    expect(() => assertBundleId(`${GOOD_BID}0`)).toThrow(expect.objectContaining({ code: "invalid_bundle_id" }));
    expect(() => assertMemberId(".hidden")).toThrow(expect.objectContaining({ code: "invalid_member_id" }));
    expect(() => assertMemberId("m".repeat(129))).toThrow(expect.objectContaining({ code: "invalid_member_id" }));
  });

  test("show the offending value JSON-quoted, cut to 80 characters, and state the rule", () => {
    let err: unknown;
    try {
      assertVillageId(`${"a".repeat(100)}/`);
    } catch (e) {
      err = e;
    }
    const msg = (err as Error).message;
    expect(msg).toContain(`"${"a".repeat(80)}...`);
    expect(msg).not.toContain("a".repeat(81));
    expect(msg).toContain("1 to 64 characters");
    expect(() => assertVillageId("a\u0000b")).toThrow('"a\\u0000b"');
    expect(() => assertVillageId(7)).toThrow("a number");
  });
});

describe("DataPaths", () => {
  test("resolves a relative root to an absolute one", () => {
    expect(new DataPaths("data").root).toBe(resolve("data"));
  });

  test("lays files out like Python Links", () => {
    const r = "/srv/links-data";
    expect(dp.villagesDir()).toBe(join(r, "villages"));
    expect(dp.villageDir(GOOD_VID)).toBe(join(r, "villages", GOOD_VID));
    expect(dp.villageFile(GOOD_VID)).toBe(join(r, "villages", GOOD_VID, "village.json"));
    expect(dp.membersFile(GOOD_VID)).toBe(join(r, "villages", GOOD_VID, "members.jsonl"));
    expect(dp.revocationsFile(GOOD_VID)).toBe(join(r, "villages", GOOD_VID, "revocations.jsonl"));
    expect(dp.policyHistoryFile(GOOD_VID)).toBe(join(r, "villages", GOOD_VID, "policy_history.jsonl"));
    expect(dp.policyChainDir(GOOD_VID)).toBe(join(r, "villages", GOOD_VID, "policy_chain"));
    expect(dp.bundlesDir()).toBe(join(r, "store", "bundles"));
    expect(dp.bundleFile(GOOD_BID)).toBe(join(r, "store", "bundles", `${GOOD_BID}.json`));
    expect(dp.bundleFile(GOOD_BID, null)).toBe(join(r, "store", "bundles", `${GOOD_BID}.json`));
    expect(dp.bundleFile(GOOD_BID, GOOD_VID)).toBe(join(r, "store", "bundles", GOOD_VID, `${GOOD_BID}.json`));
    expect(dp.claimsIndexFile()).toBe(join(r, "store", "index", "claims.jsonl"));
    expect(dp.quarantineDir(GOOD_VID)).toBe(join(r, "store", "quarantine", GOOD_VID));
    expect(dp.quarantineFile(GOOD_VID, GOOD_BID)).toBe(join(r, "store", "quarantine", GOOD_VID, `${GOOD_BID}.json`));
    // review metadata in meta/, so every *.json directly in the folder is a held bundle
    expect(dp.quarantineMetaFile(GOOD_VID, GOOD_BID)).toBe(join(r, "store", "quarantine", GOOD_VID, "meta", `${GOOD_BID}.json`));
    expect(dp.legacyQuarantineMetaFile(GOOD_VID, GOOD_BID)).toBe(join(r, "store", "quarantine", GOOD_VID, `${GOOD_BID}.meta.json`));
    expect(dp.rejectedFile(GOOD_VID, GOOD_BID)).toBe(join(r, "store", "rejected", GOOD_VID, `${GOOD_BID}.json`));
    expect(dp.rejectedMetaFile(GOOD_VID, GOOD_BID)).toBe(join(r, "store", "rejected", GOOD_VID, "meta", `${GOOD_BID}.json`));
    expect(dp.legacyRejectedMetaFile(GOOD_VID, GOOD_BID)).toBe(join(r, "store", "rejected", GOOD_VID, `${GOOD_BID}.meta.json`));
    expect(dp.auditFile()).toBe(join(r, "store", "audit", "audit.log.jsonl"));
  });
});
