/**
 * One place that turns every failure into the JSON answer `{"detail", "code"}`: a LinksError
 * with its own status, an HTTPException with its status, anything else a 500 whose stack goes
 * to the log and never to the client. Unknown routes are 404 `not_found`; a known path asked
 * with another method is 405 `method_not_allowed` with `Allow`.
 */
import type { ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ERROR_STATUS, LinksError, type ErrorCode } from "../../../core/errors.ts";
import type { AppContext, AppEnv } from "../../context.ts";
import type { RouteTable } from "../../route-table.ts";

export interface ErrorsOptions {
  /** one structured line per unexpected failure (stack included) */
  log: (line: Record<string, unknown>) => void;
  /** the data directory: replaced by "<data>" in every detail sent out */
  dataRoot: string;
  routes: RouteTable;
}

/** The code an HTTPException answers with, by its status. */
const CODE_BY_STATUS: ReadonlyMap<number, ErrorCode> = new Map<number, ErrorCode>([
  [400, "invalid_argument"],
  [401, "missing_token"],
  [403, "forbidden"],
  [404, "not_found"],
  [405, "method_not_allowed"],
  [413, "body_too_large"],
  [415, "unsupported_media_type"],
  [429, "rate_limited"],
  [503, "unavailable"],
]);

/** Details of server-side failures stay in the log; the client gets one sentence per code. */
const GENERIC_DETAIL: Partial<Record<ErrorCode, string>> = {
  storage_full: "the node's storage is full",
  storage_error: "the node could not read or write its data",
  flock_unavailable: "the node could not lock its data",
  internal_error: "internal error",
};

/** 5xx answers that are decisions, not failures: their detail is sent and nothing is logged. */
const REFUSALS_5XX: ReadonlySet<ErrorCode> = new Set<ErrorCode>(["public_inbox_full"]);

export function errorAnswer(c: AppContext, status: number, code: ErrorCode, detail: string): Response {
  return c.json({ detail, code }, status as ContentfulStatusCode);
}

function validate(opts: ErrorsOptions): void {
  if (typeof opts.log !== "function") throw new LinksError("invalid_argument", "errors middleware: log must be a function");
  if (typeof opts.dataRoot !== "string" || opts.dataRoot === "") {
    throw new LinksError("invalid_argument", "errors middleware: dataRoot must be the data directory");
  }
}

export function errorHandler(opts: ErrorsOptions): ErrorHandler<AppEnv> {
  validate(opts);
  const hidePaths = (text: string): string => (opts.dataRoot.length > 1 ? text.replaceAll(opts.dataRoot, "<data>") : text);
  const logFailure = (c: AppContext, err: unknown, status: number): void => {
    opts.log({
      ts: new Date().toISOString(),
      level: "error",
      method: c.req.method,
      path: c.req.path.slice(0, 256),
      status,
      error: err instanceof Error ? err.name : typeof err,
      message: err instanceof Error ? err.message : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
  };

  return (err, c) => {
    if (err instanceof LinksError) {
      if (err.status >= 500 && !REFUSALS_5XX.has(err.code)) {
        logFailure(c, err, err.status);
        return errorAnswer(c, err.status, err.code, GENERIC_DETAIL[err.code] ?? hidePaths(err.detail));
      }
      return errorAnswer(c, err.status, err.code, hidePaths(err.detail));
    }
    if (err instanceof HTTPException) {
      const code = CODE_BY_STATUS.get(err.status) ?? (err.status >= 500 ? "internal_error" : "invalid_argument");
      if (err.status >= 500) logFailure(c, err, err.status);
      const detail = err.status >= 500 ? "internal error" : err.message || `request refused (${err.status})`;
      return errorAnswer(c, err.status, code, hidePaths(detail));
    }
    logFailure(c, err, 500);
    return errorAnswer(c, ERROR_STATUS.internal_error, "internal_error", "internal error");
  };
}

export function notFoundHandler(opts: ErrorsOptions): NotFoundHandler<AppEnv> {
  validate(opts);
  return (c) => {
    const path = c.req.path;
    const shown = JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}...` : path);
    const allowed = opts.routes.allowedMethods(path);
    if (allowed.length > 0) {
      c.header("Allow", allowed.join(", "));
      return errorAnswer(c, 405, "method_not_allowed", `${c.req.method} is not allowed on ${shown}; use ${allowed.join(" or ")}`);
    }
    return errorAnswer(c, 404, "not_found", `no route for ${c.req.method} ${shown}`);
  };
}
