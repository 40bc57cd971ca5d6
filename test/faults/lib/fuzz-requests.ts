/**
 * fast-check arbitraries for requests to a node: methods, routes with fuzzed ids in every
 * position and every encoding (percent, double, overlong UTF-8, broken escapes, unicode),
 * query strings, Authorization headers (valid, revoked, other village, truncated, malformed),
 * content types, and bodies taken from valid signed bundles and policies, then mutated at the
 * byte or field level (some re-signed, so the mutation reaches the policy and storage steps).
 */
import fc from "fast-check";
import type { Bundle } from "../../../src/core/bundle.ts";
import { bundleText, makeBundle, resign, type SigningKey } from "./bundles.ts";

export interface FuzzRequest {
  /** sent through fetch, or as raw bytes on a socket (literal "..", "\", odd methods) */
  raw: boolean;
  method: string;
  /** path and query, already encoded as it goes on the wire */
  target: string;
  headers: Record<string, string>;
  body: Uint8Array | null;
  /** what made it, for the report */
  label: string;
  /**
   * a header value holds a control character (not a valid HTTP field value): Bun's HTTP parser
   * answers such a request itself (a bare 400) before the app sees it
   */
  invalidHeader?: boolean;
}

const INVALID_FIELD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

export interface FuzzContext {
  vid: string;
  otherVid: string;
  tokens: { admin: string; member: string; observer: string; revoked: string; rotatedOld: string; other: string };
  keys: SigningKey[];
  /** bundle ids the node holds in quarantine / in the store (filled in as answers come) */
  quarantined: string[];
  stored: string[];
  /** a policy that keeps the fuzzer's rate limit high */
  basePolicy: Record<string, unknown>;
}

export const TRAVERSAL = [
  "..",
  ".",
  "../..",
  "../secret.json",
  "../../secret",
  "..%2f..%2fsecret.json",
  "%2e%2e",
  "%2e%2e%2f%2e%2e",
  "%252e%252e%252f",
  "..%5c..%5csecret.json",
  "..\\..\\secret.json",
  "%c0%ae%c0%ae",
  "%c0%ae%c0%ae%c0%afsecret.json",
  "%e0%80%ae%e0%80%ae",
  "%uff0e%uff0e",
  "\uff0e\uff0e",
  "／etc／passwd",
  "/etc/passwd",
  "%2fetc%2fpasswd",
  "....//....//secret.json",
  "..;/secret.json",
  "%00",
  "village%00.json",
  "village.json",
  "CON",
  "nul",
  "~",
  "%",
  "%zz",
  "%e2%82",
  "a".repeat(65),
  "A".repeat(300),
];

const utf8 = new TextEncoder();

/** Header text: printable ASCII, now and then a control character (which Bun's parser refuses). */
function headerText(maxLength: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 30, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary-ascii", maxLength }) },
  );
}

// ---------------------------------------------------------------- ids and their encodings

/** How an id goes into a path segment. */
const encodings: Array<[string, (s: string) => string]> = [
  ["plain", (s) => s],
  ["component", (s) => encodeURIComponent(s)],
  ["double", (s) => encodeURIComponent(encodeURIComponent(s))],
  ["overlong", (s) => s.replaceAll(".", "%c0%ae").replaceAll("/", "%c0%af")],
  ["upper-hex", (s) => [...utf8.encode(s)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("")],
  ["broken-escape", (s) => `${s}%`],
  ["bad-utf8", (s) => `${s}%ff%fe`],
];

function idArb(valid: string[], pool: () => string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...valid) },
    { weight: 2, arbitrary: fc.constant(null).map(() => pickFrom(pool()) ?? valid[0] as string) },
    { weight: 2, arbitrary: fc.constantFrom(...TRAVERSAL) },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-zA-Z0-9_-]{1,70}$/) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
    { weight: 1, arbitrary: fc.stringMatching(/^[0-9a-fA-F]{30,34}$/) },
  );
}

function pickFrom<T>(list: T[]): T | undefined {
  return list.length === 0 ? undefined : list[Math.floor(Math.random() * list.length)];
}

