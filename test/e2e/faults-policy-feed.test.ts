/**
 * A relay in front of a real node replays, reorders, truncates, forks, re-signs and garbles the
 * policy feed: `links policy pull --apply` refuses each one and the puller is unchanged.
 */
import { policyFeedSuite } from "../faults/scenarios/policy-feed.ts";

policyFeedSuite({ timeoutMs: 180_000, pullTimeoutMs: 10_000 });
