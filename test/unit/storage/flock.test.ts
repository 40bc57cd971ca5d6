import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockFd, lockPathFor, withFileLock, withFileLockSync } from "../../../src/storage/flock.ts";

const WORKER = join(import.meta.dir, "../../fixtures/counter-worker.ts");

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "links-flock-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("withFileLockSync across 4 processes", () => {
  test("serializes read-modify-write increments so none is lost", async () => {
    const counter = join(dir, "counter.txt");
    const procs = [0, 1, 2, 3].map(() =>
      Bun.spawn([process.execPath, WORKER, counter, "100"], { stderr: "inherit" }),
    );
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0, 0, 0]);
    expect(readFileSync(counter, "utf8")).toBe("400");
  });
});

describe("withFileLockSync in one process", () => {
  test("creates the lock file and its parent directories with mode 0644 and returns fn's value", () => {
    const lock = join(dir, "deep", "er", "x.lock");
    expect(withFileLockSync(lock, "exclusive", () => 42)).toBe(42);
    expect(statSync(lock).mode & 0o777).toBe(0o644);
  });

  test("releases the lock when fn throws", () => {
    const lock = join(dir, "x.lock");
    expect(() =>
      withFileLockSync(lock, "exclusive", () => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(withFileLockSync(lock, "shared", () => "again")).toBe("again");
  });

  test("refuses to take a lock it already holds instead of hanging", () => {
    const lock = join(dir, "x.lock");
    expect(() =>
      withFileLockSync(lock, "exclusive", () => withFileLockSync(lock, "shared", () => 1)),
    ).toThrow(expect.objectContaining({ code: "internal_error" }));
  });

  test("reports the errno of a failed flock (EBADF for a bad fd) as a storage error", () => {
    expect(() => lockFd(-1, "exclusive")).toThrow(
      expect.objectContaining({ code: "storage_error", message: expect.stringContaining("errno 9") }),
    );
  });

  test("names the sidecar lock of a file <file>.lock", () => {
    expect(lockPathFor("/d/village.json")).toBe("/d/village.json.lock");
  });
});

describe("withFileLock in one process", () => {
  test("queues concurrent async holders instead of deadlocking, in call order", async () => {
    const lock = join(dir, "x.lock");
    const events: string[] = [];
    const run = (name: string) =>
      withFileLock(lock, "exclusive", async () => {
        events.push(`${name} in`);
        await Bun.sleep(5);
        events.push(`${name} out`);
        return name;
      });
    expect(await Promise.all([run("a"), run("b"), run("c")])).toEqual(["a", "b", "c"]);
    expect(events).toEqual(["a in", "a out", "b in", "b out", "c in", "c out"]);
  });

  test("lets the next holder in after one rejects", async () => {
    const lock = join(dir, "x.lock");
    const failing = withFileLock(lock, "exclusive", async () => {
      throw new Error("boom");
    });
    const next = withFileLock(lock, "exclusive", () => "next");
    await expect(failing).rejects.toThrow("boom");
    expect(await next).toBe("next");
  });

  test("makes a sync take of the same lock fail fast while an async holder awaits", async () => {
    const lock = join(dir, "x.lock");
    let inner: unknown;
    await withFileLock(lock, "exclusive", async () => {
      await Bun.sleep(1);
      try {
        withFileLockSync(lock, "exclusive", () => 0);
      } catch (e) {
        inner = e;
      }
    });
    expect(inner).toMatchObject({ code: "internal_error" });
  });
});
