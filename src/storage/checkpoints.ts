/**
 * Signing the audit trees: a C2SP checkpoint per scope whenever its tree grew, kept in
 * store/audit/checkpoints.jsonl (one JSON line per checkpoint, appended through lockedAppend and
 * never rewritten).
 *
 * Two rules make the checkpoints safe to hand out:
 * - Before a checkpoint is signed, the audit file is fdatasync'ed: a checkpoint never covers a
 *   row a crash could still take back (the group commit appends audit rows without a sync).
 * - Before a checkpoint is signed, the tree is proved consistent with the last checkpoint kept
 *   for that scope. When it is not (the audit file was rewritten), nothing is signed: the refusal
 *   is logged loudly, and the last good checkpoint stays the one served.
 */
import { closeSync, constants, existsSync, fdatasyncSync, openSync } from "node:fs";
import { checkpointOrigin } from "../core/audit-origin.ts";
import { encodeBase64 } from "../core/base64.ts";
import { toJsonText } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { storageError } from "../core/errors.ts";
import { hashesEqual, verifyConsistency } from "../core/merkle.ts";
import { signCheckpoint } from "../core/signed-note.ts";
import { fdatasyncFile } from "./atomic.ts";
import type { AuditIndex } from "./audit-index.ts";
import type { KeptCheckpoint } from "./audit-records.ts";
import { lockedAppend } from "./jsonl.ts";
import type { NodeIdentity } from "./node-identity.ts";
import type { DataPaths } from "./paths.ts";

export const CHECKPOINT_DEFAULTS = {
  /** how often the node looks for grown trees and signs them: at most one checkpoint per scope per interval */
  intervalMs: 2000,
};

export interface SignerOptions {
  /** where refusals are reported (default: a "links: ERROR:" line on stderr) */
  onRefusal?: (message: string, scope: string | null) => void;
}

function scopeName(scope: string | null): string {
  return scope === null ? "the public scope" : `village ${scope}`;
}

export class CheckpointSigner {
  private timer: ReturnType<typeof setInterval> | null = null;
  private running: Promise<number> | null = null;
  private readonly lastRefusal = new Map<string | null, number>();

  constructor(
    private readonly paths: DataPaths,
    private readonly index: AuditIndex,
    private readonly identity: NodeIdentity,
    private readonly opts: SignerOptions = {},
  ) {}

  /**
   * Signs the scopes whose trees grew, now (rows written while the node was down) and then every
   * intervalMs. 0: never in the background, only when a checkpoint is asked for.
   */
  start(intervalMs: number = CHECKPOINT_DEFAULTS.intervalMs): void {
    if (intervalMs <= 0 || this.timer) return;
    this.signGrownNow();
    this.timer = setInterval(() => {
      this.signGrown().catch((e: unknown) => {
        process.stderr.write(`links: warning: signing audit checkpoints failed, will retry: ${(e as Error).message}\n`);
      });
    }, intervalMs);
    this.timer.unref?.();
  }

