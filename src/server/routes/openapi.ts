/**
 * `GET /openapi.json`: the OpenAPI 3.1 description of every route this node serves, built once
 * from the route table (after every route is registered) and kept.
 */
import pkg from "../../../package.json" with { type: "json" };
import { OpenApiAnswer } from "../answers.ts";
import { openApiDocument } from "../openapi.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

const API_INFO = {
  title: "links node",
  version: pkg.version,
  description: "Signed claim bundles for governed villages. Every error is JSON {\"detail\", \"code\"}.",
};

export function openApiRoutes(d: RouteDeps): void {
  const path = d.routes.add("GET", "/openapi.json", {
    summary: "This document: the OpenAPI 3.1 description of the node's HTTP API",
    access: "public",
    answers: { 200: { description: "the document", schema: OpenApiAnswer } },
    errors: [...ROUTE_ERRORS.publicLimit],
  });
  let text: string | null = null;
  d.app.get(path, d.publicLimit, (c) => {
    text ??= JSON.stringify(openApiDocument(d.routes.list(), API_INFO));
    return c.body(text, 200, { "Content-Type": "application/json" });
  });
}
