/**
 * Scope attacks over real HTTP: the public store and each village answer only for themselves,
 * whatever ids, copies or re-signed twins an attacker brings.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { normalizeBundle, signBundle, type Bundle } from "../../../src/core/bundle.ts";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { addMember } from "../../../src/storage/members.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { keypair, makeNode, signedBundle, VID, type Node } from "./helpers.ts";

let node: Node | undefined;
afterEach(async () => {
  await node?.cleanup();
  node = undefined;
});

const body = (b: Bundle) => toJsonText(b as unknown as JsonValue);
/** The same payload (so the same bundle id) signed by another key. */
const twin = (b: Bundle, seed: Uint8Array) => signBundle(normalizeBundle({ ...b, public_key: null, signature: null }), seed);

describe("a re-signed twin (same bundle id, another signer) in the public store", () => {
  test("pushed publicly first, it neither hides the village's copy nor is served as it", async () => {
    node = makeNode();
    const real = signedBundle(node.key);
    const fake = twin(real, keypair().seed);
    expect(fake.bundle_id).toBe(real.bundle_id);
    expect((await node.send("POST", "/inbox", { body: body(fake) })).status).toBe(200);
    const pushed = await node.send("POST", `/villages/${VID}/inbox`, { token: node.tokens.member, body: body(real) });
    expect(await pushed.json()).toMatchObject({ status: "accepted" });
    const latest = (await (await node.send("GET", `/villages/${VID}/claims/latest`, { token: node.tokens.member })).json()) as Bundle;
    expect(latest.public_key).toBe(real.public_key);
    const feed = (await (await node.send("GET", `/villages/${VID}/bundles`, { token: node.tokens.member })).json()) as { bundles: Bundle[] };
    expect(feed.bundles.map((b) => b.public_key)).toEqual([real.public_key]);
    const pub = (await (await node.send("GET", "/.well-known/links/claims/latest")).json()) as Bundle;
    expect(pub.public_key).toBe(fake.public_key);
  });

  test("pushed publicly after, it does not replace the village's copy, and the village's is never public", async () => {
    node = makeNode();
    const real = signedBundle(node.key);
    await node.send("POST", `/villages/${VID}/inbox`, { token: node.tokens.member, body: body(real) });
    expect((await node.send("GET", "/.well-known/links/claims/latest")).status).toBe(404);
    const fake = twin(real, keypair().seed);
    expect(await (await node.send("POST", "/inbox", { body: body(fake) })).json()).toMatchObject({ status: "accepted" });
    const latest = (await (await node.send("GET", `/villages/${VID}/claims/latest`, { token: node.tokens.member })).json()) as Bundle;
    expect(latest.public_key).toBe(real.public_key);
    const claims = (await (await node.send("GET", `/villages/${VID}/claims`, { token: node.tokens.member })).json()) as { claims: unknown[] };
    expect(claims.claims.length).toBe(real.claims.length);
  });
});

describe("village ids an attacker spells differently", () => {
  test("case, unicode, dots, slashes, percent-encoding and overlong ids never reach north-field's data", async () => {
    node = makeNode();
    // a second village whose id differs only in case, with its own member
    createVillage(node.paths, { villageId: "North-Field", name: "other", adminId: "eve" });
    const eve = addMember(node.paths, "North-Field", "eve-m", "member");
    const real = signedBundle(node.key);
    await node.send("POST", `/villages/${VID}/inbox`, { token: node.tokens.member, body: body(real) });
    // eve's token opens nothing of north-field
    for (const path of [`/villages/${VID}/claims/latest`, `/villages/${VID}/bundles`, `/villages/${VID}/claims`, `/villages/${VID}/audit/entries`]) {
      expect((await node.send("GET", path, { token: eve })).status).toBe(401);
    }
    expect((await node.send("GET", "/villages/North-Field/claims/latest", { token: eve })).status).toBe(404);
    expect((await node.send("GET", "/villages/North-Field/bundles", { token: eve })).json()).resolves.toMatchObject({ bundles: [] });
    const spellings = ["north-field.", "north-field%2F..%2Fnorth-field", "..%2Fnorth-field", "north%2Dfield%00", "north-fi%D0%B5ld", "n".repeat(65), "north-field%20", "%6Eorth-field%2e"];
    for (const s of spellings) {
      const res = await node.send("GET", `/villages/${s}/claims/latest`, { token: node.tokens.member });
      expect([400, 404]).toContain(res.status);
      expect(((await res.json()) as { code: string }).code).toMatch(/^(invalid_village_id|not_found|village_not_found)$/);
    }
  });
});

describe("one bundle raced into one village by the node and by `links claims ingest` processes", () => {
  test("is stored, indexed, audited and fed once, whoever wins", async () => {
    node = makeNode();
    const bundles = [signedBundle(node.key), signedBundle(node.key), signedBundle(node.key)];
    const dir = join(node.parent, "in"); // removed with the node
    mkdirSync(dir);
    bundles.forEach((b, i) => writeFileSync(join(dir, `${i}.json`), body(b)));
    const main = resolve(import.meta.dir, "../../../src/main.ts");
    const cli = () =>
      Bun.spawn([process.execPath, main, "claims", "ingest", dir, "--village-id", VID, "--data", node!.dataDir, "--json"], { stdout: "pipe", stderr: "pipe" });
    const procs = [cli(), cli()];
    let running = true;
    const done = Promise.all(procs.map((p) => p.exited)).finally(() => (running = false));
    // the node pushes the same bundles over and over while the processes ingest them (bounded)
    const statuses: number[] = [];
    for (let round = 0; round < 200 && (round < 2 || running); round++) {
      const answers = await Promise.all(bundles.map((b) => node!.send("POST", `/villages/${VID}/inbox`, { token: node!.tokens.member, body: body(b) })));
      statuses.push(...answers.map((a) => a.status));
    }
    // stored or duplicate, or the member's rate limit (60 a minute): never an error
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(statuses.slice(0, bundles.length)).toEqual(bundles.map(() => 200));
    expect(await done).toEqual([0, 0]);
    const rows = readFileSync(node.paths.claimsIndexFile(), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { bundle_id: string; village_id: string });
    const accepts = readFileSync(node.paths.auditFile(), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { action: string; bundle_id: string; village_id: string });
    for (const b of bundles) {
      expect(rows.filter((r) => r.bundle_id === b.bundle_id && r.village_id === VID).length).toBe(b.claims.length);
      expect(accepts.filter((r) => r.action === "ingest.accept" && r.bundle_id === b.bundle_id && r.village_id === VID).length).toBe(1);
    }
    // the admin reads (the member used its rate limit up)
    const feed = (await (await node.send("GET", `/villages/${VID}/bundles`, { token: node.tokens.admin })).json()) as { bundles: Bundle[] };
    expect(feed.bundles.map((b) => b.bundle_id).sort()).toEqual(bundles.map((b) => b.bundle_id).sort());
  });
});
