/**
 * Standard padded base64, strictly: what Python's base64.b64encode writes and nothing else. The
 * bits a last group does not use must be zero ("AB==" is canonical, "AC==" decodes to the same
 * byte and is refused), so every byte string has exactly one accepted text and a signature or a
 * key cannot be stored in a second spelling.
 */
// "xY==": Y carries 4 unused bits (must be one of A Q g w); "xyZ=": Z carries 2 (A E I M ... 0 4 8).
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Decodes canonical standard base64; returns null for anything else. */
export function decodeBase64(text: string): Uint8Array | null {
  if (!BASE64_RE.test(text)) return null;
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** URL-safe base64 without padding (bearer tokens). */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}
