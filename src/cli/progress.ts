/**
 * Progress of a long command on stderr, only when stderr is a terminal and the command was not
 * asked for --json: pipes, files and scripts see nothing of it. A bar is drawn as soon as the work
 * starts and redrawn at most every 100 ms.
 */

export type ProgressUnit = "bytes" | "items";

export interface Progress {
  /** how much of the total is done */
  update(done: number): void;
  /** a new step of the same work (e.g. the second pass over a file) with its own total */
  phase(label: string, total: number | null): void;
  /** draws the final state and ends the line */
  finish(): void;
}

const REDRAW_MS = 100;
const BAR_WIDTH = 24;

function human(n: number, unit: ProgressUnit): string {
  if (unit === "items") return n.toLocaleString("en-US");
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** One line of progress: `label [#####.....]  45% 63.0 MiB/140.0 MiB` (no total: just the count). */
export function renderProgress(label: string, done: number, total: number | null, unit: ProgressUnit): string {
  if (total === null || total <= 0) return `${label} ${human(done, unit)}`;
  const ratio = Math.min(1, Math.max(0, done / total));
  const filled = Math.round(ratio * BAR_WIDTH);
  const pct = `${Math.floor(ratio * 100)}%`.padStart(4);
  return `${label} [${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}] ${pct} ${human(done, unit)}/${human(total, unit)}`;
}

const silent: Progress = { update() {}, phase() {}, finish() {} };

/** A bar is on screen without its line ended (an error message must start on a fresh line). */
let lineOpen = false;

/** Ends the line of a bar still on screen; called before an error message is printed. */
export function interruptProgress(): void {
  if (lineOpen) process.stderr.write("\n");
  lineOpen = false;
}

/** Whether progress is shown: a terminal on stderr, and no --json. */
export function progressWanted(args: { json?: boolean | undefined }): boolean {
  return Boolean(process.stderr.isTTY) && !args.json;
}

export function startProgress(
  args: { json?: boolean | undefined },
  label: string,
  total: number | null,
  unit: ProgressUnit = "items",
): Progress {
  if (!progressWanted(args)) return silent;
  let current = { label, total };
  let done = 0;
  let lastDraw = 0;
  let lastWidth = 0;
  const draw = () => {
    const line = renderProgress(current.label, done, current.total, unit);
    // pad over what a longer previous line left behind
    process.stderr.write(`\r${line}${" ".repeat(Math.max(0, lastWidth - line.length))}`);
    lastWidth = line.length;
    lastDraw = performance.now();
    lineOpen = true;
  };
  draw();
  return {
    update(n) {
      done = n;
      if (performance.now() - lastDraw >= REDRAW_MS) draw();
    },
    phase(nextLabel, nextTotal) {
      current = { label: nextLabel, total: nextTotal };
      done = 0;
      draw();
    },
    finish() {
      if (current.total !== null) done = Math.max(done, current.total);
      draw();
      process.stderr.write("\n");
      lineOpen = false;
    },
  };
}
