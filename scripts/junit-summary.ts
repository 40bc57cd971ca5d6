/**
 * Prints the one closing line CI reads, `N passed, M failed[, K skipped]`, from bun's JUnit
 * reports. A report that is missing (its step never ran) counts as one failure.
 * A test command that failed while every report passed (a crash between files, a failed build)
 * counts as one failure too.
 * Usage: bun scripts/junit-summary.ts [--command-status N] reports/unit.xml reports/e2e.xml
 */
import { existsSync, readFileSync } from "node:fs";

let passed = 0;
let failed = 0;
let skipped = 0;
const args = process.argv.slice(2);
let commandStatus = 0;
if (args[0] === "--command-status") {
  commandStatus = Number(args[1]);
  args.splice(0, 2);
}
for (const file of args) {
  if (!existsSync(file)) {
    console.error(`junit-summary: ${file} is missing (that test step did not run)`);
    failed += 1;
    continue;
  }
  const xml = readFileSync(file, "utf8");
  const root = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? "";
  const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(root)?.[1] ?? 0);
  const tests = attr("tests");
  const bad = attr("failures") + attr("errors");
  passed += tests - bad - attr("skipped");
  failed += bad;
  skipped += attr("skipped");
}
if (commandStatus !== 0 && failed === 0) {
  console.error(`junit-summary: the test command exited with ${commandStatus} although every reported test passed`);
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exitCode = failed > 0 ? 1 : 0;
