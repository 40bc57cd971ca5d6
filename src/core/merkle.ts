/**
 * RFC 9162 (formerly RFC 6962) Merkle trees: leaf and node hashing, roots, inclusion and
 * consistency proofs, and their verification. Pure: no I/O.
 *
 * Proofs are generated from stored hashes: node (level l, index i) is the hash of the complete
 * subtree over leaves [i * 2^l, (i + 1) * 2^l) (level 0 are the leaf hashes). Every range the
 * RFC's recursion needs is either one such node or, on the right edge of the tree, a fold of at
 * most one node per level, so a root or a proof costs O(log n) reads, never a recomputation.
 */
import { LinksError } from "./errors.ts";

export const HASH_BYTES = 32;

/** The hash of the complete subtree at (level, index); only ever asked for nodes that exist. */
export type SubtreeHashes = (level: number, index: number) => Uint8Array;

export interface SubtreeNode {
  level: number;
  index: number;
  hash: Uint8Array;
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(Bun.SHA256.hash(data) as Uint8Array);
}

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array());

/** SHA-256(0x00 || data) */
export function leafHash(data: Uint8Array): Uint8Array {
  const buf = new Uint8Array(data.length + 1);
  buf.set(data, 1);
  return sha256(buf);
}

/** SHA-256(0x01 || left || right) */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + left.length + right.length);
  buf[0] = 0x01;
  buf.set(left, 1);
  buf.set(right, 1 + left.length);
  return sha256(buf);
}

export function hashesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Sizes and indexes go up to 2^53; bitwise operators stop at 2^31, so these use arithmetic. */
function isSize(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** The largest power of two strictly below n (n >= 2): where the RFC splits a tree of n leaves. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** log2(n) when n is a power of two, else -1. */
function exactLog2(n: number): number {
  let level = 0;
  let k = 1;
  while (k < n) {
    k *= 2;
    level++;
  }
  return k === n ? level : -1;
}

const half = (n: number): number => Math.floor(n / 2);
const isOdd = (n: number): boolean => n % 2 === 1;

/** MTH(D[begin:end]); begin is aligned as the RFC's recursion always leaves it. */
function rangeHash(get: SubtreeHashes, begin: number, end: number): Uint8Array {
  const n = end - begin;
  const level = exactLog2(n);
  if (level >= 0 && begin % n === 0) return get(level, begin / n);
  const k = splitPoint(n);
  return nodeHash(rangeHash(get, begin, begin + k), rangeHash(get, begin + k, end));
}

function badArgument(message: string): LinksError {
  return new LinksError("invalid_argument", message);
}

/** The root of the first `size` leaves. */
export function rootAt(get: SubtreeHashes, size: number): Uint8Array {
  if (!isSize(size)) throw badArgument(`tree size must be a non-negative integer, got ${size}`);
  return size === 0 ? EMPTY_ROOT : rangeHash(get, 0, size);
}

/** RFC 9162 2.1.3.1: the audit path of leaf `index` in the tree of `size` leaves, leaf to root. */
export function inclusionProof(get: SubtreeHashes, index: number, size: number): Uint8Array[] {
  if (!isSize(size) || !isSize(index) || index >= size) {
    throw badArgument(`an inclusion proof needs 0 <= index < size, got index ${index} and size ${size}`);
  }
  const path: Uint8Array[] = [];
  const walk = (m: number, begin: number, end: number): void => {
    const n = end - begin;
    if (n === 1) return;
    const k = splitPoint(n);
    if (m < k) {
      walk(m, begin, begin + k);
      path.push(rangeHash(get, begin + k, end));
    } else {
      walk(m - k, begin + k, end);
      path.push(rangeHash(get, begin, begin + k));
    }
  };
  walk(index, 0, size);
  return path;
}

/**
 * RFC 9162 2.1.4.1: the proof that the tree of `from` leaves is a prefix of the tree of `to`
 * leaves. Empty when from is 0 or equal to to (as transparency-dev/merkle answers).
 */
export function consistencyProof(get: SubtreeHashes, from: number, to: number): Uint8Array[] {
  if (!isSize(from) || !isSize(to) || from > to) {
    throw badArgument(`a consistency proof needs 0 <= from <= to, got from ${from} and to ${to}`);
  }
  if (from === 0 || from === to) return [];
  const proof: Uint8Array[] = [];
  const sub = (m: number, begin: number, end: number, whole: boolean): void => {
    const n = end - begin;
    if (m === n) {
      if (!whole) proof.push(rangeHash(get, begin, end));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      sub(m, begin, begin + k, whole);
      proof.push(rangeHash(get, begin + k, end));
    } else {
      sub(m - k, begin + k, end, false);
      proof.push(rangeHash(get, begin, begin + k));
    }
  };
  sub(from, 0, to, true);
  return proof;
}

function allHashes(...hashes: Uint8Array[]): boolean {
  return hashes.every((h) => h instanceof Uint8Array && h.length === HASH_BYTES);
}

/**
 * The walk RFC 9162 2.1.3.2 and 2.1.4.2 share: up from node `fn` of a level whose last node is
 * `sn`, calling left(p) when the next hash of `path` is the left sibling and right(p) when it is
 * the right one (levels where the right edge has no sibling are skipped). False when the path is
 * longer or shorter than the tree is high.
 */
function walkPath(fn: number, sn: number, path: readonly Uint8Array[], left: (p: Uint8Array) => void, right: (p: Uint8Array) => void): boolean {
  for (const p of path) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      left(p);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      right(p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0;
}

/** RFC 9162 2.1.3.2: whether `proof` shows the leaf at `index` is in the tree of `size` with `root`. */
export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!isSize(index) || !isSize(size) || index >= size || !allHashes(leaf, root, ...proof)) return false;
  let r = leaf;
  const whole = walkPath(index, size - 1, proof, (p) => (r = nodeHash(p, r)), (p) => (r = nodeHash(r, p)));
  return whole && hashesEqual(r, root);
}

