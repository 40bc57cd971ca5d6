/**
 * The HTTP client for another node (or this one, from the operator's shell). Bodies are read as
 * bytes and parsed losslessly; every failure becomes a LinksError carrying the server's own
 * `{detail, code}` when it sent one.
 *
 * Another node is not trusted with our memory or our terminal: an answer is read as a stream and
 * given up (`remote_error`) the moment it passes its size limit (a per-call `maxBytes`, small where
 * the expected answer is small), a declared Content-Length over the limit is refused before a
 * byte is read, the whole exchange (body included) has one deadline, and an error's detail is cut
 * short and stripped of control characters before anyone prints it. Callers check the fields they
 * use (see policy-pull.ts).
 */
import { ofetch, type FetchOptions } from "ofetch";
import { parseStored, type JsonValue } from "../core/canonical.ts";
import { ERROR_STATUS, LinksError, type ErrorCode } from "../core/errors.ts";
import { printable } from "../core/printable.ts";

export const CLIENT_DEFAULTS = {
  /** for the whole exchange: connecting, headers and body */
  timeoutMs: 15_000,
  /** statuses whose Retry-After is honoured, within maxRetryWaitMs in all */
  retryStatuses: new Set([429, 503]),
  maxRetries: 3,
  maxRetryWaitMs: 30_000,
  /** the largest answer read unless a call asks for less (a bundle, a page of policy updates) */
  maxResponseBytes: 32 * 1024 * 1024,
  /** an error answer is read up to this much; a longer one is reported without its body */
  maxErrorBytes: 64 * 1024,
  /** the most characters of a remote's error detail kept */
  maxDetailChars: 500,
  /** for answers that are a status line: an inbox's or a policy POST's verdict */
  smallAnswerBytes: 64 * 1024,
  /** policy/latest: one artifact (a policy is bounded by the node's body limit, 1 MiB by default) */
  policyHeadBytes: 4 * 1024 * 1024,
};

/**
 * What a page cursor another node hands out may look like (a node's are short base64url); a
 * client follows nothing else.
 */
export const REMOTE_CURSOR_RE = /^[A-Za-z0-9_-]{1,256}$/;

export interface RemoteOptions {
  baseUrl: string;
  token?: string | undefined;
  timeoutMs?: number;
  maxRetryWaitMs?: number;
}

export interface RemoteResponse {
  status: number;
  headers: Headers;
  /** the body parsed as JSON, or null (empty, or not JSON) */
  body: JsonValue | null;
  /** the body as received */
  bytes: Uint8Array;
}

export interface RemoteRequestInit {
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** statuses >= 400 that are answers, not errors */
  accept?: number[];
  /** the largest answer this call reads (default CLIENT_DEFAULTS.maxResponseBytes) */
  maxBytes?: number;
}

export class Remote {
  readonly baseUrl: string;

  constructor(private readonly opts: RemoteOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new LinksError("invalid_argument", `not a URL: ${JSON.stringify(opts.baseUrl)}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new LinksError("invalid_argument", `the node URL must be http:// or https://, got ${url.protocol}`);
    }
    this.baseUrl = url.toString().replace(/\/+$/, "");
  }

  /** Sends a request; answers with status >= 400 throw, except those listed in `accept`. */
  async request(method: "GET" | "POST", path: string, init: RemoteRequestInit = {}): Promise<RemoteResponse> {
    const headers: Record<string, string> = { accept: "application/json", ...init.headers };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (init.body !== undefined) headers["content-type"] = "application/json";
    const maxBytes = init.maxBytes ?? CLIENT_DEFAULTS.maxResponseBytes;
    const what = `${method} ${path.split("?")[0]}`;
    let waited = 0;
    for (let attempt = 0; ; attempt++) {
      const timeoutMs = this.opts.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs;
      const deadline = AbortSignal.timeout(timeoutMs);
      const response = await this.send(method, path, { headers, body: init.body, signal: deadline });
      const retryAfter = retryDelayMs(response, attempt, waited, this.opts.maxRetryWaitMs ?? CLIENT_DEFAULTS.maxRetryWaitMs);
      if (retryAfter !== null) {
        await response.body?.cancel().catch(() => {});
        waited += retryAfter;
        await Bun.sleep(retryAfter);
        continue;
      }
      const failed = response.status >= 400 && !(init.accept ?? []).includes(response.status);
      if (failed) {
        const bytes = await this.readLimited(response, CLIENT_DEFAULTS.maxErrorBytes, what, timeoutMs).catch(() => null);
        throw errorFrom(response.status, bytes === null || bytes.length === 0 ? null : tryParse(bytes), what);
      }
      const bytes = await this.readLimited(response, maxBytes, what, timeoutMs);
      return { status: response.status, headers: response.headers, body: bytes.length === 0 ? null : tryParse(bytes), bytes };
    }
  }

