import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BadLine } from "../../../src/storage/jsonl.ts";
import { dropJsonlPrefix, lockedAppend, readJsonl, readJsonlFrom, stageJsonl } from "../../../src/storage/jsonl.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "links-jsonl-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const parse = (line: string) => JSON.parse(line) as { n: number };
function collect(): { bad: BadLine[]; onBad: (b: BadLine) => void } {
  const bad: BadLine[] = [];
  return { bad, onBad: (b) => bad.push(b) };
}

describe("lockedAppend", () => {
  test("writes each record as one whole line and creates parent directories", () => {
    const file = join(dir, "a", "b", "log.jsonl");
    lockedAppend(file, ['{"n":1}', '{"n":2}']);
    lockedAppend(file, ['{"n":3}'], { fsync: false });
    expect(readFileSync(file, "utf8")).toBe('{"n":1}\n{"n":2}\n{"n":3}\n');
  });

  test("refuses records that contain a line break or are empty, and writes nothing", () => {
    const file = join(dir, "log.jsonl");
    for (const bad of ['{"a":\n1}', '{"a":"\r"}', ""]) {
      expect(() => lockedAppend(file, ['{"n":1}', bad])).toThrow(
        expect.objectContaining({ code: "invalid_argument" }),
      );
    }
    expect(readJsonl(file, parse)).toEqual([]);
  });

  test("does nothing for an empty list", () => {
    const file = join(dir, "log.jsonl");
    lockedAppend(file, []);
    expect(readJsonl(file, parse)).toEqual([]);
  });

  test("reports an unwritable path as a storage error", () => {
    writeFileSync(join(dir, "plain"), "");
    expect(() => lockedAppend(join(dir, "plain", "log.jsonl"), ['{"n":1}'])).toThrow(
      expect.objectContaining({ code: "storage_error" }),
    );
  });
});

describe("lockedAppend when a writer crashed mid-line", () => {
  test("readers report exactly one torn line and keep every good record", () => {
    const file = join(dir, "log.jsonl");
    lockedAppend(file, ['{"n":1}', '{"n":2}']);
    appendFileSync(file, '{"n":3,"pad":"tru');
    const { bad, onBad } = collect();
    expect(readJsonl(file, parse, onBad)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ lineNo: 3, torn: true, path: file });
  });

  test("the next record starts on a fresh line and only the fragment is lost", () => {
    const file = join(dir, "log.jsonl");
    lockedAppend(file, ['{"n":1}']);
    appendFileSync(file, '{"n":2,"pad":"tru');
    lockedAppend(file, ['{"n":4}']);
    expect(readFileSync(file, "utf8")).toBe('{"n":1}\n{"n":2,"pad":"tru\n{"n":4}\n');
    const { bad, onBad } = collect();
    expect(readJsonl(file, parse, onBad)).toEqual([{ n: 1 }, { n: 4 }]);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ lineNo: 2, torn: false });
  });

  test("a whole last record without its newline (a hand-edited file) is still read", () => {
    const file = join(dir, "log.jsonl");
    writeFileSync(file, '{"n":1}\n{"n":2}');
    const { bad, onBad } = collect();
    expect(readJsonl(file, parse, onBad)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(bad).toEqual([]);
  });
});

describe("readJsonl", () => {
  test("returns no records for a missing file", () => {
    expect(readJsonl(join(dir, "nope.jsonl"), parse)).toEqual([]);
  });

  test("skips blank lines and reports corrupt ones with their line number, never throwing", () => {
    const file = join(dir, "log.jsonl");
    writeFileSync(file, '{"n":1}\n\nnot json\n{"n":2}\n   \n{"n":3}\n');
    const { bad, onBad } = collect();
    expect(readJsonl(file, parse, onBad)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ lineNo: 3, torn: false, byteOffset: 9 });
  });

  test("reports a line the parse callback rejects, such as a schema failure", () => {
    const file = join(dir, "log.jsonl");
    writeFileSync(file, '{"n":1}\n{"m":2}\n');
    const strict = (line: string) => {
      const v = JSON.parse(line) as { n?: unknown };
      if (typeof v.n !== "number") throw new Error("n must be a number");
      return v;
    };
    const { bad, onBad } = collect();
    expect(readJsonl(file, strict, onBad)).toEqual([{ n: 1 }]);
    expect(bad[0]?.reason).toBe("n must be a number");
  });
});

