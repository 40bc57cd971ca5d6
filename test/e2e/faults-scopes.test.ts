/**
 * Scope shadowing through the real node and CLI: one bundle pushed to the public store and to
 * villages in every order (`npm run test:faults` repeats each order more often).
 */
import { SIZES } from "../faults/lib/scale.ts";
import { scopesSuite } from "../faults/scenarios/scopes.ts";

scopesSuite(SIZES.fast, { timeoutMs: 120_000 });
