import { defineCommand } from "citty";
import { dataArgs, dataDir } from "./common.ts";

export default defineCommand({
  meta: { name: "serve", description: "Run the node's HTTP server" },
  args: {
    ...dataArgs,
    bind: { type: "string", description: "Address to listen on", default: "127.0.0.1", valueHint: "addr" },
    port: { type: "string", description: "Port to listen on", default: "8080" },
  },
  async run({ args }) {
    const { startServer } = await import("../server/serve.ts");
    await startServer({ bind: args.bind, port: Number(args.port), dataDir: dataDir(args) });
  },
});
