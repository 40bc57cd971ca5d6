/**
 * Key files (spec section 5): base64 of the 32-byte seed (0600) or public key (0644) and a
 * newline. A key file others can read is still used, with a warning.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { decodeBase64, encodeBase64 } from "../core/base64.ts";
import { publicKeyFromSeed } from "../core/ed25519.ts";
import { LinksError } from "../core/errors.ts";
import { atomicWrite, writeNewFileAtomic } from "./atomic.ts";

export const PRIVATE_KEY_FILE = "ed25519.key";
export const PUBLIC_KEY_FILE = "ed25519.pub";

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

/** Reads a private key file; `onWarning` hears about loose permissions. */
export async function readSeedFile(path: string, onWarning?: (message: string) => void): Promise<Uint8Array> {
  const text = await readKeyText(path);
  const mode = statSync(path).mode & 0o077;
  if (mode !== 0 && onWarning) onWarning(`private key ${path} is readable by group or others (chmod 600 ${path})`);
  return decodeKey(text, path, "private key");
}

export async function readPublicKeyFile(path: string): Promise<Uint8Array> {
  return decodeKey(await readKeyText(path), path, "public key");
}

async function readKeyText(path: string): Promise<string> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new LinksError("not_found", `key file not found: ${path}`);
  if (file.size > 4096) throw new LinksError("invalid_key_file", `${path} is too large to be a key file`);
  return (await file.text()).trim();
}

export function decodeKey(text: string, path: string, what: string): Uint8Array {
  const bytes = decodeBase64(text);
  if (bytes === null || bytes.length !== 32) {
    throw new LinksError("invalid_key_file", `${path} is not a ${what} file (expected base64 of 32 bytes)`);
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
