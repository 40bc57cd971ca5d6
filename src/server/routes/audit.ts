/**
 * The village's audit log as a verifiable log (pull right on the village):
 *
 * - `GET /villages/:id/audit/checkpoint`: the newest checkpoint the node signed for the village,
 *   a C2SP signed note (`text/plain`). A village never signed yet gets its first one on the spot.
 * - `GET /villages/:id/audit/entries?start=&end=`: `{"entries": [...]}`, rows start to end - 1 of
 *   the village's tree, each exactly as stored without its newline. `start` defaults to 0, `end`
 *   to start + 1000; end is clamped to the tree size, and a page stops at 1000 rows or 1 MiB.
 * - `GET /villages/:id/audit/proof/inclusion?index=&size=` and
 *   `GET /villages/:id/audit/proof/consistency?from=&to=`: `{"hashes": [base64, ...]}`.
 *
 * And, without a token, `GET /.well-known/links/node`: `{"name", "public_key", "key_hash"}`, the
 * key the checkpoints are signed with (for peers to pin).
 */
import { encodeBase64 } from "../../core/base64.ts";
import { LinksError } from "../../core/errors.ts";
import { sendJson, type AppContext } from "../context.ts";
import { single } from "../query-params.ts";
import type { RouteDeps } from "./deps.ts";

export const ENTRIES_PAGE = { maxEntries: 1000, maxBytes: 1024 * 1024 } as const;

/** A tree size or index from the query: absent -> fallback (or 400 when required). */
function count(c: AppContext, name: string, fallback?: number): number {
  const text = single(c, name);
  if (text === undefined) {
    if (fallback !== undefined) return fallback;
    throw new LinksError("invalid_argument", `query parameter ${name} is required`);
  }
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new LinksError("invalid_argument", `${name} must be a non-negative integer, got ${JSON.stringify(text.slice(0, 40))}`);
  }
  return Number(text);
}

/** Whole rows until the page is full; always at least one, so paging never stalls. */
function boundedPage(rows: string[]): string[] {
  let bytes = 0;
  const out: string[] = [];
  for (const row of rows) {
    bytes += Buffer.byteLength(row, "utf8");
    if (out.length > 0 && bytes > ENTRIES_PAGE.maxBytes) break;
    out.push(row);
  }
  return out;
}

export function auditRoutes(d: RouteDeps): void {
  const { app, routes } = d;
  const pull = [d.ids, d.auth("pull"), d.memberLimit] as const;

  app.get(routes.add("GET", "/.well-known/links/node"), d.publicLimit, (c) =>
    sendJson(c, { name: d.identity.name, public_key: encodeBase64(d.identity.publicKey), key_hash: d.identity.keyHash }),
  );

  app.get(routes.add("GET", "/villages/:id/audit/checkpoint"), ...pull, (c) => {
    const kept = d.checkpoints.latest(c.get("villageId"));
    if (kept === null) throw new LinksError("audit_inconsistent", "the village's audit tree contradicts its last checkpoint; this node signs nothing for it until an operator looks");
    return c.body(kept.note, 200, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache" });
  });

  app.get(routes.add("GET", "/villages/:id/audit/entries"), ...pull, (c) => {
    const start = count(c, "start", 0);
    const end = count(c, "end", start + ENTRIES_PAGE.maxEntries);
    if (end < start) throw new LinksError("invalid_argument", `end (${end}) must not be below start (${start})`);
    const rows = d.auditIndex.entries(c.get("villageId"), start, Math.min(end, start + ENTRIES_PAGE.maxEntries));
    return sendJson(c, { entries: boundedPage(rows) });
  });

  app.get(routes.add("GET", "/villages/:id/audit/proof/inclusion"), ...pull, (c) => {
    const index = count(c, "index");
    const size = count(c, "size");
    if (index >= size) throw new LinksError("invalid_argument", `index (${index}) must be below size (${size})`);
    const hashes = d.auditIndex.inclusionProof(c.get("villageId"), index, size);
    return sendJson(c, { hashes: hashes.map(encodeBase64) });
  });

  app.get(routes.add("GET", "/villages/:id/audit/proof/consistency"), ...pull, (c) => {
    const from = count(c, "from");
    const to = count(c, "to");
    if (from > to) throw new LinksError("invalid_argument", `from (${from}) must not be above to (${to})`);
    const hashes = d.auditIndex.consistencyProof(c.get("villageId"), from, to);
    return sendJson(c, { hashes: hashes.map(encodeBase64) });
  });
}
