/**
 * Step 1 of every village route: the ids in the path are checked before any file is touched
 * (400 invalid_village_id / invalid_bundle_id), then the village is read (404 village_not_found)
 * and left on the context with its policy, for auth and the handlers.
 *
 * With an auth-failure guard, an address that has used up its failed attempts is refused (429)
 * before any file is read, and a village id that is invalid or names no village counts as a failed
 * attempt: no one can authenticate to a village that does not exist, and asking for one after
 * another is how village ids are guessed.
 */
import type { Context, MiddlewareHandler } from "hono";
import { LinksError } from "../../../core/errors.ts";
import { assertPolicyHash } from "../../../core/policy-update.ts";
import { assertBundleId, assertVillageId, type DataPaths } from "../../../storage/paths.ts";
import { readVillage, villagePolicy } from "../../../storage/villages.ts";
import type { AppEnv } from "../../context.ts";
import type { AuthFailureGuard } from "../rate-limit/index.ts";

export interface RouteIdsOptions {
  paths: DataPaths;
  failures?: AuthFailureGuard | undefined;
}

const VILLAGE_MISSES: ReadonlySet<string> = new Set(["invalid_village_id", "village_not_found"]);

/** Route parameter -> its check. Every parameter a route declares must be listed here. */
const CHECKS: Readonly<Record<string, (value: unknown) => string>> = {
  id: assertVillageId,
  bundle_id: assertBundleId,
  policy_hash: (value) => assertPolicyHash(value),
};

export function routeIds(opts: RouteIdsOptions): MiddlewareHandler<AppEnv> {
  if (!opts.paths || typeof opts.paths.villageFile !== "function") {
    throw new LinksError("invalid_argument", "route-ids: paths (a DataPaths) is required");
  }
  return async (c, next) => {
    opts.failures?.check(c);
    try {
      readIds(c, opts.paths);
    } catch (e) {
      if (e instanceof LinksError && VILLAGE_MISSES.has(e.code)) opts.failures?.record(c);
      throw e;
    }
    await next();
  };
}

function readIds(c: Context<AppEnv>, paths: DataPaths): void {
  const params = c.req.param() as Record<string, string>;
  // The village id first, so a request with two bad ids names the village.
  for (const name of ["id", ...Object.keys(params).filter((n) => n !== "id")]) {
    if (!(name in params)) continue;
    const check = CHECKS[name];
    if (!check) throw new LinksError("internal_error", `route parameter ${name} has no id check`);
    check(params[name]);
  }
  const vid = params.id;
  if (vid !== undefined) {
    const village = readVillage(paths, vid);
    c.set("villageId", vid);
    c.set("village", village);
    c.set("policy", villagePolicy(village));
  }
}