function segment(id: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(id, fc.nat(encodings.length * 3 - 1)).map(([s, e]) => {
    // mostly "component": the others are there to try every decoder
    const [, encode] = e < encodings.length * 2 ? (encodings[1] as [string, (s: string) => string]) : (encodings[e % encodings.length] as [string, (s: string) => string]);
    return encode(s);
  });
}

// ---------------------------------------------------------------- routes

const ROUTES = [
  "/healthz",
  "/.well-known/links/claims/latest",
  "/inbox",
  "/villages/{v}/inbox",
  "/villages/{v}/claims",
  "/villages/{v}/claims/latest",
  "/villages/{v}/policy",
  "/villages/{v}/policy/latest",
  "/villages/{v}/policy/updates",
  "/villages/{v}/quarantine",
  "/villages/{v}/quarantine/{b}/approve",
  "/villages/{v}/quarantine/{b}/reject",
  "/villages/{v}",
  "/villages",
  "/villages/{v}/{b}",
  "/villages/{v}/quarantine/{b}",
  "/{b}",
];

const queryValue = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.integer().map(String),
  fc.constantFrom("0", "-1", "1", "1000", "1001", "1e3", "0x10", "99999999999999999999", "NaN", "", "%", "%zz", "%ff", "links.weighted_to", "fault-issuer"),
  fc.stringMatching(/^[0-9a-f]{64}$/),
  fc.base64String({ maxLength: 40 }),
);

const QUERY_KEYS = ["subject", "predicate", "issuer", "limit", "cursor", "since", "village_id", "x", "limit", "__proto__", "constructor"];

const queryArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant("") },
  {
    weight: 4,
    arbitrary: fc
      .array(fc.tuple(fc.constantFrom(...QUERY_KEYS), queryValue, fc.boolean()), { maxLength: 4 })
      .map((pairs) =>
        pairs.length === 0 ? "" : `?${pairs.map(([k, v, enc]) => `${k}=${enc ? encodeURIComponent(v) : v.replace(/[#\s]/g, "")}`).join("&")}`,
      ),
  },
  { weight: 1, arbitrary: fc.constantFrom("?", "?&&", "?limit", "?=x", "?%", "?subject=%zz", "?limit=5&limit=6", "?cursor=YzE6MA", "?since=") },
);

// ---------------------------------------------------------------- headers

function authArb(ctx: FuzzContext): fc.Arbitrary<string | undefined> {
  const t = ctx.tokens;
  return fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(`Bearer ${t.admin}`, `Bearer ${t.member}`) },
    { weight: 2, arbitrary: fc.constantFrom(`Bearer ${t.observer}`, `Bearer ${t.revoked}`, `Bearer ${t.rotatedOld}`, `Bearer ${t.other}`) },
    { weight: 2, arbitrary: fc.constant(undefined) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        `Bearer ${t.admin.slice(0, -1)}`,
        `Bearer ${t.admin}x`,
        `Bearer ${t.admin.slice(0, 40)}${"A".repeat(3)}`,
        `bearer ${t.member}`,
        `Bearer  ${t.member}  `,
        `Bearer ${t.admin.toUpperCase()}`,
        `Basic ${Buffer.from(`alice:${t.admin}`).toString("base64")}`,
        "Bearer",
        "Bearer ",
        `Bearer ${"A".repeat(600)}`,
        `Bearer ${t.admin},Bearer ${t.member}`,
        `Token ${t.admin}`,
        `Bearer ${t.admin}==`,
        "Bearer %00",
        "Bearer \t",
      ),
    },
    { weight: 1, arbitrary: headerText(80).map((s) => `Bearer ${s}`) },
  );
}

const contentTypeArb = fc.oneof(
  { weight: 8, arbitrary: fc.constant("application/json") },
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "application/json; charset=utf-8",
      "application/json; charset=UTF-8",
      "application/json;charset=latin1",
      "application/json; charset=utf-16",
      "APPLICATION/JSON",
      "text/plain",
      "text/json",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=xyz",
      "application/octet-stream",
      "application/json, text/plain",
      "application/jsonp",
      "*/*",
      ";",
      "",
      "application/json; " + "x=y; ".repeat(200),
    ),
  },
  { weight: 1, arbitrary: headerText(60) },
);

