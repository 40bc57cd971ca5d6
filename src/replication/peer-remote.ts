/**
 * The HTTP client for one peer during a sync pass: the node client (`Remote`) with the peer's
 * token, made to never sleep inside a request. A 429 or 503 ends the request at once as
 * `rate_limited` / `unavailable`, and the peer's Retry-After is kept for the loop, which waits
 * that long before the next pass instead of holding the pass (and the peer's lock) open.
 */
import { CLIENT_DEFAULTS, errorFrom, Remote, type RemoteRequestInit, type RemoteResponse } from "../client/remote.ts";
import type { Peer } from "./peers.ts";

const BUSY = [429, 503];
/** a Retry-After longer than this is read as this (a peer cannot park us for days) */
export const MAX_RETRY_AFTER_MS = 60 * 60_000;

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

export class PeerRemote extends Remote {
  /** how long the peer asked us to wait, from the Retry-After of its last 429 or 503 */
  retryAfterMs: number | null = null;

  constructor(peer: Pick<Peer, "url" | "token">, opts: { timeoutMs?: number } = {}) {
    super({ baseUrl: peer.url, token: peer.token ?? undefined, maxRetryWaitMs: 0, timeoutMs: opts.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs });
  }

  override async request(method: "GET" | "POST", path: string, init: RemoteRequestInit = {}): Promise<RemoteResponse> {
    const accepted = init.accept ?? [];
    const busy = BUSY.filter((s) => !accepted.includes(s));
    const res = await super.request(method, path, { ...init, accept: [...accepted, ...busy] });
    if (busy.includes(res.status)) {
      this.retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      throw errorFrom(res.status, res.body, `${method} ${path.split("?")[0]}`, res.status === 429 ? "rate_limited" : "unavailable");
    }
    return res;
  }
}
