import { describe, expect, test } from "bun:test";
import {
  CompactRange,
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  nodeHash,
  rootAt,
  rootOfLeaves,
  verifyConsistency,
  verifyInclusion,
  type SubtreeHashes,
} from "../../../src/core/merkle.ts";
import { CONSISTENCY, HASHER, INCLUSION, LEAVES, ROOTS, SOME_HASH } from "../../fixtures/merkle-vectors.ts";

const hex = (h: Uint8Array): string => Buffer.from(h).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** MTH straight from RFC 9162's definition, for comparison. */
function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0] as Uint8Array;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** RFC 9162 PATH and PROOF straight from the definitions. */
function path(m: number, leaves: Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return m < k ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))] : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}
function subproof(m: number, leaves: Uint8Array[], whole: boolean): Uint8Array[] {
  const n = leaves.length;
  if (m === n) return whole ? [] : [mth(leaves)];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return m <= k
    ? [...subproof(m, leaves.slice(0, k), whole), mth(leaves.slice(k))]
    : [...subproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))];
}

/** A store of complete subtrees, as the audit index keeps them, counting reads. */
function store(leaves: Uint8Array[]): { get: SubtreeHashes; reads: () => number } {
  const nodes = new Map<string, Uint8Array>();
  const range = CompactRange.empty();
  leaves.forEach((l, i) => {
    nodes.set(`0:${i}`, l);
    for (const n of range.append(l)) nodes.set(`${n.level}:${n.index}`, n.hash);
  });
  let reads = 0;
  const get: SubtreeHashes = (level, index) => {
    reads++;
    const h = nodes.get(`${level}:${index}`);
    if (!h) throw new Error(`no stored node ${level}:${index}`);
    return h;
  };
  return { get, reads: () => reads };
}

const referenceLeaves = LEAVES.map((l) => leafHash(unhex(l)));

describe("RFC 6962 hashing", () => {
  test("matches the transparency-dev hasher vectors", () => {
    expect(hex(EMPTY_ROOT)).toBe(HASHER.emptyRoot);
    expect(hex(leafHash(new Uint8Array()))).toBe(HASHER.emptyLeaf);
    expect(hex(leafHash(text("L123456")))).toBe(HASHER.leaf);
    expect(hex(nodeHash(text("N123"), text("N456")))).toBe(HASHER.node);
  });

  test("a leaf never hashes like a node over the same bytes, and order matters", () => {
    const a = leafHash(text("Hello"));
    const b = leafHash(text("World"));
    const joined = new Uint8Array([...a, ...b]);
    expect(hex(nodeHash(a, b))).not.toBe(hex(leafHash(joined)));
    expect(hex(nodeHash(a, b))).not.toBe(hex(nodeHash(b, a)));
  });
});

describe("the RFC 6962 reference tree", () => {
  test("every prefix has the published root, from leaves and from stored subtrees", () => {
    const { get } = store(referenceLeaves);
    for (let n = 1; n <= 8; n++) {
      expect(hex(rootOfLeaves(referenceLeaves.slice(0, n)))).toBe(ROOTS[n - 1] as string);
      expect(hex(rootAt(get, n))).toBe(ROOTS[n - 1] as string);
    }
    expect(hex(rootAt(get, 0))).toBe(HASHER.emptyRoot);
  });

  test("inclusion proofs equal the published ones and verify", () => {
    const { get } = store(referenceLeaves);
    for (const v of INCLUSION) {
      const proof = inclusionProof(get, v.leaf - 1, v.size);
      expect(proof.map(hex)).toEqual(v.proof);
      expect(verifyInclusion(v.leaf - 1, v.size, referenceLeaves[v.leaf - 1] as Uint8Array, proof, unhex(ROOTS[v.size - 1] as string))).toBe(true);
    }
  });

  test("consistency proofs equal the published ones and verify", () => {
    const { get } = store(referenceLeaves);
    for (const v of CONSISTENCY) {
      const proof = consistencyProof(get, v.size1, v.size2);
      expect(proof.map(hex)).toEqual(v.proof);
      expect(verifyConsistency(v.size1, v.size2, unhex(ROOTS[v.size1 - 1] as string), unhex(ROOTS[v.size2 - 1] as string), proof)).toBe(true);
    }
  });
});

