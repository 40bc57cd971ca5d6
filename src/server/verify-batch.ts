/**
 * A batch of signatures to verify as one buffer, so handing it to a worker is one transfer, not
 * a structured clone of three arrays per signature. Layout per job: message length (u32, little
 * endian), signature (64 bytes), public key (32 bytes), message.
 */
const HEAD = 4 + 64 + 32;

export interface SignatureJob {
  signature: Uint8Array;
  message: Uint8Array;
  publicKey: Uint8Array;
}

export function packBatch(jobs: readonly SignatureJob[]): ArrayBuffer {
  let size = 0;
  for (const j of jobs) size += HEAD + j.message.length;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const j of jobs) {
    view.setUint32(at, j.message.length, true);
    bytes.set(j.signature, at + 4);
    bytes.set(j.publicKey, at + 68);
    bytes.set(j.message, at + HEAD);
    at += HEAD + j.message.length;
  }
  return bytes.buffer;
}

/** Calls `each` with views into the buffer (no copies), in order. */
export function unpackBatch(buffer: ArrayBuffer, each: (job: SignatureJob) => void): void {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  let at = 0;
  while (at < bytes.length) {
    const length = view.getUint32(at, true);
    each({
      signature: bytes.subarray(at + 4, at + 68),
      publicKey: bytes.subarray(at + 68, at + HEAD),
      message: bytes.subarray(at + HEAD, at + HEAD + length),
    });
    at += HEAD + length;
  }
}
