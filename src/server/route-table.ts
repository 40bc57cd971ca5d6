/**
 * The routes the app serves, kept as data, each with its description: a known path asked with
 * the wrong method answers 405 with an `Allow` header instead of a bare 404 (Hono's router only
 * says "no match"), the metrics label requests by route pattern, and the OpenAPI document
 * (openapi.ts) is generated from these descriptions. `add` requires the description, so a route
 * cannot be registered without one.
 */
import type { z } from "zod";
import type { ErrorCode } from "../core/errors.ts";

export type Method = "GET" | "POST";

/**
 * Who may call a route: no one in particular (`public`), a member token with a village right,
 * a member token of any village (`member`), a token with the pull right only where the village is
 * private (`pull-if-private`), or peers on this host (`loopback`).
 */
export type RouteAccess = "public" | "pull" | "push" | "manage" | "member" | "pull-if-private" | "loopback";

export interface AnswerDoc {
  description: string;
  /** the JSON body's schema (omit for an answer without a body) */
  schema?: z.ZodType;
  /** when the body is not JSON: its media type, described as a string */
  mediaType?: string;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  access: RouteAccess;
  /** query parameters, as one object schema (every field optional or defaulted) */
  query?: z.ZodObject;
  /** the JSON request body */
  body?: z.ZodType;
  /** successful answers by status */
  answers: Readonly<Record<number, AnswerDoc>>;
  /** every error code the route may answer with (`{"detail","code"}`) */
  errors: readonly ErrorCode[];
}

export interface RouteEntry {
  method: Method;
  /** as registered with Hono: `/villages/:id/inbox` */
  path: string;
  doc: RouteDoc;
}

/** Error codes that come with a route's middleware, to spread into `errors`. */
export const ROUTE_ERRORS = {
  /** route-ids on `/villages/:id/...` */
  village: ["invalid_village_id", "village_not_found"],
  /** route-ids on `.../:bundle_id/...` */
  bundle: ["invalid_bundle_id"],
  /** bearer auth with a right, then the member rate limit */
  token: ["missing_token", "invalid_token", "revoked_token", "forbidden", "tls_required", "rate_limited"],
  /** the per-address rate limit of routes without a token */
  publicLimit: ["rate_limited"],
  /** body-limit for a JSON body, then parsing and the schema */
  jsonBody: ["body_too_large", "unsupported_media_type", "invalid_argument", "invalid_json", "invalid_schema"],
  /** a bundle's id and signature checks */
  signature: ["invalid_signature", "bundle_id_mismatch", "unsigned_bundle", "invalid_public_key"],
  /** a village policy's refusals (quarantine reasons) */
  policy: ["issuer_id_blocked", "issuer_id_not_allowed", "issuer_key_blocked", "issuer_key_not_allowed", "window_too_large", "predicate_not_allowed"],
  /** writes that can fail on the host */
  storage: ["storage_full", "storage_error", "flock_unavailable"],
} as const satisfies Record<string, readonly ErrorCode[]>;

/** `/villages/:id/inbox` -> /^\/villages\/[^/]+\/inbox$/ */
function compile(path: string): RegExp {
  const parts = path.split("/").map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  return new RegExp(`^${parts.join("/")}$`);
}

export class RouteTable {
  private readonly entries: (RouteEntry & { pattern: RegExp })[] = [];
  /** the registered paths, for the metrics' lookup on every request */
  private readonly paths = new Set<string>();

  /** Records a route with its description and returns its path, for `app.get(table.add("GET", "/x", doc), ...)`. */
  add<P extends string>(method: Method, path: P, doc: RouteDoc): P {
    if (this.entries.some((e) => e.method === method && e.path === path)) {
      throw new Error(`route ${method} ${path} is registered twice`);
    }
    this.entries.push({ method, path, doc, pattern: compile(path) });
    this.paths.add(path);
    return path;
  }

  /** Every route with its description, in the order they were added. */
  list(): RouteEntry[] {
    return this.entries.map(({ method, path, doc }) => ({ method, path, doc }));
  }

  /** Whether `path` is the pattern of a route (e.g. "/villages/:id/inbox"). */
  hasPattern(path: string): boolean {
    return this.paths.has(path);
  }

  /** The methods some route accepts for this path (HEAD goes with GET), in a stable order. */
  allowedMethods(path: string): string[] {
    const methods = new Set<string>();
    for (const e of this.entries) {
      if (!e.pattern.test(path)) continue;
      methods.add(e.method);
      if (e.method === "GET") methods.add("HEAD");
    }
    return ["GET", "HEAD", "POST"].filter((m) => methods.has(m));
  }
}
