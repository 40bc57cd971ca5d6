/**
 * A fixed-window request counter whose memory is bounded whatever the number of distinct keys.
 *
 * Windows are aligned to the clock (minute boundaries by default), so every key's window ends at
 * the same moment. Counters live in an LRU list (lru.ts; a touched key moves to the tail)
 * holding at most `capacity` keys, each as one packed number (window index and count) in a typed
 * array: no object per key.
 *
 * Eviction. A full map drops its least recently used key. If that key's window has already ended
 * the drop loses nothing (stale keys gather at the head, since every touch moves a key to the
 * tail). If its window is still running, its count is "spilled" into a fixed-size max-sketch
 * (`depth` rows of `width` cells; each cell keeps the largest count spilled into it this window)
 * and a key that comes back in the same window starts from the sketch's estimate, the minimum of
 * its cells, which is never below its own spilled count. So eviction never lets a key go past its
 * limit within a window.
 *
 * Trade-offs, documented:
 * - Fixed windows allow a burst of up to 2 x limit across a window boundary (the end of one
 *   window and the start of the next): at most one extra window's worth, never more.
 * - Under a flood of more than `capacity` distinct keys in one window, a new key may share all
 *   of its sketch cells with heavy evicted keys and start above zero: it is limited early (fails
 *   closed) until the window ends. With the default 4 x 65,536 cells (1 MiB, allocated on first
 *   spill) this takes tens of thousands of distinct keys at their limit within one minute.
 * - Memory: the map (capacity keys) plus the sketch. Nothing grows with traffic.
 */
import { NumberLru } from "./lru.ts";

export interface LimiterOptions {
  /** most keys held at once (default 100,000) */
  capacity?: number;
  /** window length in ms (default 60,000) */
  windowMs?: number;
  /** sketch cells per row (a power of two; default 65,536) and rows (default 4) */
  sketchWidth?: number;
  sketchDepth?: number;
  now?: () => number;
}

export interface LimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** seconds until the window ends (at least 1) */
  resetSeconds: number;
}

export const LIMITER_DEFAULTS = { capacity: 100_000, windowMs: 60_000, sketchWidth: 65_536, sketchDepth: 4 } as const;

const COUNT_BITS = 2 ** 21; // counts are capped below this; the window index sits above it
const MAX_COUNT = COUNT_BITS - 1;
/** The largest count a key can hold (a higher limit could never be reached). */
export const LIMITER_MAX_COUNT = MAX_COUNT;

function positiveInt(name: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new RangeError(`rate limiter: ${name} must be an integer from 1 to ${max}, got ${value}`);
  }
  return value;
}

export class RateLimiter {
  readonly capacity: number;
  readonly windowMs: number;
  private readonly now: () => number;
  private readonly width: number;
  private readonly depth: number;
  private readonly counts: NumberLru;
  private sketch: Uint32Array | null = null;
  private sketchWindow = -1;

  constructor(opts: LimiterOptions = {}) {
    this.capacity = positiveInt("capacity", opts.capacity ?? LIMITER_DEFAULTS.capacity);
    this.windowMs = positiveInt("windowMs", opts.windowMs ?? LIMITER_DEFAULTS.windowMs);
    if (this.windowMs < 1000) throw new RangeError("rate limiter: windowMs must be at least 1000");
    this.width = positiveInt("sketchWidth", opts.sketchWidth ?? LIMITER_DEFAULTS.sketchWidth, 2 ** 24);
    this.depth = positiveInt("sketchDepth", opts.sketchDepth ?? LIMITER_DEFAULTS.sketchDepth, 16);
    if ((this.width & (this.width - 1)) !== 0) throw new RangeError("rate limiter: sketchWidth must be a power of two");
    this.now = opts.now ?? Date.now;
    this.counts = new NumberLru(this.capacity);
  }

  /** Keys currently held (never more than capacity). */
  get size(): number {
    return this.counts.size;
  }

