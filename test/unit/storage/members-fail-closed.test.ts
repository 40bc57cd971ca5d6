/**
 * The member ledger fails closed: a line of revocations.jsonl or members.jsonl that cannot be read
 * (hand-damaged, torn by a crash, a field of the wrong type) never gives a revoked token back.
 * Every token hash such a line names counts as revoked; a revocations line that names none
 * leaves the village's tokens refused until it is repaired.
 */
import { afterEach, expect, spyOn, test } from "bun:test";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addMember, hashToken, listMembers, MemberDirectory, revokeMember } from "../../../src/storage/members.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { createVillage } from "../../../src/storage/villages.ts";

let dir = "";
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = "";
});

function setup(): { paths: DataPaths; olga: string; bob: string } {
  dir = mkdtempSync(join(tmpdir(), "links-members-"));
  const paths = new DataPaths(join(dir, "data"));
  createVillage(paths, { villageId: "v1", name: "V", adminId: "alice" });
  const olga = addMember(paths, "v1", "olga", "member");
  const bob = addMember(paths, "v1", "bob", "member");
  revokeMember(paths, "v1", "olga", "local:test", "left");
  return { paths, olga, bob };
}

/** Rewrites the only revocation row with `damage` applied to its text. */
function damageRevocation(paths: DataPaths, damage: (line: string) => string): void {
  const file = paths.revocationsFile("v1");
  const line = readFileSync(file, "utf8").trimEnd();
  writeFileSync(file, `${damage(line)}\n`);
}

function quietly<T>(fn: () => T): T {
  const spy = spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    return fn();
  } finally {
    spy.mockRestore();
  }
}

const damages: Array<[string, (line: string) => string]> = [
  ["cut short after the hash (a torn write)", (l) => l.slice(0, l.indexOf('"ts"') + 8)],
  ["a byte flipped into invalid JSON", (l) => l.replace("{", "[")],
  ["a field of the wrong type", (l) => l.replace(/"actor":"[^"]*"/, '"actor":7')],
  ["a required field missing", (l) => l.replace(/,"ts":"[^"]*"/, "")],
  ["the hash in upper case inside broken JSON", (l) => l.replace(/[0-9a-f]{64}/, (h) => h.toUpperCase()).slice(0, -1)],
];

test.each(damages)("a revocation line %s still revokes the token it names", (_, damage) => {
  const { paths, olga, bob } = setup();
  damageRevocation(paths, damage);
  const directory = new MemberDirectory(paths);
  expect(() => quietly(() => directory.authenticate("v1", olga))).toThrow(expect.objectContaining({ code: "revoked_token" }));
  expect(quietly(() => directory.authenticate("v1", bob)).memberId).toBe("bob");
  expect(quietly(() => listMembers(paths, "v1")).find((m) => m.member_id === "olga")?.revoked).toBe(true);
});

test("a revocation line that names no hash refuses every token of the village until repaired", () => {
  const { paths, olga, bob } = setup();
  const file = paths.revocationsFile("v1");
  const good = readFileSync(file, "utf8");
  writeFileSync(file, `${good.slice(0, good.indexOf("token_hash"))}\n`);
  const directory = new MemberDirectory(paths);
  for (const token of [olga, bob]) {
    expect(() => quietly(() => directory.authenticate("v1", token))).toThrow(
      expect.objectContaining({ code: "storage_error", detail: expect.stringContaining("line 1 of village v1's revocations.jsonl") }),
    );
  }
  // a token of no member is refused as any wrong token, without word of the damage
  expect(() => quietly(() => directory.authenticate("v1", "x".repeat(43)))).toThrow(expect.objectContaining({ code: "invalid_token" }));
  // the operator can still see the members (and repair the line); once repaired, tokens work again
  expect(quietly(() => listMembers(paths, "v1")).map((m) => m.member_id)).toEqual(["olga", "bob"]);
  writeFileSync(file, good);
  expect(directory.authenticate("v1", bob).memberId).toBe("bob");
  expect(() => directory.authenticate("v1", olga)).toThrow(expect.objectContaining({ code: "revoked_token" }));
});

test("a revocation written after a torn one is still read, and the torn one's hash still counts", () => {
  const { paths, olga, bob } = setup();
  damageRevocation(paths, (l) => l.slice(0, l.indexOf('"ts"') + 8)); // no newline: torn
  const file = paths.revocationsFile("v1");
  writeFileSync(file, readFileSync(file, "utf8").trimEnd());
  quietly(() => revokeMember(paths, "v1", "bob", "local:test", "left"));
  const directory = new MemberDirectory(paths);
  for (const token of [olga, bob]) {
    expect(() => quietly(() => directory.authenticate("v1", token))).toThrow(expect.objectContaining({ code: "revoked_token" }));
  }
});

test("a member row that cannot be read (is_revoked of the wrong type) revokes the hash it names", () => {
  const { paths, bob } = setup();
  // Python Links' row shape, with is_revoked written as a string: unreadable, so its hash is out
  appendFileSync(
    paths.membersFile("v1"),
    `${JSON.stringify({ member_id: "bob", role: "member", added_at: "2024-01-01T00:00:00Z", token_hash: hashToken(bob), is_revoked: "true" })}\n`,
  );
  const directory = new MemberDirectory(paths);
  expect(() => quietly(() => directory.authenticate("v1", bob))).toThrow(expect.objectContaining({ code: "revoked_token" }));
});
