/**
 * Canonical JSON fuzzing, small (`npm run test:faults` runs many more values, and compares with
 * Python's json.dumps): round trips, a differential against JSON.parse, hostile sizes.
 */
import { canonicalFuzzSuite } from "../../faults/scenarios/canonical-suite.ts";
import { faultsSeed, SIZES } from "../../faults/lib/scale.ts";

canonicalFuzzSuite({ runs: SIZES.fast.canonicalRuns, seed: faultsSeed(), python: false, hostileLimitMs: 5000 });
