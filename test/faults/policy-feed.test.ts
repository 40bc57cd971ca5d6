/**
 * Policy feed attacks through a relay in front of a real node (the same set as the fast suite,
 * with a longer limit for a pull that never ends).
 */
import { policyFeedSuite } from "./scenarios/policy-feed.ts";

policyFeedSuite({ timeoutMs: 10 * 60_000, pullTimeoutMs: 60_000 });
