import { describe, expect, test } from "bun:test";
import { parseBearer } from "../../../src/server/middleware/auth/index.ts";
import { jsonMediaTypeProblem } from "../../../src/server/middleware/body-limit/index.ts";
import { forwardedClient, trustedProxySet } from "../../../src/server/middleware/client-ip/index.ts";
import { bearerTransportAllowed, forwardedProtoIsHttps } from "../../../src/server/middleware/loopback-guard/index.ts";
import { isLoopbackHost, isLoopbackIp, normalizeIp } from "../../../src/server/net.ts";
import { RouteTable } from "../../../src/server/route-table.ts";

describe("addresses", () => {
  test.each([
    ["127.0.0.1", "127.0.0.1"],
    ["::ffff:127.0.0.1", "127.0.0.1"],
    ["::FFFF:7f00:1", "127.0.0.1"],
    ["[::1]", "::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["2001:DB8::0:1", "2001:db8::1"],
    [" 10.0.0.2 ", "10.0.0.2"],
  ])("%p normalizes to %p", (input, out) => {
    expect(normalizeIp(input)).toBe(out);
  });

  test.each([["localhost"], ["10.0.0"], ["1.2.3.4.5"], [""], ["unknown"], ["::g"], ["10.0.0.0/8"]])("%p is not an address", (input) => {
    expect(normalizeIp(input)).toBeNull();
  });

  test.each([
    ["127.0.0.1", true], ["127.255.255.254", true], ["::1", true], ["::ffff:127.0.0.2", true],
    ["128.0.0.1", false], ["10.0.0.1", false], ["::2", false], ["0.0.0.0", false], ["::", false], ["unknown", false],
  ])("%p is loopback: %p", (ip, yes) => {
    expect(isLoopbackIp(ip)).toBe(yes);
  });

  test.each([["localhost", true], ["LOCALHOST", true], ["127.0.0.1", true], ["::1", true], ["0.0.0.0", false], ["::", false], ["192.168.1.5", false], ["example.org", false]])(
    "binding %p is loopback-only: %p",
    (host, yes) => {
      expect(isLoopbackHost(host)).toBe(yes);
    },
  );
});

describe("X-Forwarded-For behind trusted proxies", () => {
  const trusted = trustedProxySet(["10.0.0.2", "10.0.0.3"]);
  test.each([
    [undefined, "10.0.0.2"],
    ["", "10.0.0.2"],
    ["198.51.100.1", "198.51.100.1"],
    ["6.6.6.6, 198.51.100.1", "198.51.100.1"],
    ["198.51.100.1, 10.0.0.3", "198.51.100.1"],
    ["10.0.0.3", "10.0.0.3"],
    ["spoofed, 198.51.100.1", "198.51.100.1"],
    ["198.51.100.1, garbage", "10.0.0.2"],
    ["198.51.100.1, garbage, 10.0.0.3", "10.0.0.3"],
    ["198.51.100.1:5555", "198.51.100.1"],
    ["[2001:db8::1]:443", "2001:db8::1"],
    ["::ffff:198.51.100.1", "198.51.100.1"],
  ])("%p from 10.0.0.2 is client %p", (header, client) => {
    expect(forwardedClient(header, "10.0.0.2", trusted)).toBe(client);
  });

  test("a trusted proxy must be an address", () => {
    expect(() => trustedProxySet(["10.0.0.0/8"])).toThrow();
    expect(() => trustedProxySet([42 as unknown as string])).toThrow();
    expect([...trustedProxySet(["::ffff:10.0.0.2"])]).toEqual(["10.0.0.2"]);
  });
});

describe("whether a bearer token may be used over this transport", () => {
  const base = { hasAuthorization: true, secureTransport: false, peer: "203.0.113.9", viaTrustedProxy: false, forwardedProto: undefined, allowInsecureRemote: false };
  test.each([
    ["a remote peer over plain HTTP", false, {}],
    ["no token at all", true, { hasAuthorization: false }],
    ["TLS on the connection itself", true, { secureTransport: true }],
    ["a loopback peer", true, { peer: "127.0.0.1" }],
    ["an IPv6 loopback peer", true, { peer: "::1" }],
    ["a trusted proxy that got HTTPS", true, { viaTrustedProxy: true, forwardedProto: "https" }],
    ["a trusted proxy chain that all got HTTPS", true, { viaTrustedProxy: true, forwardedProto: "https, HTTPS" }],
    ["a trusted proxy chain where one hop was HTTP", false, { viaTrustedProxy: true, forwardedProto: "https, http" }],
    ["a trusted proxy that says nothing", false, { viaTrustedProxy: true }],
    ["a trusted proxy on loopback that got HTTPS", true, { peer: "127.0.0.1", viaTrustedProxy: true, forwardedProto: "https" }],
    ["a trusted proxy on loopback that got plain HTTP", false, { peer: "127.0.0.1", viaTrustedProxy: true, forwardedProto: "http" }],
    ["a trusted proxy on loopback that says nothing (it cannot be told from a local tool)", false, { peer: "127.0.0.1", viaTrustedProxy: true }],
    ["a loopback peer that is not a trusted proxy, claiming HTTP", true, { peer: "127.0.0.1", forwardedProto: "http" }],
    ["an untrusted peer claiming HTTPS", false, { forwardedProto: "https" }],
    ["the operator's explicit opt-in", true, { allowInsecureRemote: true }],
    ["an unknown peer", false, { peer: "unknown" }],
  ])("%s: allowed %p", (_what, allowed, change) => {
    expect(bearerTransportAllowed({ ...base, ...(change as object) })).toBe(allowed as boolean);
  });

  test("X-Forwarded-Proto must say https on every hop", () => {
    expect(forwardedProtoIsHttps(undefined)).toBe(false);
    expect(forwardedProtoIsHttps("")).toBe(false);
    expect(forwardedProtoIsHttps(" https ")).toBe(true);
    expect(forwardedProtoIsHttps("https,")).toBe(false);
  });
});

describe("reading the Authorization header", () => {
  test.each([
    ["Bearer abc", "abc"],
    ["bearer abc", "abc"],
    ["Bearer   abc-_.~+/==", "abc-_.~+/=="],
    ["BEARER abc ", "abc"],
  ])("%p carries the token %p", (header, token) => {
    expect(parseBearer(header)).toEqual({ token });
  });

  test.each([[undefined, "missing"], ["", "missing"], ["  ", "missing"], ["Bearer", "malformed"], ["Bearer ", "malformed"], ["Basic abc", "malformed"], ["Bearer a b", "malformed"], ["Bearer a=b", "malformed"], [`Bearer ${"a".repeat(513)}`, "malformed"], ["Bearer é", "malformed"]])(
    "%p is %p",
    (header, problem) => {
      expect(parseBearer(header)).toEqual({ problem: problem as "missing" | "malformed" });
    },
  );
});

describe("the JSON media type", () => {
  test.each([[undefined], [""], ["application/json"], ["application/json; charset=utf-8"], ["APPLICATION/JSON; Charset=UTF8"], ['application/json; charset="utf-8"'], ["application/json; foo=bar"]])(
    "%p is accepted",
    (type) => {
      expect(jsonMediaTypeProblem(type)).toBeNull();
    },
  );
  test.each([["text/plain"], ["application/json-patch+json"], ["application/json; charset=utf-16"], ["multipart/form-data; boundary=x"], ["json"]])("%p is refused", (type) => {
    expect(jsonMediaTypeProblem(type)).toEqual(expect.any(String));
  });
});

describe("the route table", () => {
  const table = new RouteTable();
  const doc = { summary: "a route", access: "public", answers: {}, errors: [] } as const;
  table.add("GET", "/villages/:id/claims", doc);
  table.add("POST", "/villages/:id/inbox", doc);
  table.add("GET", "/.well-known/links/claims/latest", doc);
  test("knows which methods a path takes", () => {
    expect(table.allowedMethods("/villages/x/claims")).toEqual(["GET", "HEAD"]);
    expect(table.allowedMethods("/villages/a%2Fb/inbox")).toEqual(["POST"]);
    expect(table.allowedMethods("/.well-known/links/claims/latest")).toEqual(["GET", "HEAD"]);
    expect(table.allowedMethods("/.well-knownXlinks/claims/latest")).toEqual([]);
    expect(table.allowedMethods("/villages//claims")).toEqual([]);
    expect(table.allowedMethods("/villages/x/y/claims")).toEqual([]);
  });
  test("refuses the same route twice", () => {
    expect(() => table.add("GET", "/villages/:id/claims", doc)).toThrow("registered twice");
  });
});
