/**
 * Traversal tricks in every id position over HTTP and in every CLI command that takes an id.
 */
import { faultsSizes } from "./lib/scale.ts";
import { pathsSuite } from "./scenarios/paths.ts";

pathsSuite(faultsSizes(), { timeoutMs: 10 * 60_000 });
