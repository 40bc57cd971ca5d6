#!/usr/bin/env bun
/** The `links` executable: node server and operator CLI in one. */
import pkg from "../package.json" with { type: "json" };

// citty decides on colors when it loads: keep escape codes out of pipes and files.
if (!process.stdout.isTTY) process.env.NO_COLOR = "1";
const { runCli } = await import("./cli/run.ts");
const { GROUPS } = await import("./cli/groups.ts");

const meta = { name: "links", version: pkg.version, description: "Signed claim bundles for governed villages: node and CLI" };
/** What `links --help` shows: names and descriptions only, so no command's code is loaded. */
const overview = {
  meta,
  subCommands: Object.fromEntries(Object.entries(GROUPS).map(([name, description]) => [name, { meta: { name, description } }])),
};

const main = {
  meta,
  subCommands: {
    serve: () => import("./cli/serve.ts").then((m) => m.default),
    villages: () => import("./cli/villages.ts").then((m) => m.default),
    keys: () => import("./cli/keys.ts").then((m) => m.default),
    claims: () => import("./cli/claims.ts").then((m) => m.default),
    derive: () => import("./cli/derive.ts").then((m) => m.default),
    policy: () => import("./cli/policy.ts").then((m) => m.default),
    quarantine: () => import("./cli/quarantine.ts").then((m) => m.default),
    sync: () => import("./cli/sync.ts").then((m) => m.default),
    audit: () => import("./cli/audit.ts").then((m) => m.default),
    peers: () => import("./cli/peers.ts").then((m) => m.default),
  },
};

process.exitCode = await runCli(main, process.argv.slice(2), { overview });