/**
 * RFC 9162 2.1.4.2: whether `proof` shows the tree of `from` leaves with `fromRoot` is a prefix
 * of the tree of `to` leaves with `toRoot`. Equal sizes need equal roots and an empty proof; any
 * tree extends the empty one (an empty proof).
 */
export function verifyConsistency(
  from: number,
  to: number,
  fromRoot: Uint8Array,
  toRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!isSize(from) || !isSize(to) || from > to || !allHashes(fromRoot, toRoot, ...proof)) return false;
  if (from === to) return proof.length === 0 && hashesEqual(fromRoot, toRoot);
  if (from === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  const path = exactLog2(from) >= 0 ? [fromRoot, ...proof] : [...proof];
  let fn = from - 1;
  let sn = to - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  const whole = walkPath(
    fn,
    sn,
    path.slice(1),
    (c) => {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
    },
    (c) => (sr = nodeHash(sr, c)),
  );
  return whole && hashesEqual(fr, fromRoot) && hashesEqual(sr, toRoot);
}

/**
 * The right edge of a growing tree (a compact range over [0, size)): one complete subtree per
 * set bit of size, largest first. Appending a leaf yields the complete subtrees it finishes, so
 * a store can keep every node a proof will ask for; root() folds the edge.
 */
export class CompactRange {
  private constructor(
    private sizeNow: number,
    private readonly edge: Uint8Array[],
  ) {}

  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  /** Rebuilds the edge of a stored tree of `size` leaves from its complete subtrees. */
  static fromStore(get: SubtreeHashes, size: number): CompactRange {
    if (!isSize(size)) throw badArgument(`tree size must be a non-negative integer, got ${size}`);
    const edge: Uint8Array[] = [];
    for (let level = 52; level >= 0; level--) {
      const width = 2 ** level;
      if (Math.floor(size / width) % 2 === 1) edge.push(get(level, Math.floor(size / width) - 1));
    }
    return new CompactRange(size, edge);
  }

  get size(): number {
    return this.sizeNow;
  }

  /** Adds the next leaf; returns the subtrees of level >= 1 it completed, lowest first. */
  append(leaf: Uint8Array): SubtreeNode[] {
    const done: SubtreeNode[] = [];
    let hash = leaf;
    let level = 0;
    let index = this.sizeNow;
    while (isOdd(index)) {
      hash = nodeHash(this.edge.pop() as Uint8Array, hash);
      level++;
      index = half(index);
      done.push({ level, index, hash });
    }
    this.edge.push(hash);
    this.sizeNow++;
    return done;
  }

  root(): Uint8Array {
    if (this.edge.length === 0) return EMPTY_ROOT;
    let r = this.edge[this.edge.length - 1] as Uint8Array;
    for (let i = this.edge.length - 2; i >= 0; i--) r = nodeHash(this.edge[i] as Uint8Array, r);
    return r;
  }
}

/** The root of a tree with these leaf hashes (for checks and tests; stores use CompactRange). */
export function rootOfLeaves(leaves: readonly Uint8Array[]): Uint8Array {
  const range = CompactRange.empty();
  for (const l of leaves) range.append(l);
  return range.root();
}
