/**
 * Loads the wire-format vectors (see test/fixtures/vectors-dir.ts for where from). Every folder
 * is enumerated, never hard-coded, so new vectors are picked up by the tests as they are added.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { VECTORS_DIR } from "../../fixtures/vectors-dir.ts";

export { VECTORS_DIR };

export interface Vector {
  /** file name without .json */
  name: string;
  meta: Record<string, unknown>;
  /** the exact bytes of the .wire.json file beside the vector */
  wire: Uint8Array;
}

export function loadVectors(folder: string): Vector[] {
  return readdirSync(join(VECTORS_DIR, folder))
    .filter((f) => f.endsWith(".json") && !f.endsWith(".wire.json"))
    .sort()
    .map((f) => {
      const meta = JSON.parse(readFileSync(join(VECTORS_DIR, folder, f), "utf8")) as Record<string, unknown>;
      const wireFile = typeof meta.signed_bundle_wire_file === "string"
        ? meta.signed_bundle_wire_file
        : typeof meta.signed_update_wire_file === "string"
          ? meta.signed_update_wire_file
          : join(folder, f.replace(/\.json$/, ".wire.json"));
      return {
        name: f.replace(/\.json$/, ""),
        meta,
        wire: new Uint8Array(readFileSync(join(VECTORS_DIR, wireFile))),
      };
    });
}

export function str(meta: Record<string, unknown>, key: string): string {
  const v = meta[key];
  if (typeof v !== "string") throw new Error(`vector field ${key} is not a string`);
  return v;
}

export interface KeyVector {
  seed: Uint8Array;
  publicKey: Uint8Array;
  publicKeyB64: string;
  keyHash: string;
}

interface RawKey {
  seed_b64: string;
  seed_hex: string;
  public_key_b64: string;
  public_key_hex: string;
  issuer_key_hash: string;
}

function toKey(raw: RawKey): KeyVector {
  return {
    seed: new Uint8Array(Buffer.from(raw.seed_b64, "base64")),
    publicKey: new Uint8Array(Buffer.from(raw.public_key_b64, "base64")),
    publicKeyB64: raw.public_key_b64,
    keyHash: raw.issuer_key_hash,
  };
}

const rawKeys = JSON.parse(readFileSync(join(VECTORS_DIR, "key.json"), "utf8")) as RawKey & {
  second_signer: RawKey;
};

/** key.json's first key (RFC 8032 TEST 1) and its second_signer (TEST 2). */
export const KEY = toKey(rawKeys);
export const SECOND_KEY = toKey(rawKeys.second_signer);
export const RAW_KEYS = rawKeys;

/** The seed for a public key named in a vector. */
export function seedFor(publicKeyB64: string): Uint8Array {
  const key = [KEY, SECOND_KEY].find((k) => k.publicKeyB64 === publicKeyB64);
  if (!key) throw new Error(`no seed in key.json for public key ${publicKeyB64}`);
  return key.seed;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const sha256 = (b: Uint8Array | string): string => new Bun.CryptoHasher("sha256").update(b).digest("hex");
