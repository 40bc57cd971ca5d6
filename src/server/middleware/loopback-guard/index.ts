/**
 * The loopback warning, enforced: a bearer token that arrives over plain HTTP from a peer that
 * is not this host has crossed a network in clear. Such a request is refused (403 tls_required)
 * unless it came through a trusted proxy that says it received HTTPS, or the operator opted in
 * with allowInsecureRemote. The refusal cannot un-send the token; it makes the mistake loud.
 *
 * A request from a trusted proxy's address must say how the proxy's client connected
 * (`X-Forwarded-Proto: https`): without the header the node cannot tell a request the proxy took
 * over plain HTTP from one it took over TLS, so it is refused too, even when the proxy runs on
 * this host. (A local tool that talks to the node directly from that same address looks like the
 * proxy; it goes through the proxy's https:// address instead.)
 */
import type { MiddlewareHandler } from "hono";
import { LinksError } from "../../../core/errors.ts";
import type { AppContext, AppEnv } from "../../context.ts";
import { isLoopbackIp } from "../../net.ts";

export interface LoopbackGuardOptions {
  allowInsecureRemote: boolean;
}

/** Every X-Forwarded-Proto value (a chain of proxies may list several) is "https". */
export function forwardedProtoIsHttps(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(",").every((p) => p.trim().toLowerCase() === "https");
}

/** The decision, as a pure function of what the request shows. */
export function bearerTransportAllowed(args: {
  hasAuthorization: boolean;
  secureTransport: boolean;
  peer: string;
  viaTrustedProxy: boolean;
  forwardedProto: string | undefined;
  allowInsecureRemote: boolean;
}): boolean {
  if (!args.hasAuthorization || args.secureTransport || args.allowInsecureRemote) return true;
  // A trusted proxy speaks for its client, even when it runs on this host (the usual TLS
  // terminator on loopback): only its "https" lets a token through; "http", or nothing, does not.
  if (args.viaTrustedProxy) return forwardedProtoIsHttps(args.forwardedProto);
  return isLoopbackIp(args.peer);
}

/** The connection itself is TLS (a Request's url is serialized with its scheme in lower case). */
function isSecure(c: AppContext): boolean {
  return c.req.url.startsWith("https:");
}

export function loopbackGuard(opts: LoopbackGuardOptions): MiddlewareHandler<AppEnv> {
  if (typeof opts.allowInsecureRemote !== "boolean") {
    throw new LinksError("invalid_argument", "loopback-guard: allowInsecureRemote must be a boolean");
  }
  return async (c, next) => {
    // most requests carry no token: nothing to look at
    if (c.req.header("authorization") === undefined) return next();
    const allowed = bearerTransportAllowed({
      hasAuthorization: true,
      secureTransport: isSecure(c),
      peer: c.get("peerIp"),
      viaTrustedProxy: c.get("viaTrustedProxy"),
      forwardedProto: c.req.header("x-forwarded-proto"),
      allowInsecureRemote: opts.allowInsecureRemote,
    });
    if (!allowed && c.get("viaTrustedProxy")) {
      throw new LinksError(
        "tls_required",
        "bearer tokens through a trusted proxy need X-Forwarded-Proto: https from it, and this request did not carry it: " +
          "make the proxy set the header (and take clients over TLS only), or reach the node through the proxy's https:// address",
      );
    }
    if (!allowed) {
      throw new LinksError(
        "tls_required",
        "bearer tokens are refused over plain HTTP from a remote address: put a TLS-terminating reverse proxy in " +
          "front of the node (and name it with --trust-proxy), or start it with --allow-insecure-remote",
      );
    }
    await next();
  };
}
