/**
 * The HTTP client for one peer during a sync pass: the node client (`Remote`) with the peer's
 * token, made to never sleep inside a request. A 429 or 503 ends the request at once as
 * `rate_limited` / `unavailable`, and the peer's Retry-After is kept for the loop, which waits
 * that long before the next pass instead of holding the pass (and the peer's lock) open.
 */
import { CLIENT_DEFAULTS, Remote, type RemoteResponse } from "../client/remote.ts";
import { parseStored } from "../core/canonical.ts";
import { ERROR_STATUS, LinksError, type ErrorCode } from "../core/errors.ts";
import type { Peer } from "./peers.ts";

type RequestInit = NonNullable<Parameters<Remote["request"]>[2]>;

const BUSY = [429, 503];
/** a Retry-After longer than this is read as this (a peer cannot park us for days) */
export const MAX_RETRY_AFTER_MS = 60 * 60_000;
const MAX_DETAIL = 300;

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | null {
  if (header === null) return null;
  const text = header.trim();
  let ms: number;
  if (/^\d{1,10}$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at) || !/[a-z]/i.test(text)) return null;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

function busyError(res: RemoteResponse, what: string): LinksError {
  return errorOf(res, what, res.status === 429 ? "rate_limited" : "unavailable");
}

/** The peer's refusal as ours: its code when it is one of ours, its detail cut short. */
function errorOf(res: RemoteResponse, what: string, fallback: ErrorCode = "remote_error"): LinksError {
  const body = (typeof res.body === "object" && res.body !== null && !Array.isArray(res.body) ? res.body : {}) as Record<string, unknown>;
  const code = typeof body.code === "string" && Object.hasOwn(ERROR_STATUS, body.code) ? (body.code as ErrorCode) : fallback;
  const detail = typeof body.detail === "string" && body.detail !== "" ? body.detail.slice(0, MAX_DETAIL) : `${what} answered HTTP ${res.status}`;
  return new LinksError(code, detail, { status: res.status });
}

export class PeerRemote extends Remote {
  /** how long the peer asked us to wait, from the Retry-After of its last 429 or 503 */
  retryAfterMs: number | null = null;
  private readonly token: string | null;
  private readonly timeoutMs: number;

  constructor(peer: Pick<Peer, "url" | "token">, opts: { timeoutMs?: number } = {}) {
    const timeoutMs = opts.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs;
    super({ baseUrl: peer.url, token: peer.token ?? undefined, maxRetryWaitMs: 0, timeoutMs });
    this.token = peer.token;
    this.timeoutMs = timeoutMs;
  }

  /**
   * A text answer (an audit checkpoint is a signed note, not JSON), read up to maxBytes. The node
   * client reads JSON only; this goes once it reads text too.
   */
  async getText(path: string, maxBytes: number): Promise<string> {
    const headers: Record<string, string> = { accept: "text/plain, application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const what = `GET ${path.split("?")[0]}`;
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, { headers, redirect: "error", signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      const timedOut = (e as { name?: string }).name === "TimeoutError";
      throw new LinksError("unavailable", timedOut ? `${this.baseUrl} did not answer within ${this.timeoutMs / 1000}s` : `cannot reach ${this.baseUrl}: ${(e as Error).message}`, { cause: e });
    }
    const bytes = await readCapped(res, maxBytes, `${this.baseUrl} answered ${what} with more than ${maxBytes} bytes`);
    if (res.status < 400) {
      try {
        return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        throw new LinksError("remote_error", `${this.baseUrl} answered ${what} with text that is not UTF-8`);
      }
    }
    let body: RemoteResponse["body"] = null;
    try {
      body = parseStored(bytes);
    } catch {
      // not JSON: the status says it all
    }
    const answer = { status: res.status, headers: res.headers, body };
    if (BUSY.includes(res.status)) {
      this.retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      throw busyError(answer, what);
    }
    throw errorOf(answer, what);
  }

  override async request(method: "GET" | "POST", path: string, init: RequestInit = {}): Promise<RemoteResponse> {
    const accepted = init.accept ?? [];
    const res = await super.request(method, path, { ...init, accept: [...accepted, ...BUSY] });
    if (BUSY.includes(res.status) && !accepted.includes(res.status)) {
      this.retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      throw busyError(res, `${method} ${path.split("?")[0]}`);
    }
    return res;
  }
}

async function readCapped(res: Response, max: number, tooBig: string): Promise<Uint8Array> {
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const step = await reader.read();
      if (step.done) break;
      total += step.value.byteLength;
      if (total > max) {
        await reader.cancel().catch(() => {});
        throw new LinksError("remote_error", tooBig);
      }
      chunks.push(step.value);
    }
  } catch (e) {
    if (e instanceof LinksError) throw e;
    throw new LinksError("unavailable", `the answer broke off: ${(e as Error).message}`, { cause: e });
  }
  return Buffer.concat(chunks, total);
}
