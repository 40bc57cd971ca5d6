/**
 * Packs claims into as few bundles as a size limit allows, in order, every claim in exactly one
 * bundle. Sizes are exact: a bundle's file, once signed, is its canonical JSON plus a newline,
 * which is the bundle's fields (with a 44-character public key and an 88-character signature in
 * base64) around the claims' own canonical texts joined by commas.
 */
import { canonicalize, type JsonValue } from "./canonical.ts";
import type { Claim } from "./bundle.ts";
import { LinksError } from "./errors.ts";

export interface BundleHeader {
  issuer: string;
  created_at: string;
  window_days: number;
}

const utf8Bytes = (text: string): number => Buffer.byteLength(text, "utf8");

/** Bytes of the signed bundle file with no claims (the newline included). */
export function signedBaseBytes(header: BundleHeader): number {
  const skeleton = {
    bundle_id: "0".repeat(32),
    issuer: header.issuer,
    created_at: header.created_at,
    window_days: header.window_days,
    claims: [],
    signature_alg: "Ed25519",
    public_key: "A".repeat(44),
    signature: "A".repeat(88),
  };
  return utf8Bytes(canonicalize(skeleton as JsonValue)) + 1;
}

export class BundlePacker {
  private claims: Claim[] = [];
  private readonly base: number;
  private bytes: number;

  constructor(header: BundleHeader, private readonly maxBytes: number) {
    this.base = signedBaseBytes(header);
    this.bytes = this.base;
    if (this.base >= maxBytes) {
      throw new LinksError("usage", `--max-bytes ${maxBytes} is too small: a signed bundle without claims already takes ${this.base} bytes`);
    }
  }

  /** Adds a claim; when it does not fit, returns the full bundle's claims and starts the next with it. */
  add(claim: Claim, index: number): { claims: Claim[]; bytes: number } | null {
    const size = utf8Bytes(canonicalize(claim as unknown as JsonValue));
    if (this.base + size > this.maxBytes) {
      throw new LinksError(
        "invalid_argument",
        `claim ${index + 1} alone makes a signed bundle of ${this.base + size} bytes, over --max-bytes ${this.maxBytes}`,
      );
    }
    const extra = size + (this.claims.length > 0 ? 1 : 0);
    if (this.bytes + extra <= this.maxBytes) {
      this.claims.push(claim);
      this.bytes += extra;
      return null;
    }
    const full = { claims: this.claims, bytes: this.bytes };
    this.claims = [claim];
    this.bytes = this.base + size;
    return full;
  }

  /** The last bundle's claims (possibly none, when nothing was added). */
  finish(): { claims: Claim[]; bytes: number } {
    const last = { claims: this.claims, bytes: this.bytes };
    this.claims = [];
    this.bytes = this.base;
    return last;
  }
}
