/**
 * The Hono app factory: the node's HTTP API over one data directory. Used by the tests (in
 * process, through `app.request`/`app.fetch`) and by `startServer`.
 *
 * Order of the middleware (design: "The village inbox: one pipeline"):
 *   request-log > client-ip > loopback-guard > [route] ids > auth > rate limit > body > handler
 */
import { Hono } from "hono";
import { LinksError } from "../core/errors.ts";
import { AuditIndex } from "../storage/audit-index.ts";
import { MemberDirectory } from "../storage/members.ts";
import { ClaimsDb } from "../storage/claims-db.ts";
import { GroupCommit } from "../storage/group-commit.ts";
import { DataPaths } from "../storage/paths.ts";
import type { AppEnv } from "./context.ts";
import { bearerAuth } from "./middleware/auth/index.ts";
import { bodyLimit } from "./middleware/body-limit/index.ts";
import { clientIp } from "./middleware/client-ip/index.ts";
import { errorHandler, notFoundHandler } from "./middleware/errors/index.ts";
import { loopbackGuard } from "./middleware/loopback-guard/index.ts";
import { authFailureGuard, rateLimit, RateLimiter } from "./middleware/rate-limit/index.ts";
import { requestLog } from "./middleware/request-log/index.ts";
import { routeIds } from "./middleware/route-ids/index.ts";
import { RouteTable } from "./route-table.ts";
import { bundlesRoutes } from "./routes/bundles.ts";
import { claimsRoutes } from "./routes/claims.ts";
import type { RouteDeps } from "./routes/deps.ts";
import { inboxRoutes } from "./routes/inbox.ts";
import { policyFeedRoutes } from "./routes/policy-feed.ts";
import { peersRoutes } from "./routes/peers.ts";
import { policyRoutes } from "./routes/policy.ts";
import { publicRoutes } from "./routes/public.ts";
import { quarantineRoutes } from "./routes/quarantine.ts";

export interface ServerOptions {
  dataDir: string;
  /** largest accepted request body (default 1 MiB) */
  maxBodyBytes?: number;
  /** addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed */
  trustProxy?: readonly string[];
  /** accept bearer tokens over plain HTTP from remote peers (not recommended) */
  allowInsecureRemote?: boolean;
  /** one object per request and per unexpected failure (default: a JSON line on stderr) */
  logger?: (line: object) => void;
  /** the clock, in ms since the epoch (rate-limit windows, policy expiry, log times) */
  now?: () => number;
  /** requests per minute per client address on routes without a token */
  publicRatePerMin?: number;
  /** failed authentications per minute per client address before it is refused */
  authFailuresPerMin?: number;
  /** most keys the rate limiter holds at once */
  rateLimitCapacity?: number;
}

export const DEFAULTS = {
  maxBodyBytes: 1024 * 1024,
  trustProxy: [] as readonly string[],
  allowInsecureRemote: false,
  publicRatePerMin: 120,
  authFailuresPerMin: 20,
  rateLimitCapacity: 100_000,
  logger: (line: object): void => {
    process.stderr.write(`${JSON.stringify(line)}\n`);
  },
  now: (): number => Date.now(),
} as const;

export interface LinksApp {
  app: Hono<AppEnv>;
  /** the node's group commit, for work beside the HTTP routes (the sync loop) */
  commit: GroupCommit;
  /**
   * Finishes the commits in flight, checkpoints, closes the claims database and releases the
   * rate limiter's memory; the app answers nothing useful after.
   */
  close(): Promise<void>;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new LinksError("invalid_argument", `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

export function createApp(opts: ServerOptions): LinksApp {
  if (typeof opts.dataDir !== "string" || opts.dataDir === "") throw new LinksError("invalid_argument", "dataDir is required");
  const o = {
    maxBodyBytes: positiveInt("maxBodyBytes", opts.maxBodyBytes ?? DEFAULTS.maxBodyBytes),
    trustProxy: opts.trustProxy ?? DEFAULTS.trustProxy,
    allowInsecureRemote: opts.allowInsecureRemote ?? DEFAULTS.allowInsecureRemote,
    publicRatePerMin: positiveInt("publicRatePerMin", opts.publicRatePerMin ?? DEFAULTS.publicRatePerMin),
    authFailuresPerMin: positiveInt("authFailuresPerMin", opts.authFailuresPerMin ?? DEFAULTS.authFailuresPerMin),
    rateLimitCapacity: positiveInt("rateLimitCapacity", opts.rateLimitCapacity ?? DEFAULTS.rateLimitCapacity),
    logger: opts.logger ?? DEFAULTS.logger,
    now: opts.now ?? DEFAULTS.now,
  };
  const paths = new DataPaths(opts.dataDir);
  const routes = new RouteTable();
  const limiter = new RateLimiter({ capacity: o.rateLimitCapacity, now: o.now });
  const log = (line: object): void => o.logger(line);

  const app = new Hono<AppEnv>();
  app.onError(errorHandler({ log, dataRoot: paths.root, routes }));
  app.notFound(notFoundHandler({ log, dataRoot: paths.root, routes }));
  app.use(requestLog({ logger: log, now: o.now }));
  app.use(clientIp({ trustProxy: o.trustProxy }));
  app.use(loopbackGuard({ allowInsecureRemote: o.allowInsecureRemote }));

  const commit = new GroupCommit(paths);
  const claimsDb = new ClaimsDb(paths);
  claimsDb.catchUp();
  const auditIndex = new AuditIndex(paths);
  const deps: RouteDeps = {
    commit,
    claimsDb,
    auditIndex,
    app,
    routes,
    paths,
    now: o.now,
    ids: routeIds({ paths }),
    auth: bearerAuth({
      directory: new MemberDirectory(paths),
      failures: authFailureGuard({ limiter, perWindow: o.authFailuresPerMin }),
    }),
    memberLimit: rateLimit({
      limiter,
      key: (c) => `member:${c.get("villageId")}:${c.get("member").memberId}`,
      limit: (c) => c.get("policy").rate_limit_per_min,
    }),
    publicLimit: rateLimit({ limiter, key: (c) => `public:${c.get("clientIp")}`, limit: () => o.publicRatePerMin }),
    jsonBody: bodyLimit({ maxBytes: o.maxBodyBytes, json: true }),
  };
  publicRoutes(deps);
  inboxRoutes(deps);
  claimsRoutes(deps);
  policyRoutes(deps);
  policyFeedRoutes(deps);
  quarantineRoutes(deps);
  bundlesRoutes(deps);
  peersRoutes(deps);

  return {
    app,
    commit,
    close: async () => {
      await commit.close();
      claimsDb.close();
      auditIndex.close();
      limiter.clear();
    },
  };
}
