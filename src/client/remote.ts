/**
 * The HTTP client for another node (or this one, from the operator's shell). Bodies are read as
 * bytes and parsed losslessly; every failure becomes a LinksError carrying the server's own
 * `{detail, code}` when it sent one.
 */
import { ofetch, type FetchOptions } from "ofetch";
import { parseStored, type JsonValue } from "../core/canonical.ts";
import { ERROR_STATUS, LinksError, type ErrorCode } from "../core/errors.ts";

export const CLIENT_DEFAULTS = {
  timeoutMs: 15_000,
  /** statuses whose Retry-After is honoured, within maxRetryWaitMs in all */
  retryStatuses: new Set([429, 503]),
  maxRetries: 3,
  maxRetryWaitMs: 30_000,
};

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
  async request(
    method: "GET" | "POST",
    path: string,
    init: {
      body?: Uint8Array | string;
      headers?: Record<string, string>;
      accept?: number[];
      /** refuse (remote_error) an answer larger than this, without reading the rest */
      maxBytes?: number;
    } = {},
  ): Promise<RemoteResponse> {
    const headers: Record<string, string> = { accept: "application/json", ...init.headers };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (init.body !== undefined) headers["content-type"] = "application/json";
    let waited = 0;
    for (let attempt = 0; ; attempt++) {
      const response = await this.send(method, path, { headers, body: init.body });
      const retryAfter = retryDelayMs(response, attempt, waited, this.opts.maxRetryWaitMs ?? CLIENT_DEFAULTS.maxRetryWaitMs);
      if (retryAfter !== null) {
        waited += retryAfter;
        await Bun.sleep(retryAfter);
        continue;
      }
      const bytes = await readBody(response, init.maxBytes ?? Number.POSITIVE_INFINITY, `${method} ${path}`);
      const body = bytes.length === 0 ? null : tryParse(bytes);
      if (response.status >= 400 && !(init.accept ?? []).includes(response.status)) {
        throw errorFrom(response.status, body, `${method} ${path}`);
      }
      return { status: response.status, headers: response.headers, body, bytes };
    }
  }

  private async send(method: string, path: string, init: { headers: Record<string, string>; body?: Uint8Array | string | undefined }): Promise<Response> {
    const options: FetchOptions<"stream"> = {
      method,
      headers: init.headers,
      timeout: this.opts.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs,
      retry: 0,
      ignoreResponseError: true,
      ...(init.body === undefined ? {} : { body: init.body }),
    };
    try {
      return await ofetch.raw(`${this.baseUrl}${path}`, { ...options, responseType: "stream" });
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      if (/timeout|aborted/i.test(message)) {
        throw new LinksError("unavailable", `${this.baseUrl} did not answer within ${(this.opts.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs) / 1000}s`, { cause: e });
      }
      throw new LinksError("unavailable", `cannot reach ${this.baseUrl}: ${message}`, { cause: e });
    }
  }
}

function retryDelayMs(response: Response, attempt: number, waited: number, budget: number): number | null {
  if (!CLIENT_DEFAULTS.retryStatuses.has(response.status) || attempt >= CLIENT_DEFAULTS.maxRetries) return null;
  const header = response.headers.get("retry-after");
  if (header === null || !/^\d+$/.test(header.trim())) return null;
  const ms = Number(header.trim()) * 1000;
  if (waited + ms > budget) return null;
  return Math.max(ms, 100);
}

async function readBody(response: Response, maxBytes: number, what: string): Promise<Uint8Array> {
  const tooLarge = () => new LinksError("remote_error", `the answer to ${what} is larger than ${maxBytes} bytes`);
  if (Number(response.headers.get("content-length") ?? 0) > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  if (!Number.isFinite(maxBytes) || response.body === null) return new Uint8Array(await response.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function tryParse(bytes: Uint8Array): JsonValue | null {
  try {
    return parseStored(bytes);
  } catch {
    return null;
  }
}

function errorFrom(status: number, body: JsonValue | null, what: string): LinksError {
  const fields = (typeof body === "object" && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
  const detail = typeof fields.detail === "string" ? fields.detail : `${what} answered HTTP ${status}`;
  const code = typeof fields.code === "string" && fields.code in ERROR_STATUS ? (fields.code as ErrorCode) : "remote_error";
  return new LinksError(code, detail, { status });
}

