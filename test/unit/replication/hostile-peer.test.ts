/**
 * A hostile peer: a real Bun.serve we control answering the bundle feed with what no honest node
 * sends. Whatever it answers, nothing reaches the village's store except through its pipeline.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { normalizeBundle, signBundle } from "../../../src/core/bundle.ts";
import { parseStored, toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { syncPeer } from "../../../src/replication/pass.ts";
import { readPeerState } from "../../../src/replication/state.ts";
import { tailAudit } from "../../../src/storage/audit.ts";
import { listQuarantine } from "../../../src/storage/quarantine.ts";
import { keypair, signedBundle } from "../server/helpers.ts";
import { addPeerOf, localNode, startPeer, startRelay, VID, type LocalNode, type PeerNode, type Relay } from "./helpers.ts";

setDefaultTimeout(30_000);

let peerNode: PeerNode | undefined;
let local: LocalNode | undefined;
let relays: Relay[] = [];
afterEach(async () => {
  for (const r of relays) r.stop();
  relays = [];
  await peerNode?.cleanup();
  local?.cleanup();
  peerNode = undefined;
  local = undefined;
});

function setUp(): { a: PeerNode; b: LocalNode } {
  peerNode = startPeer();
  local = localNode();
  return { a: peerNode, b: local };
}

/** A peer whose feed answers `page` for every request (its audit log and policy are the real peer's). */
function hostileFeed(a: PeerNode, page: (url: URL, n: number) => Response): Relay {
  let n = 0;
  const relay = startRelay(a.url, (_req, url) => (url.pathname === `/villages/${VID}/bundles` ? page(url, n++) : null));
  relays.push(relay);
  return relay;
}

const json = (v: unknown) => new Response(toJsonText(v as JsonValue), { headers: { "content-type": "application/json" } });

function villageFiles(b: LocalNode): string[] {
  const dir = join(b.paths.bundlesDir(), VID);
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}
function topFiles(b: LocalNode): string[] {
  const dir = b.paths.bundlesDir();
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".json")).sort() : [];
}

