/**
 * Members and their bearer tokens. `members.jsonl` gets a row per member and per rotation;
 * `revocations.jsonl` names revoked token hashes and overrides any member row with that hash.
 * Only sha256(token) is ever stored.
 */
import { statSync } from "node:fs";
import { timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { encodeBase64Url } from "../core/base64.ts";
import { parseStored, sha256Hex, toJsonText, type JsonValue } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { LinksError } from "../core/errors.ts";
import { parseWith } from "../core/schema.ts";
import { lockPathFor, withFileLockSync } from "./flock.ts";
import { lockedAppend, readJsonl, warnBadLine, type BadLine } from "./jsonl.ts";
import { assertMemberId, type DataPaths } from "./paths.ts";

const MemberRowSchema = z.looseObject({
  member_id: z.string(),
  role: z.string(),
  added_at: z.string(),
  token_hash: z.string(),
  is_revoked: z.boolean().default(false),
});
const RevocationSchema = z.looseObject({
  ts: z.string(),
  token_hash: z.string(),
  actor: z.string().nullable().default(null),
  reason: z.string().nullable().default(null),
});
export type MemberRow = z.output<typeof MemberRowSchema>;
export type Revocation = z.output<typeof RevocationSchema>;

export interface Member {
  member_id: string;
  role: string;
  added_at: string;
  revoked: boolean;
}

export interface AuthenticatedMember {
  memberId: string;
  role: string;
}

export function newToken(): string {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

export function hashToken(token: string): string {
  return sha256Hex(token);
}

/** The ledger state of one village, rebuilt from its two JSONL files. */
class Ledger {
  /** token hash -> the member row that holds it (the newest, if several) */
  readonly byToken = new Map<string, MemberRow>();
  readonly revoked = new Set<string>();
  /** member id -> its rows, oldest first */
  readonly byMember = new Map<string, MemberRow[]>();

  constructor(
    rows: MemberRow[],
    revocations: Revocation[],
    /** token hashes named by lines that could not be read (see loadLedger): revoked, to be safe */
    unreadableHashes: Iterable<string> = [],
    /** a revocations line that could not be read and names no hash: whom it revoked is unknown */
    readonly unknownRevocation: BadLine | null = null,
  ) {
    for (const h of unreadableHashes) this.revoked.add(h);
    for (const r of revocations) this.revoked.add(r.token_hash);
    for (const row of rows) {
      if (row.is_revoked) this.revoked.add(row.token_hash);
      this.byToken.set(row.token_hash, row);
      const list = this.byMember.get(row.member_id) ?? [];
      list.push(row);
      this.byMember.set(row.member_id, list);
    }
  }

  liveHashes(memberId: string): string[] {
    return (this.byMember.get(memberId) ?? []).map((r) => r.token_hash).filter((h) => !this.revoked.has(h));
  }

  members(): Member[] {
    return [...this.byMember.entries()].map(([memberId, rows]) => ({
      member_id: memberId,
      role: (rows[rows.length - 1] as MemberRow).role,
      added_at: (rows[0] as MemberRow).added_at,
      revoked: this.liveHashes(memberId).length === 0,
    }));
  }
}

function parseRow<T extends z.ZodType>(schema: T, what: string) {
  return (line: string): z.output<T> => parseWith(schema, parseStored(line), what);
}

/** A token hash as it appears in a line, whatever else the line holds. */
const TOKEN_HASH_IN_TEXT = /(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])/g;

/**
 * Reads both files failing closed: a line that cannot be read (corrupt, torn, a field of the wrong
 * type) is skipped with a warning, but every token hash it names counts as revoked, and a
 * revocations line that names none leaves the village's tokens unusable (authenticate refuses
 * them all) until it is repaired. A damaged revocation must never give a token back.
 */
function loadLedger(paths: DataPaths, vid: string): Ledger {
  const unreadable = new Set<string>();
  let hashesInLast = 0;
  const tolerant = <T extends z.ZodType>(schema: T, what: string) => {
    const parse = parseRow(schema, what);
    return (line: string): z.output<T> => {
      try {
        return parse(line);
      } catch (e) {
        const hashes = line.match(TOKEN_HASH_IN_TEXT) ?? [];
        for (const h of hashes) unreadable.add(h.toLowerCase());
        hashesInLast = hashes.length;
        throw e;
      }
    };
  };
  let unknownRevocation: BadLine | null = null;
  const rows = readJsonl(paths.membersFile(vid), tolerant(MemberRowSchema, "member row"));
  const revocations = readJsonl(paths.revocationsFile(vid), tolerant(RevocationSchema, "revocation row"), (bad) => {
    warnBadLine(bad);
    if (hashesInLast === 0) unknownRevocation ??= bad;
  });
  return new Ledger(rows, revocations, unreadable, unknownRevocation);
}

/** Members and revocations change rarely: one lock per village serializes the writers. */
function withMembersLock<T>(paths: DataPaths, vid: string, fn: (ledger: Ledger) => T): T {
  return withFileLockSync(lockPathFor(paths.membersFile(vid)), "exclusive", () => fn(loadLedger(paths, vid)));
}

export function listMembers(paths: DataPaths, vid: string): Member[] {
  return loadLedger(paths, vid).members();
}

/** Adds a member and returns its token (shown once). A live member of that id is refused. */
export function addMember(paths: DataPaths, vid: string, memberId: string, role: string): string {
  assertMemberId(memberId);
  return withMembersLock(paths, vid, (ledger) => {
    if (ledger.liveHashes(memberId).length > 0) {
      throw new LinksError("member_exists", `member ${JSON.stringify(memberId)} already exists in village ${vid}`);
    }
    const token = newToken();
    appendMemberRow(paths, vid, { member_id: memberId, role, added_at: nowIso(), token_hash: hashToken(token), is_revoked: false });
    return token;
  });
}

/** Revokes every live token of a member. */
export function revokeMember(paths: DataPaths, vid: string, memberId: string, actor: string, reason: string): void {
  withMembersLock(paths, vid, (ledger) => {
    const live = requireLiveMember(ledger, vid, memberId);
    appendRevocations(paths, vid, live, actor, reason);
  });
}

/** Issues a new token for a member and revokes the old ones; returns the new token. */
export function rotateToken(paths: DataPaths, vid: string, memberId: string, actor: string): string {
  return withMembersLock(paths, vid, (ledger) => {
    const live = requireLiveMember(ledger, vid, memberId);
    const rows = ledger.byMember.get(memberId) as MemberRow[];
    const token = newToken();
    appendMemberRow(paths, vid, {
      member_id: memberId,
      role: (rows[rows.length - 1] as MemberRow).role,
      added_at: nowIso(),
      token_hash: hashToken(token),
      is_revoked: false,
    });
    appendRevocations(paths, vid, live, actor, "rotated");
    return token;
  });
}

function requireLiveMember(ledger: Ledger, vid: string, memberId: string): string[] {
  if (!ledger.byMember.has(memberId)) {
    throw new LinksError("member_not_found", `member ${JSON.stringify(memberId)} is not in village ${vid}`);
  }
  const live = ledger.liveHashes(memberId);
  if (live.length === 0) throw new LinksError("member_revoked", `member ${JSON.stringify(memberId)} is already revoked`);
  return live;
}

function appendMemberRow(paths: DataPaths, vid: string, row: MemberRow): void {
  lockedAppend(paths.membersFile(vid), [toJsonText(row as JsonValue)]);
}

function appendRevocations(paths: DataPaths, vid: string, hashes: string[], actor: string, reason: string): void {
  const ts = nowIso();
  lockedAppend(
    paths.revocationsFile(vid),
    hashes.map((h) => toJsonText({ ts, token_hash: h, actor, reason })),
  );
}

/**
 * Answers "whose token is this?" without re-reading the ledgers on every request: each village's
 * ledger is cached and rebuilt only when either file's identity (inode, size, mtime) changes.
 */
export class MemberDirectory {
  private readonly cache = new Map<string, { stamp: string; ledger: Ledger }>();

  constructor(private readonly paths: DataPaths) {}

  authenticate(vid: string, token: string): AuthenticatedMember {
    const ledger = this.ledger(vid);
    const hash = hashToken(token);
    const row = ledger.byToken.get(hash);
    // The map lookup is keyed by the token's hash; the constant-time compare makes the check
    // itself independent of how much of a guessed token matches.
    if (!row || !timingSafeEqual(Buffer.from(row.token_hash), Buffer.from(hash))) {
      throw new LinksError("invalid_token", "the bearer token is not valid for this village");
    }
    // Only a member's token learns of the damage: a stranger's is refused as above (and counted
    // as a failed authentication), not told which village's files are broken.
    const unknown = ledger.unknownRevocation;
    if (unknown !== null) {
      throw new LinksError(
        "storage_error",
        `line ${unknown.lineNo} of village ${vid}'s revocations.jsonl cannot be read and names no token hash, so which token it revoked is unknown: no token of the village is accepted until that line is repaired or removed`,
      );
    }
    if (ledger.revoked.has(hash)) throw new LinksError("revoked_token", "the bearer token has been revoked");
    return { memberId: row.member_id, role: row.role };
  }

  private ledger(vid: string): Ledger {
    const stamp = `${fileStamp(this.paths.membersFile(vid))}|${fileStamp(this.paths.revocationsFile(vid))}`;
    const hit = this.cache.get(vid);
    if (hit && hit.stamp === stamp) return hit.ledger;
    const ledger = loadLedger(this.paths, vid);
    this.cache.set(vid, { stamp, ledger });
    return ledger;
  }
}

function fileStamp(path: string): string {
  try {
    // A village without revocations has no file: no exception for that on every request.
    const s = statSync(path, { throwIfNoEntry: false });
    if (s === undefined) return "none";
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return "none";
  }
}
