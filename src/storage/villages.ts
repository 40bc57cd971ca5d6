/**
 * Villages: `villages/<id>/village.json`, replaced atomically, changed only under its lock so
 * concurrent writers from several processes never lose one another's update.
 */
import { readdirSync, statSync } from "node:fs";
import { z } from "zod";
import type { JsonValue } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { LinksError } from "../core/errors.ts";
import { parseWith, zJsonObject } from "../core/schema.ts";
import { auditPolicyHash, defaultPolicy, readPolicy, type PolicyObject, type VillagePolicy } from "../core/village-policy.ts";
import { lockPathFor, withFileLockSync } from "./flock.ts";
import { readJsonFile, writeJsonFile } from "./json-file.ts";
import { VILLAGE_ID_RE, type DataPaths } from "./paths.ts";

export const VillageSchema = z.looseObject({
  village_id: z.string(),
  name: z.string(),
  description: z.string().default(""),
  created_at: z.string(),
  governance: z
    .looseObject({
      admins: z.array(z.string()).default([]),
      decision_model: z.string().default("admin-consensus"),
    })
    .default({ admins: [], decision_model: "admin-consensus" }),
  policy: zJsonObject,
});

export type Village = z.output<typeof VillageSchema>;

export function villageExists(paths: DataPaths, vid: string): boolean {
  return readJsonFile(paths.villageFile(vid)) !== null;
}

/** The village, or a village_not_found error. Read afresh from disk. */
function loadVillage(paths: DataPaths, vid: string): Village {
  const raw = readJsonFile(paths.villageFile(vid));
  if (raw === null) throw villageNotFound(vid);
  return parseWith(VillageSchema, raw, `village.json of ${vid}`);
}

function villageNotFound(vid: string): LinksError {
  return new LinksError("village_not_found", `village ${JSON.stringify(vid)} does not exist`);
}

// village.json is replaced by rename, so a new inode (or size/mtime) means a new version: the
// node reads it on every request without parsing it again until it changes. Values are shared:
// callers must not mutate them.
const cache = new Map<string, { stamp: string; village: Village }>();
const CACHE_MAX = 1024;

/** The village, or a village_not_found error. */
export function readVillage(paths: DataPaths, vid: string): Village {
  const file = paths.villageFile(vid);
  let stamp: string;
  try {
    // A village that does not exist (ids guessed one after another): one stat, not a failed stat and a failed open.
    const s = statSync(file, { throwIfNoEntry: false });
    if (s === undefined) {
      cache.delete(file);
      throw villageNotFound(vid);
    }
    stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (e) {
    if (e instanceof LinksError) throw e;
    cache.delete(file);
    return loadVillage(paths, vid);
  }
  const hit = cache.get(file);
  if (hit && hit.stamp === stamp) return hit.village;
  const village = loadVillage(paths, vid);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(file, { stamp, village });
  return village;
}

/**
 * A value derived from a village, computed once per village version: readVillage gives the same
 * object until village.json changes, and a new object after.
 */
export function perVillageVersion<T>(derive: (village: Village) => T): (village: Village) => T {
  const memo = new WeakMap<Village, T>();
  return (village) => {
    if (memo.has(village)) return memo.get(village) as T;
    const value = derive(village);
    memo.set(village, value);
    return value;
  };
}

/** The typed view of a village's policy. */
export const villagePolicy: (village: Village) => VillagePolicy = perVillageVersion((v) => readPolicy(v.policy));

/** The audit log's short hash of the village's policy. */
export const villagePolicyHash: (village: Village) => string = perVillageVersion((v) => auditPolicyHash(v.policy));

export function listVillageIds(paths: DataPaths): string[] {
  let names: string[];
  try {
    names = readdirSync(paths.villagesDir());
  } catch {
    return [];
  }
  return names.filter((n) => VILLAGE_ID_RE.test(n) && villageExists(paths, n)).sort();
}

export interface NewVillage {
  villageId: string;
  name: string;
  adminId: string;
  description?: string | undefined;
  policy?: Partial<VillagePolicy> | undefined;
}

/** Writes a new village with the full default policy; refuses an existing one. */
export function createVillage(paths: DataPaths, args: NewVillage): Village {
  const village: Village = {
    village_id: args.villageId,
    name: args.name,
    description: args.description ?? "",
    created_at: nowIso(),
    governance: { admins: [args.adminId], decision_model: "admin-consensus" },
    policy: defaultPolicy(args.policy),
  };
  try {
    writeJsonFile(paths.villageFile(args.villageId), village, { exclusive: true });
  } catch (e) {
    if (e instanceof LinksError && e.code === "file_exists") {
      throw new LinksError("village_exists", `village ${JSON.stringify(args.villageId)} already exists`);
    }
    throw e;
  }
  return village;
}

/**
 * Read-modify-write of village.json under its exclusive lock. `change` returns the new village
 * (or the same object to leave the file alone).
 */
export function updateVillage<T>(
  paths: DataPaths,
  vid: string,
  change: (village: Village) => { village: Village; result: T },
): T {
  const file = paths.villageFile(vid);
  return withFileLockSync(lockPathFor(file), "exclusive", () => {
    const before = loadVillage(paths, vid);
    const { village, result } = change(before);
    if (village !== before) writeJsonFile(file, village);
    return result;
  });
}

/** Replaces the village's policy object (already validated by the caller). */
export function withPolicy(village: Village, policy: PolicyObject): Village {
  readPolicy(policy);
  return { ...village, policy: policy as { [key: string]: JsonValue } };
}
