/**
 * HTTP helpers for the fault tests: a bounded pool of concurrent requests (fetch keeps its
 * connections alive), the check every error answer must pass, and a raw HTTP/1.1 client for what
 * fetch will not send (literal "..", backslashes, odd methods, lying Content-Length).
 */
import { connect } from "node:net";

/** Runs fn over items with at most `concurrency` in flight; returns how long it took (ms). */
export async function runPool<T>(items: Iterable<T>, concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<number> {
  const started = performance.now();
  const it = items[Symbol.iterator]();
  let index = 0;
  const worker = async () => {
    for (;;) {
      const next = it.next();
      if (next.done) return;
      await fn(next.value, index++);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return performance.now() - started;
}

/**
 * Why an answer breaks the error contract, or null: an error (4xx/5xx) with a body must be JSON
 * `{"detail": string, "code": string}` and name no path of the host.
 */
export function errorContractProblem(status: number, contentType: string | null, body: string, method: string, hide: string[] = []): string | null {
  for (const h of hide) if (h.length > 1 && body.includes(h)) return `the body shows the host path ${h}`;
  if (/\n\s+at .+:\d+:\d+/.test(body)) return "the body holds a stack trace";
  if (status < 400 || method === "HEAD") return null;
  if (!contentType?.toLowerCase().startsWith("application/json")) return `Content-Type ${contentType} is not JSON`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return `body is not JSON: ${body.slice(0, 120)}`;
  }
  const o = parsed as { detail?: unknown; code?: unknown };
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return "body is not a JSON object";
  if (typeof o.detail !== "string") return "detail is not a string";
  if (typeof o.code !== "string" || !/^[a-z_]+$/.test(o.code)) return `code ${JSON.stringify(o.code)} is not a code`;
  return null;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** true when the server closed the connection without an answer */
  noAnswer: boolean;
}

/** Sends raw bytes as one HTTP/1.1 request on a fresh connection and reads the answer. */
export function rawRequest(port: number, request: string | Uint8Array, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: "127.0.0.1", port });
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseRaw(Buffer.concat(chunks)));
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on("connect", () => socket.write(request));
    socket.on("data", (d: Buffer) => {
      chunks.push(d);
      const parsed = parseRaw(Buffer.concat(chunks));
      if (!parsed.noAnswer && parsed.complete) finish();
    });
    socket.on("error", finish);
    socket.on("close", finish);
  });
}

function parseRaw(buf: Buffer): RawResponse & { complete: boolean } {
  const text = buf.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  if (end === -1) return { status: 0, headers: {}, body: "", noAnswer: true, complete: false };
  const [statusLine = "", ...lines] = text.slice(0, end).split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const rawBody = buf.subarray(Buffer.byteLength(text.slice(0, end + 4), "latin1"));
  let body: Buffer = rawBody;
  let complete = false;
  if (headers["content-length"] !== undefined) {
    const n = Number(headers["content-length"]);
    complete = rawBody.length >= n;
    body = rawBody.subarray(0, n);
  } else if (headers["transfer-encoding"]?.includes("chunked")) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const nl = rawBody.indexOf("\r\n", at);
      if (nl === -1) break;
      const size = Number.parseInt(rawBody.subarray(at, nl).toString("latin1"), 16);
      if (!Number.isFinite(size)) break;
      if (size === 0) {
        complete = true;
        break;
      }
      parts.push(rawBody.subarray(nl + 2, nl + 2 + size));
      at = nl + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (status === 204 || status === 304) {
    complete = true;
  }
  return { status, headers, body: body.toString("utf8"), noAnswer: status === 0, complete };
}

/** A GET (or other bodyless) request line with the usual headers, for rawRequest. */
export function rawGet(target: string, headers: Record<string, string> = {}, method = "GET"): string {
  const lines = [`${method} ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** A request with a body, for rawRequest; `contentLength` may lie. */
export function rawPost(target: string, body: string, headers: Record<string, string> = {}, contentLength = Buffer.byteLength(body)): string {
  const lines = [`POST ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close", `Content-Length: ${contentLength}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

/** Counts of statuses, printed as "200:123 400:45 ...". */
export class StatusHistogram {
  private readonly counts = new Map<number, number>();
  add(status: number): void {
    this.counts.set(status, (this.counts.get(status) ?? 0) + 1);
  }
  get(status: number): number {
    return this.counts.get(status) ?? 0;
  }
  count(pred: (status: number) => boolean): number {
    let n = 0;
    for (const [s, c] of this.counts) if (pred(s)) n += c;
    return n;
  }
  toString(): string {
    return [...this.counts.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([s, c]) => `${s}:${c}`)
      .join(",");
  }
}
