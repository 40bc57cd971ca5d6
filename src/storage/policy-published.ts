/**
 * The policy chain as this node publishes it. The head is always the hash of the village's
 * current policy (village.json); the chain is the history ending at that head: rows written after
 * it (a write of village.json that failed after its history row) are left out, and a policy with
 * no history row gets an unsigned entry of its own.
 *
 * The head is read from the chain's memory (policy-head.ts) without reading the history, so
 * `policy/latest` costs the same whatever the history's length. The whole chain (the updates and
 * by_hash routes, and the head of a village whose current policy is neither the last history
 * entry nor the one before the latest write) is read once per version of the village and size of
 * its history, then kept with that village version.
 */
import { LinksError } from "../core/errors.ts";
import { policyHash } from "../core/policy-update.ts";
import type { DataPaths } from "./paths.ts";
import { currentHead, synthesizedHead, type ChainHead } from "./policy-head.ts";
import { historyBytes, policyChain, type ChainEntry } from "./policy-history.ts";
import { perVillageVersion, type Village } from "./villages.ts";

/** The hash of the village's current policy. */
export const villageHeadHash: (village: Village) => string = perVillageVersion((v) => policyHash(v.policy));

const chains = new WeakMap<Village, { bytes: number; chain: ChainEntry[] }>();

/**
 * The whole chain as published, ending at the village's current policy. `bytes` is the history's
 * size, taken before it is read: a row appended meanwhile only makes the next call read it again.
 * The answer is shared: callers must not change it.
 */
export function publishedChain(paths: DataPaths, village: Village, bytes = historyBytes(paths, village.village_id)): ChainEntry[] {
  const cached = chains.get(village);
  if (cached?.bytes === bytes) return cached.chain;
  const chain = endingAtHead(policyChain(paths, village.village_id), village);
  chains.set(village, { bytes, chain });
  return chain;
}

function endingAtHead(chain: ChainEntry[], village: Village): ChainEntry[] {
  const head = villageHeadHash(village);
  for (let i = chain.length - 1; i >= 0; i--) {
    if (chain[i]?.policy_hash === head) return chain.slice(0, i + 1);
  }
  return [...chain, synthesizedHead(village, chain.at(-1) ?? null)];
}

/** The chain's last published entry, the one `policy/latest` serves. */
export function publishedHead(paths: DataPaths, village: Village): ChainEntry {
  const hash = villageHeadHash(village);
  let memory: ChainHead | null;
  try {
    memory = currentHead(paths, village.village_id);
  } catch {
    memory = null; // the memory could not be rebuilt (a read-only data directory): read the chain
  }
  if (memory?.last === null) return synthesizedHead(village, null);
  if (memory?.last?.policy_hash === hash) return memory.last;
  if (memory?.before?.policy_hash === hash) return memory.before;
  return publishedChain(paths, village, memory?.history_bytes).at(-1) as ChainEntry;
}

/**
 * Where the published entries after the last occurrence of `since` start (0 when since is
 * omitted); unknown_policy_hash when the chain does not hold it.
 */
export function startAfter(chain: ChainEntry[], since: string | undefined): number {
  if (since === undefined) return 0;
  for (let i = chain.length - 1; i >= 0; i--) {
    if (chain[i]?.policy_hash === since) return i + 1;
  }
  throw new LinksError("unknown_policy_hash", `policy ${since} is not in this village's chain`);
}
