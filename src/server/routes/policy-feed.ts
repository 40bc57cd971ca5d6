/**
 * The policy feed other nodes pull from (`links policy pull`, `links policy drift`):
 *
 * - `GET /villages/:id/policy/latest`: the head of the village's chain: the head artifact's own
 *   fields (so Python Links v0.15, which reads the answer as an artifact, reads it too) plus
 *   `artifact` and `signed`, with `ETag: "<policy_hash>"`; an `If-None-Match` naming it (quoted or
 *   not, weak or not, or `*`) answers 304 without a body. Both come from the chain's memory,
 *   not the policy history.
 * - `GET /villages/:id/policy/updates?since=<policy_hash>&limit=N&cursor=C`: the chain entries
 *   after the last occurrence of `since`, in chain order, `{updates, next_cursor, head}`. An
 *   unknown `since` is 404 `unknown_policy_hash` (never an empty list: the caller has diverged or
 *   is ahead). Without `since`, the whole chain. `since` must be 64 lowercase hex and `limit` 1 to
 *   1000 (default 100), else 400 invalid_argument; a page also ends once its artifacts pass 8 MiB.
 *   `next_cursor` (null on the last page) is opaque:
 *   base64url of "c1:<chain index of the next entry>"; given back with the same `since`, it decides
 *   where the page starts (`since` is still checked). A cursor this node cannot have handed out
 *   (bad form, or past the end of the append-only chain) is 400 invalid_cursor.
 * - `GET /villages/:id/policy/updates_page?since=&cursor=&limit=`: the same entries in Python
 *   Links v0.15's envelope, `{village_id, since, cursor, limit, next_cursor, items}` (limit 1 to
 *   500, default 100), for v0.15's `policy pull`.
 * - `GET /villages/:id/policy/by_hash/:policy_hash`: the newest chain entry with that hash, the
 *   artifact alone (v0.15's shape); 404 policy_update_not_found.
 *
 * What is published (storage/policy-published.ts): the history ending at the village's current
 * policy, `created_at` never going backwards along it, read once per village version and history
 * size.
 *
 * Access: every route is readable without a token (per-address public rate limit) unless the
 * village's visibility is `private`; then a bearer token of a member with the pull right is needed
 * (the usual 401/403) and the member rate limit applies. For a village that is not private the
 * Authorization header is not looked at: the answer is the same for everyone.
 */
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { SHA256_HEX_RE, toJsonText, type JsonValue } from "../../core/canonical.ts";
import { LinksError } from "../../core/errors.ts";
import { assertPolicyHash } from "../../core/policy-update.ts";
import type { ChainEntry } from "../../storage/policy.ts";
import { publishedChain, publishedHead, startAfter, villageHeadHash } from "../../storage/policy-published.ts";
import { PolicyArtifact, PolicyLatestAnswer, PolicyUpdatesAnswer, PolicyUpdatesPageAnswer } from "../answers.ts";
import { ROUTE_ERRORS, type AnswerDoc } from "../route-table.ts";
import { sendJson, type AppContext, type AppEnv } from "../context.ts";
import { cursorCodec } from "../cursor.ts";
import { parseLimit, single } from "../query-params.ts";
import type { RouteDeps } from "./deps.ts";

interface PageBounds {
  defaultLimit: number;
  maxLimit: number;
}

const FEED_PAGE: PageBounds = { defaultLimit: 100, maxLimit: 1000 };
/** Python Links v0.15's bounds for updates_page. */
const V015_PAGE: PageBounds = { defaultLimit: 100, maxLimit: 500 };

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

function parseSince(text: string | undefined): string | undefined {
  return text === undefined ? undefined : assertPolicyHash(text, "since");
}

function cacheControl(c: AppContext): void {
  c.header("Cache-Control", c.get("policy").visibility === "private" ? "private, no-cache" : "no-cache");
}

interface Page {
  since: string | undefined;
  cursor: string | undefined;
  limit: number;
  entries: ChainEntry[];
  nextCursor: string | null;
}

/** One page of the published chain after `since`, from `cursor`. */
function feedPage(d: RouteDeps, c: AppContext, bounds: PageBounds): Page {
  const since = parseSince(single(c, "since"));
  const limit = parseLimit(single(c, "limit"), bounds);
  const cursor = single(c, "cursor");
  const chain = publishedChain(d.paths, c.get("village"));
  // 404 unknown_policy_hash for a since this chain does not hold, with or without a cursor
  let start = startAfter(chain, since);
  if (cursor !== undefined) {
    start = decodeFeedCursor(cursor);
    if (start > chain.length) throw new LinksError("invalid_cursor", "the cursor is not one this node handed out");
  }
  let end = start;
  let bytes = 0;
  while (end < chain.length && end - start < limit) {
    bytes += artifactBytes(chain[end] as ChainEntry);
    if (end > start && bytes > PAGE_BYTES) break;
    end++;
  }
  return { since, cursor, limit, entries: chain.slice(start, end), nextCursor: end < chain.length ? encodeFeedCursor(end) : null };
}

