/**
 * The claims query behind `GET /villages/:id/claims`: one page of a village's index rows from the
 * node's claims database, and an opaque cursor for the next.
 *
 * The cursor is base64url of "o1:<n>", n being the sequence number of the last row returned. The
 * index is append-only between reindexes; a reindex renumbers rows, so a cursor taken before one
 * may skip or repeat rows.
 */
import { cursorCodec } from "./cursor.ts";
import type { ClaimsDb } from "../storage/claims-db.ts";
import type { ClaimFilter, IndexRow } from "../storage/index-rows.ts";

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

const claimsCursor = cursorCodec("o1");
/** The cursor for the row after sequence number `position`. */
export const encodeCursor = claimsCursor.encode;
/** The position a cursor stands for; anything not made by encodeCursor is invalid_cursor. */
export const decodeCursor = claimsCursor.decode;

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
