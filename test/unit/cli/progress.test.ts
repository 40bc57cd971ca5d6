import { describe, expect, test } from "bun:test";
import { renderProgress, startProgress } from "../../../src/cli/progress.ts";

describe("a progress line", () => {
  test("shows a bar, the percentage and the amounts", () => {
    expect(renderProgress("derive", 0, 200, "items")).toBe(`derive [${".".repeat(24)}]   0% 0/200`);
    expect(renderProgress("derive", 100, 200, "items")).toBe(`derive [${"#".repeat(12)}${".".repeat(12)}]  50% 100/200`);
    expect(renderProgress("derive", 200, 200, "items")).toBe(`derive [${"#".repeat(24)}] 100% 200/200`);
  });

  test("shows bytes in binary units", () => {
    expect(renderProgress("build", 3 * 1024 ** 2, 140 * 1024 ** 2, "bytes")).toContain("3.0 MiB/140.0 MiB");
    expect(renderProgress("build", 512, 2048, "bytes")).toContain("512 B/2.0 KiB");
  });

  test("never goes past 100% or below 0%", () => {
    expect(renderProgress("x", 300, 200, "items")).toContain("100%");
    expect(renderProgress("x", -5, 200, "items")).toContain("  0%");
  });

  test("without a known total shows only the amount done", () => {
    expect(renderProgress("reindex", 1234, null, "items")).toBe("reindex 1,234");
  });

  test("draws nothing when asked for JSON (or when stderr is not a terminal)", () => {
    const written: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (written.push(chunk), true)) as typeof process.stderr.write;
    try {
      const p = startProgress({ json: true }, "x", 10);
      p.update(5);
      p.finish();
    } finally {
      process.stderr.write = original;
    }
    expect(written).toEqual([]);
  });
});
