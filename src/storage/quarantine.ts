/**
 * Quarantine: bundles a village's policy did not allow, kept exactly as received in
 * store/quarantine/<village>/<bundle_id>.json until an operator approves (re-checked against the
 * current policy) or rejects them (moved to store/rejected/<village>/).
 *
 * Why, when and who go to a `meta/` subfolder (store/quarantine/<village>/meta/<bundle_id>.json,
 * and the same under rejected/), so every `*.json` directly in a quarantine folder is a held
 * bundle, as Python Links reads that folder. Earlier versions of links wrote `<bundle_id>.meta.json`
 * beside the bundle: those are read, and moved into meta/ whenever the folder is touched.
 */
import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { decide } from "../core/acceptance.ts";
import { parseBundle } from "../core/bundle.ts";
import { nowIso } from "../core/datetime.ts";
import { LinksError, storageError } from "../core/errors.ts";
import { atomicWrite } from "./atomic.ts";
import { appendAudit, tailAudit } from "./audit.ts";
import { withFileLockSync } from "./flock.ts";
import { readJsonFile, writeJsonFile } from "./json-file.ts";
import { makeDataDirs } from "./open.ts";
import { BUNDLE_ID_RE, VILLAGE_ID_RE, assertBundleId, type DataPaths } from "./paths.ts";
import { withOwners } from "./claims-db.ts";
import { storeBundle, type TopLevelOwners } from "./store.ts";
import { readVillage, villagePolicy, villagePolicyHash } from "./villages.ts";

export interface QuarantineMeta {
  bundle_id: string;
  village_id: string;
  reason: string;
  detail: string | null;
  received_at: string | null;
  actor: string | null;
  issuer_key_hash: string | null;
  policy_hash: string | null;
}

export interface QuarantineEntry extends QuarantineMeta {
  file: string;
}

/** One lock per village's quarantine (a lock file per bundle would be left behind for each). */
function quarantineLock(paths: DataPaths, villageId: string): string {
  return `${paths.quarantineDir(villageId)}.lock`;
}

/** Holds a bundle; a bundle already held keeps its first record. */
export function putInQuarantine(paths: DataPaths, raw: Uint8Array, meta: QuarantineMeta): void {
  const file = paths.quarantineFile(meta.village_id, meta.bundle_id);
  withFileLockSync(quarantineLock(paths, meta.village_id), "exclusive", () => {
    moveOldSidecar(paths, meta.village_id, meta.bundle_id);
    if (readJsonFile(paths.quarantineMetaFile(meta.village_id, meta.bundle_id)) !== null) return;
    atomicWrite(file, raw);
    writeJsonFile(paths.quarantineMetaFile(meta.village_id, meta.bundle_id), meta);
  });
}

export function listQuarantine(paths: DataPaths, villageId?: string): QuarantineEntry[] {
  const villages = villageId !== undefined ? [villageId] : listDir(paths.quarantineRoot()).filter((v) => VILLAGE_ID_RE.test(v));
  return villages.flatMap((vid) => readEntries(paths, vid, heldIds(paths, vid)));
}

/**
 * Up to `limit` of a village's held bundles, in bundle id order, after the bundle id `after`;
 * `total` counts them all, and only the page's records are read.
 */
export function quarantinePage(
  paths: DataPaths,
  villageId: string,
  opts: { after?: string | undefined; limit: number },
): { entries: QuarantineEntry[]; total: number; next: string | null } {
  const ids = heldIds(paths, villageId);
  const start = opts.after === undefined ? 0 : ids.findIndex((id) => id > (opts.after as string));
  const page = start < 0 ? [] : ids.slice(start, start + opts.limit);
  const more = start >= 0 && start + opts.limit < ids.length;
  return { entries: readEntries(paths, villageId, page), total: ids.length, next: more ? (page.at(-1) as string) : null };
}

/** The ids of the bundles a village holds, sorted (after moving old sidecars into meta/). */
function heldIds(paths: DataPaths, vid: string): string[] {
  const names = listDir(paths.quarantineDir(vid));
  if (names.some(isOldSidecar) || listDir(paths.rejectedDir(vid)).some(isOldSidecar)) {
    withFileLockSync(quarantineLock(paths, vid), "exclusive", () => moveOldSidecars(paths, vid));
  }
  return heldAmong(names);
}

