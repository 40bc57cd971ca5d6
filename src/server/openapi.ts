/**
 * The node's OpenAPI 3.1 document, generated from the route table's descriptions and the zod
 * schemas they name (zod 4 writes JSON Schema 2020-12 itself, the dialect OpenAPI 3.1 uses).
 * Nothing here is written per route: a route is in the document because it was registered.
 */
import { z } from "zod";
import { ERROR_STATUS, type ErrorCode } from "../core/errors.ts";
import { SHA256_HEX_RE } from "../core/canonical.ts";
import { BUNDLE_ID_RE, VILLAGE_ID_RE } from "../storage/paths.ts";
import { ErrorAnswer } from "./answers.ts";
import type { RouteAccess, RouteDoc, RouteEntry } from "./route-table.ts";

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

type JsonSchema = Record<string, unknown>;

/** The schema of each path parameter a route may declare (route-ids checks the same patterns). */
export const PATH_PARAMS: Readonly<Record<string, { description: string; pattern: RegExp }>> = {
  id: { description: "village id", pattern: VILLAGE_ID_RE },
  bundle_id: { description: "bundle id (32 lowercase hex characters)", pattern: BUNDLE_ID_RE },
  policy_hash: { description: "policy hash (64 lowercase hex characters)", pattern: SHA256_HEX_RE },
};

const ACCESS_TEXT: Record<RouteAccess, string> = {
  public: "no token (rate limited per client address where the route says so)",
  pull: "a member token with the pull right in this village",
  push: "a member token with the push right in this village",
  manage: "a member token with the manage right in this village",
  member: "a member token of any village",
  "pull-if-private": "no token, unless the village's visibility is private: then a token with the pull right",
  loopback: "peers on the node's own host only (unless the node runs with --metrics-public)",
};

export function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const out = z.toJSONSchema(schema, { io: "input", unrepresentable: "any", target: "draft-2020-12" }) as JsonSchema;
  delete out.$schema;
  return out;
}

/** `/villages/:id/inbox` -> `/villages/{id}/inbox`, and the names of its parameters. */
export function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const converted = path
    .split("/")
    .map((seg) => {
      if (!seg.startsWith(":")) return seg;
      params.push(seg.slice(1));
      return `{${seg.slice(1)}}`;
    })
    .join("/");
  return { path: converted, params };
}

function security(access: RouteAccess): Record<string, string[]>[] {
  if (access === "public" || access === "loopback") return [];
  if (access === "pull-if-private") return [{}, { bearer: [] }];
  return [{ bearer: [] }];
}

function parameters(params: string[], doc: RouteDoc): JsonSchema[] {
  const out: JsonSchema[] = params.map((name) => {
    const p = PATH_PARAMS[name];
    if (!p) throw new Error(`path parameter :${name} has no description in PATH_PARAMS`);
    const pattern = p.pattern.source;
    return { name, in: "path", required: true, description: p.description, schema: { type: "string", pattern } };
  });
  if (doc.query) {
    for (const [name, field] of Object.entries(doc.query.shape)) {
      const schema = jsonSchemaOf(field as z.ZodType);
      const description = schema.description;
      delete schema.description;
      out.push({
        name,
        in: "query",
        required: !(field as z.ZodType).safeParse(undefined).success,
        ...(description !== undefined ? { description } : {}),
        schema,
      });
    }
  }
  return out;
}

function errorResponses(codes: readonly ErrorCode[]): Record<string, JsonSchema> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...codes, "internal_error" as const])) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, JsonSchema> = {};
  for (const [status, list] of [...byStatus.entries()].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `error: ${list.join(", ")}`,
      content: {
        "application/json": {
          schema: { allOf: [{ $ref: "#/components/schemas/Error" }, { properties: { code: { enum: list } } }] },
        },
      },
    };
  }
  return out;
}

function operation(entry: RouteEntry): JsonSchema {
  const { doc } = entry;
  const { params } = openApiPath(entry.path);
  const responses: Record<string, JsonSchema> = {};
  for (const [status, answer] of Object.entries(doc.answers)) {
    let content: JsonSchema | undefined;
    if (answer.schema) content = { "application/json": { schema: jsonSchemaOf(answer.schema) } };
    else if (answer.mediaType) content = { [answer.mediaType]: { schema: { type: "string" } } };
    responses[status] = { description: answer.description, ...(content ? { content } : {}) };
  }
  Object.assign(responses, errorResponses(doc.errors));
  const op: JsonSchema = {
    summary: doc.summary,
    description: [doc.description, `Access: ${ACCESS_TEXT[doc.access]}.`].filter(Boolean).join("\n\n"),
    operationId: `${entry.method.toLowerCase()}${entry.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ?? "").toUpperCase())}`,
    "x-links-access": doc.access,
    security: security(doc.access),
    responses,
  };
  const ps = parameters(params, doc);
  if (ps.length > 0) op.parameters = ps;
  if (doc.body) {
    op.requestBody = { required: true, content: { "application/json": { schema: jsonSchemaOf(doc.body) } } };
  }
  return op;
}

/** The whole document for these routes. */
export function openApiDocument(routes: readonly RouteEntry[], info: OpenApiInfo): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const entry of routes) {
    const { path } = openApiPath(entry.path);
    paths[path] ??= {};
    (paths[path] as Record<string, JsonSchema>)[entry.method.toLowerCase()] = operation(entry);
  }
  return {
    openapi: "3.1.0",
    info,
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    paths,
    components: {
      schemas: { Error: jsonSchemaOf(ErrorAnswer) },
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "a village member's token" } },
    },
  };
}
