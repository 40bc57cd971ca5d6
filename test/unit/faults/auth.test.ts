/**
 * Tokens that are not a live member's token never pass: wrong, truncated, extended, case-changed,
 * revoked, rotated-out, another village's, and (property-based) any mutation of a real token.
 *
 * On timing: the member directory looks a token up by its sha256 digest (members.jsonl stores
 * only digests) and then compares digests of equal length with crypto.timingSafeEqual. A guess
 * that shares a long prefix with a real token has an unrelated digest, so how long the lookup
 * takes cannot tell an attacker how much of the token they got right. We test the consequence
 * (two guesses sharing the real token's first 40 characters are refused like any other) rather
 * than time the comparison: a statistical timing test on a shared machine would be flaky.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { addMember, rotateToken } from "../../../src/storage/members.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { makeNode, VID, type Node } from "../server/helpers.ts";
import { faultsSeed, figures } from "../../faults/lib/scale.ts";

const ROUTE = `/villages/${VID}/claims?limit=1`;
let node: Node;
let otherVillageToken: string;
let rotatedOut: string;
let rotatedIn: string;
async function statusFor(authorization: string | undefined): Promise<{ status: number; code: string | null; www: string | null }> {
  const res = await node.send("GET", ROUTE, { headers: authorization === undefined ? {} : { authorization } });
  const body = (await res.json()) as { code?: string };
  return { status: res.status, code: body.code ?? null, www: res.headers.get("www-authenticate") };
}

beforeAll(() => {
  // Many refused attempts from loopback: a generous auth-failure budget so the limiter does not
  // answer before the token check (the limit itself is tested in e2e/faults-auth).
  node = makeNode({ server: { authFailuresPerMin: 1_000_000 } });
  createVillage(node.paths, { villageId: "elsewhere", name: "Elsewhere", adminId: "eve" });
  otherVillageToken = addMember(node.paths, "elsewhere", "eve", "admin");
  rotatedOut = addMember(node.paths, VID, "rotor", "member");
  rotatedIn = rotateToken(node.paths, VID, "rotor", "alice");
});
afterAll(() => node.cleanup());

describe("when a token is not a live member's token of this village", () => {
  test("the real tokens pass (the control)", async () => {
    expect((await statusFor(`Bearer ${node.tokens.member}`)).status).toBe(200);
    expect((await statusFor(`Bearer ${rotatedIn}`)).status).toBe(200);
  });

  const families: Array<[string, () => string]> = [
    ["a wrong token", () => "A".repeat(43)],
    ["the real token minus its last character", () => node.tokens.member.slice(0, -1)],
    ["the real token's first 20 characters", () => node.tokens.member.slice(0, 20)],
    ["the real token plus one character", () => `${node.tokens.member}A`],
    ["the real token with its case swapped", () => swapCase(node.tokens.member)],
    ["the real token's sha256 (what is stored)", () => new Bun.CryptoHasher("sha256").update(node.tokens.member).digest("hex")],
    ["a revoked token", () => node.tokens.revoked],
    ["a token rotated out", () => rotatedOut],
    ["another village's admin token", () => otherVillageToken],
  ];
  for (const [name, token] of families) {
    test(`${name} is refused with 401 and WWW-Authenticate`, async () => {
      const r = await statusFor(`Bearer ${token()}`);
      expect(r.status).toBe(401);
      expect(["invalid_token", "revoked_token", "missing_token"]).toContain(r.code as string);
      expect(r.www).toStartWith("Bearer");
    });
  }

  test("two tokens sharing the real token's first 40 characters are both refused", async () => {
    const real = node.tokens.admin;
    const guesses = [`${real.slice(0, 40)}${flip(real.slice(40))}`, `${real.slice(0, 40)}zzz`].filter((g) => g !== real);
    expect(guesses).toHaveLength(2);
    for (const g of guesses) expect((await statusFor(`Bearer ${g}`)).status).toBe(401);
    console.log(
      "[faults] auth note: tokens are looked up by sha256 digest and digests compared with timingSafeEqual; " +
        "a guess sharing 40 of 43 characters with a real token has an unrelated digest, so timing cannot reveal token prefixes. " +
        "Both 40-character-prefix guesses were refused.",
    );
  });

  test("a token sent elsewhere than Authorization: Bearer is not looked at", async () => {
    const t = node.tokens.admin;
    for (const auth of [undefined, `Basic ${btoa(`alice:${t}`)}`, `Token ${t}`, `Bearer${t}`, `${t}`]) {
      const r = await statusFor(auth);
      expect(r.status).toBe(401);
    }
    const viaQuery = await node.send("GET", `${ROUTE}&token=${t}&access_token=${t}`);
    expect(viaQuery.status).toBe(401);
  });

  test("no mutation of a real token passes (property-based)", async () => {
    const tokens = [node.tokens.admin, node.tokens.member, node.tokens.observer];
    const live = new Set([...tokens, rotatedIn]);
    const mutated = fc.tuple(fc.constantFrom(...tokens), fc.nat(), fc.constantFrom("flip", "insert", "delete", "truncate", "extend", "swap"), fc.string({ minLength: 1, maxLength: 3 })).map(
      ([t, at, kind, s]) => {
        const i = at % t.length;
        switch (kind) {
          case "flip":
            return t.slice(0, i) + (t[i] === "A" ? "B" : "A") + t.slice(i + 1);
          case "insert":
            return t.slice(0, i) + s + t.slice(i);
          case "delete":
            return t.slice(0, i) + t.slice(i + 1);
          case "truncate":
            return t.slice(0, i);
          case "extend":
            return t + s;
          default:
            return swapCase(t);
        }
      },
    );
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, fc.string({ maxLength: 60 })), async (guess) => {
        // HTTP drops spaces and tabs around a header value (RFC 9110 section 5.5): a real token
        // with a space added at the end is still the real token, not a guess.
        if (live.has(guess) || live.has(guess.replace(/^[ \t]+|[ \t]+$/g, ""))) return;
        tried++;
        const res = await node.send("GET", ROUTE, { headers: { authorization: `Bearer ${guess}` } });
        await res.arrayBuffer();
        expect(res.status === 401 || res.status === 400).toBe(true);
      }),
      { numRuns: 400, seed: faultsSeed() },
    );
    figures("auth", { mutated_or_random_tokens_refused: tried, accepted: 0 });
  });
});

function swapCase(s: string): string {
  return [...s].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join("");
}

function flip(s: string): string {
  return [...s].map((c) => (c === "A" ? "B" : "A")).join("");
}
