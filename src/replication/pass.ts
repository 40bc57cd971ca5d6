/**
 * One sync pass with one peer of a village, under the peer's lock (one pass per peer at a time,
 * across processes: `links peers sync` beside a running node finds the lock held and skips):
 *
 * 1. audit: the peer's node key and its checkpoint of the village's audit log (peer-log.ts);
 * 2. policy: exactly the verified `policy pull --apply` (a peer can never push an unsigned or
 *    unquorate policy). A peer at an older policy than ours is "ahead" of us, not an error: its
 *    bundles still go through our policy;
 * 3. bundles: page after page of the peer's feed from the stored cursor, each page downloaded,
 *    checked (feed.ts), then activated: every bundle through the village's own inbox pipeline
 *    (verify, policy, quarantine, duplicate, store, audit), and only once all of a page's bundles
 *    are durable does the cursor move past them (one atomic write). A bundle the pipeline refuses
 *    (bad signature, altered, malformed) is counted against the peer and stops the pass with the
 *    cursor before its page: it is asked for again on the next pass, and an honest peer supplies
 *    the real one.
 *
 * The peer's status record is written at every step (state.ts). Trust comes from signatures
 * (bundles, policy updates, checkpoints), never from the transport or the peer.
 */
import { pullPolicy } from "../client/policy-pull.ts";
import { toJsonText } from "../core/canonical.ts";
import { nowIso } from "../core/datetime.ts";
import { isLinksError, LinksError } from "../core/errors.ts";
import { withOwners } from "../storage/claims-db.ts";
import { withFileLockIfFree } from "../storage/flock.ts";
import type { GroupCommit } from "../storage/group-commit.ts";
import { submitToVillage } from "../storage/inbox.ts";
import type { DataPaths } from "../storage/paths.ts";
import type { TopLevelOwners } from "../storage/store.ts";
import { readVillage } from "../storage/villages.ts";
import { checkPage, downloadPage, type PageItem } from "./feed.ts";
import { checkPeerLog } from "./peer-log.ts";
import { PeerRemote } from "./peer-remote.ts";
import { findPeer, peerId, type Peer } from "./peers.ts";
import { readPeerState, StatusRecorder, type Drift, type PeerState } from "./state.ts";
import { villageHolds } from "./village-bundles.ts";

export const SYNC_DEFAULTS = {
  /** how often a running node syncs with each peer (serve --sync-interval) */
  intervalMs: 30_000,
  /** bundles asked for per page (a page is parsed in one go: kept small so that never takes long) */
  pageLimit: 50,
  /** pages per pass; a peer with more waits for the next pass (which comes soon) */
  maxPagesPerPass: 200,
  /** each request to the peer */
  timeoutMs: 15_000,
};

export interface SyncContext {
  paths: DataPaths;
  /** the claims database (serve: the node's); without it, one is opened for the pass */
  owners?: TopLevelOwners | undefined;
  /** the node's group commit (serve); without it each bundle is made durable on its own (CLI) */
  commit?: GroupCommit | undefined;
  /** stops a pass at its next step (the node is stopping) */
  signal?: AbortSignal | undefined;
  pageLimit?: number;
  maxPagesPerPass?: number;
  timeoutMs?: number;
  /** when the next pass should come, recorded with the pass's last write (the loop's schedule) */
  delayAfter?: (outcome: { failures: number; retryAfterMs: number | null; caughtUp: boolean }) => number;
}

export interface PassTally {
  pulled: number;
  accepted: number;
  quarantined: number;
  refused: number;
}

export interface PassReport extends PassTally {
  village: string;
  url: string;
  /** in_progress: another pass holds the peer; removed: the peer is no longer configured; stopped: the node is stopping */
  status: "ok" | "failed" | "in_progress" | "removed" | "stopped";
  drift: Drift | null;
  /** the pass reached the end of the peer's feed */
  caught_up: boolean;
  code: string | null;
  detail: string | null;
  /** the peer asked us to wait this long (Retry-After) */
  retry_after_ms: number | null;
  /** when the loop tries again (null outside the loop) */
  next_delay_ms: number | null;
}

function report(peer: Pick<Peer, "village" | "url">, status: PassReport["status"], extra: Partial<PassReport> = {}): PassReport {
  return {
    village: peer.village,
    url: peer.url,
    status,
    pulled: 0,
    accepted: 0,
    quarantined: 0,
    refused: 0,
    drift: null,
    caught_up: false,
    code: null,
    detail: null,
    retry_after_ms: null,
    next_delay_ms: null,
    ...extra,
  };
}

class Stopped extends Error {}

function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Stopped();
}

