import { afterEach, describe, expect, test } from "bun:test";
import { generateSeed, publicKeyFromSeed, sign, verify } from "../../../src/core/ed25519.ts";
import { VerifyPool } from "../../../src/server/verify-pool.ts";

const pools: VerifyPool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

/** Signatures that verify, and the ways they must not: another message, another key, a flipped bit, a small-order key. */
function cases(n: number): Array<[Uint8Array, Uint8Array, Uint8Array]> {
  const seed = generateSeed();
  const other = publicKeyFromSeed(generateSeed());
  const pub = publicKeyFromSeed(seed);
  const out: Array<[Uint8Array, Uint8Array, Uint8Array]> = [];
  for (let i = 0; i < n; i++) {
    const message = new TextEncoder().encode(`message ${i} `.repeat(i % 7));
    const signature = sign(message, seed);
    const flipped = signature.slice();
    flipped[i % 64] = (flipped[i % 64] as number) ^ 1;
    out.push([signature, message, pub], [signature, new TextEncoder().encode(`other ${i}`), pub], [signature, message, other], [flipped, message, pub]);
  }
  out.push([sign(new Uint8Array(), seed), new Uint8Array(), new Uint8Array(32)]); // the identity point as the key
  return out;
}

describe("the signature verification pool", () => {
  test("gives exactly the verdicts of the main thread's verify, for many signatures at once, from its workers", async () => {
    const pool = new VerifyPool(2, () => {}, 8);
    pools.push(pool);
    const all = cases(50);
    const verdicts = await Promise.all(all.map(([s, m, k]) => pool.verify(s, m, k)));
    expect(verdicts).toEqual(all.map(([s, m, k]) => verify(s, m, k)));
    expect(verdicts.filter(Boolean)).toHaveLength(50);
    expect(pool.stats).toEqual({ worker: all.length, main: 0 });
  });

  test("a signature or key of the wrong length is refused, as the main thread refuses it, without reaching a worker", async () => {
    const pool = new VerifyPool(1, () => {}, 8);
    pools.push(pool);
    const seed = generateSeed();
    const pub = publicKeyFromSeed(seed);
    const message = new TextEncoder().encode("a message");
    const signature = sign(message, seed);
    // one byte too many: in a packed batch the extra byte would be overwritten by the next field
    // and the worker would see the valid signature (or key)
    const longSignature = new Uint8Array([...signature, 0]);
    const longKey = new Uint8Array([...pub, 0]);
    const verdicts = await Promise.all([
      pool.verify(longSignature, message, pub),
      pool.verify(signature, message, longKey),
      pool.verify(signature.subarray(0, 63), message, pub),
      pool.verify(signature, message, pub),
    ]);
    expect(verdicts).toEqual([false, false, false, true]);
    expect(verify(longSignature, message, pub)).toBe(false);
    expect(pool.stats).toEqual({ worker: 1, main: 3 });
  });

  test("closing it answers what is still queued or in flight, on the main thread", async () => {
    const pool = new VerifyPool(1, () => {}, 4);
    pools.push(pool);
    const all = cases(20);
    const pending = all.map(([s, m, k]) => pool.verify(s, m, k));
    pool.close();
    expect(await Promise.all(pending)).toEqual(all.map(([s, m, k]) => verify(s, m, k)));
    expect(pool.stats.main).toBeGreaterThan(0);
    // and after close, still answered
    const [s, m, k] = all[0] as [Uint8Array, Uint8Array, Uint8Array];
    expect(await pool.verify(s, m, k)).toBe(true);
  });

  test("when the workers cannot start, it says so once and checks every signature on the main thread", async () => {
    const warnings: string[] = [];
    const pool = new VerifyPool(2, (m) => warnings.push(m), 8, new URL("./no-such-worker.ts", import.meta.url).href);
    pools.push(pool);
    const all = cases(10);
    const verdicts = await Promise.all(all.map(([s, m, k]) => pool.verify(s, m, k)));
    expect(verdicts).toEqual(all.map(([s, m, k]) => verify(s, m, k)));
    // later ones too, without trying the workers again
    expect(await Promise.all(all.map(([s, m, k]) => pool.verify(s, m, k)))).toEqual(verdicts);
    expect(warnings).toEqual(["the signature verification workers could not start; signatures are checked on the main thread"]);
    expect(pool.stats).toEqual({ worker: 0, main: all.length * 2 });
  });
});
