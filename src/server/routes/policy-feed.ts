/**
 * The policy feed other nodes pull from (`links policy pull`, `links policy drift`):
 *
 * - `GET /villages/:id/policy/latest`: the head of the village's chain, `{policy_hash, artifact,
 *   signed}`, with `ETag: "<policy_hash>"`; an `If-None-Match` naming it (quoted or not, weak or
 *   not, or `*`) answers 304 without a body.
 * - `GET /villages/:id/policy/updates?since=<policy_hash>&limit=N&cursor=C`: the chain entries
 *   after the last occurrence of `since`, in chain order, `{updates, next_cursor, head}`. An
 *   unknown `since` is 404 `unknown_policy_hash` (never an empty list: the caller has diverged or
 *   is ahead). Without `since`, the whole chain. `since` must be 64 lowercase hex and `limit` 1 to
 *   1000 (default 100), else 400 invalid_argument. `next_cursor` (null on the last page) is opaque:
 *   base64url of "c1:<chain index of the next entry>"; given back with the same `since`, it decides
 *   where the page starts (`since` is still checked). A cursor this node cannot have handed out
 *   (bad form, or past the end of the append-only chain) is 400 invalid_cursor.
 *
 * The head is always the hash of the village's current policy (village.json). The chain published
 * is the history ending at that head: rows written after it (a write of village.json that failed
 * after its history row) are left out, and a policy with no history row (a village made by Python
 * Links, or village.json edited by hand) gets an unsigned entry of its own.
 *
 * Access: both routes are readable without a token (per-address public rate limit) unless the
 * village's visibility is `private`; then a bearer token of a member with the pull right is needed
 * (the usual 401/403) and the member rate limit applies. For a village that is not private the
 * Authorization header is not looked at: the answer is the same for everyone.
 */
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { normalizeDatetime } from "../../core/datetime.ts";
import { SHA256_HEX_RE } from "../../core/canonical.ts";
import { LinksError } from "../../core/errors.ts";
import { newPolicyUpdate, policyHash, policyUpdateToJson } from "../../core/policy-update.ts";
import { chainSince, policyChain, type ChainEntry } from "../../storage/policy.ts";
import type { Village } from "../../storage/villages.ts";
import { PolicyLatestAnswer, PolicyUpdatesAnswer } from "../answers.ts";
import { sendJson, type AppContext, type AppEnv } from "../context.ts";
import { cursorCodec } from "../cursor.ts";
import { parseLimit, single } from "../query-params.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

export const FEED_PAGE = { defaultLimit: 100, maxLimit: 1000 } as const;

const feedCursor = cursorCodec("c1");
/** The cursor for the chain entry at `index`. */
export const encodeFeedCursor = feedCursor.encode;
/** The chain index a cursor stands for; anything not made by encodeFeedCursor is invalid_cursor. */
export const decodeFeedCursor = feedCursor.decode;

/** Whether an If-None-Match header names this entity tag (weak comparison, RFC 9110 13.1.2). */
export function etagMatches(header: string | undefined, tag: string): boolean {
  if (header === undefined) return false;
  return header.split(",").some((part) => {
    const t = part.trim();
    if (t === "*") return true;
    const bare = t.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
    return bare === tag;
  });
}

/** The chain as this node publishes it: ends at the hash of the village's current policy. */
export function publishedChain(d: Pick<RouteDeps, "paths">, village: Village): ChainEntry[] {
  const vid = village.village_id;
  const head = policyHash(village.policy);
  const chain = policyChain(d.paths, vid);
  for (let i = chain.length - 1; i >= 0; i--) {
    if (chain[i]?.policy_hash === head) return chain.slice(0, i + 1);
  }
  const previous = chain.at(-1)?.policy_hash ?? null;
  const artifact = newPolicyUpdate({
    villageId: vid,
    policy: village.policy,
    actor: null,
    previousPolicyHash: previous,
    createdAt: stableCreatedAt(village),
  });
  return [...chain, { policy_hash: head, previous_policy_hash: previous, signed: false, artifact: policyUpdateToJson(artifact) }];
}

/** The village's own created_at when it reads as a datetime, so the answer is the same each time. */
function stableCreatedAt(village: Village): string | undefined {
  return normalizeDatetime(village.created_at) ?? undefined;
}

function parseSince(text: string | undefined): string | undefined {
  if (text !== undefined && !SHA256_HEX_RE.test(text)) {
    throw new LinksError("invalid_argument", `since must be a policy_hash (64 lowercase hex characters), got ${JSON.stringify(text.slice(0, 80))}`);
  }
  return text;
}

function cacheControl(c: AppContext): void {
  c.header("Cache-Control", c.get("policy").visibility === "private" ? "private, no-cache" : "no-cache");
}

export function policyFeedRoutes(d: RouteDeps): void {
  const pullRight = d.auth("pull");
  /** Public rate limit for a village that is not private; token, pull right, member limit otherwise. */
  const access: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (c.get("policy").visibility !== "private") return d.publicLimit(c, next);
    return pullRight(c, () => d.memberLimit(c, next) as Promise<void>);
  };

  d.app.get(d.routes.add("GET", "/villages/:id/policy/latest", {
    summary: "The head of the village's policy chain",
    description: "`ETag` is the policy hash; an `If-None-Match` naming it answers 304 without a body.",
    access: "pull-if-private",
    answers: {
      200: { description: "the policy in force and the artifact that set it", schema: PolicyLatestAnswer },
      304: { description: "unchanged since the ETag given in If-None-Match" },
    },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token],
  }), d.ids, access, (c) => {
    const chain = publishedChain(d, c.get("village"));
    const head = chain[chain.length - 1] as ChainEntry;
    c.header("ETag", `"${head.policy_hash}"`);
    cacheControl(c);
    if (etagMatches(c.req.header("if-none-match"), head.policy_hash)) return c.body(null, 304);
    return sendJson(c, { policy_hash: head.policy_hash, artifact: head.artifact, signed: head.signed });
  });

  d.app.get(d.routes.add("GET", "/villages/:id/policy/updates", {
    summary: "The village's policy chain after a given policy",
    access: "pull-if-private",
    query: z.object({
      since: z.string().regex(SHA256_HEX_RE).optional().describe("a policy_hash; without it, the whole chain"),
      limit: z.int().min(1).max(FEED_PAGE.maxLimit).default(FEED_PAGE.defaultLimit),
      cursor: z.string().optional().describe("next_cursor of the previous page, with the same since"),
    }),
    answers: { 200: { description: "the updates after since, in chain order", schema: PolicyUpdatesAnswer } },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, "invalid_argument", "invalid_cursor", "unknown_policy_hash"],
  }), d.ids, access, (c) => {
    const since = parseSince(single(c, "since"));
    const limit = parseLimit(single(c, "limit"), FEED_PAGE);
    const cursor = single(c, "cursor");
    const chain = publishedChain(d, c.get("village"));
    const head = (chain[chain.length - 1] as ChainEntry).policy_hash;
    // 404 unknown_policy_hash for a since this chain does not hold
    const after = chainSince(chain, since, head);
    let start = chain.length - after.length;
    if (cursor !== undefined) {
      start = decodeFeedCursor(cursor);
      if (start > chain.length) throw new LinksError("invalid_cursor", "the cursor is not one this node handed out");
    }
    const end = Math.min(start + limit, chain.length);
    cacheControl(c);
    return sendJson(c, {
      updates: chain.slice(start, end).map((e) => e.artifact),
      next_cursor: end < chain.length ? encodeFeedCursor(end) : null,
      head,
    });
  });
}
