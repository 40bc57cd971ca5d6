import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CLIENT_DEFAULTS, Remote } from "../../../src/client/remote.ts";
import { LinksError } from "../../../src/core/errors.ts";

let server: ReturnType<typeof Bun.serve>;
let streamed = 0;

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/small") return Response.json({ ok: true });
      if (path === "/stream") {
        streamed = 0;
        return new Response(
          new ReadableStream({
            pull(c) {
              streamed += 1024;
              c.enqueue(new Uint8Array(1024).fill(0x61));
            },
          }),
        );
      }
      if (path === "/declared") return new Response("x".repeat(10), { headers: { "Content-Length": "10" } });
      if (path === "/error") return Response.json({ detail: `\u001b[31m${"y".repeat(5000)}\n`, code: "forbidden" }, { status: 403 });
      if (path === "/bad-code") return Response.json({ detail: "d", code: "__proto__" }, { status: 400 });
      if (path === "/drip") {
        // headers at once, then the body never ends
        return new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("{")); } }));
      }
      return new Response(null, { status: 404 });
    },
  });
});
afterAll(() => server.stop(true));

const remote = (opts: { timeoutMs?: number } = {}) => new Remote({ baseUrl: `http://127.0.0.1:${server.port}`, ...opts });

async function failure(p: Promise<unknown>): Promise<LinksError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LinksError);
    return e as LinksError;
  }
  throw new Error("expected a failure");
}

describe("the client for another node", () => {
  test("reads an answer within its limit", async () => {
    expect((await remote().request("GET", "/small")).body).toEqual({ ok: true });
  });

  test("stops reading an endless answer just past the call's limit (remote_error)", async () => {
    const e = await failure(remote().request("GET", "/stream", { maxBytes: 64 * 1024 }));
    expect(e.code).toBe("remote_error");
    expect(e.detail).toContain("65536 bytes");
    expect(streamed).toBeLessThan(16 * 1024 * 1024);
  });

  test("refuses a declared length over the limit before reading", async () => {
    const e = await failure(remote().request("GET", "/declared", { maxBytes: 5 }));
    expect(e.code).toBe("remote_error");
    expect(e.detail).toContain("10 bytes");
  });

  test("keeps a remote's error code when it is ours, and its detail cut short and escaped", async () => {
    const e = await failure(remote().request("GET", "/error"));
    expect(e.code).toBe("forbidden");
    expect(e.detail.startsWith("\\x1b[31m")).toBe(true);
    expect(e.detail).not.toMatch(/[\u0000-\u001f]/);
    expect(e.detail.length).toBeLessThan(CLIENT_DEFAULTS.maxDetailChars + 100);
  });

  test("an error code that is not ours, an inherited property name included, is remote_error", async () => {
    expect((await failure(remote().request("GET", "/bad-code"))).code).toBe("remote_error");
  });

  test("one deadline covers the body too: an answer that never ends is unavailable", async () => {
    const e = await failure(remote({ timeoutMs: 300 }).request("GET", "/drip"));
    expect(e.code).toBe("unavailable");
    expect(e.detail).toContain("did not answer within 0.3s");
  });
});