const ipArb = fc.tuple(fc.integer({ min: 1, max: 254 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((p) => `10.${p[1]}.${p[2]}.${p[3]}`);

function extraHeadersArb(): fc.Arbitrary<Record<string, string>> {
  return fc.record(
    {
      "x-forwarded-for": fc.oneof(
        { weight: 30, arbitrary: ipArb },
        { weight: 1, arbitrary: fc.constantFrom("unknown", "", "1.2.3.4, 127.0.0.1", "::1", "[::1]:80", "999.1.1.1", "1.2.3.4:99999", " , , ") },
        { weight: 3, arbitrary: fc.array(ipArb, { maxLength: 5 }).map((a) => a.join(", ")) },
      ),
      "x-forwarded-proto": fc.oneof({ weight: 12, arbitrary: fc.constant("https") }, { weight: 1, arbitrary: fc.constantFrom("http", "https, http", "HTTPS", "") }),
      "if-none-match": fc.oneof(fc.constant("*"), fc.stringMatching(/^"[0-9a-f]{64}"$/), headerText(40)),
      "accept-encoding": fc.constantFrom("gzip", "br", "identity", "*", "gzip;q=0"),
      "content-encoding": fc.constantFrom("gzip", "deflate", "br", "identity", "x-bogus"),
      accept: fc.constantFrom("application/json", "text/html", "*/*", ""),
      "x-junk": headerText(200),
    },
    { requiredKeys: ["x-forwarded-for", "x-forwarded-proto"] },
  ).map((h) => {
    // Mostly a random forwarded address (so per-address limits never starve the run) and https.
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = v;
    return out;
  });
}

// ---------------------------------------------------------------- bodies

const oddJson = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom<unknown>(
    null,
    -1,
    0,
    2 ** 53 + 1,
    1e308,
    "",
    "2024-02-30T00:00:00Z",
    "2024-05-01T12:00:00+14:00",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "\u0000",
    "\ud83d\ude00",
    "line\nbreak",
    "a".repeat(5000),
    [],
    {},
    { __proto__: null },
  ),
);

const BUNDLE_FIELDS = ["bundle_id", "issuer", "created_at", "window_days", "claims", "signature_alg", "public_key", "signature"];
const CLAIM_FIELDS = ["issuer", "subject", "predicate", "object", "value", "window_days", "computed_at", "derivation", "evidence"];

type Mutation =
  | { kind: "none" }
  | { kind: "flip"; at: number; bit: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; len: number }
  | { kind: "field"; field: string; claim: boolean; value: unknown; resign: boolean }
  | { kind: "drop"; field: string; claim: boolean; resign: boolean }
  | { kind: "wrap"; how: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 20 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("field" as const),
      claim: fc.boolean(),
      field: fc.constantFrom(...BUNDLE_FIELDS, ...CLAIM_FIELDS),
      value: oddJson,
      resign: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("drop" as const), claim: fc.boolean(), field: fc.constantFrom(...BUNDLE_FIELDS, ...CLAIM_FIELDS), resign: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("wrap" as const), how: fc.nat(7) }) },
);

function mutateBytes(bytes: Uint8Array, m: Mutation): Uint8Array {
  const at = "at" in m ? m.at % Math.max(1, bytes.length) : 0;
  switch (m.kind) {
    case "flip": {
      const out = bytes.slice();
      out[at] = (out[at] as number) ^ (1 << m.bit);
      return out;
    }
    case "truncate":
      return bytes.slice(0, at);
    case "insert":
      return new Uint8Array([...bytes.subarray(0, at), ...m.bytes, ...bytes.subarray(at)]);
    case "delete":
      return new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + m.len)]);
    default:
      return bytes;
  }
}

