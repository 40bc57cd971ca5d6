/**
 * Key files (spec section 5): base64 of the 32-byte seed (0600) or public key (0644) and a
 * newline, the format Python Links reads and writes, so key files move between the two both ways.
 * A key file others can read is still used, with a warning.
 *
 * Both kinds hold 32 bytes of base64, so the content alone cannot tell a private key from a public
 * one. What can: the name (`.pub`), and the public key files beside it. A file given as a private
 * key is refused when it is named `.pub`, when it holds the same key as a `.pub` file in its
 * directory, or when its public key is not the one in the `.pub` of the same stem
 * (`ed25519.key` and `ed25519.pub`): signing with a public key would make a signature anyone can
 * forge, and it would still verify.
 */
import { readdirSync, statSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { decodeBase64, encodeBase64 } from "../core/base64.ts";
import { publicKeyFromSeed } from "../core/ed25519.ts";
import { LinksError } from "../core/errors.ts";
import { atomicWrite, writeNewFileAtomic } from "./atomic.ts";
import { readBounded, type BoundedRead } from "./read-bounded.ts";

export const PRIVATE_KEY_FILE = "ed25519.key";
export const PUBLIC_KEY_FILE = "ed25519.pub";
const MAX_KEY_FILE_BYTES = 4096;
/** How many `.pub` files beside a key are compared with it (a key directory holds a few). */
const MAX_SIBLINGS = 256;

export interface KeyPairPaths {
  privateKey: string;
  publicKey: string;
}

export function writeKeyPair(dir: string, seed: Uint8Array, opts: { force?: boolean } = {}): KeyPairPaths {
  const paths = { privateKey: join(dir, PRIVATE_KEY_FILE), publicKey: join(dir, PUBLIC_KEY_FILE) };
  const privateText = `${encodeBase64(seed)}\n`;
  const publicText = `${encodeBase64(publicKeyFromSeed(seed))}\n`;
  if (opts.force) {
    atomicWrite(paths.privateKey, privateText, { mode: 0o600 });
  } else {
    for (const path of [paths.privateKey, paths.publicKey]) {
      if (exists(path)) throw new LinksError("file_exists", `${path} already exists (use --force to replace it)`);
    }
    writeNewFileAtomic(paths.privateKey, privateText, { mode: 0o600 });
  }
  atomicWrite(paths.publicKey, publicText, { mode: 0o644 });
  return paths;
}

/** What the file and its neighbours say it is. */
type KeyFileKind =
  | { kind: "public"; why: string }
  | { kind: "private"; publicKey: Uint8Array }
  | { kind: "mismatch"; pub: string }
  | { kind: "unknown" };

/** Reads a private key file, refusing anything that is (or may well be) a public key. */
export async function readSeedFile(path: string, onWarning?: (message: string) => void): Promise<Uint8Array> {
  const bytes = decodeKey(await readKeyText(path), path);
  const found = classifyKeyFile(path, bytes);
  if (found.kind === "public") {
    throw new LinksError("invalid_key_file", `${path} is a public key (${found.why}), not a private key: give the private key file (e.g. ${PRIVATE_KEY_FILE})`);
  }
  if (found.kind === "mismatch") {
    throw new LinksError(
      "invalid_key_file",
      `${path} does not belong to ${found.pub} beside it (its public key is another one): is ${path} a public key, or is ${found.pub} from another key pair?`,
    );
  }
  const mode = statSync(path).mode & 0o077;
  if (mode !== 0 && onWarning) onWarning(`private key ${path} is readable by group or others (chmod 600 ${path})`);
  return bytes;
}

/**
 * The public key a key file stands for: its own content, or, for a file recognized as a private
 * key, the public key derived from it (`private` tells which).
 */
export async function readPublicKeyOf(path: string): Promise<{ publicKey: Uint8Array; private: boolean }> {
  const bytes = decodeKey(await readKeyText(path), path);
  const found = classifyKeyFile(path, bytes);
  if (found.kind === "private") return { publicKey: found.publicKey, private: true };
  if (found.kind === "mismatch") {
    throw new LinksError("invalid_key_file", `${path} is neither the key in ${found.pub} beside it nor its private key`);
  }
  return { publicKey: bytes, private: false };
}

/** Decides from the name and the `.pub` files in the same directory; the content is 32 bytes. */
function classifyKeyFile(path: string, bytes: Uint8Array): KeyFileKind {
  const name = basename(path);
  if (extname(name).toLowerCase() === ".pub") return { kind: "public", why: "its name ends in .pub" };
  const dir = dirname(path);
  const stemPub = `${name.slice(0, name.length - extname(name).length)}.pub`;
  for (const pub of siblingPubs(dir)) {
    const other = readKeyQuietly(join(dir, pub));
    if (other !== null && Buffer.compare(other, bytes) === 0) return { kind: "public", why: `it holds the same key as ${join(dir, pub)}` };
  }
  const derived = publicKeyFromSeed(bytes);
  const companion = readKeyQuietly(join(dir, stemPub));
  if (companion !== null) {
    return Buffer.compare(companion, derived) === 0 ? { kind: "private", publicKey: derived } : { kind: "mismatch", pub: join(dir, stemPub) };
  }
  return extname(name).toLowerCase() === ".key" ? { kind: "private", publicKey: derived } : { kind: "unknown" };
}

function siblingPubs(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.toLowerCase().endsWith(".pub")).slice(0, MAX_SIBLINGS);
}

/** A neighbouring key file's 32 bytes, or null when it is not one (unreadable, too big, other). */
function readKeyQuietly(path: string): Uint8Array | null {
  try {
    // only a plain file: a FIFO named x.pub would block the read, /dev/zero would never end
    if (!statSync(path).isFile()) return null;
    const read = readBounded(path, MAX_KEY_FILE_BYTES);
    if (read.over) return null;
    const bytes = decodeBase64(new TextDecoder().decode(read.bytes).trim());
    return bytes !== null && bytes.length === 32 ? bytes : null;
  } catch {
    return null;
  }
}

/**
 * The key file's text. Read a byte at a time up to the limit, not by its size: a pipe
 * (`--key <(pass show signing-key)`) has none, and a device such as /dev/zero never ends.
 */
async function readKeyText(path: string): Promise<string> {
  let read: BoundedRead;
  try {
    read = readBounded(path, MAX_KEY_FILE_BYTES);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT") throw new LinksError("not_found", `key file not found: ${path}`);
    if (code === "EISDIR") throw new LinksError("invalid_key_file", `${path} is a directory, not a key file`);
    throw new LinksError("invalid_key_file", `cannot read key file ${path}: ${(e as Error).message}`);
  }
  if (read.over) throw new LinksError("invalid_key_file", `${path} is too large to be a key file`);
  return new TextDecoder().decode(read.bytes).trim();
}

export function decodeKey(text: string, path: string): Uint8Array {
  const bytes = decodeBase64(text);
  if (bytes === null || bytes.length !== 32) {
    throw new LinksError("invalid_key_file", `${path} is not a key file (expected canonical base64 of 32 bytes)`);
  }
  return bytes;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
