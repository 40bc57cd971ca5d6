/**
 * The append-only audit log: one writer for every decision, one reader with filters.
 */
import { parseStored, toJsonText, type JsonValue } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { lockedAppend, readJsonl } from "./jsonl.ts";
import type { DataPaths } from "./paths.ts";

export const AUDIT_ACTIONS = [
  "ingest.accept", "ingest.quarantine", "ingest.reject", "ingest.duplicate",
  "member.add", "member.revoke", "member.rotate",
  "issuer.allow", "issuer.block", "issuer.unallow", "issuer.unblock",
  "policy.apply", "policy.refuse",
  "quarantine.approve", "quarantine.reject",
  "village.create",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditRow {
  ts: string;
  action: AuditAction | string;
  bundle_id: string | null;
  village_id: string | null;
  issuer_key_hash: string | null;
  actor: string | null;
  reason: string | null;
  policy_hash: string | null;
  [extra: string]: JsonValue | undefined;
}

export type AuditEntry = Partial<Omit<AuditRow, "action">> & { action: AuditAction };

export function auditRow(entry: AuditEntry): AuditRow {
  return {
    ts: nowIso(),
    bundle_id: null,
    village_id: null,
    issuer_key_hash: null,
    actor: null,
    reason: null,
    policy_hash: null,
    ...entry,
  };
}

export function appendAudit(paths: DataPaths, ...entries: AuditEntry[]): void {
  lockedAppend(paths.auditFile(), entries.map((e) => toJsonText(auditRow(e) as JsonValue)));
}

export interface AuditFilter {
  villageId?: string | undefined;
  action?: string | undefined;
  limit?: number | undefined;
}

/** The newest rows matching the filter, oldest first. */
export function tailAudit(paths: DataPaths, filter: AuditFilter = {}): AuditRow[] {
  const rows = readJsonl(paths.auditFile(), (line) => {
    const v = parseStored(line);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as unknown as AuditRow;
  });
  const matching = rows.filter(
    (r) =>
      (filter.villageId === undefined || r.village_id === filter.villageId) &&
      (filter.action === undefined || r.action === filter.action || String(r.action).startsWith(`${filter.action}.`)),
  );
  return filter.limit === undefined ? matching : matching.slice(-filter.limit);
}
