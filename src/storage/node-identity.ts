/**
 * The node's identity: an Ed25519 key that signs its audit checkpoints, and a name. The key is
 * made on the first `serve` in <data>/node/ (ed25519.key 0600, ed25519.pub), or given with
 * `--node-key FILE` (a private key file as `links keys gen` writes it); the name comes from
 * `--node-name`, else the host name. Peers and auditors pin the public key.
 */
import { readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { assertNodeName, NODE_NAME_RE } from "../core/audit-origin.ts";
import { sha256Hex } from "../core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../core/ed25519.ts";
import { LinksError } from "../core/errors.ts";
import { decodeKey, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, readSeedFile, writeKeyPair } from "./keys.ts";
import type { DataPaths } from "./paths.ts";

export interface NodeIdentity {
  name: string;
  seed: Uint8Array;
  publicKey: Uint8Array;
  /** sha256 of the public key, hex: how the node's key is named elsewhere */
  keyHash: string;
}

export interface IdentityOptions {
  name?: string | undefined;
  /** hears about a private key file others can read */
  onWarning?: (message: string) => void;
}

/** The host name, with any character a node name cannot hold made a "-". */
export function defaultNodeName(): string {
  const name = hostname().replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 128);
  return NODE_NAME_RE.test(name) ? name : "links-node";
}

function identity(seed: Uint8Array, name: string | undefined): NodeIdentity {
  const publicKey = publicKeyFromSeed(seed);
  return { name: name === undefined ? defaultNodeName() : assertNodeName(name), seed, publicKey, keyHash: sha256Hex(publicKey) };
}

/** The data directory's own key file: written by this module, so read as it was written. */
function readOwnSeed(path: string, onWarning?: (message: string) => void): Uint8Array | null {
  let text: string;
  try {
    const st = statSync(path);
    if (st.size > 4096) throw new LinksError("invalid_key_file", `${path} is too large to be a key file`);
    if ((st.mode & 0o077) !== 0) onWarning?.(`private key ${path} is readable by group or others (chmod 600 ${path})`);
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    if (e instanceof LinksError) throw e;
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw new LinksError("invalid_key_file", `cannot read key file ${path}: ${(e as Error).message}`);
  }
  return decodeKey(text, path);
}

/** The node key in <data>/node/, made (0600, with its .pub) if there is none yet. */
export function loadNodeIdentity(paths: DataPaths, opts: IdentityOptions = {}): NodeIdentity {
  const file = join(paths.nodeKeyDir(), PRIVATE_KEY_FILE);
  let seed = readOwnSeed(file, opts.onWarning);
  if (seed === null) {
    try {
      writeKeyPair(paths.nodeKeyDir(), generateSeed());
    } catch (e) {
      // another process made it first: use that one
      if (!(e instanceof LinksError) || e.code !== "file_exists") throw e;
    }
    seed = readOwnSeed(file, opts.onWarning);
    if (seed === null) throw new LinksError("storage_error", `the node key ${file} was made but cannot be read back`);
  }
  return identity(seed, opts.name);
}

/** A node key given with --node-key, read with the checks every private key file gets. */
export async function identityFromKeyFile(path: string, name: string | undefined, onWarning?: (message: string) => void): Promise<NodeIdentity> {
  return identity(await readSeedFile(path, onWarning), name);
}

/** Where the data directory's own node public key is (for `links audit verify`). */
export function nodePublicKeyFile(paths: DataPaths): string {
  return join(paths.nodeKeyDir(), PUBLIC_KEY_FILE);
}
