/**
 * The only place replication (the feed it serves and the sync that pulls) reads a village's
 * stored bundles, so the store's scope rules are applied in one spot.
 */
import type { Bundle } from "../core/bundle.ts";
import type { DataPaths } from "../storage/paths.ts";
import { isStored, storedBundle, type TopLevelOwners } from "../storage/store.ts";

/** The bundle stored in the village under this id, or null. */
export function readVillageBundle(paths: DataPaths, villageId: string, bundleId: string, owners: TopLevelOwners): Bundle | null {
  return storedBundle(paths, villageId, bundleId, owners);
}

/** Whether the village already holds a bundle with this id (verified when it was stored). */
export function villageHolds(paths: DataPaths, villageId: string, bundleId: string, owners: TopLevelOwners): boolean {
  return isStored(paths, villageId, bundleId, owners);
}
