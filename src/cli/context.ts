/** What a command that works on a data directory needs: its paths and who is acting. */
import { userInfo } from "node:os";
import { DataPaths } from "../storage/paths.ts";
import { dataDir } from "./common.ts";

export function openData(args: { data?: string | undefined }): DataPaths {
  return new DataPaths(dataDir(args));
}

export const actorArgs = {
  actor: { type: "string", description: "Who is acting, for the audit log (default: the local user)" },
} as const;

export function actorOf(args: { actor?: string | undefined }): string {
  if (args.actor) return args.actor;
  let name = process.env.USER || process.env.LOGNAME || "";
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      name = "";
    }
  }
  if (!name || name === "unknown") name = `uid-${process.getuid?.() ?? "unknown"}`;
  return `local:${name}`;
}
