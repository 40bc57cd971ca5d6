/**
 * A least-recently-used list of numbers keyed by strings, with O(1) get, set, touch and
 * eviction, in typed arrays (a doubly linked list over slot indexes) plus one Map from key to
 * slot. It does not rely on a Map's iteration order: reading the "first" entry of a Map whose
 * head was deleted many times is not O(1) in every engine (JavaScriptCore skips the deleted
 * entries one by one), which turns an LRU built on it quadratic under churn.
 */

const NONE = -1;

export class NumberLru {
  private readonly slotOf = new Map<string, number>();
  private keys: Array<string | undefined> = [];
  private values = new Float64Array(0);
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private freeSlots: number[] = [];
  private head = NONE; // least recently used
  private tail = NONE; // most recently used

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.slotOf.size;
  }

  get(key: string): number | undefined {
    const slot = this.slotOf.get(key);
    return slot === undefined ? undefined : (this.values[slot] as number);
  }

  /** Sets the value and makes the key the most recently used. The caller keeps size <= capacity. */
  set(key: string, value: number): void {
    let slot = this.slotOf.get(key);
    if (slot === undefined) {
      if (this.slotOf.size >= this.capacity) throw new RangeError("LRU is full: evict before adding");
      slot = this.allocate();
      this.keys[slot] = key;
      this.slotOf.set(key, slot);
    } else {
      this.unlink(slot);
    }
    this.values[slot] = value;
    this.linkAtTail(slot);
  }

  /** The least recently used entry, without touching it. */
  oldest(): [string, number] | undefined {
    if (this.head === NONE) return undefined;
    return [this.keys[this.head] as string, this.values[this.head] as number];
  }

  /** Removes the least recently used entry and returns it. */
  removeOldest(): [string, number] | undefined {
    const entry = this.oldest();
    if (entry === undefined) return undefined;
    const slot = this.head;
    this.unlink(slot);
    this.slotOf.delete(entry[0]);
    this.keys[slot] = undefined;
    this.freeSlots.push(slot);
    return entry;
  }

  clear(): void {
    this.slotOf.clear();
    this.keys = [];
    this.values = new Float64Array(0);
    this.prev = new Int32Array(0);
    this.next = new Int32Array(0);
    this.freeSlots = [];
    this.head = this.tail = NONE;
  }

  private allocate(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) return reused;
    const slot = this.keys.length;
    if (slot >= this.values.length) this.grow(Math.min(this.capacity, Math.max(1024, this.values.length * 2)));
    this.keys.push(undefined);
    return slot;
  }

  /** Arrays grow by doubling up to capacity, so a small node never pays for a big table. */
  private grow(length: number): void {
    const values = new Float64Array(length);
    const prev = new Int32Array(length);
    const next = new Int32Array(length);
    values.set(this.values);
    prev.set(this.prev);
    next.set(this.next);
    this.values = values;
    this.prev = prev;
    this.next = next;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot] as number;
    const n = this.next[slot] as number;
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
  }

  private linkAtTail(slot: number): void {
    this.prev[slot] = this.tail;
    this.next[slot] = NONE;
    if (this.tail === NONE) this.head = slot;
    else this.next[this.tail] = slot;
    this.tail = slot;
  }
}
