/**
 * Scope shadowing at scale: every order of scopes, repeated (FAULTS_SCALE=full: 10 rounds).
 */
import { faultsSizes } from "./lib/scale.ts";
import { scopesSuite } from "./scenarios/scopes.ts";

scopesSuite(faultsSizes(), { timeoutMs: 10 * 60_000 });
