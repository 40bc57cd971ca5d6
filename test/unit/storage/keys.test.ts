import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeBase64 } from "../../../src/core/base64.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { LinksError } from "../../../src/core/errors.ts";
import { readPublicKeyOf, readSeedFile, writeKeyPair } from "../../../src/storage/keys.ts";

let root: string;
let n = 0;
/** A fresh directory with a key pair written by `keys gen`. */
function keyDir(): { dir: string; seed: Uint8Array; key: string; pub: string } {
  const dir = join(root, `k${n++}`);
  mkdirSync(dir);
  const seed = generateSeed();
  const paths = writeKeyPair(dir, seed);
  return { dir, seed, key: paths.privateKey, pub: paths.publicKey };
}

async function refusal(p: Promise<unknown>): Promise<LinksError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LinksError);
    return e as LinksError;
  }
  throw new Error("expected a refusal");
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "links-keys-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("when a file is given as a private key", () => {
  test("the private key of a pair is read", async () => {
    const k = keyDir();
    expect(await readSeedFile(k.key)).toEqual(k.seed);
  });

  test("a .pub file is refused by its name", async () => {
    const k = keyDir();
    const e = await refusal(readSeedFile(k.pub));
    expect(e.code).toBe("invalid_key_file");
    expect(e.detail).toContain("public key");
  });

  test("a copy of the .pub under another name is refused because it holds the same key", async () => {
    const k = keyDir();
    for (const name of ["signing", "signing.key", "ed25519.pem"]) {
      copyFileSync(k.pub, join(k.dir, name));
      const e = await refusal(readSeedFile(join(k.dir, name)));
      expect(e.code).toBe("invalid_key_file");
      expect(e.detail).toContain("same key as");
    }
  });

  test("a key whose .pub of the same stem belongs to another pair is refused", async () => {
    const k = keyDir();
    writeFileSync(k.pub, `${encodeBase64(publicKeyFromSeed(generateSeed()))}\n`);
    const e = await refusal(readSeedFile(k.key));
    expect(e.code).toBe("invalid_key_file");
    expect(e.detail).toContain("does not belong to");
  });

  test("a Python Links key file alone in its directory (no .pub) is still read", async () => {
    const dir = join(root, "python");
    mkdirSync(dir);
    const seed = generateSeed();
    writeFileSync(join(dir, "signing_key"), `${encodeBase64(seed)}\n`, { mode: 0o600 });
    expect(await readSeedFile(join(dir, "signing_key"))).toEqual(seed);
  });

  test("a key in non-canonical base64 is refused", async () => {
    const dir = join(root, "loose");
    mkdirSync(dir);
    const text = encodeBase64(new Uint8Array(32).fill(1)); // "AQEB...AQE=": last data character E
    writeFileSync(join(dir, "x.key"), `${text.slice(0, -2)}F=\n`, { mode: 0o600 });
    expect((await refusal(readSeedFile(join(dir, "x.key")))).code).toBe("invalid_key_file");
  });
});

describe("when the public key of a file is asked for (keys hash)", () => {
  test("a .pub gives its own key", async () => {
    const k = keyDir();
    expect(await readPublicKeyOf(k.pub)).toEqual({ publicKey: publicKeyFromSeed(k.seed), private: false });
  });

  test("a private key gives the public key derived from it, marked private", async () => {
    const k = keyDir();
    expect(await readPublicKeyOf(k.key)).toEqual({ publicKey: publicKeyFromSeed(k.seed), private: true });
  });

  test("a key file that matches neither side of the .pub beside it is refused", async () => {
    const k = keyDir();
    writeFileSync(k.key, `${encodeBase64(generateSeed())}\n`);
    expect((await refusal(readPublicKeyOf(k.key))).code).toBe("invalid_key_file");
  });
});

/** Key files that are not plain files: read by what they hold, never by the size they claim. */
describe("key files that are devices or pipes", () => {
  test("/dev/zero given as a key is invalid_key_file (too large), not 'not found' and not an endless read", async () => {
    for (const read of [() => readSeedFile("/dev/zero"), () => readPublicKeyOf("/dev/zero")]) {
      const e = await refusal(read());
      expect(e.code).toBe("invalid_key_file");
      expect(e.detail).toContain("too large to be a key file");
    }
  });

  test("a key given through a pipe (--key <(...)) is read", async () => {
    const k = keyDir();
    const fifo = join(k.dir, "through-a-pipe");
    Bun.spawnSync(["mkfifo", fifo]);
    const writer = Bun.spawn(["sh", "-c", `cat "$1" > "$2"`, "sh", k.pub, fifo]);
    const key = await readPublicKeyOf(fifo);
    await writer.exited;
    expect(encodeBase64(key.publicKey)).toBe(encodeBase64(publicKeyFromSeed(k.seed)));
  });

  test("a FIFO or a /dev/zero link named *.pub beside a private key is passed over, not read", async () => {
    const k = keyDir();
    Bun.spawnSync(["mkfifo", join(k.dir, "trap.pub")]);
    symlinkSync("/dev/zero", join(k.dir, "zero.pub"));
    const seed = await readSeedFile(k.key);
    expect(encodeBase64(seed)).toBe(encodeBase64(k.seed));
  });
});