function wrap(text: string, how: number): Uint8Array {
  switch (how) {
    case 0:
      return utf8.encode(`[${text}]`);
    case 1:
      return utf8.encode(`\ufeff${text}`);
    case 2:
      return utf8.encode(`${text}${text}`);
    case 3:
      return utf8.encode(text.replace('"issuer":', '"issuer":"dup","issuer":'));
    case 4:
      return new Uint8Array([...utf8.encode(text.slice(0, 20)), 0xc0, 0xae, 0xff, ...utf8.encode(text.slice(20))]);
    case 5:
      return utf8.encode(`  \n\t${text}\n\n`);
    case 6:
      return utf8.encode(text.replace(/"value":[^,]+/, `"value":${"1".repeat(5000)}`));
    default:
      return utf8.encode(`{"bundle":${text}}`);
  }
}

function mutateBundle(b: Bundle, m: Mutation, key: SigningKey): Uint8Array {
  if (m.kind === "none") return utf8.encode(bundleText(b));
  if (m.kind === "wrap") return wrap(bundleText(b), m.how);
  if (m.kind === "field" || m.kind === "drop") {
    const obj = JSON.parse(bundleText(b)) as Record<string, unknown> & { claims: Array<Record<string, unknown>> };
    const target = m.claim && Array.isArray(obj.claims) && obj.claims[0] ? obj.claims[0] : obj;
    if (m.kind === "field") target[m.field] = m.value;
    else delete target[m.field];
    const text = JSON.stringify(obj);
    if (m.resign) {
      const signed = resign(text, key);
      if (signed) {
        try {
          return utf8.encode(bundleText(signed));
        } catch {
          // a value canonical JSON cannot write (e.g. a lone surrogate): send it unsigned
        }
      }
    }
    return utf8.encode(text);
  }
  return mutateBytes(utf8.encode(bundleText(b)), m);
}

function bundleBodyArb(ctx: FuzzContext): fc.Arbitrary<[Uint8Array, string]> {
  return fc
    .tuple(
      fc.nat(ctx.keys.length - 1),
      fc.constantFrom("links.weighted_to", "links.weighted_to", "links.weighted_to", "links.mentions"),
      fc.integer({ min: 1, max: 3 }),
      fc.constantFrom(7, 7, 7, 30, 31, 400),
      mutationArb,
    )
    .map(([k, predicate, claims, windowDays, m]) => {
      const key = ctx.keys[k] as SigningKey;
      const b = makeBundle(key, "fuzz", { predicate, claims, windowDays });
      return [mutateBundle(b, m, key), `bundle/${m.kind}${"field" in m ? `:${m.field}` : ""}`] as [Uint8Array, string];
    });
}

function policyBodyArb(ctx: FuzzContext): fc.Arbitrary<[Uint8Array, string]> {
  const safePolicy = fc.record(
    {
      visibility: fc.constantFrom("village", "public", "private", "secret"),
      allowed_predicates: fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }).map((a) => ["links.weighted_to", ...a]),
      max_window_days: fc.oneof(fc.nat(400), oddJson),
      retention_days: fc.nat(1000),
      issuer_id_blocklist: fc.array(fc.string({ maxLength: 10 }), { maxLength: 2 }),
      min_signature_alg: fc.constantFrom("Ed25519", "ed25519", "RSA"),
      unknown_field: oddJson,
    },
    { requiredKeys: [] },
  );
  return fc.oneof(
    { weight: 3, arbitrary: safePolicy.map((p) => [utf8.encode(JSON.stringify({ ...ctx.basePolicy, ...p })), "policy/plain"] as [Uint8Array, string]) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(safePolicy, fc.nat(), fc.nat(7))
        .map(([p, at, bit]) => {
          // Flip a bit anywhere but in the high rate limit (kept last), so the run stays deep.
          const text = JSON.stringify({ ...p, ...ctx.basePolicy });
          const keep = JSON.stringify(ctx.basePolicy).length - 1;
          const head = utf8.encode(text.slice(0, text.length - keep));
          const flipped = mutateBytes(head, { kind: "flip", at, bit });
          return [new Uint8Array([...flipped, ...utf8.encode(text.slice(text.length - keep))]), "policy/flipped"] as [Uint8Array, string];
        }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        village_id: fc.constantFrom(ctx.vid, ctx.otherVid, "../x"),
        policy: fc.oneof(oddJson, fc.constant(ctx.basePolicy)),
        policy_hash: fc.stringMatching(/^[0-9a-f]{64}$/),
        previous_policy_hash: fc.option(fc.stringMatching(/^[0-9a-f]{64}$/)),
        created_at: fc.constantFrom("2024-05-01T12:00:00Z", "yesterday"),
        signatures: fc.array(fc.record({ public_key: fc.base64String(), signature: fc.base64String(), alg: fc.constantFrom("ed25519", "rsa") }), { maxLength: 2 }),
      }).map((a) => [utf8.encode(JSON.stringify(a)), "policy/artifact"] as [Uint8Array, string]),
    },
  );
}

