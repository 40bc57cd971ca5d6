/** What the route modules are built from: storage, the shared middleware, the route table. */
import type { Hono, MiddlewareHandler } from "hono";
import type { Right } from "../../core/village-policy.ts";
import type { AuditIndex } from "../../storage/audit-index.ts";
import type { CheckpointSigner } from "../../storage/checkpoints.ts";
import type { ClaimsDb } from "../../storage/claims-db.ts";
import type { GroupCommit } from "../../storage/group-commit.ts";
import type { MemberDirectory } from "../../storage/members.ts";
import type { NodeIdentity } from "../../storage/node-identity.ts";
import type { DataPaths } from "../../storage/paths.ts";
import type { AppEnv } from "../context.ts";
import type { NodeMetrics } from "../metrics-node.ts";
import type { AuthFailureGuard } from "../middleware/rate-limit/index.ts";
import type { PublicInboxBudget } from "../public-inbox-budget.ts";
import type { RouteTable } from "../route-table.ts";
import type { VerifyPool } from "../verify-pool.ts";

export interface RouteDeps {
  app: Hono<AppEnv>;
  routes: RouteTable;
  paths: DataPaths;
  /** batches the inbox's durable writes */
  commit: GroupCommit;
  /** verifies the inbox's signatures off the event loop (null: on it) */
  verifyPool: VerifyPool | null;
  /** the query index derived from store/index/claims.jsonl */
  claimsDb: ClaimsDb;
  /** the Merkle trees derived from store/audit/audit.log.jsonl */
  auditIndex: AuditIndex;
  /** signs and keeps the audit checkpoints */
  checkpoints: CheckpointSigner;
  /** the node's name and key (the checkpoints' signer) */
  identity: NodeIdentity;
  now: () => number;
  /** step 1: path ids checked, village read */
  ids: MiddlewareHandler<AppEnv>;
  /** the member ledgers, cached (what auth reads) */
  members: MemberDirectory;
  /** failed authentications per client address (what auth counts) */
  authFailures: AuthFailureGuard;
  /** the node's metrics: stats the routes record into, and the registry /metrics renders */
  metrics: NodeMetrics;
  /** step 2: bearer token -> member with this right */
  auth: (right: Right) => MiddlewareHandler<AppEnv>;
  /** step 3 for village routes: per village+member, the policy's rate_limit_per_min */
  memberLimit: MiddlewareHandler<AppEnv>;
  /** per client address, for routes without a token */
  publicLimit: MiddlewareHandler<AppEnv>;
  /** step 4: bounded JSON body, read once into c.var.body */
  jsonBody: MiddlewareHandler<AppEnv>;
  /** the public inbox's storage budget; null when the operator turned the public inbox off */
  publicInbox: PublicInboxBudget | null;
}
