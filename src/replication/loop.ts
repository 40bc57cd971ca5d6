/**
 * The background sync `links serve --sync-interval` runs: one loop per configured peer (OPA's
 * bundle plugin), each running a pass, then waiting its interval (with jitter, so peers do not
 * march in step), or after a failure a backoff that doubles per failure in a row (equal jitter,
 * capped), never less than the peer's Retry-After. A peer that still has pages to give is asked
 * again soon. The set of peers is read again from replication/peers.json every few seconds, so
 * `links peers add` and `remove` take effect on a running node.
 *
 * The passes share the node's group commit, yield to the event loop between bundles, and stop at
 * their next step when the node stops.
 */
import type { GroupCommit } from "../storage/group-commit.ts";
import type { DataPaths } from "../storage/paths.ts";
import type { TopLevelOwners } from "../storage/store.ts";
import { SYNC_DEFAULTS, syncPeer, type PassReport, type SyncContext } from "./pass.ts";
import { listPeers, type Peer } from "./peers.ts";

export const LOOP_DEFAULTS = {
  /** the longest wait after failures in a row (or the interval, if longer) */
  maxBackoffMs: 10 * 60_000,
  /** how soon a pass follows one that ended with pages left */
  moreSoonMs: 200,
  /** how often peers.json is read again */
  reconcileMs: 5_000,
};

/**
 * How long to wait before the next pass: the interval with +-10% jitter after a success; after
 * `failures` failed passes in a row, a delay drawn from [cap/2, cap] with cap = interval *
 * 2^(failures-1) bounded by maxBackoffMs (each range starts where the one before ended, until
 * the cap); never less than the peer's Retry-After.
 */
export function nextDelayMs(o: {
  intervalMs: number;
  failures: number;
  retryAfterMs: number | null;
  caughtUp: boolean;
  maxBackoffMs?: number;
  random?: () => number;
}): number {
  const random = o.random ?? Math.random;
  let delay: number;
  if (o.failures === 0) {
    delay = o.caughtUp ? o.intervalMs * (0.9 + 0.2 * random()) : Math.min(LOOP_DEFAULTS.moreSoonMs, o.intervalMs);
  } else {
    const ceiling = Math.max(o.maxBackoffMs ?? LOOP_DEFAULTS.maxBackoffMs, o.intervalMs);
    const cap = Math.min(ceiling, o.intervalMs * 2 ** Math.min(o.failures - 1, 40));
    delay = cap / 2 + (cap / 2) * random();
  }
  return Math.round(Math.max(delay, o.retryAfterMs ?? 0));
}

export interface SyncLoopOptions {
  paths: DataPaths;
  commit?: GroupCommit | undefined;
  /** the node's claims database */
  owners?: TopLevelOwners | undefined;
  intervalMs?: number;
  /** one object per event worth an operator's eye (a pass that brought bundles, a failure, a recovery) */
  log?: (line: object) => void;
  /** overrides for the passes (page size, timeouts) */
  pass?: Pick<SyncContext, "pageLimit" | "maxPagesPerPass" | "timeoutMs">;
}

const keyOf = (p: Pick<Peer, "village" | "url">): string => `${p.village}\n${p.url}`;

class PeerLoop {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private failing = false;

  constructor(
    private readonly loop: SyncLoop,
    readonly peer: Pick<Peer, "village" | "url">,
  ) {}

  schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.run().finally(() => {
        this.running = null;
      });
    }, ms);
  }

  private async run(): Promise<void> {
    let result: PassReport;
    try {
      result = await syncPeer(this.loop.context, this.peer);
    } catch (e) {
      // the pass records its own failures; this is one it could not even record (a broken state file)
      this.loop.emit({ event: "sync_error", village: this.peer.village, peer: this.peer.url, detail: (e as Error).message });
      this.schedule(this.loop.delay({ failures: 1, retryAfterMs: null, caughtUp: false }));
      return;
    }
    if (result.status === "removed" || result.status === "stopped") return;
    this.report(result);
    const fallback = this.loop.delay({ failures: 0, retryAfterMs: null, caughtUp: true });
    this.schedule(result.next_delay_ms ?? fallback);
  }

  private report(r: PassReport): void {
    const where = { village: r.village, peer: r.url };
    if (r.status === "failed") {
      const level = r.code === "node_key_changed" || r.code === "audit_inconsistent" ? "error" : "warning";
      this.loop.emit({ level, event: "sync_failed", ...where, code: r.code, detail: r.detail, retry_in_ms: r.next_delay_ms });
      this.failing = true;
      return;
    }
    if (r.status === "ok" && (this.failing || r.pulled > 0)) {
      this.loop.emit({ event: this.failing ? "sync_recovered" : "sync", ...where, pulled: r.pulled, accepted: r.accepted, quarantined: r.quarantined, drift: r.drift });
    }
    if (r.status === "ok") this.failing = false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}

export class SyncLoop {
  private readonly loops = new Map<string, PeerLoop>();
  private readonly abort = new AbortController();
  private readonly intervalMs: number;
  private reconciler: ReturnType<typeof setInterval> | null = null;
  private lastProblem = "";
  readonly context: SyncContext;

  constructor(private readonly opts: SyncLoopOptions) {
    this.intervalMs = opts.intervalMs ?? SYNC_DEFAULTS.intervalMs;
    this.context = {
      paths: opts.paths,
      commit: opts.commit,
      owners: opts.owners,
      signal: this.abort.signal,
      ...opts.pass,
      delayAfter: (o) => this.delay(o),
    };
  }

  delay(o: { failures: number; retryAfterMs: number | null; caughtUp: boolean }): number {
    return nextDelayMs({ intervalMs: this.intervalMs, ...o });
  }

  emit(line: object): void {
    this.opts.log?.({ ts: new Date().toISOString(), ...line });
  }

  start(): void {
    this.reconcile();
    this.reconciler = setInterval(() => this.reconcile(), Math.min(LOOP_DEFAULTS.reconcileMs, this.intervalMs));
  }

  /** Starts a loop for each new peer (its first pass spread over a short while), stops removed ones. */
  private reconcile(): void {
    let peers: Peer[];
    try {
      peers = listPeers(this.opts.paths);
      this.lastProblem = "";
    } catch (e) {
      const problem = (e as Error).message;
      if (problem !== this.lastProblem) this.emit({ level: "warning", event: "peers_unreadable", detail: problem });
      this.lastProblem = problem;
      return;
    }
    const wanted = new Set(peers.map(keyOf));
    for (const [key, loop] of this.loops) {
      if (wanted.has(key)) continue;
      this.loops.delete(key);
      void loop.stop();
    }
    for (const peer of peers) {
      if (this.loops.has(keyOf(peer))) continue;
      const loop = new PeerLoop(this, peer);
      this.loops.set(keyOf(peer), loop);
      loop.schedule(Math.random() * Math.min(this.intervalMs, 1000));
    }
  }

  /** Stops every loop: passes end at their next step; resolves once none is running. */
  async stop(): Promise<void> {
    if (this.reconciler) clearInterval(this.reconciler);
    this.reconciler = null;
    this.abort.abort();
    await Promise.all([...this.loops.values()].map((l) => l.stop()));
    this.loops.clear();
  }
}

export function startSyncLoop(opts: SyncLoopOptions): SyncLoop {
  const loop = new SyncLoop(opts);
  loop.start();
  return loop;
}
