/**
 * `links serve`: the app on Bun.serve. The client address comes from the connection (the Bun
 * server is handed to the app as its env), one startup line goes to stderr (with the real port
 * when asked for port 0), and SIGTERM/SIGINT stop accepting, let in-flight requests finish, then
 * exit 0. The returned handle does not keep anything alive by itself beyond the listening socket.
 */
import { resolve } from "node:path";
import { LinksError, type ErrorCode } from "../core/errors.ts";
import { recover } from "../storage/group-commit.ts";
import { identityFromKeyFile } from "../storage/node-identity.ts";
import { DataPaths } from "../storage/paths.ts";
import { lockDataDirForServe } from "../storage/serve-lock.ts";
import { startSyncLoop } from "../replication/loop.ts";
import { SYNC_DEFAULTS } from "../replication/pass.ts";
import { createApp, DEFAULTS, type LinksApp, type ServerOptions } from "./app.ts";
import { startIdleCollector } from "./idle-gc.ts";
import { isLoopbackHost, urlHost } from "./net.ts";

/** Where and how to listen, and the app's own options (see ServerOptions) for the rest. */
export interface ServeOptions extends ServerOptions {
  bind: string;
  port: number;
  /** install SIGTERM/SIGINT handlers that stop gracefully and exit 0 (default true) */
  handleSignals?: boolean;
  /** where the startup line and warnings go (default stderr) */
  announce?: (line: string) => void;
  /** the private key file audit checkpoints are signed with (default: <data>/node/ed25519.key, made if missing) */
  nodeKeyFile?: string | undefined;
  /** how often to sync with each configured peer, in ms (0: never in the background) */
  syncIntervalMs?: number;
}

export interface ServerHandle {
  port: number;
  hostname: string;
  /** stops accepting and resolves once in-flight requests have finished */
  stop(): Promise<void>;
}

/** quiet time after a burst before the node collects its garbage in full */
const IDLE_GC_MS = 2000;

/**
 * Bun builds a request's url from its Host header. A Host that is not a host name ("a/b", "a b",
 * "https://x"), or none in HTTP/1.0, leaves the url relative, and the router would then read a
 * path other than the one requested ("/xx/metrics" as "/metrics"): a proxy that allows or denies
 * by path would be bypassed. Such a request is answered 400 before the app routes it.
 */
export function badHostAnswer(req: Request): Response | null {
  if (req.url.startsWith("http://") || req.url.startsWith("https://")) return null;
  return edgeError(400, "invalid_argument", "the request's Host header is missing or is not a host name (as in Host: links.example.org:8080)", { Connection: "close" });
}

/** An error answered before (or outside) the app: the same `{"detail","code"}` body. */
function edgeError(status: number, code: ErrorCode, detail: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ detail, code }), { status, headers: { "Content-Type": "application/json", ...headers } });
}

export function insecureBindWarning(bind: string, allowInsecureRemote: boolean): string | null {
  if (isLoopbackHost(bind)) return null;
  const head = `links: WARNING: listening on ${bind}, which is reachable from other hosts. Bearer tokens need TLS in front of this node (a reverse proxy).`;
  return allowInsecureRemote
    ? `${head} --allow-insecure-remote is set: bearer tokens sent over plain HTTP from remote peers ARE ACCEPTED.`
    : `${head} Plain-HTTP requests carrying a bearer token from remote peers are refused (403 tls_required) unless they come through --trust-proxy with X-Forwarded-Proto: https, or --allow-insecure-remote is set.`;
}

export async function startServer(opts: ServeOptions): Promise<ServerHandle> {
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new LinksError("invalid_argument", `port must be an integer from 0 to 65535, got ${opts.port}`);
  }
  if (typeof opts.bind !== "string" || opts.bind.trim() === "") throw new LinksError("invalid_argument", "bind address is required");
  const announce = opts.announce ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dataDir = resolve(opts.dataDir);
  const allowInsecureRemote = opts.allowInsecureRemote ?? DEFAULTS.allowInsecureRemote;
  const paths = new DataPaths(dataDir);
  // Before anything else touches the directory: a second node stops here, recovering nothing.
  const lock = lockDataDirForServe(paths);
  let linksApp: LinksApp;
  try {
    const recovered = recover(paths);
    if (recovered.repaired > 0) {
      announce(`links: recovered ${recovered.repaired} of ${recovered.logged} bundles from the ingest log after a crash`);
    }
    const identity = opts.nodeKeyFile === undefined ? undefined : await identityFromKeyFile(opts.nodeKeyFile, opts.nodeName, (m) => announce(`links: warning: ${m}`));
    const { bind: _bind, port: _port, handleSignals: _signals, announce: _announce, nodeKeyFile: _key, syncIntervalMs: _sync, ...appOptions } = opts;
    linksApp = createApp({ ...appOptions, dataDir, allowInsecureRemote, ...(identity ? { identity } : {}) });
  } catch (e) {
    lock.release();
    throw e;
  }
  const { app, commit, claimsDb } = linksApp;
  const close = async (): Promise<void> => {
    try {
      await linksApp.close();
    } finally {
      lock.release();
    }
  };

  const idle = startIdleCollector({ intervalMs: IDLE_GC_MS });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: opts.bind,
      port: opts.port,
      development: false,
      // Bun turns SO_REUSEPORT on when development is false: a second `links serve` on the same
      // port would then silently share its connections. One node, one port.
      reusePort: false,
      // The body-limit middleware enforces --max-body (a declared length before a byte is read, a
      // chunked body as it streams) and answers JSON. Bun's own cap (128 MiB by default) would
      // answer a bare 413 first for larger declared lengths: lift it out of the way.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      fetch: (req, srv) => {
        idle.touch();
        return badHostAnswer(req) ?? app.fetch(req, srv);
      },
      // Only reached if something fails outside Hono's own error handling.
      error: () => edgeError(500, "internal_error", "internal error"),
    });
  } catch (e) {
    idle.stop();
    await close();
    const why = (e as { code?: string }).code === "EADDRINUSE" ? "the address is in use" : (e as Error).message;
    throw new LinksError("unavailable", `cannot listen on ${urlHost(opts.bind)}:${opts.port}: ${why}`, { cause: e });
  }
  const hostname = server.hostname ?? opts.bind;
  const port = server.port ?? opts.port;

  const warning = insecureBindWarning(opts.bind, allowInsecureRemote);
  if (warning) announce(warning);
  announce(`links: listening on http://${urlHost(hostname)}:${port} (data ${dataDir})`);
  const syncIntervalMs = opts.syncIntervalMs ?? SYNC_DEFAULTS.intervalMs;
  const sync = syncIntervalMs > 0 ? startSyncLoop({ paths, commit, owners: claimsDb, intervalMs: syncIntervalMs, log: opts.logger ?? DEFAULTS.logger }) : null;

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await Promise.all([server.stop(), sync?.stop()]);
      idle.stop();
      // Removed only now, so a second signal while requests finish still reaches onSignal.
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      await close();
    })();
    return stopping;
  };
  function onSignal(): void {
    if (stopping) {
      // A second signal: do not wait for slow clients any longer.
      void server.stop(true);
      return;
    }
    announce("links: stopping (finishing requests in flight)");
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        // The requests are answered; what failed is the last checkpoint. The log still holds
        // the bundles, and the next start replays it.
        announce(`links: error while stopping: ${(e as Error).message}; the next start recovers from the ingest log`);
        process.exit(1);
      },
    );
  }
  if (opts.handleSignals ?? true) {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }
  return { port, hostname, stop };
}
