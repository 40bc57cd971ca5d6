/**
 * The Hono app factory: the node's HTTP API over one data directory. Used by the tests (in
 * process, through `app.request`/`app.fetch`) and by `startServer`.
 *
 * Order of the middleware (design: "The village inbox: one pipeline"):
 *   metrics > request-log > client-ip > loopback-guard > [route] ids > auth > rate limit > body > handler
 */
import { Hono } from "hono";
import { assertNodeName } from "../core/audit-origin.ts";
import { LinksError } from "../core/errors.ts";
import { AuditIndex } from "../storage/audit-index.ts";
import { CHECKPOINT_DEFAULTS, CheckpointSigner } from "../storage/checkpoints.ts";
import { MemberDirectory } from "../storage/members.ts";
import { loadNodeIdentity, type NodeIdentity } from "../storage/node-identity.ts";
import { ClaimsDb } from "../storage/claims-db.ts";
import { GroupCommit } from "../storage/group-commit.ts";
import { DataPaths } from "../storage/paths.ts";
import type { AppEnv } from "./context.ts";
import { bearerAuth } from "./middleware/auth/index.ts";
import { bodyLimit } from "./middleware/body-limit/index.ts";
import { clientIp, DEFAULT_IPV6_PREFIX } from "./middleware/client-ip/index.ts";
import { errorHandler, notFoundHandler } from "./middleware/errors/index.ts";
import { loopbackGuard } from "./middleware/loopback-guard/index.ts";
import { authFailureGuard, rateLimit, RateLimiter } from "./middleware/rate-limit/index.ts";
import { requestLog } from "./middleware/request-log/index.ts";
import { routeIds } from "./middleware/route-ids/index.ts";
import { NodeMetrics } from "./metrics-node.ts";
import { PUBLIC_INBOX_DEFAULTS, PublicInboxBudget } from "./public-inbox-budget.ts";
import { RouteTable } from "./route-table.ts";
import { VerifyPool } from "./verify-pool.ts";
import { stderrLog } from "./log-lines.ts";
import { adminRoutes } from "./routes/admin.tsx";
import { auditRoutes } from "./routes/audit.ts";
import { bundlesRoutes } from "./routes/bundles.ts";
import { claimsRoutes } from "./routes/claims.ts";
import type { RouteDeps } from "./routes/deps.ts";
import { inboxRoutes } from "./routes/inbox.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { myVillagesRoutes } from "./routes/my-villages.ts";
import { openApiRoutes } from "./routes/openapi.ts";
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
  /** threads that verify inbox signatures off the event loop (0: on it; default: cores - 2) */
  verifyWorkers?: number;
  /** answer GET /metrics to any peer, not only to this host */
  metricsPublic?: boolean;
  /** per-address limits count IPv6 clients by this prefix length (default 64; 128: each address) */
  ipv6Prefix?: number;
  /** whether `POST /inbox` takes bundles from anyone (default true) */
  publicInbox?: boolean;
  /** bytes of public bundles one client address (IPv6: its prefix) may store per UTC day */
  publicInboxQuotaBytes?: number;
  /** bytes of public bundles the node keeps in all */
  publicInboxTotalBytes?: number;
  /** the key and name audit checkpoints are signed with (default: the data directory's key, nodeName) */
  identity?: NodeIdentity;
  /** the node's name in its checkpoints (default: the host name) */
  nodeName?: string | undefined;
  /** how often grown audit trees get a signed checkpoint, in ms (0: only when one is asked for) */
  checkpointIntervalMs?: number;
}

export const DEFAULTS = {
  maxBodyBytes: 1024 * 1024,
  trustProxy: [] as readonly string[],
  allowInsecureRemote: false,
  publicRatePerMin: 120,
  authFailuresPerMin: 20,
  rateLimitCapacity: 100_000,
  // A worker pays off only with a core to spare beside the event loop and the fsync thread: on 2
  // cores it measured no faster and cost 15 MiB (README, Performance).
  verifyWorkers: Math.max(0, navigator.hardwareConcurrency - 2),
  metricsPublic: false,
  ipv6Prefix: DEFAULT_IPV6_PREFIX,
  publicInbox: PUBLIC_INBOX_DEFAULTS.enabled,
  publicInboxQuotaBytes: PUBLIC_INBOX_DEFAULTS.perAddressPerDayBytes,
  publicInboxTotalBytes: PUBLIC_INBOX_DEFAULTS.totalBytes,
  checkpointIntervalMs: CHECKPOINT_DEFAULTS.intervalMs,
  logger: stderrLog.line,
  now: (): number => Date.now(),
} as const;

