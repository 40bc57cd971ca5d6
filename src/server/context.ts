/**
 * What every handler of the app can see: the Bun server (for the peer address) and the values
 * the middleware leave on the context.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { toJsonText, type JsonValue } from "../core/canonical.ts";
import type { VillagePolicy } from "../core/village-policy.ts";
import type { AuthenticatedMember } from "../storage/members.ts";
import type { Village } from "../storage/villages.ts";

/** The part of Bun's Server the app uses; tests pass a fake with the address they want. */
export interface PeerServer {
  requestIP(req: Request): { address: string; family: string; port: number } | null;
}

export type AppEnv = {
  Bindings: Partial<PeerServer>;
  Variables: {
    /** the request body, read once by body-limit */
    body: Uint8Array;
    /** the address of the direct peer of the connection ("unknown" when the runtime gave none) */
    peerIp: string;
    /** the client: the peer, or the right-most untrusted X-Forwarded-For hop behind a trusted proxy */
    clientIp: string;
    /** what per-address limits count under: clientIp, or its IPv6 prefix ("2001:db8:1:2::/64") */
    clientGroup: string;
    /** the direct peer is one of the configured trusted proxies */
    viaTrustedProxy: boolean;
    villageId: string;
    village: Village;
    policy: VillagePolicy;
    member: AuthenticatedMember;
  };
};

export type AppContext = Context<AppEnv>;

/**
 * A JSON answer written by the lossless serializer, so claim values (floats such as 1.0, big
 * integers) leave exactly as they were received.
 */
export function sendJson(c: AppContext, value: unknown, status: ContentfulStatusCode = 200): Response {
  return c.body(toJsonText(value as JsonValue), status, { "Content-Type": "application/json" });
}
