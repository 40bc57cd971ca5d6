/**
 * Crash consistency at scale: FAULTS_SCALE=full kills the node 20 times while 16 clients push.
 */
import { faultsSizes } from "./lib/scale.ts";
import { crashSuite } from "./scenarios/crash.ts";

const sizes = faultsSizes();
crashSuite(sizes, { timeoutMs: 20 * 60_000, ackedAbove: sizes.crashRounds * 10 });
