/**
 * The client side of a peer's bundle feed (`GET /villages/:id/bundles`): download one page, then
 * check its shape before anything in it is used. Nothing here trusts a bundle: each one goes on
 * to the village's own pipeline, where its signature and the local policy decide.
 */
import { REMOTE_CURSOR_RE } from "../client/remote.ts";
import { BUNDLE_ID_RE } from "../core/bundle.ts";
import type { JsonValue } from "../core/canonical.ts";
import { LinksError } from "../core/errors.ts";
import type { PeerRemote } from "./peer-remote.ts";

/**
 * The most a page may weigh: a node's pages stop at 1 MiB of bundles but always hold one, and a
 * bundle is bounded by that node's --max-body.
 */
export const FEED_PAGE_MAX_BYTES = 16 * 1024 * 1024;
/** An entity tag worth sending back: short, printable, quoted (weak or not). */
const ETAG_RE = /^(W\/)?"[\x21\x23-\x7e]{1,200}"$/;

export type Download = { status: "not_modified" } | { status: "page"; body: JsonValue | null; etag: string | null };

export async function downloadPage(remote: PeerRemote, vid: string, since: string | null, etag: string | null, limit: number): Promise<Download> {
  const query = new URLSearchParams({ limit: String(limit) });
  if (since !== null) query.set("since", since);
  const res = await remote.request("GET", `/villages/${vid}/bundles?${query}`, {
    headers: etag === null ? {} : { "if-none-match": etag },
    accept: [304],
    maxBytes: FEED_PAGE_MAX_BYTES,
  });
  if (res.status === 304) return { status: "not_modified" };
  const tag = res.headers.get("etag");
  return { status: "page", body: res.body, etag: tag !== null && ETAG_RE.test(tag) ? tag : null };
}

export interface PageItem {
  /** the id the bundle claims (not yet verified); null when it is not a bundle id */
  claimedId: string | null;
  /** the bundle as the peer sent it, for the village's pipeline */
  bundle: JsonValue;
}

export interface CheckedPage {
  items: PageItem[];
  /** where the next page starts; null: nothing after this page (yet) */
  nextCursor: string | null;
}

function feedError(detail: string): LinksError {
  return new LinksError("remote_error", `the peer's bundle feed: ${detail}`);
}

/** A page's shape: an object with at most `limit` bundle objects and a cursor that is a cursor. */
export function checkPage(body: JsonValue | null, limit: number): CheckedPage {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw feedError("the answer is not a JSON object");
  const { bundles, next_cursor: next } = body as Record<string, JsonValue>;
  if (!Array.isArray(bundles)) throw feedError("the answer has no bundles array");
  if (bundles.length > limit) throw feedError(`a page holds ${bundles.length} bundles, more than the ${limit} asked for`);
  if (next !== null && next !== undefined && (typeof next !== "string" || !REMOTE_CURSOR_RE.test(next))) {
    throw feedError("next_cursor is not a cursor (base64url, at most 256 characters)");
  }
  if (bundles.length > 0 && (next === null || next === undefined)) throw feedError("a page with bundles has no next_cursor");
  const items = bundles.map((b, i): PageItem => {
    if (typeof b !== "object" || b === null || Array.isArray(b)) throw feedError(`bundles[${i}] is not a JSON object`);
    const id = (b as Record<string, JsonValue>).bundle_id;
    return { claimedId: typeof id === "string" && BUNDLE_ID_RE.test(id) ? id : null, bundle: b };
  });
  return { items, nextCursor: (next as string | null | undefined) ?? null };
}
