import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { LinksError } from "../core/errors.ts";
import { dataArgs, dataDir, parseByteSize, repeated } from "./common.ts";

/** Seconds such as 2 or 0.5, as whole milliseconds. */
function parseSeconds(value: string, name: string): number {
  if (!/^\d{1,6}(\.\d{1,3})?$/.test(value.trim())) {
    throw new LinksError("invalid_argument", `--${name} must be a number of seconds like 2 or 0.5, got ${JSON.stringify(value)}`);
  }
  return Math.round(Number(value) * 1000);
}

export default defineCommand({
  meta: groupMeta("serve"),
  args: {
    ...dataArgs,
    bind: { type: "string", description: "Address to listen on", default: "127.0.0.1", valueHint: "addr" },
    port: { type: "string", description: "Port to listen on (0: any free port)", default: "8080" },
    "trust-proxy": {
      type: "string",
      description: "Address of a reverse proxy whose X-Forwarded-For/-Proto are believed (repeat for several)",
      valueHint: "addr",
    },
    "allow-insecure-remote": {
      type: "boolean",
      description: "Accept bearer tokens over plain HTTP from non-loopback peers (not recommended)",
    },
    "max-body": { type: "string", description: "Largest request body", default: "1MiB", valueHint: "size" },
    "verify-workers": {
      type: "string",
      description: "Threads that check inbox signatures beside the event loop (0: on it; default: the cores but two)",
      valueHint: "n",
    },
    "metrics-public": {
      type: "boolean",
      description: "Answer GET /metrics to any peer (default: peers on this host only)",
    },
    // limits on what clients may do
    "ipv6-prefix": {
      type: "string",
      description: "Per-address limits count IPv6 clients by this prefix length (128: each address alone)",
      default: "64",
      valueHint: "bits",
    },
    "public-inbox": { type: "enum", options: ["on", "off"], description: "Take bundles from anyone on POST /inbox", default: "on" },
    "public-inbox-quota": {
      type: "string",
      description: "Bytes of public bundles one client address may store per UTC day",
      default: "32MiB",
      valueHint: "size",
    },
    "public-inbox-total": { type: "string", description: "Bytes of public bundles the node keeps in all", default: "1GiB", valueHint: "size" },
    "node-key": { type: "string", description: "Private key file that signs the audit checkpoints (default: <data>/node/ed25519.key, made on first start)", valueHint: "file" },
    "node-name": { type: "string", description: "The node's name in its audit checkpoints (default: the host name)", valueHint: "name" },
    "checkpoint-interval": { type: "string", description: "Seconds between signing the audit trees that grew (0: only when a checkpoint is asked for)", default: "2", valueHint: "seconds" },
    "sync-interval": { type: "string", description: "Seconds between syncs with each peer (links peers; 0: off)", default: "30", valueHint: "seconds" },
  },
  async run({ args, rawArgs }) {
    if (!/^\d+$/.test(args.port) || Number(args.port) > 65535) {
      throw new LinksError("invalid_argument", `--port must be 0-65535, got ${JSON.stringify(args.port)}`);
    }
    if (!/^\d{1,3}$/.test(args["ipv6-prefix"]) || Number(args["ipv6-prefix"]) < 1 || Number(args["ipv6-prefix"]) > 128) {
      throw new LinksError("invalid_argument", `--ipv6-prefix must be 1-128, got ${JSON.stringify(args["ipv6-prefix"])}`);
    }
    const verifyWorkers = args["verify-workers"];
    if (verifyWorkers !== undefined && (!/^\d{1,2}$/.test(verifyWorkers) || Number(verifyWorkers) > 64)) {
      throw new LinksError("invalid_argument", `--verify-workers must be 0-64, got ${JSON.stringify(verifyWorkers)}`);
    }
    const { startServer } = await import("../server/serve.ts");
    await startServer({
      bind: args.bind,
      port: Number(args.port),
      dataDir: dataDir(args),
      trustProxy: repeated(rawArgs, "--trust-proxy"),
      allowInsecureRemote: Boolean(args["allow-insecure-remote"]),
      maxBodyBytes: parseByteSize(args["max-body"], "max-body"),
      metricsPublic: Boolean(args["metrics-public"]),
      ipv6Prefix: Number(args["ipv6-prefix"]),
      publicInbox: args["public-inbox"] === "on",
      publicInboxQuotaBytes: parseByteSize(args["public-inbox-quota"], "public-inbox-quota"),
      publicInboxTotalBytes: parseByteSize(args["public-inbox-total"], "public-inbox-total"),
      nodeKeyFile: args["node-key"],
      nodeName: args["node-name"],
      checkpointIntervalMs: parseSeconds(args["checkpoint-interval"], "checkpoint-interval"),
      syncIntervalMs: parseSeconds(args["sync-interval"], "sync-interval"),
      ...(verifyWorkers === undefined ? {} : { verifyWorkers: Number(verifyWorkers) }),
    });
  },
});
