/**
 * An attacker's pass over the node's HTTP surface: the request line and headers, tokens, review
 * (quarantine approve / reject) races, and what leaks. Each test is one precise attack and what
 * must happen instead.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { startServer, type ServerHandle } from "../../../src/server/serve.ts";
import { tailAudit } from "../../../src/storage/audit.ts";
import { addMember } from "../../../src/storage/members.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { makeNode, signedBundle, VID, type Node } from "./helpers.ts";

let node: Node | null = null;
let handle: ServerHandle | null = null;
let dir: string | null = null;
afterEach(async () => {
  await node?.cleanup();
  node = null;
  await handle?.stop();
  handle = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

const text = (v: unknown): string => toJsonText(v as JsonValue);

async function quarantine(n: Node, predicate = "links.mentions"): Promise<string> {
  const bundle = signedBundle(n.key, { predicate });
  const res = await n.send("POST", `/villages/${VID}/inbox`, { token: n.tokens.member, body: text(bundle) });
  expect(res.status).toBe(202);
  return bundle.bundle_id;
}

/** Sends raw bytes on a fresh connection and returns the status line and body. */
function rawRequest(port: number, request: string): Promise<{ status: number; body: string }> {
  return new Promise((resolveP, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(request));
    let out = "";
    s.on("data", (d) => (out += d.toString("latin1")));
    s.on("error", reject);
    s.on("close", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);
      resolveP({ status, body: out.slice(out.indexOf("\r\n\r\n") + 4) });
    });
  });
}

async function served(): Promise<{ port: number; paths: DataPaths; admin: string }> {
  dir = mkdtempSync(join(tmpdir(), "links-http-attacks-"));
  const dataDir = join(dir, "data");
  const paths = new DataPaths(dataDir);
  createVillage(paths, { villageId: "v1", name: "V", adminId: "a" });
  const admin = addMember(paths, "v1", "a", "admin");
  handle = await startServer({ bind: "127.0.0.1", port: 0, dataDir, handleSignals: false, announce: () => {}, logger: () => {}, syncIntervalMs: 0 });
  return { port: handle.port, paths, admin };
}

describe("the request line and the Host header", () => {
  test.each([["a/b"], ["a?b"], ["a#b"], ["a@b"], ["https://evil"], ["a b"]])(
    "a Host of %p cannot make the node answer a path other than the one requested",
    async (host) => {
      const { port } = await served();
      // "/villages/" is 10 characters: a router that mis-reads the path would see "/metrics".
      const res = await rawRequest(port, `GET /aaaaaaaa/metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ code: "invalid_argument" });
    },
  );

  test("HTTP/1.0 without a Host is 400 too (it was answered for another path); real hosts are served", async () => {
    const { port } = await served();
    const bare = await rawRequest(port, "GET /xx/metrics HTTP/1.0\r\n\r\n");
    expect(bare.status).toBe(400);
    expect(JSON.parse(bare.body)).toMatchObject({ code: "invalid_argument" });
    for (const host of ["127.0.0.1", `127.0.0.1:${port}`, `[::1]:${port}`, "links.example.org"]) {
      const ok = await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(ok.status).toBe(200);
    }
  });
});
