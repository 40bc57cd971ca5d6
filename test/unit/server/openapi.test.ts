/**
 * The OpenAPI document against the running app: every route the app serves is in it with its
 * access, body, answers and errors, and what the routes really answer fits what it says.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { z } from "zod";
import { ERROR_STATUS, type ErrorCode } from "../../../src/core/errors.ts";
import { jsonSchemaOf, openApiPath, PATH_PARAMS } from "../../../src/server/openapi.ts";
import type { RouteEntry } from "../../../src/server/route-table.ts";
import { makeNode, signedBundle, VID, type Node } from "./helpers.ts";

type Json = Record<string, any>;

let node: Node;
let doc: Json;

beforeAll(async () => {
  node = makeNode({ server: { publicRatePerMin: 100_000, authFailuresPerMin: 100_000 } });
  const res = await node.send("GET", "/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/json");
  doc = (await res.json()) as Json;
});
afterAll(async () => {
  await node?.cleanup();
});

function operationOf(method: string, path: string): Json | undefined {
  return doc.paths?.[openApiPath(path).path]?.[method.toLowerCase()];
}

function entryFor(method: string, path: string): RouteEntry {
  const e = node.routes.list().find((r) => r.method === method && r.path === path);
  if (!e) throw new Error(`no registered route ${method} ${path}`);
  return e;
}

function fill(path: string, vid = VID): string {
  return path.replace(":id", vid).replace(":bundle_id", "0".repeat(32));
}

/** Checks one real answer against its route's description; returns the parsed JSON body, if any. */
async function checkAnswer(entry: RouteEntry, res: Response, what: string): Promise<unknown> {
  const text = await res.text();
  const where = `${entry.method} ${entry.path} (${what}): ${res.status} ${text.slice(0, 200)}`;
  if (res.status >= 400) {
    expect(res.status, where).toBeLessThan(500);
    const body = JSON.parse(text) as { detail: unknown; code: ErrorCode };
    expect(Object.keys(body).sort(), where).toEqual(["code", "detail"]);
    expect(typeof body.detail, where).toBe("string");
    expect(entry.doc.errors, where).toContain(body.code);
    expect(res.status, where).toBe(ERROR_STATUS[body.code] as number);
    return body;
  }
  const answer = entry.doc.answers[res.status];
  expect(answer, where).toBeDefined();
  if (answer?.schema) {
    const body = JSON.parse(text) as unknown;
    const parsed = answer.schema.safeParse(body);
    expect(parsed.success ? null : parsed.error.issues, where).toBeNull();
    const shape = (answer.schema as unknown as { shape?: Record<string, unknown>; def?: { catchall?: unknown } }).shape;
    if (shape && body !== null && typeof body === "object" && !Array.isArray(body)) {
      // No undocumented field at the top level (loose objects excepted).
      const loose = (answer.schema as unknown as { def: { catchall?: unknown } }).def.catchall !== undefined;
      if (!loose) for (const k of Object.keys(body)) expect(Object.keys(shape), `${where}: field ${k}`).toContain(k);
    }
    return body;
  }
  if (answer?.mediaType) expect(res.headers.get("content-type"), where).toBe(answer.mediaType);
  return null;
}