/** Waits for `work` unless the node stops first (the work is then left to finish on its own). */
async function unlessStopped<T>(signal: AbortSignal | undefined, work: Promise<T>): Promise<T> {
  if (!signal) return work;
  throwIfStopped(signal);
  work.catch(() => {});
  return await new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Stopped());
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Runs one pass with the peer, or reports in_progress at once if another pass holds it. */
export async function syncPeer(ctx: SyncContext, peer: Pick<Peer, "village" | "url">): Promise<PassReport> {
  const lock = ctx.paths.peerLockFile(peer.village, peerId(peer.url));
  const held = await withFileLockIfFree(lock, () => withOwners(ctx.paths, ctx.owners, (owners) => runPass({ ...ctx, owners }, peer)));
  return held.held ? held.value : report(peer, "in_progress");
}

async function runPass(ctx: SyncContext & { owners: TopLevelOwners }, wanted: Pick<Peer, "village" | "url">): Promise<PassReport> {
  // read under the lock: the peer may have been removed, or re-added with another token
  const peer = findPeer(ctx.paths, wanted.village, wanted.url);
  if (peer === null) return report(wanted, "removed");
  const vid = peer.village;
  const recorder = new StatusRecorder(ctx.paths, readPeerState(ctx.paths, peer));
  const remote = new PeerRemote(peer, { timeoutMs: ctx.timeoutMs ?? SYNC_DEFAULTS.timeoutMs });
  const tally: PassTally = { pulled: 0, accepted: 0, quarantined: 0, refused: 0 };
  const nextAttempt = (failures: number, caughtUp: boolean): { next_attempt: string | null; ms: number | null } => {
    const ms = ctx.delayAfter?.({ failures, retryAfterMs: remote.retryAfterMs, caughtUp }) ?? null;
    return { next_attempt: ms === null ? null : new Date(Date.now() + ms).toISOString(), ms };
  };
  try {
    await recorder.update({ step: "audit", last_attempt: nowIso() });
    const audit = await unlessStopped(ctx.signal, checkPeerLog(remote, vid, recorder.state.node_key, recorder.state.checkpoint));
    await recorder.update(
      audit.status === "checked"
        ? { step: "policy", audit: "checked", node_key: audit.nodeKey, checkpoint: audit.checkpoint }
        : { step: "policy", audit: "unavailable" },
    );

    const policy = await unlessStopped(ctx.signal, policyStep(remote, ctx.paths, vid));
    await recorder.update({ step: "bundles", local_head: policy.localHead, remote_head: policy.remoteHead });

    const caughtUp = await bundlesStep(ctx, remote, recorder, tally);
    const drift: Drift = policy.drift === "ahead" ? "ahead" : caughtUp ? "aligned" : "behind";
    const next = nextAttempt(0, caughtUp);
    await recorder.succeed({ drift, next_attempt: next.next_attempt });
    return report(peer, "ok", { ...tally, drift, caught_up: caughtUp, next_delay_ms: next.ms });
  } catch (e) {
    if (e instanceof Stopped) {
      await recorder.update({ step: "idle" });
      return report(peer, "stopped", { ...tally, drift: recorder.state.drift });
    }
    const error = isLinksError(e) ? e : new LinksError("internal_error", (e as Error)?.message ?? String(e), { cause: e });
    const drift = driftAfter(error, recorder.state);
    const next = nextAttempt(recorder.state.failures + 1, false);
    await recorder.fail(error.code, error.detail, { drift, next_attempt: next.next_attempt });
    return report(peer, "failed", {
      ...tally,
      drift,
      code: error.code,
      detail: error.detail,
      retry_after_ms: remote.retryAfterMs,
      next_delay_ms: next.ms,
    });
  }
}

/** A history that contradicts ours (or the peer's own earlier one) is divergence; otherwise drift stands. */
function driftAfter(error: LinksError, state: PeerState): Drift {
  if (error.code === "policy_divergence" || error.code === "audit_inconsistent" || error.code === "node_key_changed") return "diverged";
  return state.drift;
}

async function policyStep(remote: PeerRemote, paths: DataPaths, vid: string): Promise<{ localHead: string; remoteHead: string; drift: "aligned" | "ahead" }> {
  // A peer at a policy we had before ours is behind us, not an error: it catches up by pulling
  // from us. Any other rollback (an update dated before our newest one, a replay) stays refused.
  const pulled = await pullPolicy(remote, paths, vid, { apply: true, olderRemote: "report" });
  const head = pulled.status === "applied" ? pulled.remote_head : pulled.local_head;
  return { localHead: head, remoteHead: pulled.remote_head, drift: pulled.status === "older" ? "ahead" : "aligned" };
}

