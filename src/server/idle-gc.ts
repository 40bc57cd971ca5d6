/**
 * Gives memory back once a burst of requests is over. The runtime sizes its heap for the host's
 * RAM and collects lazily, so after a burst the node holds tens of MiB it no longer uses; one
 * full collection, once the node has been quiet for a whole interval, returns them. It never
 * runs while requests keep arriving, so ingest does not pay for it.
 */
export class IdleTracker {
  private requests = 0;
  private seen = 0;
  private dirty = false;

  touch(): void {
    this.requests++;
  }

  /** Called once per interval: whether to collect now (requests came, then a quiet interval). */
  tick(): boolean {
    if (this.requests !== this.seen) {
      this.seen = this.requests;
      this.dirty = true;
      return false;
    }
    if (!this.dirty) return false;
    this.dirty = false;
    return true;
  }
}

export interface IdleCollector {
  /** call once per request */
  touch(): void;
  stop(): void;
}

export function startIdleCollector(opts: { intervalMs: number; collect?: () => void }): IdleCollector {
  const collect = opts.collect ?? (() => Bun.gc(true));
  const tracker = new IdleTracker();
  const timer = setInterval(() => {
    if (tracker.tick()) collect();
  }, opts.intervalMs);
  timer.unref?.();
  return { touch: () => tracker.touch(), stop: () => clearInterval(timer) };
}
