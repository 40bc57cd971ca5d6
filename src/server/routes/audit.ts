/**
 * The village's audit log as a verifiable log (pull right on the village):
 *
 * - `GET /villages/:id/audit/checkpoint`: the newest checkpoint the node signed for the village,
 *   a C2SP signed note (`text/plain`). A village never signed yet gets its first one on the spot.
 * - `GET /villages/:id/audit/entries?start=&end=`: `{"entries": [...]}`, rows start to end - 1 of
 *   the village's tree, each exactly as stored without its newline. `start` defaults to 0, `end`
 *   to start + 1000; end is clamped to the tree size, and a page stops at 1000 rows or 1 MiB.
 *   `?last=N` instead: the newest N rows (what the review page shows), the bound keeping the newest.
 * - `GET /villages/:id/audit/proof/inclusion?index=&size=` and
 *   `GET /villages/:id/audit/proof/consistency?from=&to=`: `{"hashes": [base64, ...]}`.
 *
 * And, without a token, `GET /.well-known/links/node`: `{"name", "public_key", "key_hash"}`, the
 * key the checkpoints are signed with (for peers to pin).
 */
import { z } from "zod";
import { encodeBase64 } from "../../core/base64.ts";
import { LinksError } from "../../core/errors.ts";
import { sendJson, type AppContext } from "../context.ts";
import { single } from "../query-params.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

const ENTRIES_PAGE = { maxEntries: 1000, maxBytes: 1024 * 1024 } as const;

const CHECKPOINT_MEDIA_TYPE = "text/plain; charset=utf-8";

export const NodeKeyAnswer = z.object({
  name: z.string().describe("the node name: the key name in its checkpoints' signatures"),
  public_key: z.string().describe("base64 of the 32-byte Ed25519 public key"),
  key_hash: z.string().describe("sha256 of the public key, 64 hex characters"),
});

const AuditEntriesAnswer = z.object({
  entries: z.array(z.string()).describe("the rows, each exactly as stored without its newline"),
});

const AuditProofAnswer = z.object({
  hashes: z.array(z.string()).describe("the proof's hashes, base64, in RFC 9162 order"),
});

const count = (what: string) => z.int().min(0).describe(what);

