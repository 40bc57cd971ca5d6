/**
 * Rows of the claims index (store/index/claims.jsonl): one flattened row per claim, written as
 * canonical JSON text. Shared by the store (which appends them), the claims database (which
 * tails them) and `reindex` (which rebuilds them).
 */
import type { Bundle } from "../core/bundle.ts";
import { parseStored, toJsonText, type JsonValue } from "../core/canonical.ts";

export interface IndexRow {
  bundle_id: string;
  issuer: string;
  window_days: number;
  created_at: string;
  village_id: string | null;
  visibility: string;
  subject: string;
  predicate: string;
  object: string | null;
  value: JsonValue;
  computed_at: string;
  derivation: string | null;
  evidence: string[];
}

/** What a claims query filters on; no villageId: every row of claims.jsonl. */
export interface ClaimFilter {
  subject?: string | undefined;
  issuer?: string | undefined;
  predicate?: string | undefined;
  villageId?: string | undefined;
}

export function indexRows(bundle: Bundle, villageId: string | null, visibility: string): IndexRow[] {
  return bundle.claims.map((c) => ({
    bundle_id: bundle.bundle_id,
    issuer: c.issuer,
    window_days: c.window_days,
    created_at: bundle.created_at,
    village_id: villageId,
    visibility,
    subject: c.subject,
    predicate: c.predicate,
    object: c.object,
    value: c.value,
    computed_at: c.computed_at,
    derivation: c.derivation,
    evidence: c.evidence,
  }));
}

/**
 * The index rows of a bundle as JSON lines, exactly what toJsonText(indexRows(...)) gives, built
 * from a template in the rows' sorted key order (ingest writes ten of these per bundle).
 */
export function indexRowLines(bundle: Bundle, villageId: string | null, visibility: string): string[] {
  const j = toJsonText;
  const common = `{"bundle_id":${j(bundle.bundle_id)}`;
  const created = j(bundle.created_at);
  const tail = `,"village_id":${j(villageId)},"visibility":${j(visibility)},"window_days":`;
  return bundle.claims.map(
    (c) =>
      `${common},"computed_at":${j(c.computed_at)},"created_at":${created},"derivation":${j(c.derivation)},"evidence":${j(c.evidence)},"issuer":${j(c.issuer)},"object":${j(c.object)},"predicate":${j(c.predicate)},"subject":${j(c.subject)},"value":${j(c.value)}${tail}${c.window_days}}`,
  );
}

export function parseIndexRow(line: string): IndexRow {
  const v = parseStored(line) as unknown as IndexRow;
  if (typeof v !== "object" || v === null || typeof v.bundle_id !== "string" || typeof v.subject !== "string") {
    throw new Error("not an index row");
  }
  return v;
}

/** The public store's key where a scope is a string (village ids are never empty). */
export const PUBLIC_SCOPE = "";

/**
 * The scope an index row belongs to: its village, the public store (PUBLIC_SCOPE), or null for a
 * row with neither, which Python Links v0.7 wrote for bundles it accepted into a village.
 */
export function rowScope(row: { village_id?: unknown; visibility?: unknown }): string | null {
  if (typeof row.village_id === "string") return row.village_id;
  return row.visibility === "public" ? PUBLIC_SCOPE : null;
}
