/**
 * The node's own metric families: HTTP requests and latency by route pattern, inbox decisions by
 * village and code, group commit (batch sizes, fsync latency, checkpoints), rate-limit refusals,
 * villages and held bundles, and the process. Everything is read from plain stats at scrape time;
 * what several families share (the villages, the peers' records) is read once per scrape.
 */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import pkg from "../../package.json" with { type: "json" };
import { LinksError } from "../core/errors.ts";
import type { GroupCommitStats } from "../storage/group-commit.ts";
import type { InboxResult } from "../storage/inbox.ts";
import { heldCount } from "../storage/quarantine.ts";
import type { DataPaths } from "../storage/paths.ts";
import { listPeers } from "../replication/peers.ts";
import { DRIFTS, readPeerState, type PeerState } from "../replication/state.ts";
import { listVillageIds } from "../storage/villages.ts";
import type { AppEnv } from "./context.ts";
import { LabeledCounter, LabeledHistogram, MetricsRegistry } from "./metrics.ts";
import type { RefusalTally } from "./middleware/rate-limit/index.ts";
import type { RouteTable } from "./route-table.ts";

const LATENCY_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** The route label of a request that matched no registered route. */
export const UNMATCHED = "(unmatched)";

export interface NodeMetricsOptions {
  paths: DataPaths;
  routes: RouteTable;
  commit: GroupCommitStats;
  /** what the inbox's verification workers counted (null: the node verifies on the event loop) */
  verify: { worker: number; main: number } | null;
}

export class NodeMetrics {
  private readonly registry = new MetricsRegistry();
  private readonly httpRequests = new LabeledCounter(["route", "method", "status"]);
  private readonly httpLatency = new LabeledHistogram(["route"], LATENCY_BOUNDS);
  private readonly inboxDecisions = new LabeledCounter(["village", "decision", "code"]);
  /** handed to the rate-limit middleware, one tally per limit */
  readonly refusals: Readonly<Record<"member" | "public" | "auth_failures", RefusalTally>> = {
    member: { refused: 0 },
    public: { refused: 0 },
    auth_failures: { refused: 0 },
  };
  /** what the families of the scrape under way share, read at its first use; null between scrapes */
  private scrape: { villages?: string[]; peers?: Array<{ labels: { village: string; peer: string }; state: PeerState }> } | null = null;

  constructor(private readonly opts: NodeMetricsOptions) {
    const r = this.registry;
    const started = Date.now();
    r.gauge("links_build_info", "The running links version", () => [{ labels: { version: pkg.version }, value: 1 }]);
    r.counter("links_http_requests_total", "HTTP requests answered, by route pattern, method and status", () => this.httpRequests.samples());
    r.histogram("links_http_request_duration_seconds", "Time to answer an HTTP request, by route pattern", () => this.httpLatency.samples());
    r.counter(
      "links_inbox_decisions_total",
      "Village inbox decisions by village, decision (accepted, duplicate, quarantined, rejected) and code (none for accepted and duplicate)",
      () => this.inboxDecisions.samples(),
    );
    r.histogram("links_group_commit_batch_size", "Bundles made durable by one write-ahead log append and fdatasync", () => [
      { histogram: opts.commit.batchSize.snapshot() },
    ]);
    r.histogram("links_group_commit_fsync_seconds", "Time of one write-ahead log fdatasync", () => [{ histogram: opts.commit.fsyncSeconds.snapshot() }]);
    r.counter("links_group_commit_checkpoints_total", "Checkpoints of the write-ahead log, by result", () => [
      { labels: { result: "ok" }, value: opts.commit.checkpoints },
      { labels: { result: "failed" }, value: opts.commit.checkpointFailures },
    ]);
    r.gauge("links_group_commit_last_checkpoint_timestamp_seconds", "When the last checkpoint finished (0: none yet)", () => [
      { value: (opts.commit.lastCheckpointMs ?? 0) / 1000 },
    ]);
    r.counter("links_inbox_signatures_verified_total", "Inbox signatures checked, by where: a verification worker, or the event loop", () =>
      opts.verify ? [{ labels: { where: "worker" }, value: opts.verify.worker }, { labels: { where: "main" }, value: opts.verify.main }] : [],
    );
    r.counter("links_rate_limit_refusals_total", "Requests refused with 429, by limit (member, public, auth_failures)", () =>
      Object.entries(this.refusals).map(([limit, t]) => ({ labels: { limit }, value: t.refused })),
    );
    r.gauge("links_villages", "Villages in the data directory", () => [{ value: this.villages().length }]);
    r.gauge("links_quarantine_held", "Bundles held in quarantine, by village", () => this.heldByVillage());
    r.counter(
      "links_peer_bundles_total",
      "Bundles received from each peer of a village by sync, and what this node's pipeline made of them (outcome pulled, accepted, quarantined, refused)",
      () => this.peerStates().flatMap(({ labels, state }) => [
        { labels: { ...labels, outcome: "pulled" }, value: state.bundles_pulled },
        { labels: { ...labels, outcome: "accepted" }, value: state.bundles_accepted },
        { labels: { ...labels, outcome: "quarantined" }, value: state.bundles_quarantined },
        { labels: { ...labels, outcome: "refused" }, value: state.bundles_refused },
      ]),
    );
    r.gauge("links_peer_last_success_timestamp_seconds", "When the last sync pass with each peer went through (0: never)", () =>
      this.peerStates().map(({ labels, state }) => ({ labels, value: state.last_success === null ? 0 : Date.parse(state.last_success) / 1000 })),
    );
    r.gauge("links_peer_failures", "Failed sync passes with each peer since its last success", () =>
      this.peerStates().map(({ labels, state }) => ({ labels, value: state.failures })),
    );
    r.gauge("links_peer_drift", "Where each peer stands: 1 for its current drift (aligned, behind, ahead, diverged), 0 for the others", () =>
      this.peerStates().flatMap(({ labels, state }) => DRIFTS.map((drift) => ({ labels: { ...labels, drift }, value: state.drift === drift ? 1 : 0 }))),
    );
    r.gauge("process_start_time_seconds", "Start time of the process since the epoch", () => [{ value: Math.floor(started / 1000) }]);
    r.gauge("process_resident_memory_bytes", "Resident memory of the process", () => [{ value: process.memoryUsage().rss }]);
    r.gauge("links_heap_used_bytes", "JavaScript heap in use", () => [{ value: process.memoryUsage().heapUsed }]);
    r.counter("process_cpu_seconds_total", "CPU time of the process, user and system", () => {
      const u = process.cpuUsage();
      return [{ value: (u.user + u.system) / 1e6 }];
    });
  }