const genericBodyArb: fc.Arbitrary<[Uint8Array, string]> = fc.oneof(
  { weight: 3, arbitrary: fc.json({ maxDepth: 4 }).map((s) => [utf8.encode(s), "json"] as [Uint8Array, string]) },
  { weight: 2, arbitrary: fc.record({ reason: oddJson }).map((r) => [utf8.encode(JSON.stringify(r)), "reject-reason"] as [Uint8Array, string]) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => [b, "bytes"] as [Uint8Array, string]) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 200 }).map((s) => [utf8.encode(s), "text"] as [Uint8Array, string]) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("[".repeat(100_000), "{\"a\":".repeat(5000), `"${"\\u0000".repeat(20_000)}"`, `${"9".repeat(100_000)}`, `1e${"9".repeat(1000)}`, "", " ", "null", "[]", "{}", '{"__proto__":{"x":1}}', '{"reason":"x","reason":"y"}')
      .map((s) => [utf8.encode(s), "extreme"] as [Uint8Array, string]),
  },
);

const OVER_LIMIT = new Uint8Array(1024 * 1024 + 1).fill(0x20);

// ---------------------------------------------------------------- requests

const METHODS = ["GET", "GET", "GET", "POST", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO", "get", "M-SEARCH"];

/** Each route with the method it takes and the kind of body it reads. */
const COHERENT: Array<{ method: string; route: string; weight: number; body: "bundle" | "policy" | "reason" | "none" }> = [
  { method: "POST", route: "/villages/{v}/inbox", weight: 10, body: "bundle" },
  { method: "POST", route: "/inbox", weight: 2, body: "bundle" },
  { method: "GET", route: "/villages/{v}/claims", weight: 3, body: "none" },
  { method: "GET", route: "/villages/{v}/claims/latest", weight: 2, body: "none" },
  { method: "GET", route: "/.well-known/links/claims/latest", weight: 1, body: "none" },
  { method: "POST", route: "/villages/{v}/policy", weight: 2, body: "policy" },
  { method: "GET", route: "/villages/{v}/policy/latest", weight: 2, body: "none" },
  { method: "GET", route: "/villages/{v}/policy/updates", weight: 2, body: "none" },
  { method: "GET", route: "/villages/{v}/quarantine", weight: 1, body: "none" },
  { method: "POST", route: "/villages/{v}/quarantine/{b}/approve", weight: 2, body: "none" },
  { method: "POST", route: "/villages/{v}/quarantine/{b}/reject", weight: 2, body: "reason" },
  { method: "GET", route: "/healthz", weight: 1, body: "none" },
];

export function requestArb(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const vidArb = segment(idArb([ctx.vid, ctx.vid, ctx.vid, ctx.vid, ctx.vid, ctx.vid, ctx.vid, ctx.otherVid, "no-such-village"], () => []));
  const bidArb = segment(
    fc.oneof(
      { weight: 3, arbitrary: fc.constant(null).map(() => pickFrom(Math.random() < 0.7 ? ctx.quarantined : ctx.stored) ?? "0123456789abcdef0123456789abcdef") },
      { weight: 1, arbitrary: idArb(["0123456789abcdef0123456789abcdef"], () => ctx.quarantined) },
    ),
  );
  const reasonArb = fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }).map((r) => [utf8.encode(JSON.stringify({ reason: r })), "reason"] as [Uint8Array, string]) },
    { weight: 1, arbitrary: genericBodyArb },
  );
  const bodies = {
    bundle: fc.oneof({ weight: 9, arbitrary: bundleBodyArb(ctx) }, { weight: 1, arbitrary: genericBodyArb }),
    policy: fc.oneof({ weight: 4, arbitrary: policyBodyArb(ctx) }, { weight: 1, arbitrary: bundleBodyArb(ctx) }, { weight: 1, arbitrary: genericBodyArb }),
    reason: reasonArb,
    none: fc.oneof({ weight: 2, arbitrary: bundleBodyArb(ctx) }, { weight: 1, arbitrary: policyBodyArb(ctx) }, { weight: 3, arbitrary: genericBodyArb }),
  };
  const shape = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.oneof(
        ...COHERENT.map((c) => ({
          weight: c.weight,
          arbitrary: bodies[c.body].map((body) => ({ method: c.method, route: c.route, body })),
        })),
      ),
    },
    {
      weight: 1,
      arbitrary: fc.record({ method: fc.constantFrom(...METHODS), route: fc.constantFrom(...ROUTES), body: bodies.none }),
    },
  );
  return fc
    .record({
      shape,
      v: vidArb,
      b: bidArb,
      query: queryArb,
      auth: authArb(ctx),
      contentType: contentTypeArb,
      extra: extraHeadersArb(),
      raw: fc.noBias(fc.nat(99)),
      dropForwarded: fc.noBias(fc.nat(49)),
      huge: fc.noBias(fc.nat(499)),
    })
    .map((r) => {
      const headers: Record<string, string> = { ...r.extra };
      if (r.dropForwarded === 0) {
        delete headers["x-forwarded-for"];
        delete headers["x-forwarded-proto"];
      }
      if (r.auth !== undefined) headers.authorization = r.auth;
      if (r.contentType !== undefined) headers["content-type"] = r.contentType;
      const { method, route, body } = r.shape;
      const path = route.replace("{v}", r.v).replace("{b}", r.b);
      const withBody = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"].includes(method);
      return {
        raw: r.raw < 3,
        invalidHeader: Object.values(headers).some((h) => INVALID_FIELD_VALUE.test(h)),
        method,
        target: path + r.query,
        headers,
        body: withBody ? (r.huge === 0 ? OVER_LIMIT : body[0]) : null,
        label: `${method} ${route} ${withBody ? (r.huge === 0 ? "over-1MiB" : body[1]) : "-"}`,
      };
    });
}

