/**
 * Replication under faults, small: a node killed while it syncs, a hostile relay, bad peers.
 */
import { replicationSuite } from "../faults/scenarios/replication.ts";

replicationSuite({ crashRounds: 2, backlog: 300, relayBundles: 150, badPeersMs: 8_000, timeoutMs: 180_000 });