/** Pages of the peer's feed until it has no more (true) or the pass used its pages (false). */
async function bundlesStep(ctx: SyncContext & { owners: TopLevelOwners }, remote: PeerRemote, recorder: StatusRecorder, tally: PassTally): Promise<boolean> {
  const vid = recorder.state.village;
  const limit = ctx.pageLimit ?? SYNC_DEFAULTS.pageLimit;
  const seen = new Set<string>();
  let restarted = false;
  for (let pages = 0; pages < (ctx.maxPagesPerPass ?? SYNC_DEFAULTS.maxPagesPerPass); pages++) {
    const { cursor, etag } = recorder.state;
    let download;
    try {
      download = await unlessStopped(ctx.signal, downloadPage(remote, vid, cursor, etag, limit));
    } catch (e) {
      // The peer's log is shorter than our cursor (restored from a backup, say): start over;
      // what we already hold is recognised by id and costs nothing.
      if (!isLinksError(e) || e.code !== "invalid_cursor" || cursor === null || restarted) throw e;
      restarted = true;
      await recorder.update({ cursor: null, etag: null });
      continue;
    }
    if (download.status === "not_modified") return true;
    const page = checkPage(download.body, limit);
    if (page.items.length === 0 && page.nextCursor === null) {
      await recorder.update({ etag: download.etag });
      return true;
    }
    const next = page.nextCursor as string;
    if (next === cursor || seen.has(next)) {
      throw new LinksError("remote_error", "the peer's bundle feed sent a cursor it had already sent in this pass (a replayed page)");
    }
    seen.add(next);
    const activated = await activatePage(ctx, vid, page.items, `pull:${remote.baseUrl}`);
    tally.pulled += activated.pulled;
    tally.accepted += activated.accepted;
    tally.quarantined += activated.quarantined;
    tally.refused += activated.refused;
    const s = recorder.state;
    const counters = {
      bundles_pulled: s.bundles_pulled + activated.pulled,
      bundles_accepted: s.bundles_accepted + activated.accepted,
      bundles_quarantined: s.bundles_quarantined + activated.quarantined,
      bundles_refused: s.bundles_refused + activated.refused,
    };
    if (activated.failure !== null || ctx.signal?.aborted) {
      // what was stored is counted; the cursor stays before the page, which comes again
      await recorder.update(counters);
      throw activated.failure ?? new Stopped();
    }
    // every bundle of the page is durable here (or was refused by nothing): the cursor may pass them
    await recorder.update({ ...counters, cursor: next, etag: null });
    throwIfStopped(ctx.signal);
  }
  return false;
}

interface Activated extends PassTally {
  /** why the cursor cannot pass this page: the first refused bundle, or a local failure */
  failure: LinksError | null;
}

/** Whether a pipeline error is the bundle's fault (refused) rather than this node's (disk, village gone). */
function isBundleFault(e: unknown): e is LinksError {
  return isLinksError(e) && e.status < 500 && e.code !== "village_not_found";
}

/**
 * Every bundle of the page through the village's pipeline. Bundles already held (by id) are not
 * parsed again; the others are submitted one by one, yielding to the event loop between them, and
 * are made durable together (the group commit batches them).
 */
async function activatePage(ctx: SyncContext & { owners: TopLevelOwners }, vid: string, items: PageItem[], actor: string): Promise<Activated> {
  const out: Activated = { pulled: items.length, accepted: 0, quarantined: 0, refused: 0, failure: null };
  // read once per page, not once per bundle: a policy changed meanwhile applies from the next page
  const village = readVillage(ctx.paths, vid);
  const encoder = new TextEncoder();
  const ids = new Set<string>();
  const pending: Array<Promise<string>> = [];
  for (const item of items) {
    if (item.claimedId !== null) {
      if (ids.has(item.claimedId) || villageHolds(ctx.paths, vid, item.claimedId, ctx.owners)) continue;
      ids.add(item.claimedId);
    }
    await yieldToLoop();
    if (ctx.signal?.aborted) break;
    const raw = encoder.encode(toJsonText(item.bundle));
    pending.push(
      submitToVillage(ctx.paths, vid, raw, actor, { commit: ctx.commit, owners: ctx.owners, village }).then(
        (r) => r.status,
        (e: unknown) => {
          const error = isLinksError(e) ? e : new LinksError("internal_error", (e as Error)?.message ?? String(e), { cause: e });
          if (isBundleFault(error)) {
            out.refused++;
            const which = item.claimedId === null ? "a bundle" : `bundle ${item.claimedId}`;
            out.failure ??= new LinksError(error.code, `${which} from the peer was refused: ${error.detail}`);
          } else {
            out.failure = error;
          }
          return "failed";
        },
      ),
    );
  }
  for (const status of await Promise.all(pending)) {
    if (status === "accepted") out.accepted++;
    else if (status === "quarantined") out.quarantined++;
  }
  return out;
}
