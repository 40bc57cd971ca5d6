/**
 * Ed25519 for the whole program: keys and signing through @noble/ed25519, verification through
 * the runtime's native Ed25519 (about 20x faster), both behind the checks libsodium's
 * crypto_sign_verify_detached makes and BoringSSL does not (spec section 5).
 */
import * as ed from "@noble/ed25519";
import { createPublicKey, verify as nativeVerify, type KeyObject } from "node:crypto";

ed.hashes.sha512 = (message: Uint8Array) => {
  const hasher = new Bun.CryptoHasher("sha512");
  hasher.update(message);
  return new Uint8Array(hasher.digest());
};

export const SEED_BYTES = 32;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

export function generateSeed(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(SEED_BYTES));
}

export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  return ed.getPublicKey(seed);
}

export function sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
  return ed.sign(message, seed);
}

/** libsodium's verdict, computed with the runtime's native Ed25519. */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (!passesStrictChecks(signature, publicKey)) return false;
  try {
    return nativeVerify(null, message, nativeKey(publicKey), signature);
  } catch {
    return false;
  }
}

/**
 * The same verdict computed in pure JS with noble's curve arithmetic; kept for the differential
 * test and benchmark. Not ed.verify: noble checks the cofactored equation [8][S]B = [8]R + [8][k]A,
 * which also accepts an R or A with a small-order component; libsodium (and the native verify)
 * check the cofactorless [S]B - [k]A and compare its encoding with R's bytes.
 */
export function verifyNoble(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (!passesStrictChecks(signature, publicKey)) return false;
  try {
    const A = ed.Point.fromBytes(publicKey, false);
    const r = signature.subarray(0, 32);
    const s = littleEndianToBigint(signature.subarray(32));
    const hasher = new Bun.CryptoHasher("sha512").update(r).update(publicKey).update(message);
    const k = littleEndianToBigint(hasher.digest()) % L_BIGINT;
    const check = ed.Point.BASE.multiply(s, false).subtract(A.multiply(k, false)).toBytes();
    return Buffer.from(check).equals(Buffer.from(r));
  } catch {
    return false;
  }
}

const L_BIGINT = 2n ** 252n + 27742317777372353535851937790883648493n;

function littleEndianToBigint(bytes: Uint8Array): bigint {
  let x = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(bytes[i] as number);
  return x;
}

/**
 * The checks libsodium makes before the curve arithmetic: S < L, R not of small order, and the
 * public key canonical (y < p) and not of small order.
 */
export function passesStrictChecks(signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  if (!scalarIsCanonical(signature.subarray(32))) return false;
  if (hasSmallOrder(signature.subarray(0, 32))) return false;
  return isCanonicalPoint(publicKey) && !hasSmallOrder(publicKey);
}

// The group order L, little-endian.
const L = bytesFromHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");

function scalarIsCanonical(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const a = s[i] as number;
    const b = L[i] as number;
    if (a < b) return true;
    if (a > b) return false;
  }
  return false; // S == L
}

/** y >= p = 2^255 - 19 (the sign bit aside) is a non-canonical encoding. */
function isCanonicalPoint(p: Uint8Array): boolean {
  if (((p[31] as number) & 0x7f) !== 0x7f) return true;
  for (let i = 30; i > 0; i--) if (p[i] !== 0xff) return true;
  return (p[0] as number) < 0xed;
}

// Encodings (sign bit cleared) of the points of order 1, 2, 4 and 8, including the non-canonical
// encodings p and p + 1 of y = 0 and y = 1, as in libsodium's ge25519_has_small_order.
const SMALL_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map(bytesFromHex);

function hasSmallOrder(p: Uint8Array): boolean {
  return SMALL_ORDER.some((bad) => {
    for (let i = 0; i < 31; i++) if (p[i] !== bad[i]) return false;
    return ((p[31] as number) & 0x7f) === bad[31];
  });
}

// Importing a key costs about as much as a verify; a node sees few distinct issuers.
const keyCache = new Map<string, KeyObject>();
const KEY_CACHE_MAX = 4096;
const SPKI_PREFIX = bytesFromHex("302a300506032b6570032100");

function nativeKey(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString("hex");
  let key = keyCache.get(id);
  if (!key) {
    const der = new Uint8Array(SPKI_PREFIX.length + publicKey.length);
    der.set(SPKI_PREFIX);
    der.set(publicKey, SPKI_PREFIX.length);
    key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string);
    keyCache.set(id, key);
  }
  return key;
}

function bytesFromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}