  /** The body, up to `max` bytes: more is a remote_error, found out without reading the rest. */
  private async readLimited(response: Response, max: number, what: string, timeoutMs: number): Promise<Uint8Array> {
    const tooBig = (size: string) =>
      new LinksError("remote_error", `${this.baseUrl} answered ${what} with ${size}, over the ${max} bytes this client reads for it`);
    const declared = response.headers.get("content-length");
    if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > max) {
      await response.body?.cancel().catch(() => {});
      throw tooBig(`${declared.trim()} bytes`);
    }
    if (response.body === null) return new Uint8Array(0);
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const step = await reader.read();
        if (step.done) break;
        total += step.value.byteLength;
        if (total > max) {
          await reader.cancel().catch(() => {});
          throw tooBig("more bytes");
        }
        chunks.push(step.value);
      }
    } catch (e) {
      if (e instanceof LinksError) throw e;
      throw this.transportError(e, timeoutMs);
    }
    return Buffer.concat(chunks, total);
  }

  private async send(
    method: string,
    path: string,
    init: { headers: Record<string, string>; body?: Uint8Array | string | undefined; signal: AbortSignal },
  ): Promise<Response> {
    const options: FetchOptions<"stream"> = {
      method,
      headers: init.headers,
      // one deadline for the whole exchange: ofetch's own timeout stops at the headers
      signal: init.signal,
      retry: 0,
      ignoreResponseError: true,
      ...(init.body === undefined ? {} : { body: init.body }),
    };
    try {
      return await ofetch.raw(`${this.baseUrl}${path}`, { ...options, responseType: "stream" });
    } catch (e) {
      throw this.transportError(e, this.opts.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs);
    }
  }

  private transportError(e: unknown, timeoutMs: number): LinksError {
    const err = e as { name?: string; message?: string };
    const message = printable(err?.message ?? String(e), { max: 200 });
    if (err?.name === "TimeoutError" || /timeout|timed out|aborted/i.test(message)) {
      return new LinksError("unavailable", `${this.baseUrl} did not answer within ${timeoutMs / 1000}s`, { cause: e });
    }
    return new LinksError("unavailable", `cannot reach ${this.baseUrl}: ${message}`, { cause: e });
  }
}

function retryDelayMs(response: Response, attempt: number, waited: number, budget: number): number | null {
  if (!CLIENT_DEFAULTS.retryStatuses.has(response.status) || attempt >= CLIENT_DEFAULTS.maxRetries) return null;
  const header = response.headers.get("retry-after");
  if (header === null || !/^\d{1,6}$/.test(header.trim())) return null;
  const ms = Number(header.trim()) * 1000;
  if (waited + ms > budget) return null;
  return Math.max(ms, 100);
}

function tryParse(bytes: Uint8Array): JsonValue | null {
  try {
    return parseStored(bytes);
  } catch {
    return null;
  }
}

/** The remote's refusal as ours: its code when it is one of ours (else `fallback`), its detail cut short and escaped. */
export function errorFrom(status: number, body: JsonValue | null, what: string, fallback: ErrorCode = "remote_error"): LinksError {
  const fields = (typeof body === "object" && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
  const code = typeof fields.code === "string" && Object.hasOwn(ERROR_STATUS, fields.code) ? (fields.code as ErrorCode) : fallback;
  const detail =
    typeof fields.detail === "string" && fields.detail !== ""
      ? printable(fields.detail, { max: CLIENT_DEFAULTS.maxDetailChars })
      : `${what} answered HTTP ${status}`;
  return new LinksError(code, detail, { status });
}
