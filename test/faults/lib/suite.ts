/**
 * The scaffolding every fault suite shares: run the scenario once, in a fresh temporary
 * directory, before the file's tests, and remove the directory after them.
 */
import { afterAll, beforeAll } from "bun:test";
import { makeTempDir, type TempDir } from "../../e2e/harness.ts";

/**
 * Registers a beforeAll that runs `run` in a new temporary directory (named `tmpPrefix...`,
 * within `timeoutMs`) and an afterAll that removes it. The tests read the scenario's result
 * through the returned function.
 */
export function runScenarioOnce<T>(tmpPrefix: string, timeoutMs: number, run: (dir: string) => Promise<T>): () => T {
  let tmp: TempDir | undefined;
  let result: { value: T } | undefined;
  beforeAll(async () => {
    tmp = makeTempDir(tmpPrefix);
    result = { value: await run(tmp.path) };
  }, timeoutMs);
  afterAll(() => tmp?.remove());
  return () => {
    if (result === undefined) throw new Error(`the scenario in ${tmpPrefix}* did not finish`);
    return result.value;
  };
}
