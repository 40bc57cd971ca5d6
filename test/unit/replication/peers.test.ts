/**
 * The peers file (replication/peers.json), the backoff of the sync loop, and Retry-After.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { LOOP_DEFAULTS, nextDelayMs } from "../../../src/replication/loop.ts";
import { parseRetryAfter, MAX_RETRY_AFTER_MS } from "../../../src/replication/peer-remote.ts";
import { addPeer, listPeers, normalizePeerUrl, removePeer } from "../../../src/replication/peers.ts";
import { localNode, VID, type LocalNode } from "./helpers.ts";

let local: LocalNode | undefined;
afterEach(() => local?.cleanup());

const TOKEN = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg";

describe("the peers file", () => {
  test("keeps each peer of a village once, with its token readable by the node's user only", () => {
    local = localNode();
    addPeer(local.paths, VID, "http://127.0.0.1:9001/", TOKEN);
    addPeer(local.paths, VID, "https://node-c.example/links", null);
    expect(listPeers(local.paths, VID).map((p) => [p.url, p.token])).toEqual([
      ["http://127.0.0.1:9001", TOKEN],
      ["https://node-c.example/links", null],
    ]);
    expect(statSync(local.paths.peersFile()).mode & 0o777).toBe(0o600);
    expect(() => addPeer(local!.paths, VID, "http://127.0.0.1:9001", null)).toThrow(expect.objectContaining({ code: "peer_exists" }));
    expect(listPeers(local.paths, "other-village")).toEqual([]);
  });

  test("removing a peer keeps the others; removing an unknown one is peer_not_found", () => {
    local = localNode();
    addPeer(local.paths, VID, "http://127.0.0.1:9001", TOKEN);
    addPeer(local.paths, VID, "http://127.0.0.1:9002", TOKEN);
    removePeer(local.paths, VID, "http://127.0.0.1:9001/");
    expect(listPeers(local.paths).map((p) => p.url)).toEqual(["http://127.0.0.1:9002"]);
    expect(() => removePeer(local!.paths, VID, "http://127.0.0.1:9001")).toThrow(expect.objectContaining({ code: "peer_not_found" }));
    expect(statSync(local.paths.peersFile()).mode & 0o777).toBe(0o600);
  });

  test.each([
    ["credentials in the URL", "http://user:secret@node.example"],
    ["a query string", "http://node.example/?token=abc"],
    ["another scheme", "ftp://node.example"],
    ["not a URL", "node-b"],
  ])("refuses %s", (_what, url) => {
    expect(() => normalizePeerUrl(url)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
  });

  test("refuses a token that is not one line of token characters", () => {
    local = localNode();
    expect(() => addPeer(local!.paths, VID, "http://127.0.0.1:9001", "two\nlines")).toThrow(expect.objectContaining({ code: "invalid_argument" }));
    expect(listPeers(local.paths)).toEqual([]);
  });

  test("a damaged peers file is an error naming it, never an empty list", async () => {
    local = localNode();
    addPeer(local.paths, VID, "http://127.0.0.1:9001", TOKEN);
    await Bun.write(local.paths.peersFile(), '{"peers": [{"village": 3}]}');
    expect(() => listPeers(local!.paths)).toThrow(expect.objectContaining({ code: "invalid_schema" }));
    expect(readFileSync(local.paths.peersFile(), "utf8")).toContain('"village": 3');
  });
});

describe("when the loop tries a peer again", () => {
  const interval = 30_000;
  const at = (failures: number, random: number, extra: Partial<Parameters<typeof nextDelayMs>[0]> = {}) =>
    nextDelayMs({ intervalMs: interval, failures, retryAfterMs: null, caughtUp: true, random: () => random, ...extra });

  test("after a success: the interval, give or take 10%", () => {
    expect(at(0, 0)).toBe(27_000);
    expect(at(0, 1)).toBe(33_000);
  });

  test("a peer with pages left is asked again soon", () => {
    expect(at(0, 0.5, { caughtUp: false })).toBe(LOOP_DEFAULTS.moreSoonMs);
  });

  test("after failures in a row: a range that doubles, each starting where the last one ended, up to a cap", () => {
    for (let f = 1; f <= 12; f++) {
      const cap = Math.min(LOOP_DEFAULTS.maxBackoffMs, interval * 2 ** (f - 1));
      expect(at(f, 0)).toBe(cap / 2);
      expect(at(f, 1)).toBe(cap);
      if (interval * 2 ** f <= LOOP_DEFAULTS.maxBackoffMs) expect(at(f + 1, 0)).toBeGreaterThanOrEqual(at(f, 1));
    }
    expect(at(1000, 1)).toBe(LOOP_DEFAULTS.maxBackoffMs);
  });

  test("never sooner than the peer's Retry-After", () => {
    expect(at(1, 0, { retryAfterMs: 120_000 })).toBe(120_000);
    expect(at(0, 0, { retryAfterMs: 90_000 })).toBe(90_000);
  });

  test("Retry-After is read as seconds or an HTTP date, and bounded", () => {
    const now = Date.UTC(2030, 0, 1, 12, 0, 0);
    expect(parseRetryAfter("7", now)).toBe(7000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Tue, 01 Jan 2030 12:01:00 GMT", now)).toBe(60_000);
    expect(parseRetryAfter("Tue, 01 Jan 2030 11:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("99999999", now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter("soon", now)).toBeNull();
    expect(parseRetryAfter("-5", now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
});