  /** Stops the timer, waits for a pass in flight, then signs what grew since (a clean stop). */
  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
    await this.signGrown();
  }

  /** The scopes whose tree size is not that of their last checkpoint. */
  private grown(): Array<{ villageId: string | null; size: number; signedSize: number | null }> {
    return this.index.scopes().filter((s) => s.size !== s.signedSize);
  }

  /**
   * One pass: a checkpoint for every scope whose tree grew. Passes never overlap; the disk syncs
   * run off the main thread. Resolves to how many checkpoints were signed.
   */
  signGrown(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const grown = this.grown();
    if (grown.length === 0) return 0;
    // Everything indexed so far is in the page cache: after this, on disk too.
    if (existsSync(this.paths.auditFile())) await fdatasyncFile(this.paths.auditFile());
    // A scope signed on demand (latest()) while the disk sync ran already has a newer checkpoint:
    // signing the size read before would look like a tree that lost rows. The next pass takes it.
    const lines = grown.flatMap((s) => (this.signedMeanwhile(s) ? [] : (this.signScope(s.villageId, s.size) ?? [])));
    if (lines.length === 0) return 0;
    lockedAppend(this.paths.checkpointsFile(), lines, { fsync: false });
    await fdatasyncFile(this.paths.checkpointsFile());
    this.index.catchUp();
    return lines.length;
  }

  private signedMeanwhile(s: { villageId: string | null; signedSize: number | null }): boolean {
    return (this.index.latestCheckpoint(s.villageId)?.size ?? null) !== s.signedSize;
  }

  /** The same pass, blocking (at start, before the node listens). */
  signGrownNow(): number {
    const grown = this.grown();
    if (grown.length === 0) return 0;
    syncFile(this.paths.auditFile());
    const lines = grown.flatMap((s) => this.signScope(s.villageId, s.size) ?? []);
    lockedAppend(this.paths.checkpointsFile(), lines);
    this.index.catchUp();
    return lines.length;
  }

  /**
   * The newest checkpoint kept for a scope. A scope never signed yet gets its first one now
   * (signed and kept before it is returned); null if its tree contradicts the last checkpoint.
   */
  latest(scope: string | null): KeptCheckpoint | null {
    const kept = this.index.latestCheckpoint(scope);
    if (kept) return kept;
    syncFile(this.paths.auditFile());
    const line = this.signScope(scope, this.index.size(scope));
    if (line === null) return null;
    lockedAppend(this.paths.checkpointsFile(), [line]);
    return this.index.latestCheckpoint(scope);
  }

  /** The checkpoint line for the scope's tree at `size`, or null when it is inconsistent with the last one. */
  private signScope(scope: string | null, size: number): string | null {
    const root = this.index.rootAt(scope, size);
    const last = this.index.latestCheckpoint(scope);
    if (last) {
      const why = this.inconsistency(scope, last, size, root);
      if (why !== null) {
        this.refuse(scope, why);
        return null;
      }
    }
    const note = signCheckpoint({ origin: checkpointOrigin(this.identity.name, scope), size, rootHash: root, extensions: [] }, this.identity.name, this.identity.seed);
    return toJsonText({ note, root_hash: encodeBase64(root), size, ts: nowIso(), village_id: scope });
  }

  /** Why the tree at `size` is not an extension of the last checkpoint, or null when it is. */
  private inconsistency(scope: string | null, last: KeptCheckpoint, size: number, root: Uint8Array): string | null {
    const file = this.paths.auditFile();
    if (size < last.size) {
      return `its tree has ${size} rows, fewer than the ${last.size} of the checkpoint signed at ${last.ts}: ${file} lost rows`;
    }
    if (size === last.size) {
      return hashesEqual(root, last.root_hash) ? null : `its first ${size} rows are not those of the checkpoint signed at ${last.ts}: ${file} was rewritten`;
    }
    const proof = this.index.consistencyProof(scope, last.size, size);
    if (verifyConsistency(last.size, size, last.root_hash, root, proof)) return null;
    return `its first ${last.size} rows are not those of the checkpoint signed at ${last.ts}: ${file} was rewritten`;
  }

  private refuse(scope: string | null, why: string): void {
    const now = Date.now();
    if (now - (this.lastRefusal.get(scope) ?? 0) < 60_000) return;
    this.lastRefusal.set(scope, now);
    const message = `refusing to sign an audit checkpoint for ${scopeName(scope)}: ${why}. The last good checkpoint is still served; run links audit verify`;
    if (this.opts.onRefusal) this.opts.onRefusal(message, scope);
    else process.stderr.write(`links: ERROR: ${message}\n`);
  }
}

/** fdatasync of a file that may not exist yet (then there is nothing to sync). */
function syncFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return;
    throw storageError(e, `opening ${path}`);
  }
  try {
    fdatasyncSync(fd);
  } catch (e) {
    throw storageError(e, `syncing ${path}`);
  } finally {
    closeSync(fd);
  }
}