export interface LinksApp {
  app: Hono<AppEnv>;
  /** every route the app serves, with its description (the OpenAPI document's source) */
  routes: RouteTable;
  /** the node's group commit and claims database, for work beside the HTTP routes (the sync loop) */
  commit: GroupCommit;
  claimsDb: ClaimsDb;
  /**
   * Finishes the commits in flight, checkpoints, signs the audit trees that grew, closes the
   * databases and releases the rate limiter's memory; the app answers nothing useful after.
   */
  close(): Promise<void>;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new LinksError("invalid_argument", `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function nonNegativeInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new LinksError("invalid_argument", `${name} must be a whole number of 0 or more, got ${value}`);
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
    metricsPublic: opts.metricsPublic ?? DEFAULTS.metricsPublic,
    ipv6Prefix: opts.ipv6Prefix ?? DEFAULTS.ipv6Prefix,
    publicInbox: opts.publicInbox ?? DEFAULTS.publicInbox,
    checkpointIntervalMs: nonNegativeInt("checkpointIntervalMs", opts.checkpointIntervalMs ?? DEFAULTS.checkpointIntervalMs),
    logger: opts.logger ?? DEFAULTS.logger,
    now: opts.now ?? DEFAULTS.now,
  };
  // Every option is checked before a database, a thread or a file is opened (the node key is the
  // first file): a bad one leaves the data directory as it was and nothing running.
  const verifyWorkers = nonNegativeInt("verifyWorkers", opts.verifyWorkers ?? DEFAULTS.verifyWorkers);
  const nodeName = opts.nodeName === undefined ? undefined : assertNodeName(opts.nodeName);
  const paths = new DataPaths(opts.dataDir);
  const clientIpMiddleware = clientIp({ trustProxy: o.trustProxy, ipv6Prefix: o.ipv6Prefix });
  const loopbackMiddleware = loopbackGuard({ allowInsecureRemote: o.allowInsecureRemote });
  const publicInbox = o.publicInbox
    ? new PublicInboxBudget({
        paths,
        perAddressPerDayBytes: opts.publicInboxQuotaBytes ?? DEFAULTS.publicInboxQuotaBytes,
        totalBytes: opts.publicInboxTotalBytes ?? DEFAULTS.publicInboxTotalBytes,
        now: o.now,
      })
    : null;
  const identity = opts.identity ?? loadNodeIdentity(paths, { name: nodeName });
  const routes = new RouteTable();
  const limiter = new RateLimiter({ capacity: o.rateLimitCapacity, now: o.now });
  const log = (line: object): void => o.logger(line);

  const claimsDb = new ClaimsDb(paths);
  claimsDb.catchUp();
  const commit = new GroupCommit(paths, claimsDb);
  const verifyPool = verifyWorkers > 0 ? new VerifyPool(verifyWorkers) : null;
  const metrics = new NodeMetrics({ paths, routes, commit: commit.stats, verify: verifyPool?.stats ?? null });

  const app = new Hono<AppEnv>();
  app.onError(errorHandler({ log, dataRoot: paths.root, routes }));
  app.notFound(notFoundHandler({ log, dataRoot: paths.root, routes }));
  app.use(metrics.http());
  app.use(requestLog({ logger: log, now: o.now }));
  app.use(clientIpMiddleware);
  app.use(loopbackMiddleware);

  const members = new MemberDirectory(paths);
  const authFailures = authFailureGuard({ limiter, perWindow: o.authFailuresPerMin, refusals: metrics.refusals.auth_failures });
  const auditIndex = new AuditIndex(paths);
  const checkpoints = new CheckpointSigner(paths, auditIndex, identity, {
    onRefusal: (message, scope) => {
      process.stderr.write(`links: ERROR: ${message}\n`);
      log({ ts: new Date(o.now()).toISOString(), event: "audit_checkpoint_refused", village: scope, detail: message });
    },
  });
  checkpoints.start(o.checkpointIntervalMs);
  const deps: RouteDeps = {
    commit,
    verifyPool,
    claimsDb,
    auditIndex,
    checkpoints,
    identity,
    app,
    routes,
    paths,
    now: o.now,
    members,
    authFailures,
    metrics,
    ids: routeIds({ paths, failures: authFailures }),
    auth: bearerAuth({ directory: members, failures: authFailures }),
    memberLimit: rateLimit({
      limiter,
      key: (c) => `member:${c.get("villageId")}:${c.get("member").memberId}`,
      limit: (c) => c.get("policy").rate_limit_per_min,
      refusals: metrics.refusals.member,
    }),
    publicLimit: rateLimit({
      limiter,
      key: (c) => `public:${c.get("clientGroup")}`,
      limit: () => o.publicRatePerMin,
      refusals: metrics.refusals.public,
    }),
    publicInbox,
    jsonBody: bodyLimit({ maxBytes: o.maxBodyBytes, json: true }),
  };
  publicRoutes(deps);
  inboxRoutes(deps);
  claimsRoutes(deps);
  policyRoutes(deps);
  policyFeedRoutes(deps);
  quarantineRoutes(deps);
  myVillagesRoutes(deps);
  adminRoutes(deps);
  metricsRoutes(deps, { public: o.metricsPublic });
  openApiRoutes(deps);
  auditRoutes(deps);
  bundlesRoutes(deps);
  peersRoutes(deps);
  void publicInbox?.start();

  let closing: Promise<void> | null = null;
  return {
    app,
    routes,
    commit,
    claimsDb,
    close: () =>
      (closing ??= (async () => {
        await commit.close();
        // after the last commit: the rows it wrote get their checkpoint
        await checkpoints.stop();
        auditIndex.close();
        claimsDb.close();
        limiter.clear();
        publicInbox?.close();
        verifyPool?.close();
        stderrLog.flush();
      })()),
  };
}
