/**
 * 100k fuzzed requests (FAULTS_SCALE=full; 30k at ci) against a running node: zero 5xx, every
 * error JSON {detail, code}, the node alive at the end.
 */
import { faultsSizes } from "./lib/scale.ts";
import { httpFuzzSuite } from "./scenarios/http-fuzz.ts";

const sizes = faultsSizes();
httpFuzzSuite(sizes, { timeoutMs: 30 * 60_000, acceptedAbove: sizes.fuzzRequests / 200 });
