import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { insecureBindWarning, startServer, type ServerHandle } from "../../../src/server/serve.ts";
import { addMember } from "../../../src/storage/members.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { createVillage } from "../../../src/storage/villages.ts";

const SERVE = resolve(import.meta.dir, "../../../src/server/serve.ts");
let dir: string;
let handle: ServerHandle | null = null;
afterEach(async () => {
  await handle?.stop();
  handle = null;
  rmSync(dir, { recursive: true, force: true });
});

function tempData(): string {
  dir = mkdtempSync(join(tmpdir(), "links-serve-"));
  return join(dir, "data");
}

describe("startServer", () => {
  test("on port 0 announces the real port and answers on it", async () => {
    const dataDir = tempData();
    const lines: string[] = [];
    handle = await startServer({ bind: "127.0.0.1", port: 0, dataDir, handleSignals: false, announce: (l) => lines.push(l), logger: () => {} });
    expect(handle.port).toBeGreaterThan(0);
    expect(lines).toEqual([`links: listening on http://127.0.0.1:${handle.port} (data ${dataDir})`]);
    const res = await fetch(`http://127.0.0.1:${handle.port}/healthz`);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  test("takes the client address from the connection (a loopback client may use its token)", async () => {
    const dataDir = tempData();
    const paths = new DataPaths(dataDir);
    createVillage(paths, { villageId: "v1", name: "V", adminId: "a" });
    const token = addMember(paths, "v1", "a", "admin");
    const logs: Array<Record<string, unknown>> = [];
    handle = await startServer({ bind: "127.0.0.1", port: 0, dataDir, handleSignals: false, announce: () => {}, logger: (l) => logs.push(l as Record<string, unknown>) });
    const res = await fetch(`http://127.0.0.1:${handle.port}/villages/v1/claims`, {
      headers: { authorization: `Bearer ${token}`, "x-forwarded-for": "198.51.100.1" },
    });
    expect(res.status).toBe(200);
    expect(logs.at(-1)).toMatchObject({ ip: "127.0.0.1", member: "a", status: 200 });
  });

  test("warns when bound to an address other hosts can reach", async () => {
    const lines: string[] = [];
    handle = await startServer({ bind: "0.0.0.0", port: 0, dataDir: tempData(), handleSignals: false, announce: (l) => lines.push(l), logger: () => {} });
    expect(lines[0]).toContain("WARNING");
    expect(lines[0]).toContain("TLS");
    expect(lines[0]).toContain("--trust-proxy");
    expect(lines[1]).toMatch(/^links: listening on http:\/\/0\.0\.0\.0:\d+ /);
  });

  test("the warning is only for non-loopback binds, and says so when insecure remote tokens are allowed", () => {
    expect(insecureBindWarning("127.0.0.1", false)).toBeNull();
    expect(insecureBindWarning("localhost", false)).toBeNull();
    expect(insecureBindWarning("::1", false)).toBeNull();
    expect(insecureBindWarning("::", false)).toContain("403 tls_required");
    expect(insecureBindWarning("192.168.1.10", true)).toContain("ARE ACCEPTED");
  });

  test("stop() lets the request in flight finish", async () => {
    const dataDir = tempData();
    handle = await startServer({ bind: "127.0.0.1", port: 0, dataDir, handleSignals: false, announce: () => {}, logger: () => {} });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(new TextEncoder().encode("{"));
        await gate;
        c.close();
      },
    });
    const pending = fetch(`http://127.0.0.1:${handle.port}/inbox`, { method: "POST", body, duplex: "half" } as RequestInit);
    await Bun.sleep(50);
    const stopped = handle.stop();
    release();
    const res = await pending;
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_json" });
    await stopped;
    handle = null;
  });
});

describe("the serve process", () => {
  test("exits 0 on SIGTERM", async () => {
    const dataDir = tempData();
    const code = `import { startServer } from ${JSON.stringify(SERVE)};\nawait startServer({ bind: "127.0.0.1", port: 0, dataDir: ${JSON.stringify(dataDir)} });`;
    const proc = Bun.spawn([process.execPath, "-e", code], { stderr: "pipe", stdout: "ignore" });
    const reader = proc.stderr.getReader();
    let text = "";
    let port = 0;
    while (port === 0) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited early: ${text}`);
      text += new TextDecoder().decode(value);
      port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+) /.exec(text)?.[1] ?? 0);
    }
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  });
});

describe("when it cannot listen", () => {
  test("a bad port is refused before binding", async () => {
    await expect(startServer({ bind: "127.0.0.1", port: 70000, dataDir: tempData(), handleSignals: false })).rejects.toThrow(/port must be/);
  });

  test("a port in use is a clear unavailable error", async () => {
    handle = await startServer({ bind: "127.0.0.1", port: 0, dataDir: tempData(), handleSignals: false, announce: () => {}, logger: () => {} });
    const again = startServer({ bind: "127.0.0.1", port: handle.port, dataDir: tempData(), handleSignals: false, announce: () => {}, logger: () => {} });
    await expect(again).rejects.toMatchObject({ code: "unavailable" });
  });
});

describe("running from source", () => {
  // The review page's JSX must compile the same from any working directory: bun only reads the
  // tsconfig.json of the directory it runs in, so the pages name their JSX runtime themselves.
  test("bun src/main.ts serve works from another directory, review page included", async () => {
    const dataDir = tempData();
    const main = resolve(import.meta.dir, "../../../src/main.ts");
    const proc = Bun.spawn([process.execPath, main, "serve", "--port", "0", "--data", dataDir], { cwd: dir, stdout: "ignore", stderr: "pipe" });
    try {
      const reader = proc.stderr.getReader();
      let text = "";
      let port = 0;
      while (!port) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`serve exited: ${text}`);
        text += new TextDecoder().decode(value);
        port = Number(/listening on http:\/\/[^:]+:(\d+)/.exec(text)?.[1] ?? 0);
      }
      const res = await fetch(`http://127.0.0.1:${port}/admin`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("<title>links: review</title>");
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  });
});
