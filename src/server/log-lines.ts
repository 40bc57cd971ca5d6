/**
 * The node's log lines on stderr, written in batches: under load one write(2) per request was a
 * tenth of the event loop's time. Lines wait at most FLUSH_MS (or until 64 KiB have gathered);
 * errors and warnings are written at once, and what waits is written when the node stops (and
 * when the process exits), so a clean stop loses nothing. A kill -9 can lose the last few
 * milliseconds of request lines, never an audit row: the audit log is the node's record.
 */
const FLUSH_MS = 25;
const FLUSH_BYTES = 64 * 1024;

export class LogLines {
  private pending: string[] = [];
  private bytes = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly write: (text: string) => void = (t) => void process.stderr.write(t)) {
    process.on("exit", () => this.flush());
  }

  /** One JSON line; `level` error or warning goes out at once. */
  readonly line = (line: object): void => {
    const text = `${JSON.stringify(line)}\n`;
    this.pending.push(text);
    this.bytes += text.length;
    const level = (line as { level?: unknown }).level;
    if (level === "error" || level === "warning" || this.bytes >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  };

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    this.bytes = 0;
    this.write(text);
  }
}

/** The node's stderr log. */
export const stderrLog = new LogLines();
