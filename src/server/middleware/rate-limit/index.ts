/**
 * Rate limits as middleware, over one memory-bounded RateLimiter (see limiter.ts):
 * - `rateLimit`: counts each request under a key (village+member, or client address) and answers
 *   429 `rate_limited` once the window's limit is reached;
 * - `authFailureGuard`: counts failed authentications per client address; once over its limit,
 *   every further attempt from that address is 429, even with a valid token, until the window ends.
 * Every limited response carries `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-
 * headers); a 429 also carries `Retry-After` in seconds.
 */
import type { MiddlewareHandler } from "hono";
import { LinksError } from "../../../core/errors.ts";
import type { AppContext, AppEnv } from "../../context.ts";
import type { LimitResult, RateLimiter } from "./limiter.ts";

export { RateLimiter, LIMITER_DEFAULTS, type LimiterOptions, type LimitResult } from "./limiter.ts";

/** A plain tally of refusals, one per limit, that the node's metrics read. */
export interface RefusalTally {
  refused: number;
}

export interface RateLimitOptions {
  limiter: RateLimiter;
  /** counted on every 429 this limit answers */
  refusals?: RefusalTally;
  /** the counter's key; keys of different limits must not collide (prefix them) */
  key: (c: AppContext) => string;
  /** requests allowed per window for this request's key */
  limit: (c: AppContext) => number;
}

export function setRateLimitHeaders(c: AppContext, r: LimitResult, windowSeconds: number): void {
  c.header("RateLimit-Policy", `${r.limit};w=${windowSeconds}`);
  c.header("RateLimit", `limit=${r.limit}, remaining=${r.remaining}, reset=${r.resetSeconds}`);
}

function refuse(c: AppContext, r: LimitResult, windowSeconds: number, what: string): never {
  c.header("Retry-After", String(r.resetSeconds));
  const per = windowSeconds === 60 ? "minute" : `${windowSeconds} s`;
  throw new LinksError("rate_limited", `${what}: the limit is ${r.limit} per ${per}; retry in ${r.resetSeconds} s`);
}

function checkLimiter(limiter: unknown, where: string): asserts limiter is RateLimiter {
  const l = limiter as RateLimiter | null;
  if (!l || typeof l.consume !== "function" || typeof l.peek !== "function") {
    throw new LinksError("invalid_argument", `${where}: a RateLimiter is required`);
  }
}

export function rateLimit(opts: RateLimitOptions): MiddlewareHandler<AppEnv> {
  checkLimiter(opts.limiter, "rate-limit");
  if (typeof opts.key !== "function" || typeof opts.limit !== "function") {
    throw new LinksError("invalid_argument", "rate-limit: key and limit must be functions");
  }
  const windowSeconds = Math.round(opts.limiter.windowMs / 1000);
  return async (c, next) => {
    const result = opts.limiter.consume(opts.key(c), opts.limit(c));
    setRateLimitHeaders(c, result, windowSeconds);
    if (!result.allowed) {
      if (opts.refusals) opts.refusals.refused++;
      refuse(c, result, windowSeconds, "too many requests");
    }
    await next();
  };
}

export interface AuthFailureGuard {
  /** 429 if the client address has used up its failed attempts for this window */
  check(c: AppContext): void;
  /** counts one failed authentication for the client address */
  record(c: AppContext): void;
}

export function authFailureGuard(opts: { limiter: RateLimiter; perWindow: number; refusals?: RefusalTally }): AuthFailureGuard {
  checkLimiter(opts.limiter, "auth-failure guard");
  if (!Number.isSafeInteger(opts.perWindow) || opts.perWindow < 1) {
    throw new LinksError("invalid_argument", `auth-failure guard: perWindow must be a positive integer, got ${opts.perWindow}`);
  }
  const windowSeconds = Math.round(opts.limiter.windowMs / 1000);
  const key = (c: AppContext): string => `auth-fail:${c.get("clientGroup")}`;
  return {
    check(c) {
      const result = opts.limiter.peek(key(c), opts.perWindow);
      if (result.allowed) return;
      setRateLimitHeaders(c, result, windowSeconds);
      if (opts.refusals) opts.refusals.refused++;
      refuse(c, result, windowSeconds, "too many failed authentications from this address");
    },
    record(c) {
      opts.limiter.record(key(c));
    },
  };
}