/** A tree size or index from the query: absent -> fallback (or 400 when required). */
function queryCount(c: AppContext, name: string, fallback?: number): number {
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

/** `?last=N`: the newest N rows of the village's tree, oldest first; the page bound drops the oldest. */
function newestEntries(c: AppContext, d: RouteDeps): string[] {
  if (single(c, "start") !== undefined || single(c, "end") !== undefined) {
    throw new LinksError("invalid_argument", "give either last, or start and end, not both");
  }
  const last = queryCount(c, "last");
  if (last < 1 || last > ENTRIES_PAGE.maxEntries) throw new LinksError("invalid_argument", `last must be from 1 to ${ENTRIES_PAGE.maxEntries}, got ${last}`);
  return boundedPage(d.auditIndex.newestEntries(c.get("villageId"), last).reverse()).reverse();
}

export function auditRoutes(d: RouteDeps): void {
  const { app, routes } = d;
  const pull = [d.ids, d.auth("pull"), d.memberLimit] as const;
  const village = [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token];

  const node = routes.add("GET", "/.well-known/links/node", {
    summary: "The node's name and the public key its audit checkpoints are signed with",
    access: "public",
    answers: { 200: { description: "the node's identity", schema: NodeKeyAnswer } },
    errors: [...ROUTE_ERRORS.publicLimit],
  });
  app.get(node, d.publicLimit, (c) =>
    sendJson(c, { name: d.identity.name, public_key: encodeBase64(d.identity.publicKey), key_hash: d.identity.keyHash }),
  );

  const checkpoint = routes.add("GET", "/villages/:id/audit/checkpoint", {
    summary: "The newest signed checkpoint of the village's audit tree",
    description: "A C2SP tlog-checkpoint in a C2SP signed note, origin links/<node name>/<village id>. A village never signed yet gets its first checkpoint now.",
    access: "pull",
    answers: { 200: { description: "the signed note", mediaType: CHECKPOINT_MEDIA_TYPE } },
    errors: [...village, ...ROUTE_ERRORS.storage, "audit_inconsistent"],
  });
  app.get(checkpoint, ...pull, (c) => {
    const kept = d.checkpoints.latest(c.get("villageId"));
    if (kept === null) throw new LinksError("audit_inconsistent", "the village's audit tree contradicts its last checkpoint; this node signs nothing for it until an operator looks");
    return c.body(kept.note, 200, { "Content-Type": CHECKPOINT_MEDIA_TYPE, "Cache-Control": "no-cache" });
  });

  const entries = routes.add("GET", "/villages/:id/audit/entries", {
    summary: "Rows of the village's audit tree, exactly as stored",
    description: `Rows start to end - 1, or with last the newest rows; end is clamped to the tree size, and a page stops at ${ENTRIES_PAGE.maxEntries} rows or ${ENTRIES_PAGE.maxBytes} bytes (with last, the newest are kept).`,
    access: "pull",
    query: z.object({
      start: count("the first row (default 0)").optional(),
      end: count(`one past the last row (default start + ${ENTRIES_PAGE.maxEntries})`).optional(),
      last: z.int().min(1).max(ENTRIES_PAGE.maxEntries).optional().describe("instead of start and end: the newest rows, this many at most"),
    }),
    answers: { 200: { description: "the rows", schema: AuditEntriesAnswer } },
    errors: [...village, "invalid_argument", "audit_inconsistent", "storage_error"],
  });
  app.get(entries, ...pull, (c) => {
    if (single(c, "last") !== undefined) return sendJson(c, { entries: newestEntries(c, d) });
    const start = queryCount(c, "start", 0);
    const end = queryCount(c, "end", start + ENTRIES_PAGE.maxEntries);
    if (end < start) throw new LinksError("invalid_argument", `end (${end}) must not be below start (${start})`);
    const rows = d.auditIndex.entries(c.get("villageId"), start, Math.min(end, start + ENTRIES_PAGE.maxEntries));
    return sendJson(c, { entries: boundedPage(rows) });
  });

  /** A proof route: two counts from the query, checked against each other, then the index's hashes. */
  const proofRoute = (o: {
    path: string;
    summary: string;
    /** [name, what it is], in the order misordered and prove take them */
    params: [[string, string], [string, string]];
    answer: string;
    misordered: (a: number, b: number) => string | null;
    prove: (vid: string, a: number, b: number) => Uint8Array[];
  }): void => {
    const path = routes.add("GET", o.path, {
      summary: o.summary,
      access: "pull",
      query: z.object(Object.fromEntries(o.params.map(([name, what]) => [name, count(what)]))),
      answers: { 200: { description: o.answer, schema: AuditProofAnswer } },
      errors: [...village, "invalid_argument", "storage_error"],
    });
    app.get(path, ...pull, (c) => {
      const a = queryCount(c, o.params[0][0]);
      const b = queryCount(c, o.params[1][0]);
      const wrong = o.misordered(a, b);
      if (wrong !== null) throw new LinksError("invalid_argument", wrong);
      return sendJson(c, { hashes: o.prove(c.get("villageId"), a, b).map(encodeBase64) });
    });
  };

  proofRoute({
    path: "/villages/:id/audit/proof/inclusion",
    summary: "The proof that a row is in the village's audit tree of a given size (RFC 9162)",
    params: [["index", "the row"], ["size", "the tree size"]],
    answer: "the audit path, leaf to root",
    misordered: (index, size) => (index >= size ? `index (${index}) must be below size (${size})` : null),
    prove: (vid, index, size) => d.auditIndex.inclusionProof(vid, index, size),
  });
  proofRoute({
    path: "/villages/:id/audit/proof/consistency",
    summary: "The proof that the village's audit tree of one size extends the tree of a smaller size (RFC 9162)",
    params: [["from", "the smaller tree size"], ["to", "the larger tree size"]],
    answer: "the consistency proof",
    misordered: (from, to) => (from > to ? `from (${from}) must not be above to (${to})` : null),
    prove: (vid, from, to) => d.auditIndex.consistencyProof(vid, from, to),
  });
}
