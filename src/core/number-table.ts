/**
 * A hash table from integer keys (exact doubles up to 2^53) to small counts, in typed arrays: a
 * few bytes a key, where the engine's Map takes several tens. `derive` keeps one entry per
 * distinct observation id and per (actor, target) pair, so on a million observations this is
 * what its memory is made of.
 */
const EMPTY = -1; // keys are >= 0: negative integers are stored shifted (see slotKey)

export class IntCounter {
  private keys: Float64Array;
  private counts: Uint32Array;
  private used = 0;

  constructor(capacity = 1024) {
    let size = 1024;
    while (size < capacity * 2) size *= 2;
    this.keys = new Float64Array(size).fill(EMPTY);
    this.counts = new Uint32Array(size);
  }

  get size(): number {
    return this.used;
  }

  /** Adds one to the key's count; returns the count before (0 for a new key). */
  increment(key: number): number {
    const slot = this.slotOf(key);
    const before = this.counts[slot] as number;
    if (this.keys[slot] === EMPTY) {
      this.keys[slot] = key;
      this.used++;
      if (this.used * 2 > this.keys.length) {
        this.counts[slot] = 1;
        this.grow();
        return 0;
      }
    }
    this.counts[slot] = before + 1;
    return before;
  }

  get(key: number): number {
    const slot = this.slotOf(key);
    return this.keys[slot] === EMPTY ? 0 : (this.counts[slot] as number);
  }

  /** Every key with its count, in no particular order. */
  *entries(): Generator<[number, number]> {
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[i] as number;
      if (k !== EMPTY) yield [k, this.counts[i] as number];
    }
  }

  private slotOf(key: number): number {
    if (!Number.isSafeInteger(key) || key < 0) throw new RangeError(`IntCounter keys are safe integers >= 0, got ${key}`);
    const mask = this.keys.length - 1;
    // mix the low and high 32 bits (keys are often sequential or multiples of a large base)
    let h = Math.imul((key >>> 0) ^ Math.floor(key / 0x1_0000_0000), 0x9e3779b1);
    h ^= h >>> 15;
    let slot = h & mask;
    for (;;) {
      const k = this.keys[slot];
      if (k === EMPTY || k === key) return slot;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldCounts = this.counts;
    this.keys = new Float64Array(oldKeys.length * 2).fill(EMPTY);
    this.counts = new Uint32Array(oldKeys.length * 2);
    for (let i = 0; i < oldKeys.length; i++) {
      const k = oldKeys[i] as number;
      if (k === EMPTY) continue;
      const slot = this.slotOf(k);
      this.keys[slot] = k;
      this.counts[slot] = oldCounts[i] as number;
    }
  }
}
