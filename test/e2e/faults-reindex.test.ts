/**
 * `links claims reindex` while the node takes pushes (small: 4 reindexes; `npm run test:faults`
 * runs more): no acknowledged row is lost or doubled, and two reindexes give identical files.
 */
import { SIZES } from "../faults/lib/scale.ts";
import { reindexSuite } from "../faults/scenarios/reindex.ts";

reindexSuite(SIZES.fast, { timeoutMs: 120_000 });
