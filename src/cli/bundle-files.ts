/**
 * One bundle or several on the command line: a bundle file, or a directory of `<n>.json` bundles
 * (what `links claims build` writes when the claims need several), taken in the order of n.
 */
import { mkdirSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { isLinksError, LinksError, storageError } from "../core/errors.ts";

export const NUMBERED_BUNDLE_RE = /^([1-9]\d{0,8})\.json$/;

/** The name of the n-th bundle (1-based) in a directory of several. */
export function numberedName(n: number): string {
  return `${n}.json`;
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The `<n>.json` files of a directory, in the order of n. */
function numberedFiles(dir: string): { n: number; name: string }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw storageError(e, `listing ${dir}`);
  }
  return names
    .map((name) => ({ name, m: NUMBERED_BUNDLE_RE.exec(name) }))
    .filter((x) => x.m !== null)
    .map((x) => ({ n: Number((x.m as RegExpExecArray)[1]), name: x.name }))
    .sort((a, b) => a.n - b.n);
}

export interface BundleInputs {
  /** the files, in order */
  files: string[];
  /** the input named a directory of several bundles */
  directory: boolean;
}

/** The bundles a path names: itself (a file, or "-" for standard input), or a directory's `<n>.json` files. */
export function bundleInputs(path: string, what = "bundle file"): BundleInputs {
  if (path === "-" || !isDirectory(path)) return { files: [path], directory: false };
  const files = numberedFiles(path).map((f) => join(path, f.name));
  if (files.length === 0) {
    throw new LinksError("not_found", `${path} is a directory without bundles: a ${what} or a directory of <n>.json bundles (from links claims build) was expected`);
  }
  return { files, directory: true };
}

/**
 * Makes `dir` ready to receive bundles 1..n: created if missing; a file in its way is refused.
 * Returns a function to call once all n are written: it removes `<k>.json` files with k > n
 * left by an earlier, longer run (they would otherwise be signed or pushed with the new ones).
 */
export function prepareBundleDir(dir: string): (written: number) => string[] {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    if ((e as { code?: string }).code === "EEXIST" || (e as { code?: string }).code === "ENOTDIR") {
      throw new LinksError("file_exists", `${dir} is a file: several bundles need a directory for --out (remove the file or name another path)`);
    }
    throw storageError(e, `creating ${dir}`);
  }
  if (!isDirectory(dir)) throw new LinksError("file_exists", `${dir} is a file: several bundles need a directory for --out`);
  return (written) => {
    const stale = numberedFiles(dir).filter((f) => f.n > written);
    for (const f of stale) {
      try {
        unlinkSync(join(dir, f.name));
      } catch (e) {
        throw storageError(e, `removing ${join(dir, f.name)}`);
      }
    }
    return stale.map((f) => join(dir, f.name));
  };
}

/**
 * Runs the step of bundle `index` of the inputs. When they are several (a directory), a refusal
 * names the file and says what was done before it: the steps before were `done` ("ingested",
 * "pushed"), the rest not tried.
 */
export async function stepOfSeveral<T>(inputs: BundleInputs, index: number, done: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (!inputs.directory || !isLinksError(e)) throw e;
    const where = `bundle ${index + 1} of ${inputs.files.length}; the ${index} before it were ${done}, the rest not tried`;
    throw new LinksError(e.code, `${inputs.files[index]}: ${e.detail} (${where})`, { cause: e });
  }
}

/** How many of several bundles a node or the pipeline accepted, found already stored, or held. */
export function tally(results: { status: string }[]): { accepted: number; duplicate: number; quarantined: number } {
  const count = (status: string) => results.filter((r) => r.status === status).length;
  return { accepted: count("accepted"), duplicate: count("duplicate"), quarantined: count("quarantined") };
}

export function describeTally(t: { accepted: number; duplicate: number; quarantined: number }): string {
  return `${t.accepted} accepted, ${t.duplicate} duplicate, ${t.quarantined} quarantined`;
}
