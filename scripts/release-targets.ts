/**
 * The platforms `npm run release` builds for, with Bun's --target for each, and the checksum file
 * it writes beside them (the format `sha256sum -c` and `shasum -a 256 -c` read).
 */
export const RELEASE_TARGETS = {
  "linux-x64": "bun-linux-x64",
  "linux-arm64": "bun-linux-arm64",
  "linux-x64-musl": "bun-linux-x64-musl",
  "darwin-arm64": "bun-darwin-arm64",
  "darwin-x64": "bun-darwin-x64",
} as const;

export type ReleaseTarget = keyof typeof RELEASE_TARGETS;

/**
 * What `bun build --compile` bundles: the program, and the verification worker, which a compiled
 * executable can only start when it was built as an entry point of its own.
 */
export const ENTRY_POINTS = ["src/main.ts", "src/server/verify-worker.ts"] as const;

/** The `bun build` arguments for one executable (target: a Bun target, or the host's own). */
export function buildArgs(outfile: string, target?: string): string[] {
  return ["build", "--compile", "--splitting", "--compile-exec-argv=--smol", "--minify", "--bytecode", "--format=esm", ...(target ? [`--target=${target}`] : []), ...ENTRY_POINTS, "--outfile", outfile];
}

export function isReleaseTarget(name: string): name is ReleaseTarget {
  return Object.hasOwn(RELEASE_TARGETS, name);
}

/** The file name of a target's executable in dist/release/. */
export function executableName(target: ReleaseTarget): string {
  return `links-${target}`;
}

/** SHA256SUMS: one `<hex>  <name>` line per file, sorted by name. */
export function sha256sums(entries: { name: string; sha256: string }[]): string {
  return [...entries]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) => `${e.sha256}  ${e.name}\n`)
    .join("");
}

/** The target this machine runs itself, if it is one we release. */
export function hostTarget(platform = process.platform, arch = process.arch): ReleaseTarget | null {
  const name = `${platform}-${arch}`;
  return isReleaseTarget(name) ? name : null;
}