describe("a hostile peer's bundle feed", () => {
  test("stamps (village_id, visibility) on a bundle are not stored: the village keeps the bundle as signed, never in the public store", async () => {
    const { a, b } = setUp();
    const bundle = signedBundle(a.key);
    const relay = hostileFeed(a, (_u, n) => json(n === 0 ? { bundles: [{ ...bundle, village_id: "other", visibility: "public" }], next_cursor: "AAAA" } : { bundles: [], next_cursor: null }));
    addPeerOf(b, relay.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
    expect(r).toMatchObject({ status: "ok", accepted: 1 });
    const stored = parseStored(readFileSync(b.paths.bundleFile(bundle.bundle_id, VID))) as Record<string, JsonValue>;
    expect(stored.village_id).toBeUndefined();
    expect(stored.visibility).toBeUndefined();
    expect(topFiles(b)).toEqual([]);
  });

  test("two entries with one id: a re-signed copy under another key and the real one, judged once by the pipeline", async () => {
    const { a, b } = setUp();
    const real = signedBundle(a.key);
    const other = keypair();
    const resigned = signBundle(normalizeBundle({ ...real, public_key: null, signature: null }), other.seed);
    expect(resigned.bundle_id).toBe(real.bundle_id);
    const relay = hostileFeed(a, (_u, n) => json(n === 0 ? { bundles: [resigned, real], next_cursor: "AAAA" } : { bundles: [], next_cursor: null }));
    addPeerOf(b, relay.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
    expect(r.status).toBe("ok");
    expect(villageFiles(b)).toEqual([`${real.bundle_id}.json`]);
    const accepts = tailAudit(b.paths, { villageId: VID, action: "ingest.accept" });
    expect(accepts.length).toBe(1);
  });

  test("a bundle nested deeper than the node accepts from outside is refused, not stored, and the cursor stays", async () => {
    const { a, b } = setUp();
    let deep: JsonValue = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    // signed elsewhere (a node without a depth bound): the signature is beside the point, the depth is refused first
    const bundle = { ...signedBundle(a.key), claims: [{ ...signedBundle(a.key).claims[0], value: deep }] };
    const relay = hostileFeed(a, () => json({ bundles: [bundle], next_cursor: "AAAA" }));
    addPeerOf(b, relay.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
    expect(r).toMatchObject({ status: "failed", refused: 1, code: "invalid_json" });
    expect(villageFiles(b)).toEqual([]);
    expect(readPeerState(b.paths, { village: VID, url: relay.url }).cursor).toBeNull();
  });

  test("an unsigned bundle, or one with a wrong id, goes through the pipeline: refused and audited, never stored or quarantined", async () => {
    const { a, b } = setUp();
    const good = signedBundle(a.key);
    const unsigned = { ...signedBundle(a.key), public_key: null, signature: null };
    const wrongId = { ...signedBundle(a.key), bundle_id: "0".repeat(32) };
    for (const bad of [unsigned, wrongId]) {
      const relay = hostileFeed(a, () => json({ bundles: [good, bad], next_cursor: "AAAA" }));
      addPeerOf(b, relay.url, a.tokens.observer);
      const r = await syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
      expect(r).toMatchObject({ status: "failed", refused: 1 });
      expect(readPeerState(b.paths, { village: VID, url: relay.url }).cursor).toBeNull();
    }
    expect(villageFiles(b)).toEqual([`${good.bundle_id}.json`]);
    expect(listQuarantine(b.paths, VID)).toEqual([]);
    expect(tailAudit(b.paths, { villageId: VID, action: "ingest.reject" }).length).toBe(2);
  });

  test("a feed that never ends (fresh cursors, empty pages) stops at the pass's page bound", async () => {
    const { a, b } = setUp();
    const relay = hostileFeed(a, (_u, n) => json({ bundles: [], next_cursor: `c${n}` }));
    addPeerOf(b, relay.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths, maxPagesPerPass: 5 }, { village: VID, url: relay.url });
    expect(r).toMatchObject({ status: "ok", caught_up: false });
    expect(relay.seen.filter((p) => p.endsWith("/bundles")).length).toBe(5);
  });

  test("a page that streams on past the largest page a node sends is cut there: remote_error", async () => {
    const { a, b } = setUp();
    const relay = hostileFeed(a, () => new Response(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(1024 * 1024).fill(0x20)); } }), { headers: { "content-type": "application/json" } }));
    addPeerOf(b, relay.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: relay.url });
    expect(r).toMatchObject({ status: "failed", code: "remote_error" });
  });

  test("a page trickled out slower than the deadline ends the pass as unavailable, the peer's lock released", async () => {
    const { a, b } = setUp();
    const relay = hostileFeed(a, () => {
      let timer: ReturnType<typeof setInterval> | undefined;
      return new Response(
        new ReadableStream({
          start(c) {
            c.enqueue(new TextEncoder().encode('{"bundles":['));
            timer = setInterval(() => c.enqueue(new TextEncoder().encode(" ")), 50);
          },
          cancel() {
            clearInterval(timer);
          },
        }),
        { headers: { "content-type": "application/json" } },
      );
    });
    addPeerOf(b, relay.url, a.tokens.observer);
    const r = await syncPeer({ paths: b.paths, timeoutMs: 1000 }, { village: VID, url: relay.url });
    expect(r).toMatchObject({ status: "failed", code: "unavailable" });
    // not stuck: the next pass runs (it is not told another one holds the peer)
    expect((await syncPeer({ paths: b.paths, timeoutMs: 1000 }, { village: VID, url: relay.url })).status).toBe("failed");
  });

  test("a revoked peer token fails the pass with the peer's code; nothing stored", async () => {
    const { a, b } = setUp();
    await a.push();
    addPeerOf(b, a.url, a.tokens.revoked);
    const r = await syncPeer({ paths: b.paths }, { village: VID, url: a.url });
    expect(r).toMatchObject({ status: "failed", code: "revoked_token" });
    expect(villageFiles(b)).toEqual([]);
  });
});
