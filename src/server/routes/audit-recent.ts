/**
 * `GET /villages/:id/audit/recent?limit=N` (manage right): the village's newest audit rows, for
 * the review page. It reads only the last AUDIT_TAIL_BYTES of the node-wide audit log, so its
 * cost is bounded whatever the log's size; a village with no row in that stretch shows none.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { z } from "zod";
import { parseStored } from "../../core/canonical.ts";
import type { AuditRow } from "../../storage/audit.ts";
import { readJsonlFrom, warnBadLine } from "../../storage/jsonl.ts";
import type { DataPaths } from "../../storage/paths.ts";
import { RecentAuditAnswer } from "../answers.ts";
import { sendJson } from "../context.ts";
import { parseLimit, single } from "../query-params.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

export const AUDIT_TAIL_BYTES = 1024 * 1024;
export const AUDIT_PAGE = { defaultLimit: 50, maxLimit: 500 } as const;

/** The first line start at or after `offset` (the file's size if there is none). */
function lineStartFrom(file: string, offset: number, size: number): number {
  if (offset === 0) return 0;
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(64 * 1024);
    for (let at = offset - 1; at < size; at += buf.length) {
      const n = readSync(fd, buf, 0, buf.length, at);
      const nl = buf.subarray(0, n).indexOf(0x0a);
      if (nl >= 0) return at + nl + 1;
      if (n === 0) break;
    }
    return size;
  } finally {
    closeSync(fd);
  }
}

export function recentAudit(paths: DataPaths, villageId: string, limit: number): { rows: AuditRow[]; scanned_bytes: number } {
  const file = paths.auditFile();
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return { rows: [], scanned_bytes: 0 };
  }
  const start = lineStartFrom(file, Math.max(0, size - AUDIT_TAIL_BYTES), size);
  const { records } = readJsonlFrom(
    file,
    start,
    (line) => {
      const v = parseStored(line);
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
      return v as unknown as AuditRow;
    },
    warnBadLine,
    size - start,
  );
  return { rows: records.filter((r) => r.village_id === villageId).slice(-limit), scanned_bytes: size - start };
}

export function recentAuditRoutes(d: RouteDeps): void {
  const path = d.routes.add("GET", "/villages/:id/audit/recent", {
    summary: "The village's newest audit rows",
    description: `Read from the last ${AUDIT_TAIL_BYTES} bytes of the node's audit log.`,
    access: "manage",
    query: z.object({ limit: z.int().min(1).max(AUDIT_PAGE.maxLimit).default(AUDIT_PAGE.defaultLimit) }),
    answers: { 200: { description: "the rows, oldest first", schema: RecentAuditAnswer } },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, "invalid_argument"],
  });
  d.app.get(path, d.ids, d.auth("manage"), d.memberLimit, (c) => {
    const limit = parseLimit(single(c, "limit"), AUDIT_PAGE);
    return sendJson(c, recentAudit(d.paths, c.get("villageId"), limit));
  });
}