/** transparency-dev's corruptInclusionProof: every probe must be refused. */
function inclusionProbes(index: number, size: number, proof: Uint8Array[], root: Uint8Array, leaf: Uint8Array) {
  const some = unhex(SOME_HASH);
  const probes: Array<{ desc: string; index: number; size: number; leaf: Uint8Array; root: Uint8Array; proof: Uint8Array[] }> = [
    { desc: "index - 1", index: index - 1, size, leaf, root, proof },
    { desc: "index + 1", index: index + 1, size, leaf, root, proof },
    { desc: "index ^ 2", index: index ^ 2, size, leaf, root, proof },
    { desc: "size * 2", index, size: size * 2, leaf, root, proof },
    { desc: "size / 2", index, size: Math.floor(size / 2), leaf, root, proof },
    { desc: "wrong leaf", index, size, leaf: text("WrongLeaf"), root, proof },
    { desc: "empty root", index, size, leaf, root: EMPTY_ROOT, proof },
    { desc: "random root", index, size, leaf, root: some, proof },
    { desc: "trailing garbage", index, size, leaf, root, proof: [...proof, new Uint8Array()] },
    { desc: "trailing root", index, size, leaf, root, proof: [...proof, root] },
    { desc: "preceding garbage", index, size, leaf, root, proof: [new Uint8Array(), ...proof] },
    { desc: "preceding root", index, size, leaf, root, proof: [root, ...proof] },
  ];
  proof.forEach((_, i) => {
    const flipped = proof.map((p) => new Uint8Array(p));
    const f = flipped[i] as Uint8Array;
    f[0] = (f[0] as number) ^ 8;
    probes.push({ desc: `proof[${i}] bit 3 flipped`, index, size, leaf, root, proof: flipped });
  });
  if (proof.length > 0) probes.push({ desc: "truncated", index, size, leaf, root, proof: proof.slice(0, -1) });
  if (proof.length > 1) probes.push({ desc: "inserted component", index, size, leaf, root, proof: [proof[0] as Uint8Array, some, ...proof.slice(1)] });
  return probes;
}

/** transparency-dev's corruptConsistencyProof. */
function consistencyProbes(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: Uint8Array[]) {
  const probes: Array<{ desc: string; size1: number; size2: number; root1: Uint8Array; root2: Uint8Array; proof: Uint8Array[] }> = [
    { desc: "size1 - 1", size1: size1 - 1, size2, root1, root2, proof },
    { desc: "size1 + 1", size1: size1 + 1, size2, root1, root2, proof },
    { desc: "size1 ^ 2", size1: size1 ^ 2, size2, root1, root2, proof },
    { desc: "size2 * 2", size1, size2: size2 * 2, root1, root2, proof },
    { desc: "size2 / 2", size1, size2: Math.floor(size2 / 2), root1, root2, proof },
    { desc: "wrong root1", size1, size2, root1: text("WrongRoot"), root2, proof },
    { desc: "wrong root2", size1, size2, root1, root2: text("WrongRoot"), proof },
    { desc: "swapped roots", size1, size2, root1: root2, root2: root1, proof },
    { desc: "empty proof", size1, size2, root1, root2, proof: [] },
    { desc: "trailing garbage", size1, size2, root1, root2, proof: [...proof, new Uint8Array()] },
    { desc: "trailing root1", size1, size2, root1, root2, proof: [...proof, root1] },
    { desc: "trailing root2", size1, size2, root1, root2, proof: [...proof, root2] },
    { desc: "preceding garbage", size1, size2, root1, root2, proof: [new Uint8Array(), ...proof] },
    { desc: "preceding root1", size1, size2, root1, root2, proof: [root1, ...proof] },
    { desc: "preceding root2", size1, size2, root1, root2, proof: [root2, ...proof] },
    { desc: "preceding proof[0]", size1, size2, root1, root2, proof: [proof[0] as Uint8Array, ...proof] },
  ];
  if (proof.length > 0) probes.push({ desc: "truncated", size1, size2, root1, root2, proof: proof.slice(0, -1) });
  proof.forEach((_, i) => {
    const flipped = proof.map((p) => new Uint8Array(p));
    const f = flipped[i] as Uint8Array;
    f[0] = (f[0] as number) ^ 16;
    probes.push({ desc: `proof[${i}] bit 4 flipped`, size1, size2, root1, root2, proof: flipped });
  });
  return probes;
}

