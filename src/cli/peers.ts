import { rmSync } from "node:fs";
import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { LinksError } from "../core/errors.ts";
import { printable } from "../core/printable.ts";
import { SYNC_DEFAULTS, syncPeer, type PassReport } from "../replication/pass.ts";
import { addPeer, listPeers, peerId, removePeer } from "../replication/peers.ts";
import { peerStatuses, type PeerStatus } from "../replication/state.ts";
import { withFileLock } from "../storage/flock.ts";
import { assertVillageId, type DataPaths } from "../storage/paths.ts";
import { readVillage } from "../storage/villages.ts";
import { dataArgs, jsonArgs, printJson, readInputFile, say } from "./common.ts";
import { openData } from "./context.ts";
import { ExitCode } from "./run.ts";

const villageArg = { village_id: { type: "positional", description: "Village id", required: true } } as const;
const optionalVillageArg = { village_id: { type: "positional", description: "Only this village's peers", required: false } } as const;
const peerUrlArg = { url: { type: "positional", description: "The peer node's base URL, e.g. https://node-b.example", required: true } } as const;

/** Text from the data directory or a peer, safe for a terminal ("-" for none). */
function shown(value: string | null): string {
  return value === null ? "-" : printable(value);
}

function optionalVillage(args: { village_id?: string | undefined }): string | undefined {
  return args.village_id === undefined || args.village_id === "" ? undefined : assertVillageId(args.village_id);
}

/** The token for a peer: from --token-file, else LINKS_PEER_TOKEN; never from the command line. */
function peerToken(args: { "token-file"?: string | undefined }): string | null {
  if (args["token-file"]) {
    const text = new TextDecoder().decode(readInputFile(args["token-file"], "token file", 64 * 1024)).trim();
    if (text === "") throw new LinksError("invalid_argument", `the token file ${args["token-file"]} is empty`);
    return text;
  }
  const env = process.env.LINKS_PEER_TOKEN?.trim();
  return env ? env : null;
}

const add = defineCommand({
  meta: { name: "add", description: "Record a peer of a village (its token from --token-file or LINKS_PEER_TOKEN); nothing is fetched until a sync" },
  args: {
    ...villageArg,
    ...peerUrlArg,
    "token-file": { type: "string", description: "File holding the member token the peer gave us (default: env LINKS_PEER_TOKEN)", valueHint: "file" },
    ...dataArgs,
  },
  run({ args }) {
    const paths = openData(args);
    const vid = assertVillageId(args.village_id);
    readVillage(paths, vid);
    const peer = addPeer(paths, vid, args.url, peerToken(args));
    say(`peer ${shown(peer.url)} added to village ${vid}${peer.token ? " (its token is kept in replication/peers.json, mode 0600)" : " without a token (enough for a public village)"}`);
    say("nothing is fetched yet: run links peers sync, or let a running node sync within its --sync-interval");
  },
});

const list = defineCommand({
  meta: { name: "list", description: "List the peers of every village (or of one)" },
  args: { ...optionalVillageArg, ...dataArgs, ...jsonArgs },
  run({ args }) {
    const peers = listPeers(openData(args), optionalVillage(args)).map((p) => ({ village: p.village, url: p.url, has_token: p.token !== null, added_at: p.added_at }));
    if (args.json) return printJson({ peers });
    if (peers.length === 0) say("no peers configured (links peers add <village> <url>)");
    for (const p of peers) process.stdout.write(`${p.village}\t${shown(p.url)}\t${p.has_token ? "token" : "no token"}\t${shown(p.added_at)}\n`);
  },
});

/** Forgets a peer's cursor, counters and pins, after any pass with it has finished. */
async function forgetState(paths: DataPaths, village: string, url: string): Promise<void> {
  const id = peerId(url);
  await withFileLock(paths.peerLockFile(village, id), "exclusive", () => {
    rmSync(paths.peerStateFile(village, id), { force: true });
  });
}

