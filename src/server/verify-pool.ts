/**
 * Ed25519 verification off the event loop. The inbox hands each signature to a small pool of
 * workers (verify-worker.ts); a worker takes every signature queued since it last asked, up to a
 * batch, in one message, so the event loop only copies bytes while the curve arithmetic runs on
 * the other cores. A worker that fails is replaced, and its signatures are checked here instead:
 * a verdict is never lost or guessed. Workers that fail before answering anything (their code
 * cannot load) are not replaced: the pool says so once and checks every signature here.
 */
import type { AsyncSignatureCheck } from "../core/bundle.ts";
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verify } from "../core/ed25519.ts";
import { packBatch, type SignatureJob } from "./verify-batch.ts";

interface Job extends SignatureJob {
  resolve(valid: boolean): void;
}

const VERIFY_POOL_DEFAULTS = { maxBatch: 64 };

/**
 * Where the worker's code is. A compiled `links` holds it as an entry point of its own, found by
 * its path from src/ (the bundle's import.meta.url names the executable, not this file); from
 * source it sits beside this file.
 */
function workerUrl(): string {
  return import.meta.url.startsWith("file:///$bunfs/") ? "./server/verify-worker.ts" : new URL("./verify-worker.ts", import.meta.url).href;
}

export class VerifyPool {
  private readonly idle: Worker[] = [];
  private readonly inFlight = new Map<Worker, Job[]>();
  private readonly proven = new WeakSet<Worker>();
  private queue: Job[] = [];
  private closed = false;
  private broken = false;
  /** signatures checked by a worker, and here (the pool stopped, broken, or a worker failed) */
  readonly stats = { worker: 0, main: 0 };

  constructor(
    readonly size: number,
    private readonly warn: (message: string) => void = (m) => process.stderr.write(`links: warning: ${m}\n`),
    private readonly maxBatch = VERIFY_POOL_DEFAULTS.maxBatch,
    private readonly url = workerUrl(),
  ) {
    for (let i = 0; i < size; i++) this.idle.push(this.spawn());
  }

  readonly verify: AsyncSignatureCheck = (signature, message, publicKey) =>
    new Promise<boolean>((resolve) => {
      // The batch layout has fixed-size fields: a signature or key of another length would spill
      // into the next field there and could read as a valid one. Here it is simply refused.
      const fits = signature.length === SIGNATURE_BYTES && publicKey.length === PUBLIC_KEY_BYTES;
      if (!fits || this.closed || this.broken) return resolve(this.here({ signature, message, publicKey }));
      this.queue.push({ signature, message, publicKey, resolve });
      this.dispatch();
    });

  private here(job: SignatureJob): boolean {
    this.stats.main++;
    return verify(job.signature, job.message, job.publicKey);
  }

  private spawn(): Worker {
    const worker = new Worker(this.url);
    worker.onmessage = (event: MessageEvent<Uint8Array>) => this.answered(worker, event.data);
    worker.onerror = () => this.failed(worker);
    // idle workers must not keep a stopping node alive
    worker.unref();
    return worker;
  }

  private dispatch(): void {
    while (!this.broken && this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop() as Worker;
      const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
      this.queue = this.queue.length <= this.maxBatch ? [] : this.queue.slice(this.maxBatch);
      this.inFlight.set(worker, batch);
      worker.ref();
      const buffer = packBatch(batch);
      worker.postMessage({ buffer, count: batch.length }, [buffer]);
    }
  }

  private answered(worker: Worker, verdicts: Uint8Array): void {
    const batch = this.inFlight.get(worker) ?? [];
    this.inFlight.delete(worker);
    this.proven.add(worker);
    worker.unref();
    this.stats.worker += batch.length;
    batch.forEach((job, i) => job.resolve(verdicts[i] === 1));
    if (this.closed) worker.terminate();
    else this.idle.push(worker);
    this.dispatch();
  }

  private failed(worker: Worker): void {
    const batch = this.inFlight.get(worker) ?? [];
    this.inFlight.delete(worker);
    const at = this.idle.indexOf(worker);
    if (at !== -1) this.idle.splice(at, 1);
    worker.terminate();
    for (const job of batch) job.resolve(this.here(job));
    if (!this.proven.has(worker) && !this.broken) {
      this.broken = true;
      this.warn("the signature verification workers could not start; signatures are checked on the main thread");
      for (const job of this.queue.splice(0)) job.resolve(this.here(job));
      return;
    }
    if (!this.closed && !this.broken) this.idle.push(this.spawn());
    this.dispatch();
  }

  /** Stops the workers; signatures still queued or in flight are checked here. */
  close(): void {
    this.closed = true;
    for (const worker of this.idle) worker.terminate();
    this.idle.length = 0;
    for (const [worker, batch] of this.inFlight) {
      worker.terminate();
      for (const job of batch) job.resolve(this.here(job));
    }
    this.inFlight.clear();
    for (const job of this.queue.splice(0)) job.resolve(this.here(job));
  }
}
