/**
 * The body-limit middleware hands the body it read to the rest of the chain twice over: as
 * c.var.body and in Hono's body cache (what validators read). Both are the same bytes, and the
 * body is not copied for the second when it sits alone in its buffer.
 */
import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import type { AppEnv } from "../../../src/server/context.ts";
import { bodyLimit } from "../../../src/server/middleware/body-limit/index.ts";

function app(): Hono<AppEnv> {
  const a = new Hono<AppEnv>();
  a.post("/x", bodyLimit({ maxBytes: 1024, json: true }), async (c) => {
    const body = c.get("body");
    const cached = await c.req.arrayBuffer();
    return c.json({
      shared: cached === body.buffer,
      sameBytes: Buffer.from(cached).equals(Buffer.from(body)),
      json: await c.req.json(),
    });
  });
  return a;
}

const text = JSON.stringify({ hello: "world", n: [1, 2, 3] });

describe("the body the chain reads", () => {
  test("with Content-Length: the body's own buffer, not a copy", async () => {
    const res = await app().request("/x", { method: "POST", body: text, headers: { "content-type": "application/json", "content-length": String(text.length) } });
    expect(await res.json()).toEqual({ shared: true, sameBytes: true, json: JSON.parse(text) });
  });

  test("streamed in chunks: the same bytes, exactly", async () => {
    const enc = new TextEncoder();
    const parts = [text.slice(0, 7), text.slice(7, 20), text.slice(20)];
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (const p of parts) ctl.enqueue(enc.encode(p));
        ctl.close();
      },
    });
    const res = await app().request("/x", { method: "POST", body, headers: { "content-type": "application/json" }, duplex: "half" } as RequestInit);
    const got = (await res.json()) as { sameBytes: boolean; json: unknown };
    expect(got.sameBytes).toBe(true);
    expect(got.json).toEqual(JSON.parse(text));
  });

  test("a view into a larger buffer is copied to exactly its bytes", async () => {
    const enc = new TextEncoder();
    const whole = enc.encode(`xxxx${text}yyyy`);
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        ctl.enqueue(whole.subarray(4, 4 + text.length));
        ctl.close();
      },
    });
    const res = await app().request("/x", { method: "POST", body, headers: { "content-type": "application/json" }, duplex: "half" } as RequestInit);
    const got = (await res.json()) as { sameBytes: boolean; json: unknown };
    expect(got.sameBytes).toBe(true);
    expect(got.json).toEqual(JSON.parse(text));
  });
});
