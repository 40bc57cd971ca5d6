/**
 * C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures, and the transparency-log
 * checkpoints carried in them (c2sp.org/tlog-checkpoint). Pure: no I/O.
 *
 * A note is a text ending in "\n", a blank line, then signature lines
 * `— <key name> <base64(4-byte key ID || signature)>`; the signature covers the text with its
 * final newline. Key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4].
 * A checkpoint's text is `<origin>\n<tree size>\n<base64 root hash>\n` (then optional extension
 * lines, which links does not write).
 */
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { publicKeyFromSeed, sign, verify, PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from "./ed25519.ts";
import { LinksError } from "./errors.ts";
import { HASH_BYTES, hashesEqual } from "./merkle.ts";

/** Notes are small; a bound keeps a hostile one from costing anything. */
export const NOTE_MAX_BYTES = 64 * 1024;
/** Go's note.Open refuses more than 100 signatures; so do we. */
export const NOTE_MAX_SIGNATURES = 100;

const SIG_PREFIX = "\u2014 ";
const ED25519_TYPE = 0x01;
// Go's unicode.IsSpace (which the spec's "Unicode spaces" follows) plus the BOM JS counts as \s
const SPACE = /[\s\u0085]/u;
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export interface NoteSignature {
  keyName: string;
  keyId: Uint8Array;
  /** the signature bytes after the key ID */
  signature: Uint8Array;
}

export interface Note {
  /** the signed text, ending in "\n" */
  text: string;
  signatures: NoteSignature[];
}

export interface NoteVerifier {
  name: string;
  publicKey: Uint8Array;
}

function malformed(what: string): LinksError {
  return new LinksError("invalid_checkpoint", `malformed signed note: ${what}`);
}

/** Key names are non-empty, without Unicode spaces, "+" or control characters. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !SPACE.test(name) && !name.includes("+") && !CONTROL.test(name) && !name.includes("\n");
}

export function ed25519KeyId(name: string, publicKey: Uint8Array): Uint8Array {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(utf8.encode(name)).update(new Uint8Array([0x0a, ED25519_TYPE])).update(publicKey);
  return new Uint8Array(hasher.digest()).subarray(0, 4);
}

function checkText(text: string): void {
  if (text.length === 0 || !text.endsWith("\n")) throw malformed("the text must end with a newline");
  if (CONTROL.test(text)) throw malformed("the text holds a control character other than newline");
}

/** Signs `text` (which ends in "\n") as key `name`; returns the whole note. */
export function signNote(text: string, name: string, seed: Uint8Array): string {
  checkText(text);
  if (!isValidKeyName(name)) throw new LinksError("invalid_argument", `invalid key name ${JSON.stringify(name)}: it must be non-empty, without spaces or "+"`);
  const publicKey = publicKeyFromSeed(seed);
  const signature = sign(utf8.encode(text), seed);
  const blob = new Uint8Array(4 + signature.length);
  blob.set(ed25519KeyId(name, publicKey));
  blob.set(signature, 4);
  return `${text}\n${SIG_PREFIX}${name} ${encodeBase64(blob)}\n`;
}

/** Splits a note into its text and signature lines; nothing is verified here. */
export function parseNote(input: string | Uint8Array): Note {
  const size = typeof input === "string" ? Buffer.byteLength(input, "utf8") : input.length;
  if (size > NOTE_MAX_BYTES) throw malformed(`it is ${size} bytes, over the limit of ${NOTE_MAX_BYTES}`);
  let note: string;
  try {
    note = typeof input === "string" ? input : strictUtf8.decode(input);
  } catch {
    throw malformed("it is not valid UTF-8");
  }
  if (!note.isWellFormed()) throw malformed("it is not valid Unicode text");
  if (CONTROL.test(note)) throw malformed("it holds a control character other than newline");
  if (!note.endsWith("\n")) throw malformed("it must end with a newline");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw malformed("there is no blank line before the signatures");
  const text = note.slice(0, split + 1);
  checkText(text);
  const lines = note.slice(split + 2, -1).split("\n");
  if (lines.length > NOTE_MAX_SIGNATURES) throw malformed(`more than ${NOTE_MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line, i): NoteSignature => {
    if (!line.startsWith(SIG_PREFIX)) throw malformed(`signature line ${i + 1} does not start with an em dash and a space`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    const keyName = rest.slice(0, space);
    const blob = space > 0 ? decodeBase64(rest.slice(space + 1)) : null;
    if (!isValidKeyName(keyName) || blob === null || blob.length < 5) {
      throw malformed(`signature line ${i + 1} is not "— <key name> <base64 signature>"`);
    }
    return { keyName, keyId: blob.subarray(0, 4), signature: blob.subarray(4) };
  });
  return { text, signatures };
}

/**
 * The note's text, once a signature by the verifier's key (same name and key ID) verifies.
 * Signatures by other keys are ignored; one by this key that fails refuses the whole note.
 */
export function verifyNote(input: string | Uint8Array, verifier: NoteVerifier): string {
  if (verifier.publicKey.length !== PUBLIC_KEY_BYTES) throw new LinksError("invalid_public_key", "a note verifier needs a 32-byte Ed25519 public key");
  const note = parseNote(input);
  const keyId = ed25519KeyId(verifier.name, verifier.publicKey);
  const mine = note.signatures.filter((s) => s.keyName === verifier.name && hashesEqual(s.keyId, keyId));
  if (mine.length === 0) {
    throw new LinksError("invalid_signature", `the note is not signed by ${verifier.name} (key ID ${Buffer.from(keyId).toString("hex")})`);
  }
  const message = utf8.encode(note.text);
  for (const s of mine) {
    if (s.signature.length !== SIGNATURE_BYTES || !verify(s.signature, message, verifier.publicKey)) {
      throw new LinksError("invalid_signature", `the signature of ${verifier.name} on the note does not verify`);
    }
  }
  return note.text;
}

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** lines after the root hash, kept as they are; links writes none */
  extensions: string[];
}

export function formatCheckpoint(c: Checkpoint): string {
  if (c.origin.length === 0 || c.origin.includes("\n")) throw new LinksError("invalid_argument", "a checkpoint origin is one non-empty line");
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw new LinksError("invalid_argument", `a checkpoint size must be a non-negative integer, got ${c.size}`);
  if (c.rootHash.length !== HASH_BYTES) throw new LinksError("invalid_argument", "a checkpoint root hash is 32 bytes");
  const extensions = c.extensions.map((e) => {
    if (e.length === 0 || e.includes("\n")) throw new LinksError("invalid_argument", "checkpoint extension lines are non-empty single lines");
    return `${e}\n`;
  });
  return `${c.origin}\n${c.size}\n${encodeBase64(c.rootHash)}\n${extensions.join("")}`;
}

/** Reads a checkpoint's text strictly: origin, decimal size without leading zeros, 32-byte root. */
export function parseCheckpoint(text: string): Checkpoint {
  const bad = (what: string) => new LinksError("invalid_checkpoint", `malformed checkpoint: ${what}`);
  checkText(text);
  const lines = text.slice(0, -1).split("\n");
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (origin === undefined || sizeText === undefined || rootText === undefined) throw bad("it needs an origin, a tree size and a root hash");
  if (lines.some((l) => l.length === 0)) throw bad("it has an empty line");
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw bad(`the tree size ${JSON.stringify(sizeText.slice(0, 40))} is not a decimal integer without leading zeros`);
  }
  const rootHash = decodeBase64(rootText);
  if (rootHash === null || rootHash.length !== HASH_BYTES) throw bad("the root hash is not base64 of 32 bytes");
  return { origin, size: Number(sizeText), rootHash, extensions };
}

export function signCheckpoint(c: Checkpoint, name: string, seed: Uint8Array): string {
  return signNote(formatCheckpoint(c), name, seed);
}

/** A checkpoint whose note verifies with the verifier's key. */
export function openCheckpoint(note: string | Uint8Array, verifier: NoteVerifier): Checkpoint {
  return parseCheckpoint(verifyNote(note, verifier));
}
