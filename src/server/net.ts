/**
 * IP address helpers: one normal form per address, so "::ffff:127.0.0.1", "127.0.0.1" and
 * "[::1]" compare the way an operator means them.
 */
import { isIP } from "node:net";

const MAPPED_V4_RE = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/** The normal form of an IP address (IPv4 dotted; IPv6 compressed lowercase), or null. */
export function normalizeIp(text: string): string | null {
  let s = text.trim().toLowerCase();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const kind = isIP(s);
  if (kind === 4) return s;
  if (kind !== 6) return null;
  let canonical: string;
  try {
    canonical = new URL(`http://[${s}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const mapped = MAPPED_V4_RE.exec(canonical);
  if (mapped) {
    const hi = Number.parseInt(mapped[1] as string, 16);
    const lo = Number.parseInt(mapped[2] as string, 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return canonical;
}

/** 127.0.0.0/8 and ::1 (also as an IPv4-mapped address). */
export function isLoopbackIp(address: string): boolean {
  const ip = normalizeIp(address);
  if (ip === null) return false;
  return ip === "::1" || (isIP(ip) === 4 && ip.startsWith("127."));
}

/** A bind address that only this host can reach: a loopback address or "localhost". */
export function isLoopbackHost(host: string): boolean {
  return host.trim().toLowerCase() === "localhost" || isLoopbackIp(host);
}

/** An address as it goes in a URL: IPv6 in brackets. */
export function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** The eight 16-bit pieces of a normalized IPv6 address. */
function ipv6Pieces(ip: string): number[] {
  const [head = "", tail] = ip.split("::");
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((p) => Number.parseInt(p, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/**
 * What a per-address limit counts under: an IPv4 address as it is (an IPv4-mapped IPv6 address
 * is already its IPv4 form), an IPv6 address by its first `ipv6Prefix` bits, as "2001:db8:1:2::/64".
 * One IPv6 host is usually handed a whole /64, so counting single addresses would let it rotate
 * through 2^64 of them. Anything that is not an IP address (e.g. "unknown") is its own group.
 */
export function addressGroup(address: string, ipv6Prefix: number): string {
  const ip = normalizeIp(address);
  if (ip === null || isIP(ip) !== 6 || ipv6Prefix >= 128) return ip ?? address;
  const pieces = ipv6Pieces(ip).map((piece, i) => {
    const bits = Math.max(0, Math.min(16, ipv6Prefix - i * 16));
    return bits === 0 ? 0 : piece & (0xffff << (16 - bits)) & 0xffff;
  });
  const masked = normalizeIp(pieces.map((p) => p.toString(16)).join(":")) as string;
  return `${masked}/${ipv6Prefix}`;
}
