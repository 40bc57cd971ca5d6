import { describe, expect, test } from "bun:test";
import { decodeBase64, encodeBase64 } from "../../../src/core/base64.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import { leafHash } from "../../../src/core/merkle.ts";
import {
  ed25519KeyId,
  formatCheckpoint,
  isValidKeyName,
  openCheckpoint,
  parseCheckpoint,
  parseNote,
  signCheckpoint,
  signNote,
  verifyNote,
} from "../../../src/core/signed-note.ts";

// golang.org/x/mod/sumdb/note's test key and note (the reference implementation of signed notes)
const GO_SEED = (decodeBase64("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz") as Uint8Array).subarray(1);
const GO_PUBLIC = (decodeBase64("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW") as Uint8Array).subarray(1);
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;
const GO_VERIFIER = { name: "PeterNeumann", publicKey: GO_PUBLIC };

describe("signed notes", () => {
  test("sign the Go reference note byte for byte, with its key ID c74f20a3", () => {
    expect(Buffer.from(publicKeyFromSeed(GO_SEED)).equals(Buffer.from(GO_PUBLIC))).toBe(true);
    expect(Buffer.from(ed25519KeyId("PeterNeumann", GO_PUBLIC)).toString("hex")).toBe("c74f20a3");
    expect(signNote(GO_TEXT, "PeterNeumann", GO_SEED)).toBe(GO_NOTE);
    expect(verifyNote(GO_NOTE, GO_VERIFIER)).toBe(GO_TEXT);
    expect(verifyNote(new TextEncoder().encode(GO_NOTE), GO_VERIFIER)).toBe(GO_TEXT);
  });

  test("ignore signatures by other keys and verify the known one among them", () => {
    const other = generateSeed();
    const cosigned = signNote(GO_TEXT, "witness.example/w1", other).split("\n\n")[1] as string;
    const note = `${GO_NOTE}${cosigned}`;
    expect(parseNote(note).signatures.map((s) => s.keyName)).toEqual(["PeterNeumann", "witness.example/w1"]);
    expect(verifyNote(note, GO_VERIFIER)).toBe(GO_TEXT);
    expect(verifyNote(note, { name: "witness.example/w1", publicKey: publicKeyFromSeed(other) })).toBe(GO_TEXT);
  });

  describe("when the note was altered", () => {
    const refusals: Array<[string, string, string]> = [
      ["a changed text", GO_NOTE.replace("cryptography", "cryptographY"), "invalid_signature"],
      ["a flipped signature bit", GO_NOTE.replace("kuBS9", "kuBS8"), "invalid_signature"],
      ["another key ID", GO_NOTE.replace("x08go", "x08gp"), "invalid_signature"],
      ["a truncated signature", GO_NOTE.replace("BwJnAM=", "BwJn"), "invalid_checkpoint"],
      ["another key name", GO_NOTE.replace("PeterNeumann", "PeterNeuman"), "invalid_signature"],
      ["a hyphen for the em dash", GO_NOTE.replace("\u2014", "-"), "invalid_checkpoint"],
      ["no blank line", GO_NOTE.replace("is.\n\n", "is.\n"), "invalid_checkpoint"],
      ["no final newline", GO_NOTE.slice(0, -1), "invalid_checkpoint"],
      ["a control character", GO_NOTE.replace("If you", "If\tyou"), "invalid_checkpoint"],
      ["a carriage return", GO_NOTE.replace("problem,\n", "problem,\r\n"), "invalid_checkpoint"],
      ["a key name with a plus", GO_NOTE.replace("PeterNeumann ", "Peter+Neumann "), "invalid_checkpoint"],
      ["no signature at all", `${GO_TEXT}\n`, "invalid_checkpoint"],
    ];
    for (const [what, note, code] of refusals) {
      test(`refuse ${what} (${code})`, () => {
        expect(() => verifyNote(note, GO_VERIFIER)).toThrow(expect.objectContaining({ code }));
      });
    }

    test("refuse a second, failing signature by the same key", () => {
      const bad = GO_NOTE.split("\n\n")[1]?.replace("kuBS9", "kuBS8") as string;
      expect(() => verifyNote(`${GO_NOTE}${bad}`, GO_VERIFIER)).toThrow(expect.objectContaining({ code: "invalid_signature" }));
    });

    test("refuse invalid UTF-8, oversized notes and more than 100 signatures", () => {
      const bytes = new Uint8Array([...new TextEncoder().encode(GO_NOTE.slice(0, 10)), 0xff, ...new TextEncoder().encode(GO_NOTE.slice(10))]);
      expect(() => verifyNote(bytes, GO_VERIFIER)).toThrow("not valid UTF-8");
      expect(() => parseNote(`${"x".repeat(70_000)}\n${GO_NOTE}`)).toThrow("over the limit");
      const sig = GO_NOTE.split("\n\n")[1] as string;
      expect(() => parseNote(`${GO_TEXT}\n${sig.repeat(101)}`)).toThrow("more than 100 signatures");
    });
  });

  test("key names: non-empty, no spaces, no plus", () => {
    expect(isValidKeyName("links/node-a")).toBe(true);
    for (const bad of ["", "a b", "a+b", "a\u00a0b", "a\u3000b", "a\nb", "a\u0085b"]) expect(isValidKeyName(bad)).toBe(false);
    expect(() => signNote("x\n", "a b", GO_SEED)).toThrow("invalid key name");
    expect(() => signNote("no newline", "a", GO_SEED)).toThrow("must end with a newline");
  });
});

describe("checkpoints", () => {
  const root = leafHash(new TextEncoder().encode("row"));
  const checkpoint = { origin: "links/node-a/garden", size: 1234, rootHash: root, extensions: [] };

  test("format as origin, size and base64 root, and round-trip through a signed note", () => {
    expect(formatCheckpoint(checkpoint)).toBe(`links/node-a/garden\n1234\n${encodeBase64(root)}\n`);
    const seed = generateSeed();
    const note = signCheckpoint(checkpoint, "node-a", seed);
    expect(note.startsWith(`links/node-a/garden\n1234\n${encodeBase64(root)}\n\n\u2014 node-a `)).toBe(true);
    const opened = openCheckpoint(note, { name: "node-a", publicKey: publicKeyFromSeed(seed) });
    expect(opened.origin).toBe("links/node-a/garden");
    expect(opened.size).toBe(1234);
    expect(Buffer.from(opened.rootHash).equals(Buffer.from(root))).toBe(true);
    expect(() => openCheckpoint(note, { name: "node-a", publicKey: publicKeyFromSeed(generateSeed()) })).toThrow(expect.objectContaining({ code: "invalid_signature" }));
  });

  test("keep extension lines, and refuse what the format does not allow", () => {
    const b64 = encodeBase64(root);
    expect(parseCheckpoint(`o\n0\n${b64}\next one\n`).extensions).toEqual(["ext one"]);
    const bad: Array<[string, string]> = [
      [`o\n01\n${b64}\n`, "leading zeros"],
      [`o\n-1\n${b64}\n`, "decimal integer"],
      [`o\n1e3\n${b64}\n`, "decimal integer"],
      [`o\n99999999999999999\n${b64}\n`, "decimal integer"],
      [`o\n1\n${b64.slice(0, -4)}\n`, "32 bytes"],
      [`o\n1\n${b64.replace("=", "")}\n`, "32 bytes"],
      [`o\n1\n`, "needs an origin"],
      [`\n1\n${b64}\n`, "empty line"],
      [`o\n1\n${b64}\n\n`, "empty line"],
    ];
    for (const [text, why] of bad) expect(() => parseCheckpoint(text)).toThrow(why);
  });
});
