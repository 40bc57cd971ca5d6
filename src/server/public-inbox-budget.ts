/**
 * The storage budget of the public `POST /inbox`, which stores any validly signed bundle from
 * anyone. Two bounds, checked before a body is stored and counted once it is:
 *
 * - per client address (IPv6: its prefix, see client-ip) per UTC day: 429
 *   `public_inbox_quota_exceeded` with `Retry-After` until midnight UTC. Kept in memory, in a
 *   RateLimiter with one-day windows, in KiB (bounded memory whatever the number of addresses; an
 *   address pushed out early comes back with at least what it had used, never less). A restart
 *   forgets it, which only the operator can cause.
 * - in total, over every public bundle stored: 507 `public_inbox_full`, no Retry-After (waiting
 *   does not help; the operator raises the budget or removes bundles). The total survives restarts
 *   because it is counted from the store itself: at start, the sizes of the public bundle files
 *   are summed in the background, a few thousand files per turn of the event loop, so the node
 *   answers meanwhile. Until that count is done only the bytes accepted since the start (and the
 *   per-address budget) count; files removed by hand are noticed at the next start.
 */
import { opendirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BUNDLE_ID_RE } from "../core/bundle.ts";
import { LinksError } from "../core/errors.ts";
import type { DataPaths } from "../storage/paths.ts";
import { LIMITER_MAX_COUNT, RateLimiter } from "./middleware/rate-limit/limiter.ts";

export const PUBLIC_INBOX_DEFAULTS = {
  enabled: true,
  perAddressPerDayBytes: 32 * 1024 ** 2,
  totalBytes: 1024 ** 3,
  /** addresses whose daily use is held at once */
  capacity: 100_000,
} as const;

const DAY_MS = 86_400_000;
const KIB = 1024;
/** files stat'ed per turn of the event loop while the store is counted */
const SCAN_CHUNK = 2000;

export interface PublicInboxBudgetOptions {
  paths: DataPaths;
  perAddressPerDayBytes: number;
  totalBytes: number;
  now: () => number;
  capacity?: number;
}

export class PublicInboxBudget {
  private readonly daily: RateLimiter;
  private readonly dailyKib: number;
  private readonly totalBytes: number;
  private readonly paths: DataPaths;
  private stored = 0; // counted from the store at start
  private added = 0; // accepted since
  private counting: Promise<void> | null = null;
  private stopped = false;

  constructor(opts: PublicInboxBudgetOptions) {
    if (!Number.isSafeInteger(opts.perAddressPerDayBytes) || opts.perAddressPerDayBytes < KIB || opts.perAddressPerDayBytes / KIB > LIMITER_MAX_COUNT) {
      throw new LinksError("invalid_argument", `the public inbox's per-address budget must be from 1 KiB to 2 GiB a day, got ${opts.perAddressPerDayBytes} bytes`);
    }
    if (!Number.isSafeInteger(opts.totalBytes) || opts.totalBytes < 1) {
      throw new LinksError("invalid_argument", `the public inbox's total budget must be a positive number of bytes, got ${opts.totalBytes}`);
    }
    this.paths = opts.paths;
    this.dailyKib = Math.floor(opts.perAddressPerDayBytes / KIB);
    this.totalBytes = opts.totalBytes;
    this.daily = new RateLimiter({ capacity: opts.capacity ?? PUBLIC_INBOX_DEFAULTS.capacity, windowMs: DAY_MS, now: opts.now });
  }

  /** Starts counting the stored public bundles in the background (once). */
  start(): Promise<void> {
    this.counting ??= this.countStore();
    return this.counting;
  }

  /** Bytes of public bundles as far as known: counted at start plus accepted since. */
  get usedBytes(): number {
    return this.stored + this.added;
  }

  /** Refuses (throws) when storing `bytes` more for `group` would pass either bound. */
  check(group: string, bytes: number, retryAfter: (seconds: number) => void): void {
    if (this.usedBytes + bytes > this.totalBytes) {
      throw new LinksError(
        "public_inbox_full",
        `the public inbox's storage budget (${this.totalBytes} bytes in all) is used up; this node takes no more public bundles (village inboxes are not affected)`,
      );
    }
    const use = this.daily.peek(group, this.dailyKib);
    const usedKib = this.dailyKib - use.remaining;
    if (usedKib + kib(bytes) > this.dailyKib) {
      retryAfter(use.resetSeconds);
      throw new LinksError(
        "public_inbox_quota_exceeded",
        `this address has stored ${usedKib} KiB of public bundles today, and this one (${kib(bytes)} KiB) would pass the daily budget of ${this.dailyKib} KiB; retry in ${use.resetSeconds} s (after midnight UTC)`,
      );
    }
  }

  /** Counts a stored bundle against both bounds. */
  record(group: string, bytes: number): void {
    this.added += bytes;
    this.daily.record(group, kib(bytes));
  }

  close(): void {
    this.stopped = true;
    this.daily.clear();
  }

  private async countStore(): Promise<void> {
    // public bundles sit directly in store/bundles (village bundles in its subfolders)
    const dir = this.paths.bundlesDir();
    let handle;
    try {
      handle = opendirSync(dir);
    } catch {
      return; // no public bundle yet
    }
    try {
      for (;;) {
        for (let i = 0; i < SCAN_CHUNK; i++) {
          const entry = handle.readSync();
          if (entry === null) return;
          if (!entry.isFile() || !entry.name.endsWith(".json") || !BUNDLE_ID_RE.test(entry.name.slice(0, -5))) continue;
          try {
            this.stored += statSync(join(dir, entry.name)).size;
          } catch {
            // removed meanwhile
          }
        }
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.stopped) return;
      }
    } finally {
      handle.closeSync();
    }
  }
}

function kib(bytes: number): number {
  return Math.ceil(bytes / KIB);
}
