/**
 * The claims query behind `GET /villages/:id/claims`: one page of a village's index rows from the
 * node's claims database, and an opaque cursor for the next.
 *
 * The cursor is base64url of "o1:<n>", n being the sequence number of the last row returned. The
 * index is append-only between reindexes; a reindex renumbers rows, so a cursor taken before one
 * may skip or repeat rows.
 */
import { LinksError } from "../core/errors.ts";
import type { ClaimsDb } from "../storage/claims-db.ts";
import type { ClaimFilter } from "../storage/claims-index.ts";
import type { IndexRow } from "../storage/store.ts";

export const CLAIMS_PAGE = { defaultLimit: 100, maxLimit: 1000 } as const;

export interface ClaimsPageQuery {
  villageId: string;
  subject?: string | undefined;
  predicate?: string | undefined;
  issuer?: string | undefined;
  limit: number;
  cursor: string | null;
}

export interface ClaimsPage {
  claims: IndexRow[];
  next_cursor: string | null;
}

const CURSOR_TEXT_RE = /^o1:(0|[1-9][0-9]{0,14})$/;

export function encodeCursor(position: number): string {
  return Buffer.from(`o1:${position}`, "utf8").toString("base64url");
}

/** The position a cursor stands for; anything not made by encodeCursor is invalid_cursor. */
export function decodeCursor(cursor: string): number {
  const bad = (): never => {
    throw new LinksError("invalid_cursor", "the cursor is not one this node handed out");
  };
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(cursor)) bad();
  const m = CURSOR_TEXT_RE.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!m) return bad();
  const position = Number(m[1]);
  if (encodeCursor(position) !== cursor) bad();
  return position;
}

export function claimsPage(db: ClaimsDb, q: ClaimsPageQuery): ClaimsPage {
  const after = q.cursor === null ? 0 : decodeCursor(q.cursor);
  const filter: ClaimFilter = { villageId: q.villageId, subject: q.subject, predicate: q.predicate, issuer: q.issuer };
  const rows = db.query(filter, q.limit + 1, after);
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    claims: page.map((r) => r.row),
    next_cursor: rows.length > q.limit && last ? encodeCursor(last.seq) : null,
  };
}
