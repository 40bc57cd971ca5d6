/**
 * Fixtures for the server tests: a temp data directory with a village and members of every
 * role, signing keys, signed bundles, and a way to send requests from any peer address.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { normalizeBundle, signBundle, type Bundle } from "../../../src/core/bundle.ts";
import { sha256Hex } from "../../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../../../src/core/ed25519.ts";
import type { VillagePolicy } from "../../../src/core/village-policy.ts";
import { createApp, type ServerOptions } from "../../../src/server/app.ts";
import type { PeerServer } from "../../../src/server/context.ts";
import { addMember, revokeMember } from "../../../src/storage/members.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { createVillage } from "../../../src/storage/villages.ts";

export const VID = "north-field";
export const LOOPBACK = "127.0.0.1";
export const REMOTE = "203.0.113.9";
export const PROXY = "10.0.0.2";
export const FIXED_NOW = Date.UTC(2030, 0, 1, 12, 0, 30);

export interface Keypair {
  seed: Uint8Array;
  keyHash: string;
}

export function keypair(): Keypair {
  const seed = generateSeed();
  return { seed, keyHash: sha256Hex(publicKeyFromSeed(seed)) };
}

/** A fake Bun server: `requestIP` says the request came from `address`. */
export function peer(address: string): PeerServer {
  return { requestIP: () => ({ address, family: address.includes(":") ? "IPv6" : "IPv4", port: 40000 }) };
}

export interface BundleOptions {
  issuer?: string;
  windowDays?: number;
  claimWindowDays?: number;
  predicate?: string;
  subject?: string;
  value?: unknown;
  claims?: number;
}

/** A signed bundle; every call makes a different one unless the options repeat exactly. */
let serial = 0;
export function signedBundle(key: Keypair, o: BundleOptions = {}): Bundle {
  const n = o.claims ?? 1;
  const raw = {
    bundle_id: "",
    issuer: o.issuer ?? "issuer-a",
    created_at: `2024-05-01T12:00:${String(serial++ % 60).padStart(2, "0")}.${String(serial).padStart(6, "0")}Z`,
    window_days: o.windowDays ?? 7,
    claims: Array.from({ length: n }, (_, i) => ({
      issuer: o.issuer ?? "issuer-a",
      subject: o.subject ?? `subject-${i}`,
      predicate: o.predicate ?? "links.weighted_to",
      object: `object-${i}`,
      value: o.value ?? 1,
      window_days: o.claimWindowDays ?? o.windowDays ?? 7,
      computed_at: "2024-05-01T12:00:00Z",
    })),
  };
  return signBundle(normalizeBundle(raw), key.seed);
}

export interface Node {
  parent: string;
  dataDir: string;
  paths: DataPaths;
  app: ReturnType<typeof createApp>["app"];
  routes: ReturnType<typeof createApp>["routes"];
  close(): Promise<void>;
  tokens: { admin: string; member: string; observer: string; revoked: string };
  key: Keypair;
  logs: object[];
  /** sends a request from `ip` (default loopback) */
  send(method: string, path: string, init?: SendInit): Promise<Response>;
  /** finishes the app's commits and checkpoint, then removes the data directory */
  cleanup(): Promise<void>;
}

export interface SendInit {
  token?: string | undefined;
  body?: string | Uint8Array | ReadableStream<Uint8Array> | object | undefined;
  headers?: Record<string, string>;
  ip?: string;
}

export interface NodeOptions {
  /** the village's policy overrides; a function gets the node's issuer key first */
  policy?: Partial<VillagePolicy> | ((key: Keypair) => Partial<VillagePolicy>);
  server?: Partial<ServerOptions>;
}

export function makeNode(opts: NodeOptions = {}): Node {
  const key = keypair();
  const policy = typeof opts.policy === "function" ? opts.policy(key) : opts.policy;
  const parent = mkdtempSync(join(tmpdir(), "links-server-"));
  const dataDir = join(parent, "data");
  const paths = new DataPaths(dataDir);
  createVillage(paths, { villageId: VID, name: "North field", adminId: "alice", policy });
  const tokens = {
    admin: addMember(paths, VID, "alice", "admin"),
    member: addMember(paths, VID, "bob", "member"),
    observer: addMember(paths, VID, "olga", "observer"),
    revoked: addMember(paths, VID, "rex", "member"),
  };
  revokeMember(paths, VID, "rex", "alice", "test");
  const logs: object[] = [];
  const { app, routes, close } = createApp({ dataDir, logger: (l) => logs.push(l), now: () => FIXED_NOW, ...opts.server });
  const send = (method: string, path: string, init: SendInit = {}): Promise<Response> => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
    let body: RequestInit["body"];
    const b = init.body;
    if (typeof b === "string" || b instanceof Uint8Array || b instanceof ReadableStream) body = b as RequestInit["body"];
    else if (b !== undefined) body = JSON.stringify(b);
    const req = new Request(`http://links.test${path}`, { method, headers, body, duplex: "half" } as RequestInit);
    return Promise.resolve(app.fetch(req, peer(init.ip ?? LOOPBACK)));
  };
  return {
    parent,
    dataDir,
    paths,
    app,
    routes,
    close,
    tokens,
    key,
    logs,
    send,
    cleanup: async () => {
      await close();
      rmSync(parent, { recursive: true, force: true });
    },
  };
}

/** Every path under dir (relative), for before/after comparisons. */
export function snapshotTree(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(join(dir, prefix));
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    const rel = prefix === "" ? name : join(prefix, name);
    out.push(rel);
    if (statSync(join(dir, rel)).isDirectory()) out.push(...snapshotTree(dir, rel));
  }
  return out;
}

export async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}
