/** What the route modules are built from: storage, the shared middleware, the route table. */
import type { Hono, MiddlewareHandler } from "hono";
import type { Right } from "../../core/village-policy.ts";
import type { AuditIndex } from "../../storage/audit-index.ts";
import type { ClaimsDb } from "../../storage/claims-db.ts";
import type { GroupCommit } from "../../storage/group-commit.ts";
import type { DataPaths } from "../../storage/paths.ts";
import type { AppEnv } from "../context.ts";
import type { RouteTable } from "../route-table.ts";

export interface RouteDeps {
  app: Hono<AppEnv>;
  routes: RouteTable;
  paths: DataPaths;
  /** batches the inbox's durable writes */
  commit: GroupCommit;
  /** the query index derived from store/index/claims.jsonl */
  claimsDb: ClaimsDb;
  /** the per-village Merkle trees derived from the audit log (the bundle feed's order) */
  auditIndex: AuditIndex;
  now: () => number;
  /** step 1: path ids checked, village read */
  ids: MiddlewareHandler<AppEnv>;
  /** step 2: bearer token -> member with this right */
  auth: (right: Right) => MiddlewareHandler<AppEnv>;
  /** step 3 for village routes: per village+member, the policy's rate_limit_per_min */
  memberLimit: MiddlewareHandler<AppEnv>;
  /** per client address, for routes without a token */
  publicLimit: MiddlewareHandler<AppEnv>;
  /** step 4: bounded JSON body, read once into c.var.body */
  jsonBody: MiddlewareHandler<AppEnv>;
}
