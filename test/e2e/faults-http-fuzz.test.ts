/**
 * A few thousand fuzzed requests against a running node (`npm run test:faults` sends 100k):
 * zero 5xx, every error JSON {detail, code}, the node alive at the end.
 */
import { SIZES } from "../faults/lib/scale.ts";
import { httpFuzzSuite } from "../faults/scenarios/http-fuzz.ts";

httpFuzzSuite(SIZES.fast, { timeoutMs: 120_000, acceptedAbove: 0 });