  /** The exposition text: every family, from one read of what they share. */
  render(): string {
    this.scrape = {};
    try {
      return this.registry.render();
    } finally {
      this.scrape = null;
    }
  }

  /** Counts every answer by route pattern, method and status, and times it. Goes first. */
  http(): MiddlewareHandler<AppEnv> {
    return async (c, next) => {
      const started = performance.now();
      try {
        await next();
      } finally {
        const pattern = routePath(c, -1);
        const route = this.opts.routes.hasPattern(pattern) ? pattern : UNMATCHED;
        const method = METHODS.has(c.req.method) ? c.req.method : "other";
        this.httpRequests.inc({ route, method, status: String(c.res.status) });
        this.httpLatency.observe({ route }, (performance.now() - started) / 1000);
      }
    };
  }

  /** Records how the village inbox decided (the village exists: route-ids checked it). */
  async inbox(villageId: string, decision: Promise<InboxResult>): Promise<InboxResult> {
    let result: InboxResult;
    try {
      result = await decision;
    } catch (e) {
      const code = e instanceof LinksError ? e.code : "internal_error";
      this.inboxDecisions.inc({ village: villageId, decision: "rejected", code });
      throw e;
    }
    const code = result.status === "quarantined" ? result.code : "none";
    this.inboxDecisions.inc({ village: villageId, decision: result.status, code });
    return result;
  }

  /** What the sync passes recorded for each configured peer (read, never written, here). */
  private peerStates(): Array<{ labels: { village: string; peer: string }; state: PeerState }> {
    if (this.scrape?.peers) return this.scrape.peers;
    let peers: Array<{ labels: { village: string; peer: string }; state: PeerState }>;
    try {
      peers = listPeers(this.opts.paths).map((p) => ({ labels: { village: p.village, peer: p.url }, state: readPeerState(this.opts.paths, p) }));
    } catch {
      // a damaged peers file or record: `links peers status` names it; the metrics go on without
      peers = [];
    }
    if (this.scrape) this.scrape.peers = peers;
    return peers;
  }

  private villages(): string[] {
    if (this.scrape?.villages) return this.scrape.villages;
    const villages = listVillageIds(this.opts.paths);
    if (this.scrape) this.scrape.villages = villages;
    return villages;
  }

  private heldByVillage(): { labels: { village: string }; value: number }[] {
    return this.villages().map((village) => ({ labels: { village }, value: heldCount(this.opts.paths, village) }));
  }
}
