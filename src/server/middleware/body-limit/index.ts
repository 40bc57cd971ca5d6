/**
 * Step 4's first half: the body is bounded and read once. A declared Content-Length over the
 * limit is refused (413) before a byte is read; a body without one (chunked) is counted as it
 * streams in and refused the moment it passes the limit. With `json`, the media type must be
 * application/json (charset utf-8, if named) or absent (415 otherwise), and a Content-Encoding
 * (gzip, ...) is refused (415): bodies are never decompressed. The bytes are left on the
 * context as `body` (and in Hono's body cache, so validators can read them too).
 */
import type { MiddlewareHandler } from "hono";
import { LinksError } from "../../../core/errors.ts";
import type { AppEnv } from "../../context.ts";

export interface BodyLimitOptions {
  maxBytes: number;
  /** require an application/json (or missing) Content-Type */
  json?: boolean;
}

/** null when the Content-Type is acceptable for a JSON body, else why not. */
export function jsonMediaTypeProblem(contentType: string | undefined): string | null {
  if (contentType === undefined || contentType.trim() === "") return null;
  const [type, ...params] = contentType.split(";").map((p) => p.trim().toLowerCase());
  if (type !== "application/json") return `Content-Type ${JSON.stringify(contentType.slice(0, 100))} is not application/json`;
  for (const p of params) {
    const [name, value = ""] = p.split("=").map((s) => s.trim());
    if (name === "charset" && !["utf-8", "utf8", '"utf-8"'].includes(value)) {
      return `charset ${JSON.stringify(value.slice(0, 40))} is not supported (send UTF-8)`;
    }
  }
  return null;
}

function tooLarge(max: number, what: string): LinksError {
  return new LinksError(
    "body_too_large",
    `the request body ${what} the limit of ${max} bytes; split the claims into smaller bundles ` +
      `(links claims build --max-bytes ${max} writes as many as needed, and links sync push-village takes their directory), ` +
      `or the node's operator raises links serve --max-body`,
  );
}

async function readLimited(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let step: Awaited<ReturnType<typeof reader.read>>;
    try {
      step = await reader.read();
    } catch (e) {
      throw new LinksError("invalid_argument", "the request body could not be read", { cause: e });
    }
    if (step.done) break;
    total += step.value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge(max, "is over");
    }
    chunks.push(step.value);
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

async function readDeclared(req: Request): Promise<Uint8Array> {
  try {
    return await req.bytes();
  } catch (e) {
    throw new LinksError("invalid_argument", "the request body could not be read", { cause: e });
  }
}

/** The bytes as an ArrayBuffer of exactly them: their own buffer when it is, so a body is not copied. */
function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  const buffer = bytes.buffer as ArrayBuffer;
  return bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength ? buffer : (bytes.slice().buffer as ArrayBuffer);
}

export function bodyLimit(opts: BodyLimitOptions): MiddlewareHandler<AppEnv> {
  const max = opts.maxBytes;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new LinksError("invalid_argument", `body-limit: maxBytes must be a positive integer, got ${max}`);
  }
  return async (c, next) => {
    const declared = c.req.header("content-length");
    if (declared !== undefined) {
      if (!/^\d{1,16}$/.test(declared.trim())) throw new LinksError("invalid_argument", "Content-Length is not a number");
      if (Number(declared) > max) throw tooLarge(max, `(${declared} bytes declared) is over`);
    }
    // The runtime hands the body over as it came: a compressed one would be read as garbage JSON.
    const encoding = c.req.header("content-encoding");
    if (encoding !== undefined && !/^\s*(identity)?\s*$/i.test(encoding)) {
      throw new LinksError("unsupported_media_type", `Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported; send the body uncompressed`);
    }
    if (opts.json) {
      const problem = jsonMediaTypeProblem(c.req.header("content-type"));
      if (problem !== null) throw new LinksError("unsupported_media_type", `${problem}; send the body as application/json`);
    }
    // A body of declared length is framed by the server, which reads no more than that: the
    // runtime reads it natively, without a stream's promise per chunk.
    const bytes = declared !== undefined ? await readDeclared(c.req.raw) : await readLimited(c.req.raw.body, max);
    c.set("body", bytes);
    // Hono keeps promises in its body cache (its type says otherwise).
    (c.req.bodyCache as { arrayBuffer?: Promise<ArrayBuffer> }).arrayBuffer = Promise.resolve(exactBuffer(bytes));
    // Hono's JSON validator skips a request without a JSON Content-Type; a missing one is JSON here.
    if (opts.json && c.req.header("content-type") === undefined) {
      try {
        c.req.raw.headers.set("content-type", "application/json");
      } catch {
        // immutable headers (not Bun): such a route then reads its body from c.var.body only
      }
    }
    await next();
  };
}
