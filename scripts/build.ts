/**
 * `npm run build`: the single `links` executable for this machine, in dist/links, from the same
 * entry points as the release builds (scripts/release-targets.ts).
 */
import { resolve } from "node:path";
import { buildArgs } from "./release-targets.ts";

const repo = resolve(import.meta.dir, "..");
const proc = Bun.spawn([process.execPath, ...buildArgs("dist/links")], { cwd: repo, stdout: "inherit", stderr: "inherit" });
process.exit(await proc.exited);