describe("the OpenAPI document", () => {
  test("is OpenAPI 3.1 with the {detail, code} error shape and a bearer scheme", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.schemas.Error).toMatchObject({
      type: "object",
      required: ["detail", "code"],
      properties: { detail: { type: "string" }, code: { enum: Object.keys(ERROR_STATUS) } },
    });
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
  });

  test("has every route the app serves, and nothing else", () => {
    const served = new Set(node.app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${openApiPath(r.path).path}`));
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Json)) for (const m of Object.keys(ops)) documented.add(`${m.toUpperCase()} ${path}`);
    expect([...documented].sort()).toEqual([...served].sort());
    expect(served.size).toBeGreaterThanOrEqual(17);
    const registered = node.routes.list().map((r) => `${r.method} ${openApiPath(r.path).path}`);
    expect(registered.sort()).toEqual([...served].sort());
  });

  test("describes each route's access, parameters, body, answers and errors from its registration", () => {
    const ids = new Set<string>();
    for (const entry of node.routes.list()) {
      const op = operationOf(entry.method, entry.path) as Json;
      const where = `${entry.method} ${entry.path}`;
      expect(op, where).toBeDefined();
      expect(op["x-links-access"], where).toBe(entry.doc.access);
      expect(op.summary, where).toBe(entry.doc.summary);
      const tokenNeeded = ["pull", "push", "manage", "member"].includes(entry.doc.access);
      expect(op.security, where).toEqual(tokenNeeded ? [{ bearer: [] }] : entry.doc.access === "pull-if-private" ? [{}, { bearer: [] }] : []);
      expect(ids.has(op.operationId), where).toBe(false);
      ids.add(op.operationId);

      const params = (op.parameters ?? []) as Json[];
      for (const name of openApiPath(entry.path).params) {
        expect(params.find((p) => p.in === "path" && p.name === name), `${where} :${name}`).toMatchObject({
          required: true,
          schema: { type: "string", pattern: PATH_PARAMS[name]?.pattern.source },
        });
      }
      expect(params.filter((p) => p.in === "query").map((p) => p.name), where).toEqual(Object.keys(entry.doc.query?.shape ?? {}));

      if (entry.doc.body) expect(op.requestBody?.content?.["application/json"]?.schema, where).toEqual(jsonSchemaOf(entry.doc.body));
      else expect(op.requestBody, where).toBeUndefined();

      for (const [status, answer] of Object.entries(entry.doc.answers)) {
        const r = op.responses[status];
        expect(r?.description, `${where} ${status}`).toBe(answer.description);
        if (answer.schema) expect(r.content["application/json"].schema, `${where} ${status}`).toEqual(jsonSchemaOf(answer.schema as z.ZodType));
        if (answer.mediaType) expect(Object.keys(r.content), `${where} ${status}`).toEqual([answer.mediaType]);
      }
      for (const code of [...entry.doc.errors, "internal_error" as const]) {
        const schema = op.responses[String(ERROR_STATUS[code])]?.content?.["application/json"]?.schema;
        expect(schema?.allOf?.[0], `${where} ${code}`).toEqual({ $ref: "#/components/schemas/Error" });
        expect(schema?.allOf?.[1]?.properties?.code?.enum, `${where} ${code}`).toContain(code);
      }
    }
  });
});

describe("what the routes answer fits the document", () => {
  test("a sweep of every route with and without a token, bad ids, unknown villages and broken bodies", async () => {
    let checked = 0;
    for (const entry of node.routes.list()) {
      const path = fill(entry.path);
      const body = entry.method === "POST" ? "{}" : undefined;
      const tries: [string, Promise<Response>][] = [
        ["no token", node.send(entry.method, path, { body })],
        ["admin token", node.send(entry.method, path, { token: node.tokens.admin, body })],
        ["observer token", node.send(entry.method, path, { token: node.tokens.observer, body })],
      ];
      if (entry.method === "POST") tries.push(["malformed JSON", node.send("POST", path, { token: node.tokens.admin, body: "{" })]);
      if (entry.path.includes(":id")) {
        tries.push(["bad village id", node.send(entry.method, fill(entry.path, "bad%20id"), { token: node.tokens.admin, body })]);
        tries.push(["unknown village", node.send(entry.method, fill(entry.path, "nowhere"), { token: node.tokens.admin, body })]);
      }
      if (entry.path.includes(":bundle_id")) {
        tries.push(["bad bundle id", node.send(entry.method, fill(entry.path).replace("0".repeat(32), "ZZ"), { token: node.tokens.admin, body })]);
      }
      for (const [what, pending] of tries) {
        await checkAnswer(entry, await pending, what);
        checked++;
      }
    }
    console.log(`${checked} answers from ${node.routes.list().length} routes fit the document`);
  });

  test("successful answers of every route, in a story, fit their schemas", async () => {
    const send = async (method: "GET" | "POST", path: string, route: string, init: { token?: string; body?: unknown } = {}) => {
      const res = await node.send(method, path, { token: init.token, body: init.body as object | undefined });
      expect(res.status, `${method} ${path}`).toBeLessThan(400);
      return (await checkAnswer(entryFor(method, route), res, "story")) as Json;
    };
    const seen = new Set<string>();
    const at = (method: "GET" | "POST", route: string, path = fill(route), init: { token?: string; body?: unknown } = {}) => {
      seen.add(`${method} ${route}`);
      return send(method, path, route, init);
    };
    const admin = { token: node.tokens.admin };
    const v = (rest: string) => `/villages/${VID}${rest}`;

    await at("GET", "/healthz");
    await at("POST", "/inbox", "/inbox", { body: signedBundle(node.key) });
    await at("GET", "/.well-known/links/claims/latest");
    await at("POST", "/villages/:id/inbox", v("/inbox"), { token: node.tokens.member, body: signedBundle(node.key, { claims: 2 }) });
    const held = signedBundle(node.key, { predicate: "links.other", claims: 4 });
    const heldAnswer = await at("POST", "/villages/:id/inbox", v("/inbox"), { token: node.tokens.member, body: held });
    expect(heldAnswer).toMatchObject({ status: "quarantined", code: "predicate_not_allowed" });
    const spam = signedBundle(node.key, { predicate: "links.other" });
    await at("POST", "/villages/:id/inbox", v("/inbox"), { token: node.tokens.member, body: spam });
    await at("GET", "/villages/:id/claims/latest", v("/claims/latest"), admin);
    const page = await at("GET", "/villages/:id/claims", v("/claims?limit=1"), admin);
    expect(page.next_cursor).toEqual(expect.any(String));
    const queue = await at("GET", "/villages/:id/quarantine", v("/quarantine"), admin);
    const entry = (queue.entries as Json[]).find((e) => e.bundle_id === held.bundle_id);
    expect(entry).toMatchObject({ issuer: "issuer-a", claims_count: 4, reason: "predicate_not_allowed" });
    expect(entry?.claims_preview).toEqual([0, 1, 2].map((i) => ({ subject: `subject-${i}`, predicate: "links.other", object: `object-${i}` })));
    await at("POST", "/villages/:id/policy", v("/policy"), { ...admin, body: { allowed_predicates: ["links.weighted_to", "links.other"] } });
    await at("GET", "/villages/:id/policy/latest", v("/policy/latest"), admin);
    await at("GET", "/villages/:id/policy/updates", v("/policy/updates"), admin);
    await at("POST", "/villages/:id/quarantine/:bundle_id/approve", v(`/quarantine/${held.bundle_id}/approve`), admin);
    await at("POST", "/villages/:id/quarantine/:bundle_id/reject", v(`/quarantine/${spam.bundle_id}/reject`), { ...admin, body: { reason: "spam" } });
    const recent = await at("GET", "/villages/:id/audit/entries", v("/audit/entries?last=3"), admin);
    expect((recent.entries as string[]).map((l) => JSON.parse(l).action)).toEqual(["policy.apply", "quarantine.approve", "quarantine.reject"]);
    await at("GET", "/me/villages", "/me/villages", admin);
    await at("GET", "/openapi.json");
    await at("GET", "/metrics");
    await at("GET", "/admin");

    const missing = node.routes.list().map((r) => `${r.method} ${r.path}`).filter((r) => !seen.has(r));
    if (missing.length > 0) console.log(`routes without a success example here (the sweep above still checks them): ${missing.join(", ")}`);
    expect(seen.size).toBeGreaterThanOrEqual(17);
  });
});
