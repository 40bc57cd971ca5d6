/**
 * One JSON line per request: when, what, how it ended, how long it took, and who (village,
 * member, client address). Never a header value, a query string or a body: tokens stay out.
 */
import type { MiddlewareHandler } from "hono";
import { LinksError } from "../../../core/errors.ts";
import type { AppEnv } from "../../context.ts";

export interface RequestLogLine {
  ts: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  village: string | null;
  member: string | null;
  ip: string | null;
}

export interface RequestLogOptions {
  logger: (line: RequestLogLine) => void;
  now: () => number;
}

const MAX_PATH = 256;

export function requestLog(opts: RequestLogOptions): MiddlewareHandler<AppEnv> {
  if (typeof opts.logger !== "function" || typeof opts.now !== "function") {
    throw new LinksError("invalid_argument", "request-log: logger and now must be functions");
  }
  return async (c, next) => {
    const started = performance.now();
    const ts = new Date(opts.now()).toISOString();
    try {
      await next();
    } finally {
      const path = c.req.path;
      opts.logger({
        ts,
        method: c.req.method,
        path: path.length > MAX_PATH ? `${path.slice(0, MAX_PATH)}...` : path,
        status: c.res.status,
        ms: Math.round((performance.now() - started) * 100) / 100,
        village: c.get("villageId") ?? null,
        member: c.get("member")?.memberId ?? null,
        ip: c.get("clientIp") ?? null,
      });
    }
  };
}
