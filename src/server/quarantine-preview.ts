/**
 * What a reviewer sees of a held bundle before deciding: its issuer id and its first claims,
 * read from the file as it was received. A file that does not parse (or is not a bundle) shows
 * no issuer and no claims rather than failing the whole list.
 */
import { readFileSync } from "node:fs";
import { parseStored, toJsonText, type JsonValue } from "../core/canonical.ts";

const PREVIEW_CLAIMS = 3;

export interface QuarantinePreview {
  issuer: string | null;
  claims_count: number;
  claims_preview: { subject: string; predicate: string; object: string | null }[];
}

const text = (v: unknown): string => (typeof v === "string" ? v : toJsonText((v ?? null) as JsonValue));

export function quarantinePreview(file: string): QuarantinePreview {
  let raw: unknown;
  try {
    raw = parseStored(readFileSync(file));
  } catch {
    return { issuer: null, claims_count: 0, claims_preview: [] };
  }
  const bundle = (typeof raw === "object" && raw !== null && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>;
  const claims = Array.isArray(bundle.claims) ? bundle.claims : [];
  return {
    issuer: typeof bundle.issuer === "string" ? bundle.issuer : null,
    claims_count: claims.length,
    claims_preview: claims.slice(0, PREVIEW_CLAIMS).map((c) => {
      const claim = (typeof c === "object" && c !== null ? c : {}) as Record<string, unknown>;
      return {
        subject: text(claim.subject),
        predicate: text(claim.predicate),
        object: claim.object === null || claim.object === undefined ? null : text(claim.object),
      };
    }),
  };
}