const remove = defineCommand({
  meta: { name: "remove", description: "Stop syncing with a peer and forget its cursor and pinned node key" },
  args: { ...villageArg, ...peerUrlArg, ...dataArgs },
  async run({ args }) {
    const paths = openData(args);
    const vid = assertVillageId(args.village_id);
    const peer = removePeer(paths, vid, args.url);
    await forgetState(paths, vid, peer.url);
    say(`peer ${shown(peer.url)} removed from village ${vid}`);
  },
});

function describePass(r: PassReport): string {
  const where = `${r.village} ${shown(r.url)}`;
  if (r.status === "in_progress") return `${where}: a sync with this peer is in progress elsewhere (the node's loop or another command); skipped`;
  if (r.status === "removed") return `${where}: no longer configured; skipped`;
  const counts = `pulled ${r.pulled} (accepted ${r.accepted}, quarantined ${r.quarantined}, refused ${r.refused})`;
  if (r.status === "failed") return `${where}: failed: ${shown(r.detail)} [${r.code}]; ${counts}`;
  return `${where}: ${counts}; ${r.drift}${r.caught_up ? "" : " (more to pull on the next pass)"}`;
}

const sync = defineCommand({
  meta: { name: "sync", description: "One pass over every peer (of a village): audit check, policy pull, then new bundles through the village's pipeline (exit 1 if a pass failed)" },
  args: {
    ...optionalVillageArg,
    timeout: { type: "string", description: "Seconds to wait for each answer of a peer", default: String(SYNC_DEFAULTS.timeoutMs / 1000), valueHint: "seconds" },
    ...dataArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const paths = openData(args);
    const vid = optionalVillage(args);
    if (vid !== undefined) readVillage(paths, vid);
    const timeout = Number(args.timeout);
    if (!/^\d{1,4}$/.test(args.timeout) || timeout < 1) throw new LinksError("invalid_argument", `--timeout must be a whole number of seconds from 1 to 9999, got ${JSON.stringify(args.timeout)}`);
    const reports: PassReport[] = [];
    for (const peer of listPeers(paths, vid)) {
      const r = await syncPeer({ paths, timeoutMs: timeout * 1000 }, peer);
      reports.push(r);
      if (!args.json) say(describePass(r));
    }
    if (args.json) {
      printJson({
        peers: reports.map(({ village, url, status, pulled, accepted, quarantined, refused, drift, caught_up, code, detail }) => ({
          village, url, status, pulled, accepted, quarantined, refused, drift, caught_up, code, detail,
        })),
      });
    } else if (reports.length === 0) {
      say("no peers configured (links peers add <village> <url>)");
    }
    if (reports.some((r) => r.status === "failed")) throw new ExitCode(1);
  },
});

function describeStatus(s: PeerStatus): string {
  const lines = [
    `${s.village}\t${shown(s.url)}\t${s.drift}`,
    `  last success ${shown(s.last_success)}; pulled ${s.bundles_pulled}, accepted ${s.bundles_accepted}, quarantined ${s.bundles_quarantined}, refused ${s.bundles_refused}`,
    `  policy here ${shown(s.local_head)}, at the peer ${shown(s.remote_head)}; cursor ${shown(s.cursor)}`,
  ];
  if (s.last_error) lines.push(`  last error at ${shown(s.last_error.at)}: ${shown(s.last_error.detail)} [${shown(s.last_error.code)}]`);
  return lines.join("\n");
}

const status = defineCommand({
  meta: { name: "status", description: "Where each peer stands, as the running node (or the last peers sync) recorded it" },
  args: { ...optionalVillageArg, ...dataArgs, ...jsonArgs },
  run({ args }) {
    const paths = openData(args);
    const statuses = peerStatuses(paths, listPeers(paths, optionalVillage(args)));
    if (args.json) return printJson({ peers: statuses });
    if (statuses.length === 0) say("no peers configured (links peers add <village> <url>)");
    for (const s of statuses) process.stdout.write(`${describeStatus(s)}\n`);
  },
});

export default defineCommand({
  meta: groupMeta("peers"),
  subCommands: { add, list, remove, sync, status },
});
