/**
 * Reindex races at scale: FAULTS_SCALE=full runs 20 reindexes while clients push.
 */
import { faultsSizes } from "./lib/scale.ts";
import { reindexSuite } from "./scenarios/reindex.ts";

reindexSuite(faultsSizes(), { timeoutMs: 10 * 60_000 });
