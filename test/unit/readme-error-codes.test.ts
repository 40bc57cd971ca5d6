/**
 * The README's "Error codes" table lists every code of src/core/errors.ts, each once, with what
 * to do; a code added to errors.ts without its row fails here (and so does a row for a code that
 * no longer exists, or an HTTP status that differs from the one the node answers with).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ERROR_STATUS } from "../../src/core/errors.ts";

const README = readFileSync(join(import.meta.dir, "..", "..", "README.md"), "utf8");

interface Row {
  code: string;
  http: string;
  meaning: string;
  todo: string;
}

function errorTable(): Row[] {
  const start = README.indexOf("\n## Error codes\n");
  expect(start).toBeGreaterThan(-1);
  const end = README.indexOf("\n## ", start + 1);
  const section = README.slice(start, end === -1 ? undefined : end);
  return section
    .split("\n")
    .filter((line) => /^\| `[a-z_]+` \|/.test(line))
    .map((line) => {
      const cells = line.split("|").slice(1, -1).map((c) => c.trim());
      return { code: (cells[0] ?? "").replace(/`/g, ""), http: cells[1] ?? "", meaning: cells[2] ?? "", todo: cells[3] ?? "" };
    });
}

describe("the README's error code table", () => {
  const rows = errorTable();
  const listed = rows.map((r) => r.code);

  test("lists every code of src/core/errors.ts", () => {
    const missing = Object.keys(ERROR_STATUS).filter((code) => !listed.includes(code));
    expect(missing).toEqual([]);
  });

  test("lists no code that errors.ts does not have, and each code once", () => {
    expect(listed.filter((code) => !(code in ERROR_STATUS))).toEqual([]);
    expect(listed.filter((code, i) => listed.indexOf(code) !== i)).toEqual([]);
  });

  test("gives each code the HTTP status the node answers with (or CLI), a meaning and what to do", () => {
    for (const row of rows) {
      const status = ERROR_STATUS[row.code as keyof typeof ERROR_STATUS];
      expect({ code: row.code, http: row.http === "CLI" ? "CLI" : Number(row.http) }).toEqual({ code: row.code, http: row.http === "CLI" ? "CLI" : status });
      expect({ code: row.code, meaning: row.meaning.length > 10 }).toEqual({ code: row.code, meaning: true });
      expect({ code: row.code, todo: row.todo.length > 0 }).toEqual({ code: row.code, todo: true });
    }
  });
});
