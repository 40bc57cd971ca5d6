/** @jsxImportSource hono/jsx */
/**
 * `GET /admin`: the review page, served by the node itself with everything inline (no CDN, no
 * other request but to this node's API). See admin/page.tsx for what it shows and how it signs in.
 */
import { AdminPage, CONTENT_SECURITY_POLICY } from "../admin/page.tsx";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

const HTML = "text/html; charset=utf-8";

export function adminRoutes(d: RouteDeps): void {
  const path = d.routes.add("GET", "/admin", {
    summary: "The review page for village admins (HTML)",
    description: "Signs in with an admin token; lists the quarantine queue, the policy in force and recent audit rows of every village the token manages.",
    access: "public",
    answers: { 200: { description: "the page", mediaType: HTML } },
    errors: [...ROUTE_ERRORS.publicLimit],
  });
  const page = `<!doctype html>${(<AdminPage />).toString()}`;
  d.app.get(path, d.publicLimit, (c) =>
    c.body(page, 200, {
      "Content-Type": HTML,
      "Content-Security-Policy": CONTENT_SECURITY_POLICY,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "X-Frame-Options": "DENY",
      "Referrer-Policy": "no-referrer",
    }),
  );
}