describe("when a proof is tampered with", () => {
  test("every mutated inclusion proof of the published vectors is refused", () => {
    for (const v of INCLUSION.slice(1)) {
      const leaf = referenceLeaves[v.leaf - 1] as Uint8Array;
      const root = unhex(ROOTS[v.size - 1] as string);
      const accepted = inclusionProbes(v.leaf - 1, v.size, v.proof.map(unhex), root, leaf)
        .filter((p) => verifyInclusion(p.index, p.size, p.leaf, p.proof, p.root))
        .map((p) => p.desc);
      expect(accepted).toEqual([]);
    }
  });

  test("every mutated consistency proof of the published vectors is refused", () => {
    for (const v of CONSISTENCY.filter((c) => c.proof.length > 0)) {
      const root1 = unhex(ROOTS[v.size1 - 1] as string);
      const root2 = unhex(ROOTS[v.size2 - 1] as string);
      const accepted = consistencyProbes(v.size1, v.size2, root1, root2, v.proof.map(unhex))
        .filter((p) => verifyConsistency(p.size1, p.size2, p.root1, p.root2, p.proof))
        .map((p) => p.desc);
      expect(accepted).toEqual([]);
    }
  });

  test("the edge cases of transparency-dev's verifier answer the same, with 32-byte roots", () => {
    const e = EMPTY_ROOT;
    const one = unhex(ROOTS[0] as string);
    const two = unhex(ROOTS[1] as string);
    expect(verifyConsistency(0, 0, e, e, [])).toBe(true);
    expect(verifyConsistency(0, 1, e, one, [])).toBe(true);
    expect(verifyConsistency(1, 1, one, one, [])).toBe(true);
    expect(verifyConsistency(1, 1, one, two, [])).toBe(false);
    expect(verifyConsistency(1, 0, e, e, [])).toBe(false);
    expect(verifyConsistency(2, 1, e, e, [])).toBe(false);
    expect(verifyConsistency(1, 2, one, two, [])).toBe(false);
    expect(verifyConsistency(0, 0, e, e, [e])).toBe(false);
    expect(verifyConsistency(0, 1, e, e, [e])).toBe(false);
    expect(verifyConsistency(1, 1, e, e, [e])).toBe(false);
    for (const [index, size] of [[0, 0], [0, 1], [1, 0], [2, 1]] as const) {
      expect(verifyInclusion(index, size, unhex(SOME_HASH), [], new Uint8Array())).toBe(false);
      expect(verifyInclusion(index, size, new Uint8Array(), [], e)).toBe(false);
      expect(verifyInclusion(index, size, unhex(SOME_HASH), [], e)).toBe(false);
    }
    const single = leafHash(text("data"));
    expect(verifyInclusion(0, 1, single, [], single)).toBe(true);
    expect(verifyInclusion(0, 1, new Uint8Array(), [], single)).toBe(false);
    expect(verifyInclusion(0, 1, single, [], new Uint8Array())).toBe(false);
  });

  test("roots that are not 32 bytes are refused (transparency-dev accepts equal ones of any length)", () => {
    const short = text("don't care 1");
    expect(verifyConsistency(0, 0, short, short, [])).toBe(false);
    expect(verifyConsistency(0, 1, short, text("don't care 2"), [])).toBe(false);
  });
});

describe("proofs from stored subtrees", () => {
  const leaves = Array.from({ length: 70 }, (_, i) => leafHash(text(`row ${i}`)));

  test("equal RFC 9162's definitions for every index and size up to 70, and verify", () => {
    const { get } = store(leaves);
    for (let size = 1; size <= leaves.length; size++) {
      const prefix = leaves.slice(0, size);
      const root = mth(prefix);
      expect(hex(rootAt(get, size))).toBe(hex(root));
      for (let i = 0; i < size; i++) {
        const proof = inclusionProof(get, i, size);
        expect(proof.map(hex)).toEqual(path(i, prefix).map(hex));
        expect(verifyInclusion(i, size, leaves[i] as Uint8Array, proof, root)).toBe(true);
      }
      for (let from = 1; from < size; from++) {
        const proof = consistencyProof(get, from, size);
        expect(proof.map(hex)).toEqual(subproof(from, prefix, true).map(hex));
        expect(verifyConsistency(from, size, mth(leaves.slice(0, from)), root, proof)).toBe(true);
      }
    }
  });

  test("cost O(log n) reads of stored hashes, not a recomputation", () => {
    const many = Array.from({ length: 5000 }, (_, i) => leafHash(text(`r${i}`)));
    const s = store(many);
    let before = s.reads();
    rootAt(s.get, 4999);
    const rootReads = s.reads() - before;
    before = s.reads();
    inclusionProof(s.get, 1234, 4999);
    const inclusionReads = s.reads() - before;
    before = s.reads();
    consistencyProof(s.get, 1234, 4999);
    const consistencyReads = s.reads() - before;
    // log2(5000) is about 12.3: a handful of reads per level at most
    expect(rootReads).toBeLessThanOrEqual(13);
    expect(inclusionReads).toBeLessThanOrEqual(2 * 13);
    expect(consistencyReads).toBeLessThanOrEqual(2 * 13);
  });

  test("a compact range rebuilt from the store continues the same tree", () => {
    const { get } = store(leaves.slice(0, 45));
    const range = CompactRange.fromStore(get, 45);
    for (const l of leaves.slice(45)) range.append(l);
    expect(hex(range.root())).toBe(hex(mth(leaves)));
  });

  test("arguments out of range are refused with a clear error", () => {
    const { get } = store(leaves.slice(0, 8));
    expect(() => inclusionProof(get, 8, 8)).toThrow("0 <= index < size");
    expect(() => inclusionProof(get, -1, 8)).toThrow("0 <= index < size");
    expect(() => consistencyProof(get, 5, 4)).toThrow("0 <= from <= to");
    expect(() => rootAt(get, 1.5)).toThrow("non-negative integer");
    expect(consistencyProof(get, 0, 8)).toEqual([]);
    expect(consistencyProof(get, 8, 8)).toEqual([]);
  });
});
