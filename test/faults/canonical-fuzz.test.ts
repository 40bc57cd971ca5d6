/**
 * Canonical JSON fuzzing at scale, with Python's json.dumps as a second opinion when python3 is
 * installed.
 */
import { faultsSeed, faultsSizes } from "./lib/scale.ts";
import { canonicalFuzzSuite } from "./scenarios/canonical-suite.ts";

canonicalFuzzSuite({ runs: faultsSizes().canonicalRuns, seed: faultsSeed(), python: true, hostileLimitMs: 5000 });
