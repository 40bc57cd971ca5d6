/**
 * The node and `links` processes writing one village at once: no lost update, no torn line,
 * each quarantined bundle decided exactly once.
 */
import { SIZES } from "../faults/lib/scale.ts";
import { writersSuite } from "../faults/scenarios/writers.ts";

writersSuite(SIZES.fast, { timeoutMs: 120_000 });