  /** Counts one request for key; refused (and not counted) once the window's count is at limit. */
  consume(key: string, limit: number): LimitResult {
    const { window, count, resetSeconds } = this.read(key);
    if (count >= limit) return { allowed: false, limit, remaining: 0, resetSeconds };
    this.store(key, window, count + 1);
    return { allowed: true, limit, remaining: Math.max(0, limit - count - 1), resetSeconds };
  }

  /** Where key stands against limit, without counting anything. */
  peek(key: string, limit: number): LimitResult {
    const { count, resetSeconds } = this.read(key);
    return { allowed: count < limit, limit, remaining: Math.max(0, limit - count), resetSeconds };
  }

  /** Counts `amount` events (default one) for key with no limit attached (e.g. a failed authentication). */
  record(key: string, amount = 1): void {
    if (!Number.isSafeInteger(amount) || amount < 0) throw new RangeError(`rate limiter: amount must be a non-negative integer, got ${amount}`);
    const { window, count } = this.read(key);
    this.store(key, window, count + amount);
  }

  /** Drops every key whose window has ended (they sit at the head). */
  sweep(): number {
    const window = this.windowIndex();
    let dropped = 0;
    while (this.dropHeadIfStale(window)) dropped++;
    return dropped;
  }

  clear(): void {
    this.counts.clear();
    this.sketch = null;
    this.sketchWindow = -1;
  }

  private windowIndex(): number {
    return Math.floor(this.now() / this.windowMs);
  }

  private read(key: string): { window: number; count: number; resetSeconds: number } {
    const now = this.now();
    const window = Math.floor(now / this.windowMs);
    const resetSeconds = Math.max(1, Math.ceil(((window + 1) * this.windowMs - now) / 1000));
    const packed = this.counts.get(key);
    let count: number;
    if (packed === undefined) count = this.estimate(key, window);
    else count = Math.floor(packed / COUNT_BITS) === window ? packed % COUNT_BITS : 0;
    return { window, count, resetSeconds };
  }

  private store(key: string, window: number, count: number): void {
    // Amortized sweeping: a couple of stale heads per write keeps idle keys from piling up.
    for (let i = 0; i < 2 && this.dropHeadIfStale(window); i++);
    if (this.counts.get(key) === undefined && this.counts.size >= this.capacity) this.evictHead(window);
    this.counts.set(key, window * COUNT_BITS + Math.min(count, MAX_COUNT));
  }

  private dropHeadIfStale(window: number): boolean {
    const head = this.counts.oldest();
    if (head === undefined || Math.floor(head[1] / COUNT_BITS) === window) return false;
    this.counts.removeOldest();
    return true;
  }

  private evictHead(window: number): void {
    const head = this.counts.removeOldest();
    if (head === undefined) return;
    const [key, packed] = head;
    if (Math.floor(packed / COUNT_BITS) === window) this.spill(key, packed % COUNT_BITS, window);
  }

  private spill(key: string, count: number, window: number): void {
    if (this.sketch === null) this.sketch = new Uint32Array(this.width * this.depth);
    if (this.sketchWindow !== window) {
      this.sketch.fill(0);
      this.sketchWindow = window;
    }
    const [h1, h2] = hashes(key);
    for (let row = 0; row < this.depth; row++) {
      const cell = row * this.width + (((h1 + row * h2) >>> 0) & (this.width - 1));
      if ((this.sketch[cell] as number) < count) this.sketch[cell] = count;
    }
  }

  private estimate(key: string, window: number): number {
    if (this.sketch === null || this.sketchWindow !== window) return 0;
    const [h1, h2] = hashes(key);
    let min = Number.POSITIVE_INFINITY;
    for (let row = 0; row < this.depth; row++) {
      const cell = row * this.width + (((h1 + row * h2) >>> 0) & (this.width - 1));
      min = Math.min(min, this.sketch[cell] as number);
    }
    return min;
  }
}

/** Two 32-bit FNV-1a style hashes of the key (double hashing picks each row's cell). */
function hashes(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    a = Math.imul(a ^ ch, 0x01000193);
    b = Math.imul(b ^ ch, 0x5bd1e995) ^ (b >>> 15);
  }
  return [a >>> 0, (b | 1) >>> 0];
}
