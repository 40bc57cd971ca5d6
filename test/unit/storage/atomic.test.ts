import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { atomicWrite, atomicWriteAsync, writeNewFileAtomic } from "../../../src/storage/atomic.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "links-atomic-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const tempsIn = (d: string) => readdirSync(d).filter((n) => n.endsWith(".tmp"));

describe("atomicWrite", () => {
  test("replaces the content of an existing file and leaves no temp file", () => {
    const file = join(dir, "village.json");
    writeFileSync(file, "old content that is longer");
    atomicWrite(file, '{"new":true}');
    expect(readFileSync(file, "utf8")).toBe('{"new":true}');
    expect(tempsIn(dir)).toEqual([]);
  });

  test("creates parent directories and writes bytes as given", () => {
    const file = join(dir, "a", "b", "blob.bin");
    atomicWrite(file, new Uint8Array([0, 255, 10, 13]));
    expect([...readFileSync(file)]).toEqual([0, 255, 10, 13]);
  });

  test("uses mode 0644 by default and the given mode exactly, whatever the umask", () => {
    const plain = join(dir, "plain");
    atomicWrite(plain, "x");
    expect(statSync(plain).mode & 0o777).toBe(0o644);
    const secret = join(dir, "secret");
    atomicWrite(secret, "x", { mode: 0o600 });
    expect(statSync(secret).mode & 0o777).toBe(0o600);
    const open = join(dir, "open");
    atomicWrite(open, "x", { mode: 0o666 });
    expect(statSync(open).mode & 0o777).toBe(0o666);
  });

  test("fails with storage_error when the parent is a regular file, leaving nothing behind", () => {
    writeFileSync(join(dir, "plain"), "keep");
    expect(() => atomicWrite(join(dir, "plain", "x.json"), "data")).toThrow(
      expect.objectContaining({ code: "storage_error" }),
    );
    expect(readFileSync(join(dir, "plain"), "utf8")).toBe("keep");
    expect(readdirSync(dir)).toEqual(["plain"]);
  });

  test("removes its temp file and leaves the target untouched when the rename fails", () => {
    const target = join(dir, "target");
    mkdirSync(target);
    writeFileSync(join(target, "inside"), "keep");
    expect(() => atomicWrite(target, "data")).toThrow(expect.objectContaining({ code: "storage_error" }));
    expect(readFileSync(join(target, "inside"), "utf8")).toBe("keep");
    expect(tempsIn(dir)).toEqual([]);
  });
});

describe("atomicWriteAsync", () => {
  test("replaces the content with the given mode and leaves no temp file", async () => {
    const file = join(dir, "state", "peer.json");
    await atomicWriteAsync(file, "old");
    await atomicWriteAsync(file, '{"cursor":"x"}', { mode: 0o600 });
    expect(readFileSync(file, "utf8")).toBe('{"cursor":"x"}');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(tempsIn(join(dir, "state"))).toEqual([]);
  });

  test("rejects with storage_error and leaves the target untouched when the rename fails", async () => {
    const target = join(dir, "target");
    mkdirSync(target);
    writeFileSync(join(target, "inside"), "keep");
    await expect(atomicWriteAsync(target, "data")).rejects.toMatchObject({ code: "storage_error" });
    expect(readFileSync(join(target, "inside"), "utf8")).toBe("keep");
    expect(tempsIn(dir)).toEqual([]);
  });
});

describe("writeNewFileAtomic", () => {
  test("creates a file that does not exist yet", () => {
    const file = join(dir, "q", "bundle.json");
    writeNewFileAtomic(file, "{}", { mode: 0o600 });
    expect(readFileSync(file, "utf8")).toBe("{}");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(tempsIn(join(dir, "q"))).toEqual([]);
  });

  test("refuses an existing target with file_exists and keeps its content", () => {
    const file = join(dir, "bundle.json");
    writeFileSync(file, "first");
    expect(() => writeNewFileAtomic(file, "second")).toThrow(
      expect.objectContaining({ code: "file_exists" }),
    );
    expect(readFileSync(file, "utf8")).toBe("first");
    expect(tempsIn(dir)).toEqual([]);
  });
});
