/**
 * Replication under faults at the run's size (FAULTS_SCALE): more kill rounds over a larger
 * backlog, a longer hostile relay, a longer watch of the bad peers.
 */
import { faultsSizes } from "./lib/scale.ts";
import { replicationSuite } from "./scenarios/replication.ts";

const full = faultsSizes().scale === "full";
replicationSuite({
  crashRounds: full ? 8 : 4,
  backlog: full ? 3000 : 1000,
  relayBundles: full ? 600 : 300,
  badPeersMs: full ? 30_000 : 15_000,
  timeoutMs: 10 * 60_000,
});
