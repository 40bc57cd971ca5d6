/**
 * A verification worker (see verify-pool.ts): verifies a batch of Ed25519 signatures with the
 * same strict checks and native verify as the main thread, answering one byte per signature.
 */
import { verify } from "../core/ed25519.ts";

declare const self: Worker;

self.onmessage = (event: MessageEvent<Array<[Uint8Array, Uint8Array, Uint8Array]>>) => {
  const jobs = event.data;
  const verdicts = new Uint8Array(jobs.length);
  for (let i = 0; i < jobs.length; i++) {
    const [signature, message, publicKey] = jobs[i] as [Uint8Array, Uint8Array, Uint8Array];
    verdicts[i] = verify(signature, message, publicKey) ? 1 : 0;
  }
  self.postMessage(verdicts, [verdicts.buffer]);
};
