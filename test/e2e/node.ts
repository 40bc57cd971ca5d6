/**
 * Runs the real `dist/links serve` on a free loopback port for end-to-end tests, and stops it.
 */
import { LINKS_BIN } from "./harness.ts";

export interface RunningNode {
  url: string;
  port: number;
  /** stderr so far (startup line, request log) */
  log(): string;
  /** SIGTERM, then wait for a clean exit; returns the exit code */
  stop(): Promise<number>;
  /** SIGKILL, no cleanup */
  kill(): Promise<void>;
}

/** extraArgs go after the defaults, so e.g. `--bind 0.0.0.0` there wins; the url stays loopback. */
export async function startNode(dataDir: string, extraArgs: string[] = []): Promise<RunningNode> {
  const proc = Bun.spawn([LINKS_BIN, "serve", "--bind", "127.0.0.1", "--port", "0", "--data", dataDir, ...extraArgs], {
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  let stderr = "";
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`links serve did not start within 10 s:\n${stderr}`)), 10_000);
    (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += decoder.decode(value, { stream: true });
        const m = /listening on http:\/\/\S+:(\d+) /.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      }
      clearTimeout(timer);
      reject(new Error(`links serve exited before listening:\n${stderr}`));
    })().catch(reject);
  });
  // keep draining stderr so the child never blocks on a full pipe
  (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      stderr += decoder.decode(value, { stream: true });
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log: () => stderr,
    async stop() {
      proc.kill("SIGTERM");
      return await proc.exited;
    },
    async kill() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}
