import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { sha256Hex } from "../core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../core/ed25519.ts";
import { readPublicKeyOf, writeKeyPair } from "../storage/keys.ts";
import { jsonArgs, printJson, say } from "./common.ts";

const gen = defineCommand({
  meta: { name: "gen", description: "Generate an Ed25519 key pair (ed25519.key 0600, ed25519.pub 0644)" },
  args: {
    "out-dir": { type: "string", description: "Directory for the key files", default: ".", valueHint: "dir" },
    force: { type: "boolean", description: "Replace existing key files" },
    ...jsonArgs,
  },
  run({ args }) {
    const seed = generateSeed();
    const paths = writeKeyPair(args["out-dir"], seed, { force: args.force });
    const keyHash = sha256Hex(publicKeyFromSeed(seed));
    if (args.json) {
      printJson({ private_key: paths.privateKey, public_key: paths.publicKey, key_hash: keyHash });
    } else {
      say(`wrote ${paths.privateKey} (private, mode 0600) and ${paths.publicKey}`);
      process.stdout.write(`${keyHash}\n`);
    }
  },
});

const hash = defineCommand({
  meta: {
    name: "hash",
    description: "Print the key hash (sha256 of the raw public key) that policies use; for a private key, the hash of its public key",
  },
  args: { file: { type: "positional", description: "Public key file (ed25519.pub), or a private key file", required: true } },
  async run({ args }) {
    const key = await readPublicKeyOf(args.file);
    // a private key is recognized by its name (.key) or by the .pub of the same stem beside it
    if (key.private) say(`${args.file} is a private key; this is the hash of its public key`);
    process.stdout.write(`${sha256Hex(key.publicKey)}\n`);
  },
});

export default defineCommand({
  meta: groupMeta("keys"),
  subCommands: { gen, hash },
});
