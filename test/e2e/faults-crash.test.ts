/**
 * kill -9 while 16 clients push (small: 2 rounds; `npm run test:faults` runs 20): nothing that
 * got a 200 is lost, nothing is corrupt, the index equals a rebuild.
 */
import { SIZES } from "../faults/lib/scale.ts";
import { crashSuite } from "../faults/scenarios/crash.ts";

crashSuite(SIZES.fast, { timeoutMs: 60_000, ackedAbove: 0 });
