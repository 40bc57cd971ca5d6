import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { LinksError } from "../core/errors.ts";
import { dataArgs, dataDir, parseByteSize, parseSeconds, repeated } from "./common.ts";

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
    "sync-interval": { type: "string", description: "Seconds between syncs with each peer (links peers; 0: off)", default: "30", valueHint: "seconds" },
  },
  async run({ args, rawArgs }) {
    if (!/^\d+$/.test(args.port) || Number(args.port) > 65535) {
      throw new LinksError("invalid_argument", `--port must be 0-65535, got ${JSON.stringify(args.port)}`);
    }
    const { startServer } = await import("../server/serve.ts");
    await startServer({
      bind: args.bind,
      port: Number(args.port),
      dataDir: dataDir(args),
      trustProxy: repeated(rawArgs, "--trust-proxy"),
      allowInsecureRemote: Boolean(args["allow-insecure-remote"]),
      maxBodyBytes: parseByteSize(args["max-body"], "max-body"),
      syncIntervalMs: parseSeconds(args["sync-interval"], "sync-interval") * 1000,
    });
  },
});