/** How many bundles a village holds: one listing, nothing moved or read (for the metrics). */
export function heldCount(paths: DataPaths, vid: string): number {
  return heldAmong(listDir(paths.quarantineDir(vid))).length;
}

/** The held bundles' ids among a quarantine folder's names (an old `<id>.meta.json` is none). */
function heldAmong(names: string[]): string[] {
  return names
    .filter((name) => name.endsWith(".json") && BUNDLE_ID_RE.test(name.slice(0, -5)))
    .map((name) => name.slice(0, -5))
    .sort();
}

/** The records of these held bundles; one decided meanwhile (its file gone) is left out. */
function readEntries(paths: DataPaths, vid: string, ids: string[]): QuarantineEntry[] {
  return ids.filter((bid) => existsSync(paths.quarantineFile(vid, bid))).map((bid) => readEntry(paths, vid, bid));
}

const OLD_SIDECAR_RE = /^([0-9a-f]{32})\.meta\.json$/;

function isOldSidecar(name: string): boolean {
  return OLD_SIDECAR_RE.test(name);
}

/**
 * Moves the `<bundle_id>.meta.json` files of a village's quarantine and rejected folders into
 * their meta/ subfolders. Called under the village's quarantine lock.
 */
function moveOldSidecars(paths: DataPaths, villageId: string): void {
  for (const dir of [paths.quarantineDir(villageId), paths.rejectedDir(villageId)]) {
    for (const name of listDir(dir)) {
      const bid = OLD_SIDECAR_RE.exec(name)?.[1];
      if (bid !== undefined) moveOldSidecar(paths, villageId, bid);
    }
  }
}

/** The same for one bundle's records (where a record is already in meta/, it wins). */
function moveOldSidecar(paths: DataPaths, villageId: string, bundleId: string): void {
  const pairs = [
    [paths.legacyQuarantineMetaFile(villageId, bundleId), paths.quarantineMetaFile(villageId, bundleId)],
    [paths.legacyRejectedMetaFile(villageId, bundleId), paths.rejectedMetaFile(villageId, bundleId)],
  ] as const;
  for (const [from, to] of pairs) {
    try {
      if (!existsSync(from)) continue;
      if (existsSync(to)) unlinkSync(from);
      else {
        makeDataDirs(dirname(to));
        renameSync(from, to);
      }
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw storageError(e, `moving ${from} to ${to}`);
    }
  }
}

export function showQuarantine(paths: DataPaths, villageId: string, bundleId: string): { entry: QuarantineEntry; raw: Uint8Array } {
  const entry = readEntry(paths, villageId, bundleId);
  return { entry, raw: readRaw(entry.file) };
}

/**
 * Finds an entry from a bundle id (searching every village unless one is given) or from the path
 * of a quarantine file inside this data directory.
 */
export function locateQuarantined(paths: DataPaths, ref: string, villageId?: string): { villageId: string; bundleId: string } {
  if (ref.includes("/") || ref.includes(sep) || ref.endsWith(".json")) {
    const rel = relative(paths.quarantineRoot(), resolve(ref)).split(sep);
    const [vid, name] = rel;
    const bid = name?.slice(0, -5);
    if (rel.length !== 2 || !vid || !VILLAGE_ID_RE.test(vid) || !bid || !BUNDLE_ID_RE.test(bid) || !name?.endsWith(".json")) {
      throw new LinksError("invalid_argument", `${ref} is not a quarantine file under ${paths.quarantineRoot()}`);
    }
    return { villageId: vid, bundleId: bid };
  }
  assertBundleId(ref);
  const hits = listQuarantine(paths, villageId).filter((e) => e.bundle_id === ref);
  if (hits.length === 0) {
    throw new LinksError("bundle_not_found", `bundle ${ref} is not in quarantine${villageId ? ` for village ${villageId}` : ""}`);
  }
  if (hits.length > 1) {
    throw new LinksError("invalid_argument", `bundle ${ref} is quarantined in several villages; name one with --village-id`);
  }
  return { villageId: (hits[0] as QuarantineEntry).village_id, bundleId: ref };
}

/**
 * Re-verifies the held bundle and re-runs the policy checks against the village's current
 * policy. Refused with the reason while the policy forbids it; stored and released once it allows.
 */
