/**
 * How big the fault runs are. `npm test` runs the "fast" sizes (fixed in its test files);
 * `npm run test:faults` reads FAULTS_SCALE: "full" (the default: 20 crash rounds, 100k fuzzed
 * requests) or "ci" (sized to finish in a few minutes on a 2-core CI runner).
 */
export type Scale = "fast" | "ci" | "full";

export interface Sizes {
  scale: Scale;
  /** kill -9 rounds of the crash test, and concurrent pushing clients */
  crashRounds: number;
  crashClients: number;
  /** fuzzed HTTP requests against a running node, and their concurrency */
  fuzzRequests: number;
  fuzzConcurrency: number;
  /** in-process canonical JSON property runs */
  canonicalRuns: number;
  /** concurrent writers: CLI processes of each kind, HTTP pushes */
  writerProcesses: number;
  writerPushes: number;
  /** traversal corpus: every entry in every CLI position (false: a sample) */
  fullPathCorpus: boolean;
  /** disk full: 0..diskFullSteps-1 pages left free, and writes tried while completely full */
  diskFullSteps: number;
  diskFullAttempts: number;
  /** `links claims reindex` runs while clients push, and the pushes made meanwhile */
  reindexRuns: number;
  reindexPushes: number;
  /** scope shadowing: bundles tried in each order of scopes */
  scopeRounds: number;
}

export const SIZES: Record<Scale, Sizes> = {
  fast: {
    scale: "fast",
    crashRounds: 2,
    crashClients: 16,
    fuzzRequests: 3000,
    fuzzConcurrency: 16,
    canonicalRuns: 300,
    writerProcesses: 3,
    writerPushes: 40,
    fullPathCorpus: false,
    diskFullSteps: 6,
    diskFullAttempts: 2,
    reindexRuns: 4,
    reindexPushes: 400,
    scopeRounds: 1,
  },
  ci: {
    scale: "ci",
    crashRounds: 8,
    crashClients: 16,
    fuzzRequests: 30_000,
    fuzzConcurrency: 16,
    canonicalRuns: 5000,
    writerProcesses: 6,
    writerPushes: 300,
    fullPathCorpus: true,
    diskFullSteps: 16,
    diskFullAttempts: 4,
    reindexRuns: 10,
    reindexPushes: 2000,
    scopeRounds: 4,
  },
  full: {
    scale: "full",
    crashRounds: 20,
    crashClients: 16,
    fuzzRequests: 100_000,
    fuzzConcurrency: 16,
    canonicalRuns: 20_000,
    writerProcesses: 10,
    writerPushes: 600,
    fullPathCorpus: true,
    diskFullSteps: 32,
    diskFullAttempts: 10,
    reindexRuns: 20,
    reindexPushes: 6000,
    scopeRounds: 10,
  },
};

/** The sizes of a test:faults run (FAULTS_SCALE=ci|full, default full). */
export function faultsSizes(): Sizes {
  const name = (process.env.FAULTS_SCALE ?? "full").trim().toLowerCase();
  if (name !== "ci" && name !== "full") throw new Error(`FAULTS_SCALE must be "ci" or "full", got ${JSON.stringify(name)}`);
  return SIZES[name];
}

/** One seed per run, printed, so a failure can be replayed with FAULTS_SEED=<seed>. */
export function faultsSeed(): number {
  const fromEnv = process.env.FAULTS_SEED;
  if (fromEnv !== undefined && /^-?\d+$/.test(fromEnv)) return Number(fromEnv) | 0;
  return (Date.now() ^ (process.pid << 8)) | 0;
}

/** One line of figures, greppable in the test output: `[faults] <area>: k=v k=v ...`. */
export function figures(area: string, values: Record<string, string | number | boolean>): void {
  const text = Object.entries(values)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  console.log(`[faults] ${area}: ${text}`);
}