/**
 * A page ends early rather than grow past this, so that a chain of large policies still reaches
 * a client whose answers are capped (ours: 32 MiB); clients follow `next_cursor` either way.
 */
const PAGE_BYTES = 8 * 1024 * 1024;
const sizes = new WeakMap<ChainEntry, number>();

function artifactBytes(entry: ChainEntry): number {
  let size = sizes.get(entry);
  if (size === undefined) {
    size = Buffer.byteLength(toJsonText(entry.artifact));
    sizes.set(entry, size);
  }
  return size;
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
    description: "The head artifact's own fields (so a Python Links v0.15 `policy drift` reads it as an artifact), plus `artifact` and `signed`. `ETag` is the policy hash; an `If-None-Match` naming it answers 304 without a body.",
    access: "pull-if-private",
    answers: {
      200: { description: "the policy in force and the artifact that set it", schema: PolicyLatestAnswer },
      304: { description: "unchanged since the ETag given in If-None-Match" },
    },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token],
  }), d.ids, access, (c) => {
    const village = c.get("village");
    const hash = villageHeadHash(village);
    c.header("ETag", `"${hash}"`);
    cacheControl(c);
    if (etagMatches(c.req.header("if-none-match"), hash)) return c.body(null, 304);
    const head = publishedHead(d.paths, village);
    const fields = head.artifact as { [key: string]: JsonValue };
    return sendJson(c, { ...fields, policy_hash: head.policy_hash, artifact: head.artifact, signed: head.signed });
  });

  /** A route answering one page of the chain after `since`, in the envelope `answer` makes. */
  const pageRoute = (path: string, bounds: PageBounds, doc: { summary: string; answer: AnswerDoc }, answer: (page: Page, c: AppContext) => unknown) => {
    d.app.get(d.routes.add("GET", path, {
      summary: doc.summary,
      access: "pull-if-private",
      query: z.object({
        since: z.string().regex(SHA256_HEX_RE).optional().describe("a policy_hash; without it, the whole chain"),
        limit: z.int().min(1).max(bounds.maxLimit).default(bounds.defaultLimit),
        cursor: z.string().optional().describe("next_cursor of the previous page, with the same since"),
      }),
      answers: { 200: doc.answer },
      errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, "invalid_argument", "invalid_cursor", "unknown_policy_hash"],
    }), d.ids, access, (c) => {
      const page = feedPage(d, c, bounds);
      cacheControl(c);
      return sendJson(c, answer(page, c));
    });
  };

  pageRoute("/villages/:id/policy/updates", FEED_PAGE, {
    summary: "The village's policy chain after a given policy",
    answer: { description: "the updates after since, in chain order", schema: PolicyUpdatesAnswer },
  }, (page, c) => ({
    updates: page.entries.map((e) => e.artifact),
    next_cursor: page.nextCursor,
    head: villageHeadHash(c.get("village")),
  }));

  pageRoute("/villages/:id/policy/updates_page", V015_PAGE, {
    summary: "The policy chain in Python Links v0.15's page envelope (what a v0.15 `policy pull` reads)",
    answer: { description: "the updates after since, in chain order, with the request echoed", schema: PolicyUpdatesPageAnswer },
  }, (page, c) => ({
    village_id: c.get("villageId"),
    since: page.since ?? null,
    cursor: page.cursor ?? null,
    limit: page.limit,
    next_cursor: page.nextCursor,
    items: page.entries.map((e) => e.artifact),
  }));

  d.app.get(d.routes.add("GET", "/villages/:id/policy/by_hash/:policy_hash", {
    summary: "One artifact of the village's policy chain, by its policy hash (the newest entry with that hash)",
    access: "pull-if-private",
    answers: { 200: { description: "the artifact, bare", schema: PolicyArtifact } },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, "invalid_argument", "policy_update_not_found"],
  }), d.ids, access, (c) => {
    const wanted = c.req.param("policy_hash");
    const chain = publishedChain(d.paths, c.get("village"));
    const entry = chain.findLast((e) => e.policy_hash === wanted);
    cacheControl(c);
    if (!entry) throw new LinksError("policy_update_not_found", "policy update not found");
    return sendJson(c, entry.artifact);
  });
}