export function approveQuarantined(
  paths: DataPaths,
  villageId: string,
  bundleId: string,
  actor: string,
  /** the node's claims database; without it, one is opened for the call */
  owners?: TopLevelOwners,
): { status: "stored" | "duplicate" } {
  const file = paths.quarantineFile(villageId, bundleId);
  return withFileLockSync(quarantineLock(paths, villageId), "exclusive", () => {
    moveOldSidecar(paths, villageId, bundleId);
    const raw = readRaw(file);
    const village = readVillage(paths, villageId);
    const policy = villagePolicy(village);
    const decision = decide(parseBundle(raw), policy);
    if (decision.status !== "accept") {
      throw new LinksError(decision.code, `the current policy still does not allow bundle ${bundleId}: ${decision.detail}`);
    }
    // Stored in this village whoever else holds it: a public copy is not the village's.
    const stored = withOwners(paths, owners, (o) => storeBundle(paths, decision.bundle, villageId, policy.visibility, o));
    removeEntry(paths, villageId, bundleId);
    appendAudit(paths, {
      action: "quarantine.approve",
      bundle_id: bundleId,
      village_id: villageId,
      issuer_key_hash: decision.issuerKeyHash,
      actor,
      reason: stored.status === "duplicate" ? "already stored" : null,
      policy_hash: villagePolicyHash(village),
    });
    return { status: stored.status };
  });
}

export function rejectQuarantined(paths: DataPaths, villageId: string, bundleId: string, actor: string, reason: string): void {
  const file = paths.quarantineFile(villageId, bundleId);
  withFileLockSync(quarantineLock(paths, villageId), "exclusive", () => {
    moveOldSidecar(paths, villageId, bundleId);
    const entry = readEntry(paths, villageId, bundleId);
    atomicWrite(paths.rejectedFile(villageId, bundleId), readRaw(file));
    writeJsonFile(paths.rejectedMetaFile(villageId, bundleId), {
      ...metaOf(entry),
      rejected_at: nowIso(),
      rejected_by: actor,
      rejection_reason: reason,
    });
    removeEntry(paths, villageId, bundleId);
    appendAudit(paths, {
      action: "quarantine.reject",
      bundle_id: bundleId,
      village_id: villageId,
      issuer_key_hash: entry.issuer_key_hash,
      actor,
      reason,
    });
  });
}

function readEntry(paths: DataPaths, villageId: string, bundleId: string): QuarantineEntry {
  const file = paths.quarantineFile(villageId, bundleId);
  if (!existsSync(file)) throw new LinksError("bundle_not_found", `no quarantined bundle at ${file}`);
  const meta = (readJsonFile(paths.quarantineMetaFile(villageId, bundleId)) ??
    readJsonFile(paths.legacyQuarantineMetaFile(villageId, bundleId))) as Partial<QuarantineMeta> | null;
  if (meta) return { ...metaOf({ ...blankMeta(villageId, bundleId), ...meta }), file };
  // Python Links kept no meta file: the reason is in the audit log, if anywhere.
  const row = tailAudit(paths, { villageId, action: "ingest.quarantine" }).reverse().find((r) => r.bundle_id === bundleId);
  return {
    ...blankMeta(villageId, bundleId),
    reason: row?.reason ?? "unknown",
    received_at: row?.ts ?? null,
    actor: row?.actor ?? null,
    issuer_key_hash: row?.issuer_key_hash ?? null,
    file,
  };
}

function blankMeta(villageId: string, bundleId: string): QuarantineMeta {
  return { bundle_id: bundleId, village_id: villageId, reason: "unknown", detail: null, received_at: null, actor: null, issuer_key_hash: null, policy_hash: null };
}

function metaOf(e: QuarantineMeta): QuarantineMeta {
  return {
    bundle_id: e.bundle_id, village_id: e.village_id, reason: e.reason, detail: e.detail, received_at: e.received_at,
    actor: e.actor, issuer_key_hash: e.issuer_key_hash, policy_hash: e.policy_hash,
  };
}

function removeEntry(paths: DataPaths, villageId: string, bundleId: string): void {
  const files = [paths.quarantineMetaFile(villageId, bundleId), paths.legacyQuarantineMetaFile(villageId, bundleId), paths.quarantineFile(villageId, bundleId)];
  for (const f of files) {
    try {
      unlinkSync(f);
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw storageError(e, `removing ${f}`);
    }
  }
}

function readRaw(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") {
      throw new LinksError("bundle_not_found", `no quarantined bundle at ${file}`);
    }
    throw storageError(e, `reading ${file}`);
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

