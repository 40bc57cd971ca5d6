/**
 * Reads a file given from outside (a path an operator or an attacker named) without trusting
 * what it claims to be: a device such as /dev/zero never ends and a pipe has no size, so the
 * bytes are counted as they come and the read stops one byte past the limit.
 */
import { closeSync, openSync, readSync } from "node:fs";

const CHUNK = 1 << 16;

export interface BoundedRead {
  /** the whole file; empty when `over` */
  bytes: Uint8Array;
  /** the file holds more than maxBytes */
  over: boolean;
}

/** The bytes of path (or of an open descriptor), at most maxBytes of them. */
export function readBounded(source: string | number, maxBytes: number): BoundedRead {
  const fd = typeof source === "number" ? source : openSync(source, "r");
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(CHUNK, maxBytes + 1 - total);
      const buf = Buffer.allocUnsafe(want);
      const n = readSync(fd, buf, 0, want, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > maxBytes) return { bytes: new Uint8Array(0), over: true };
    }
    return { bytes: new Uint8Array(Buffer.concat(chunks, total)), over: false };
  } finally {
    if (typeof source !== "number") closeSync(fd);
  }
}
