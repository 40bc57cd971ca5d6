/**
 * readVillage: one stat per read, the parsed village kept until village.json changes, and a
 * village that is not there (or no longer) is village_not_found, never an old copy.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataPaths } from "../../../src/storage/paths.ts";
import { createVillage, readVillage, updateVillage } from "../../../src/storage/villages.ts";

let dir = "";
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = "";
});

function setup(): DataPaths {
  dir = mkdtempSync(join(tmpdir(), "links-villages-"));
  return new DataPaths(join(dir, "data"));
}

describe("readVillage", () => {
  test("a village that does not exist is 404 village_not_found", () => {
    const paths = setup();
    expect(() => readVillage(paths, "nowhere")).toThrow(expect.objectContaining({ code: "village_not_found", detail: 'village "nowhere" does not exist' }));
  });

  test("the same object while village.json is unchanged; a new one once it changes; not found once it is gone", () => {
    const paths = setup();
    createVillage(paths, { villageId: "garden", name: "Garden", adminId: "alice" });
    const first = readVillage(paths, "garden");
    expect(readVillage(paths, "garden")).toBe(first);
    updateVillage(paths, "garden", (v) => ({ village: { ...v, name: "Walled garden" }, result: null }));
    expect(readVillage(paths, "garden").name).toBe("Walled garden");
    rmSync(paths.villageFile("garden"));
    expect(() => readVillage(paths, "garden")).toThrow(expect.objectContaining({ code: "village_not_found" }));
  });
});