describe("readJsonl without an onBad callback", () => {
  test("prints one warning line per skipped line to stderr", () => {
    const file = join(dir, "log.jsonl");
    writeFileSync(file, 'oops\n{"n":1}\n{"n":');
    const lines: string[] = [];
    const original = process.stderr.write;
    process.stderr.write = ((chunk: string) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      expect(readJsonl(file, parse)).toEqual([{ n: 1 }]);
    } finally {
      process.stderr.write = original;
    }
    expect(lines).toHaveLength(2);
    expect(lines[0]).toStartWith(`links: warning: skipped corrupt line 1 in ${file}: `);
    expect(lines[1]).toStartWith(`links: warning: skipped torn line 3 in ${file}: `);
    expect(lines.every((l) => l.endsWith("\n") && l.indexOf("\n") === l.length - 1)).toBe(true);
  });
});

describe("readJsonlFrom", () => {
  test("advances only over complete lines", () => {
    const file = join(dir, "log.jsonl");
    lockedAppend(file, ['{"n":1}', '{"n":2}']);
    const first = readJsonlFrom(file, 0, parse);
    expect(first).toEqual({ records: [{ n: 1 }, { n: 2 }], nextOffset: 16 });

    appendFileSync(file, '{"n":3');
    const { bad, onBad } = collect();
    const pending = readJsonlFrom(file, first.nextOffset, parse, onBad);
    expect(pending).toEqual({ records: [], nextOffset: 16 });
    expect(bad).toEqual([]);

    appendFileSync(file, "}\n");
    lockedAppend(file, ['{"n":4}']);
    const rest = readJsonlFrom(file, pending.nextOffset, parse);
    expect(rest.records).toEqual([{ n: 3 }, { n: 4 }]);
    expect(rest.nextOffset).toBe(readFileSync(file).length);
  });

  test("consumes a corrupt complete line once and reports it with its byte offset", () => {
    const file = join(dir, "log.jsonl");
    writeFileSync(file, '{"n":1}\nbad\n{"n":2}\n');
    const { bad, onBad } = collect();
    const got = readJsonlFrom(file, 8, parse, onBad);
    expect(got).toEqual({ records: [{ n: 2 }], nextOffset: 20 });
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ lineNo: 1, byteOffset: 8, torn: false });
  });

  test("counts offsets in bytes, not characters", () => {
    const file = join(dir, "log.jsonl");
    lockedAppend(file, [JSON.stringify({ s: "héllo ✓" })]);
    const got = readJsonlFrom(file, 0, (l) => JSON.parse(l) as { s: string });
    expect(got.records).toEqual([{ s: "héllo ✓" }]);
    expect(got.nextOffset).toBe(Buffer.byteLength(readFileSync(file, "utf8")));
  });

  test("returns the same offset for a missing file or an offset at the end", () => {
    const file = join(dir, "log.jsonl");
    expect(readJsonlFrom(file, 0, parse)).toEqual({ records: [], nextOffset: 0 });
    lockedAppend(file, ['{"n":1}']);
    expect(readJsonlFrom(file, 8, parse)).toEqual({ records: [], nextOffset: 8 });
  });

  test("refuses a negative or fractional offset", () => {
    expect(() => readJsonlFrom(join(dir, "x"), -1, parse)).toThrow(
      expect.objectContaining({ code: "invalid_argument" }),
    );
    expect(() => readJsonlFrom(join(dir, "x"), 1.5, parse)).toThrow(
      expect.objectContaining({ code: "invalid_argument" }),
    );
  });
});

describe("stageJsonl", () => {
  test("commit adds the records appended since the staging that keep accepts, leaving a torn last line behind", () => {
    const file = join(dir, "index.jsonl");
    writeFileSync(file, '{"n":1}\n');
    const since = readFileSync(file).length;
    const staged = stageJsonl(file, ['{"n":10}']);
    appendFileSync(file, '{"n":2}\n{"n":3}\n{"n":4}\n{"n":5');
    expect(staged.commit(since, (line) => parse(line).n !== 3)).toBe(2);
    expect(readFileSync(file, "utf8")).toBe('{"n":10}\n{"n":2}\n{"n":4}\n');
    staged.discard(); // nothing left to remove
    expect(readdirSync(dir)).toEqual(["index.jsonl"]);
  });

  test("discard removes the staged file and leaves the live one as it was", () => {
    const file = join(dir, "index.jsonl");
    writeFileSync(file, '{"n":1}\n');
    stageJsonl(file, ['{"n":10}']).discard();
    expect(readdirSync(dir)).toEqual(["index.jsonl"]);
    expect(readFileSync(file, "utf8")).toBe('{"n":1}\n');
  });
});

describe("dropJsonlPrefix", () => {
  test("keeps what follows the offset, torn last line included", () => {
    const file = join(dir, "wal.jsonl");
    writeFileSync(file, '{"n":1}\n{"n":2}\n{"n":3');
    dropJsonlPrefix(file, 8);
    expect(readFileSync(file, "utf8")).toBe('{"n":2}\n{"n":3');
    dropJsonlPrefix(file, 100);
    expect(existsSync(file) && readFileSync(file, "utf8")).toBe("");
  });
});
