/**
 * What the lines of store/audit/audit.log.jsonl and store/audit/checkpoints.jsonl are, read the
 * same way by the audit index (which keeps the trees) and by `links audit verify` (which
 * recomputes them): which tree a row is a leaf of, what a kept checkpoint holds, and the file's
 * complete lines from an offset.
 */
import { decodeBase64 } from "../core/base64.ts";
import { BUNDLE_ID_RE } from "../core/bundle.ts";
import { parseStored } from "../core/canonical.ts";
import { normalizeDatetime } from "../core/datetime.ts";
import { HASH_BYTES } from "../core/merkle.ts";
import { readFrom } from "./jsonl.ts";
import { VILLAGE_ID_RE } from "./paths.ts";

/** bytes of a file read at a time (bounds the memory a catch-up or a verify takes) */
const READ_CHUNK = 4 * 1024 * 1024;
const NL = 0x0a;

/** What one stored audit line is in the trees. */
export interface AuditLeaf {
  /** the village whose tree holds it; null: the public scope */
  scope: string | null;
  action: string | null;
  bundle_id: string | null;
  /** the row stored a bundle in its village (ingest.accept, or a quarantine.approve that stored it) */
  stored: boolean;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The tree a stored line belongs to, or null when it is no leaf: a blank line, a line that is not
 * a JSON object (a torn append), or a village_id that is neither null nor a valid village id.
 * Only string fields are taken and the leaf is the line's own bytes, so the runtime's JSON.parse
 * serves (nothing read here is ever written back).
 */
export function auditLeafOf(line: Uint8Array): AuditLeaf | null {
  let row: unknown;
  try {
    row = JSON.parse(utf8.decode(line));
  } catch {
    return null;
  }
  if (typeof row !== "object" || row === null || Array.isArray(row)) return null;
  const r = row as Record<string, unknown>;
  const vid = r.village_id ?? null;
  if (vid !== null && (typeof vid !== "string" || !VILLAGE_ID_RE.test(vid))) return null;
  const action = typeof r.action === "string" ? r.action : null;
  const bundleId = typeof r.bundle_id === "string" ? r.bundle_id : null;
  const stored =
    bundleId !== null &&
    BUNDLE_ID_RE.test(bundleId) &&
    (action === "ingest.accept" || (action === "quarantine.approve" && r.reason !== "already stored"));
  return { scope: vid, action, bundle_id: bundleId, stored };
}

/** True for a line of spaces only (not a row, not an error). */
export function isBlankLine(line: Uint8Array): boolean {
  return line.every((b) => b === 0x20 || b === 0x09 || b === 0x0d);
}

export interface KeptCheckpoint {
  village_id: string | null;
  size: number;
  root_hash: Uint8Array;
  /** the signed note, as served */
  note: string;
  ts: string;
}

/** A line of store/audit/checkpoints.jsonl, checked field by field; null when malformed. */
export function parseCheckpointLine(line: string): KeptCheckpoint | null {
  let v: unknown;
  try {
    v = parseStored(line);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  const vid = r.village_id ?? null;
  const root = typeof r.root_hash === "string" ? decodeBase64(r.root_hash) : null;
  if (vid !== null && (typeof vid !== "string" || !VILLAGE_ID_RE.test(vid))) return null;
  if (typeof r.size !== "number" || !Number.isSafeInteger(r.size) || r.size < 0) return null;
  if (root === null || root.length !== HASH_BYTES || typeof r.note !== "string" || typeof r.ts !== "string" || normalizeDatetime(r.ts) === null) return null;
  return { village_id: vid, size: r.size, root_hash: root, note: r.note, ts: r.ts };
}

/**
 * The complete lines of a file from byte `offset` on, read a chunk at a time under the shared
 * lock; a torn last line (no newline yet) is not yielded. Returns where the last line ended.
 */
export function* completeLines(path: string, offset = 0): Generator<{ offset: number; line: Uint8Array; withNewline: Uint8Array }, number> {
  for (;;) {
    let buf = readFrom(path, offset, READ_CHUNK);
    // one line longer than a chunk: read on to its end
    if (buf !== null && buf.length === READ_CHUNK && buf.indexOf(NL) < 0) buf = readFrom(path, offset);
    if (buf === null || buf.length === 0) return offset;
    let start = 0;
    for (let nl = buf.indexOf(NL); nl >= 0; nl = buf.indexOf(NL, start)) {
      yield { offset: offset + start, line: buf.subarray(start, nl), withNewline: buf.subarray(start, nl + 1) };
      start = nl + 1;
    }
    if (start === 0) return offset;
    offset += start;
  }
}
