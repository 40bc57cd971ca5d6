/** Standard padded base64, strictly: what Python's base64.b64encode writes and nothing else. */
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Decodes strict standard base64; returns null for anything else. */
export function decodeBase64(text: string): Uint8Array | null {
  if (!BASE64_RE.test(text)) return null;
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** URL-safe base64 without padding (bearer tokens). */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}