/** Raw-socket requests fetch cannot make: literal dot segments, backslashes, lying lengths. */
export function rawOnlyArb(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const literal = fc.constantFrom(
    `/villages/../villages/${ctx.vid}/claims`,
    `/villages/${ctx.vid}/../${ctx.otherVid}/claims`,
    "/villages/../../../../etc/passwd",
    "/villages/..%2f..%2fsecret.json/claims",
    `/villages/${ctx.vid}/quarantine/../../../secret.json/approve`,
    `/villages/${ctx.vid}\\..\\..\\secret.json/claims`,
    "/villages/./././claims",
    "//villages//x//claims",
    "/./healthz",
    "/villages/%2e%2e/claims",
    `/villages/${ctx.vid}/claims?subject=../../secret.json`,
    "*",
    "http://evil.example/villages/x/claims",
    "/" + "a/".repeat(2000),
  );
  return fc
    .record({
      target: literal,
      method: fc.constantFrom("GET", "POST", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "BREW"),
      auth: authArb(ctx),
      lie: fc.integer({ min: -5, max: 5 }),
      body: fc.constantFrom("{}", '{"reason":"x"}', "", "[".repeat(100)),
    })
    .map((r) => {
      const headers: Record<string, string> = { "x-forwarded-for": "10.9.9.9", "x-forwarded-proto": "https", "content-type": "application/json" };
      if (r.auth) headers.authorization = r.auth;
      return { raw: true, method: r.method, target: r.target, headers, body: utf8.encode(r.body), label: `raw ${r.method} ${r.target.slice(0, 40)}` };
    });
}
