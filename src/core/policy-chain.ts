/**
 * Reading another node's policy chain. A `links` node answers with the run after our head, in
 * chain order; a Python Links v0.15 node answers with every update it stored, sorted by time, so
 * the run is found by lineage: from its head back along `previous_policy_hash` to ours. Every
 * update of the run is then decided by policy-rules, exactly like a `links` run.
 */
import { hasSignatureMaterial, previousPolicyHash, type PolicyUpdate } from "./policy-update.ts";

/**
 * The updates leading from `localHead` to `remoteHead`, oldest first, following
 * `previous_policy_hash` back from the newest entry that holds `remoteHead`. A signed entry
 * without lineage ends the walk too (it is decided on the chain's memory alone). Null when there
 * is no such path (a gap, a cycle, or a chain that never passes through our head). Each entry is
 * visited at most once.
 */
export function runByLineage(entries: PolicyUpdate[], remoteHead: string, localHead: string): PolicyUpdate[] | null {
  const byHash = new Map<string, number[]>();
  entries.forEach((e, i) => {
    const list = byHash.get(e.policy_hash);
    if (list) list.push(i);
    else byHash.set(e.policy_hash, [i]);
  });
  const visited = new Set<number>();
  /** the newest unvisited entry holding `hash`, preferring one before `before` */
  const find = (hash: string, before: number): number | null => {
    const list = byHash.get(hash) ?? [];
    for (let k = list.length - 1; k >= 0; k--) {
      const i = list[k] as number;
      if (i < before && !visited.has(i)) return i;
    }
    for (let k = list.length - 1; k >= 0; k--) {
      const i = list[k] as number;
      if (!visited.has(i)) return i;
    }
    return null;
  };
  const path: PolicyUpdate[] = [];
  let at = find(remoteHead, entries.length);
  while (at !== null) {
    visited.add(at);
    const entry = entries[at] as PolicyUpdate;
    path.push(entry);
    const previous = previousPolicyHash(entry);
    if (previous === localHead) return path.reverse();
    if (previous === null) return hasSignatureMaterial(entry) ? path.reverse() : null;
    at = find(previous, at);
  }
  return null;
}
