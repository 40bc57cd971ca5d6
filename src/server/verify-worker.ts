/**
 * A verification worker (see verify-pool.ts): verifies a batch of Ed25519 signatures with the
 * same strict checks and native verify as the main thread, answering one byte per signature.
 */
import { verify } from "../core/ed25519.ts";
import { unpackBatch } from "./verify-batch.ts";

declare const self: Worker;

self.onmessage = (event: MessageEvent<{ buffer: ArrayBuffer; count: number }>) => {
  const verdicts = new Uint8Array(event.data.count);
  let i = 0;
  unpackBatch(event.data.buffer, (job) => {
    verdicts[i++] = verify(job.signature, job.message, job.publicKey) ? 1 : 0;
  });
  self.postMessage(verdicts, [verdicts.buffer]);
};
