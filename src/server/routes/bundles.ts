/**
 * The village's bundle feed, what peers replicate from:
 *
 * `GET /villages/:id/bundles?since=<cursor>&limit=N` -> `{"bundles": [...], "next_cursor": C | null}`:
 * the bundles stored in the village, as stored, in the node's acceptance order, after `since`
 * (from the first without it). `next_cursor` stands after the page's last bundle: pass it as the
 * next `since`. A page without bundles (`next_cursor: null`) means there is nothing after `since`
 * yet: keep that cursor and ask again later.
 *
 * The order is that of the rows that stored each bundle in the village's audit tree (ingest.accept,
 * or the quarantine.approve that stored it), and a cursor is base64url of "f1:<leaf index>" of the
 * last one returned: the audit file is append-only, so a cursor stays valid across restarts and
 * claims reindexes, and resuming from one is an indexed range query. A cursor past the end of the
 * village's tree is 400 invalid_cursor (this node's audit log is shorter than when it was given).
 *
 * Pages stop at `limit` bundles (1 to 1000, default 100) or FEED_PAGE.maxBytes of bundles,
 * whichever comes first, and hold at least one bundle when there is one. Each answer carries an
 * ETag naming `since` and the village's newest stored row; an `If-None-Match` naming it answers
 * 304, so an idle peer costs one indexed lookup.
 *
 * Access: a `public` village's feed is open (per-address public rate limit); otherwise a member
 * token with the pull right is needed, as for the claims routes.
 */
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { toJsonText, type JsonValue } from "../../core/canonical.ts";
import { LinksError } from "../../core/errors.ts";
import { readVillageBundle } from "../../replication/village-bundles.ts";
import type { AppEnv } from "../context.ts";
import { cursorCodec } from "../cursor.ts";
import { parseLimit, single } from "../query-params.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import { etagMatches } from "./policy-feed.ts";
import type { RouteDeps } from "./deps.ts";

export const FEED_PAGE = { defaultLimit: 100, maxLimit: 1000, maxBytes: 1024 * 1024 } as const;
/** bundles read between two yields to the event loop while a page is put together */
const YIELD_EVERY = 16;

const feedCursor = cursorCodec("f1");
export const encodeBundleCursor = feedCursor.encode;
export const decodeBundleCursor = feedCursor.decode;

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

const FeedAnswer = z.object({
  bundles: z.array(z.record(z.string(), z.unknown())).describe("the stored bundles after since, as stored, in acceptance order"),
  next_cursor: z.string().nullable().describe("pass it as the next since; null: nothing after since yet (keep since)"),
});

export function bundlesRoutes(d: RouteDeps): void {
  const pullRight = d.auth("pull");
  const access: MiddlewareHandler<AppEnv> = async (c, next) => {
    if (c.get("policy").visibility === "public") return d.publicLimit(c, next);
    return pullRight(c, () => d.memberLimit(c, next) as Promise<void>);
  };

  const path = d.routes.add("GET", "/villages/:id/bundles", {
    summary: "The village's stored bundles in the order this node accepted them (what peers replicate)",
    description:
      `Pages stop at limit bundles or ${FEED_PAGE.maxBytes} bytes, and hold at least one bundle when there is one. ` +
      "A public village's feed is open; others need the pull right. The ETag names since and the village's audit tree size: If-None-Match with it answers 304 while nothing was added.",
    access: "pull",
    query: z.object({
      since: z.string().optional().describe("next_cursor of the previous page; without it, from the first bundle"),
      limit: z.int().min(1).max(FEED_PAGE.maxLimit).default(FEED_PAGE.defaultLimit),
    }),
    answers: {
      200: { description: "a page of bundles", schema: FeedAnswer },
      304: { description: "nothing added after since since the ETag given in If-None-Match" },
    },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, "invalid_argument", "invalid_cursor"],
  });
  d.app.get(path, d.ids, access, async (c) => {
    const vid = c.get("villageId");
    const since = single(c, "since");
    const limit = parseLimit(single(c, "limit"), FEED_PAGE);
    const after = since === undefined ? -1 : decodeBundleCursor(since);
    const size = d.auditIndex.size(vid);
    if (after >= size) {
      throw new LinksError("invalid_cursor", "the cursor is past the end of this village's feed: this node's audit log is shorter than when it handed the cursor out");
    }
    // what follows `since` can only change when the village's tree grows
    const etag = `f1-${after + 1}-${size}`;
    c.header("ETag", `"${etag}"`);
    c.header("Cache-Control", c.get("policy").visibility === "public" ? "no-cache" : "private, no-cache");
    if (etagMatches(c.req.header("if-none-match"), etag)) return c.body(null, 304);

    const page = await feedPage(d, vid, after, limit);
    const body = `{"bundles":[${page.texts.join(",")}],"next_cursor":${toJsonText(page.nextCursor)}}`;
    return c.body(body, 200, { "Content-Type": "application/json" });
  });
}

/** The stored bundles after leaf `after`, as JSON texts, bounded in count and bytes. */
async function feedPage(d: RouteDeps, vid: string, after: number, limit: number): Promise<{ texts: string[]; nextCursor: string | null }> {
  const rows = d.auditIndex.acceptedSince(vid, after, limit);
  const texts: string[] = [];
  let nextCursor: string | null = null;
  let bytes = 0;
  for (const [i, row] of rows.entries()) {
    if (i > 0 && i % YIELD_EVERY === 0) await yieldToLoop();
    const bundle = readVillageBundle(d.paths, vid, row.bundle_id, d.claimsDb);
    // a stored row whose file is gone (deleted by hand) has nothing to give: step over it
    if (bundle !== null) {
      const text = toJsonText(bundle as unknown as JsonValue);
      const size = Buffer.byteLength(text, "utf8");
      if (texts.length > 0 && bytes + size > FEED_PAGE.maxBytes) break;
      bytes += size;
      texts.push(text);
    }
    nextCursor = encodeBundleCursor(row.leaf);
  }
  return { texts, nextCursor };
}
