/**
 * Traversal tricks in every id position over HTTP and (a sample) on the command line: nothing
 * outside the data directory is served, read into a decision, or changed.
 */
import { SIZES } from "../faults/lib/scale.ts";
import { pathsSuite } from "../faults/scenarios/paths.ts";

pathsSuite(SIZES.fast, { timeoutMs: 120_000 });
