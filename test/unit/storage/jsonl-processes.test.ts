import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BadLine } from "../../../src/storage/jsonl.ts";
import { lockedAppend, readJsonl } from "../../../src/storage/jsonl.ts";

const WORKER = join(import.meta.dir, "../../fixtures/append-worker.ts");
type Rec = { worker: string; seq: number; pad: string };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "links-jsonl-proc-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("lockedAppend from 4 processes at once", () => {
  test("keeps every record whole, including ones larger than PIPE_BUF, and loses none", async () => {
    const file = join(dir, "shared.jsonl");
    const workers = ["w0", "w1", "w2", "w3"];
    const count = 500;
    const procs = workers.map((w) =>
      Bun.spawn([process.execPath, WORKER, file, w, String(count), "1"], { stderr: "inherit" }),
    );
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0, 0, 0]);

    const text = readFileSync(file, "utf8");
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.slice(0, -1).split("\n");
    expect(lines).toHaveLength(workers.length * count);
    const owners = lines.map((l) => (JSON.parse(l) as Rec).worker);
    const switches = owners.filter((w, i) => i > 0 && w !== owners[i - 1]).length;
    expect(switches).toBeGreaterThan(workers.length - 1); // the writers really overlapped
    const seen = new Map(workers.map((w) => [w, new Set<number>()]));
    for (const line of lines) {
      const rec = JSON.parse(line) as Rec; // throws on any torn or interleaved line
      expect(rec.pad.length === 5000 || rec.pad.length === 160).toBe(true);
      const set = seen.get(rec.worker);
      expect(set?.has(rec.seq)).toBe(false);
      set?.add(rec.seq);
    }
    for (const w of workers) expect(seen.get(w)?.size).toBe(count);
    expect(lines.some((l) => l.length > 4096)).toBe(true);
  });
});

describe("lockedAppend when a writer is killed with SIGKILL mid-stream", () => {
  test("readers get only whole records and the next append lands on a fresh line", async () => {
    const file = join(dir, "killed.jsonl");
    const proc = Bun.spawn([process.execPath, WORKER, file, "victim", "forever", "0"], {
      stdout: "pipe",
      stderr: "inherit",
    });
    const reader = proc.stdout.getReader();
    await reader.read(); // "started": the first record is on disk
    reader.releaseLock();
    await Bun.sleep(200);
    proc.kill("SIGKILL");
    expect(await proc.exited).not.toBe(0);

    const bad: BadLine[] = [];
    const before = readJsonl(file, (l) => JSON.parse(l) as Rec, (b) => bad.push(b));
    expect(before.length).toBeGreaterThan(0);
    expect(bad.length).toBeLessThanOrEqual(1);
    if (bad.length === 1) expect(bad[0]?.torn).toBe(true);
    before.forEach((rec, i) => expect(rec.seq).toBe(i));

    lockedAppend(file, [JSON.stringify({ worker: "after", seq: 0, pad: "" })]);
    const text = readFileSync(file, "utf8");
    expect(text.endsWith('\n{"worker":"after","seq":0,"pad":""}\n')).toBe(true);
    const after = readJsonl(file, (l) => JSON.parse(l) as Rec, () => {});
    expect(after.at(-1)?.worker).toBe("after");
    expect(after).toHaveLength(before.length + 1);
  });
});
