/**
 * Step 2 of every village route: `Authorization: Bearer <token>` -> a live member of the village
 * (401 missing_token / invalid_token / revoked_token with `WWW-Authenticate`), then the route's
 * right checked against the village's current policy (403 forbidden). Failed attempts, a request
 * without a token included, are counted per client address by the auth-failure guard, which
 * refuses (429) an address that has used up its attempts before any token is looked at: without
 * that, requests with no token at all could be sent without end.
 */
import type { MiddlewareHandler } from "hono";
import { LinksError } from "../../../core/errors.ts";
import { RIGHTS, roleMay, type Right } from "../../../core/village-policy.ts";
import type { MemberDirectory } from "../../../storage/members.ts";
import type { AppContext, AppEnv } from "../../context.ts";
import type { AuthFailureGuard } from "../rate-limit/index.ts";

export interface AuthOptions {
  /** one directory for the whole app: it caches each village's ledger by file identity */
  directory: MemberDirectory;
  failures?: AuthFailureGuard | undefined;
}

const RIGHT_SET: ReadonlySet<string> = new Set(RIGHTS);
// RFC 6750 b64token, bounded: a real token is 43 characters.
const BEARER_RE = /^Bearer +([A-Za-z0-9\-._~+/]{1,512}=*) *$/i;

export function parseBearer(header: string | undefined): { token: string } | { problem: "missing" | "malformed" } {
  if (header === undefined || header.trim() === "") return { problem: "missing" };
  const m = BEARER_RE.exec(header);
  return m ? { token: m[1] as string } : { problem: "malformed" };
}

/**
 * Refuses the request's token: 401 with the challenge RFC 6750 asks for (`error="invalid_token"`
 * once a token was sent), counted as a failed authentication of the client address.
 */
export function refuseToken(
  c: AppContext,
  failures: AuthFailureGuard | undefined,
  code: "missing_token" | "invalid_token" | "revoked_token",
  detail: string,
): never {
  failures?.record(c);
  c.header("WWW-Authenticate", `Bearer realm="links"${code === "missing_token" ? "" : ', error="invalid_token"'}`);
  throw new LinksError(code, detail);
}

/** The request's bearer token; without a well-formed one, 401 missing_token (counted). */
export function requireBearer(c: AppContext, failures: AuthFailureGuard | undefined): string {
  const bearer = parseBearer(c.req.header("authorization"));
  if ("problem" in bearer) refuseToken(c, failures, "missing_token", "this route needs an Authorization: Bearer <token> header");
  return bearer.token;
}

/** Builds `auth(right)`: the middleware for routes that need that right. */
export function bearerAuth(opts: AuthOptions): (right: Right) => MiddlewareHandler<AppEnv> {
  if (!opts.directory || typeof opts.directory.authenticate !== "function") {
    throw new LinksError("invalid_argument", "auth: a MemberDirectory is required");
  }

  return (right) => {
    if (!RIGHT_SET.has(right)) throw new LinksError("invalid_argument", `auth: unknown right ${JSON.stringify(right)}`);
    return async (c, next) => {
      const vid = c.get("villageId");
      if (vid === undefined) throw new LinksError("internal_error", "auth runs after route-ids on village routes");
      opts.failures?.check(c);
      const token = requireBearer(c, opts.failures);
      let member;
      try {
        member = opts.directory.authenticate(vid, token);
      } catch (e) {
        if (e instanceof LinksError && (e.code === "invalid_token" || e.code === "revoked_token")) refuseToken(c, opts.failures, e.code, e.detail);
        throw e;
      }
      c.set("member", member);
      if (!roleMay(c.get("policy"), member.role, right)) {
        throw new LinksError("forbidden", `role ${JSON.stringify(member.role)} may not ${right} in village ${vid}`);
      }
      await next();
    };
  };
}
