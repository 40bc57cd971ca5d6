/**
 * The client's address. It comes from the connection (Bun's `server.requestIP`), never from a
 * header, unless the direct peer is a configured trusted proxy: then X-Forwarded-For is read
 * from the right and the first hop that is not a trusted proxy is the client. Per-address limits
 * count IPv6 clients by prefix (`clientGroup`, /64 by default).
 */
import type { MiddlewareHandler } from "hono";
import { LinksError } from "../../../core/errors.ts";
import type { AppContext, AppEnv, PeerServer } from "../../context.ts";
import { addressGroup, normalizeIp } from "../../net.ts";

export interface ClientIpOptions {
  /** addresses of reverse proxies whose X-Forwarded-* headers are believed */
  trustProxy: readonly string[];
  /** IPv6 clients share per-address limits with their /N (default 64; 128: each address alone) */
  ipv6Prefix?: number;
}

export const DEFAULT_IPV6_PREFIX = 64;

export const UNKNOWN_PEER = "unknown";

/** Normalizes the configured proxy addresses; a value that is not an IP address is refused. */
export function trustedProxySet(addresses: readonly string[]): ReadonlySet<string> {
  if (!Array.isArray(addresses)) throw new LinksError("invalid_argument", "trustProxy must be a list of IP addresses");
  const set = new Set<string>();
  for (const a of addresses) {
    const ip = typeof a === "string" ? normalizeIp(a) : null;
    if (ip === null) {
      throw new LinksError("invalid_argument", `trusted proxy ${JSON.stringify(a)} is not an IP address (ranges are not supported)`);
    }
    set.add(ip);
  }
  return set;
}

/** The direct peer's address, normalized, or "unknown" when the runtime gives none. */
export function peerAddress(c: AppContext): string {
  const server = c.env as Partial<PeerServer> | undefined;
  if (typeof server?.requestIP !== "function") return UNKNOWN_PEER;
  const info = server.requestIP(c.req.raw);
  return (info && normalizeIp(info.address)) || UNKNOWN_PEER;
}

/** One X-Forwarded-For hop: "1.2.3.4", "1.2.3.4:567", "[::1]:80", "::1". */
function hopAddress(hop: string): string | null {
  const s = hop.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracketed) return normalizeIp(bracketed[1] as string);
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(s);
  return normalizeIp(v4WithPort ? (v4WithPort[1] as string) : s);
}

/**
 * Walks X-Forwarded-For from the right: trusted proxies are skipped, the first other address is
 * the client. A hop that is not an address stops the walk at the last trusted hop before it.
 */
export function forwardedClient(header: string | undefined, peer: string, trusted: ReadonlySet<string>): string {
  if (!header) return peer;
  const hops = header.split(",");
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const ip = hopAddress(hops[i] as string);
    if (ip === null) return client;
    client = ip;
    if (!trusted.has(ip)) return ip;
  }
  return client;
}

export function clientIp(opts: ClientIpOptions): MiddlewareHandler<AppEnv> {
  const trusted = trustedProxySet(opts.trustProxy);
  const prefix = opts.ipv6Prefix ?? DEFAULT_IPV6_PREFIX;
  if (!Number.isInteger(prefix) || prefix < 1 || prefix > 128) {
    throw new LinksError("invalid_argument", `ipv6Prefix must be an integer from 1 to 128, got ${prefix}`);
  }
  return async (c, next) => {
    const peer = peerAddress(c);
    const viaProxy = trusted.has(peer);
    const client = viaProxy ? forwardedClient(c.req.header("x-forwarded-for"), peer, trusted) : peer;
    c.set("peerIp", peer);
    c.set("viaTrustedProxy", viaProxy);
    c.set("clientIp", client);
    c.set("clientGroup", addressGroup(client, prefix));
    await next();
  };
}
