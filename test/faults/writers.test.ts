/**
 * Concurrent writers at scale: more `links` processes of every kind against a busy node.
 */
import { faultsSizes } from "./lib/scale.ts";
import { writersSuite } from "./scenarios/writers.ts";

writersSuite(faultsSizes(), { timeoutMs: 10 * 60_000 });
