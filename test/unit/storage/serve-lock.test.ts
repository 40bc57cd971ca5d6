import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LinksError } from "../../../src/core/errors.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { lockDataDirForServe } from "../../../src/storage/serve-lock.ts";

const root = mkdtempSync(join(tmpdir(), "links-serve-lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("the data directory's serve lock", () => {
  test("the holder's pid is in the lock file, and a second taker is refused naming directory and pid", () => {
    const paths = new DataPaths(join(root, "a"));
    const lock = lockDataDirForServe(paths, 4242);
    try {
      expect(readFileSync(lock.path, "utf8")).toBe("4242\n");
      let refused: LinksError | undefined;
      try {
        lockDataDirForServe(paths, 99);
      } catch (e) {
        refused = e as LinksError;
      }
      expect(refused).toBeInstanceOf(LinksError);
      expect(refused?.code).toBe("data_dir_in_use");
      expect(refused?.detail).toContain(paths.root);
      expect(refused?.detail).toContain("pid 4242");
    } finally {
      lock.release();
    }
  });

  test("once released, the directory can be taken again and the file names nobody meanwhile", () => {
    const paths = new DataPaths(join(root, "b"));
    const first = lockDataDirForServe(paths, 1);
    first.release();
    expect(readFileSync(first.path, "utf8")).toBe("");
    const second = lockDataDirForServe(paths, 2);
    expect(readFileSync(second.path, "utf8")).toBe("2\n");
    second.release();
  });

  test("a lock held by another process refuses this one (flock across processes)", async () => {
    const paths = new DataPaths(join(root, "c"));
    const module = join(import.meta.dir, "../../../src/storage/serve-lock.ts");
    const code = `import { lockDataDirForServe } from ${JSON.stringify(module)};
import { DataPaths } from ${JSON.stringify(join(import.meta.dir, "../../../src/storage/paths.ts"))};
lockDataDirForServe(new DataPaths(${JSON.stringify(paths.root)}));
process.stdout.write("held\\n");
await Bun.sleep(60_000);`;
    const child = Bun.spawn([process.execPath, "-e", code], { stdout: "pipe", stderr: "inherit" });
    try {
      const reader = child.stdout.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toBe("held\n");
      expect(() => lockDataDirForServe(paths)).toThrow(new RegExp(`pid ${child.pid}`));
    } finally {
      child.kill("SIGKILL");
      await child.exited;
    }
    // the kernel let go when the holder died: no stale lock
    lockDataDirForServe(paths).release();
  });
});
