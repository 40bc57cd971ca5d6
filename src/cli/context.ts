/** What a command that works on a data directory needs: its paths and who is acting. */
import { statSync } from "node:fs";
import { userInfo } from "node:os";
import { LinksError } from "../core/errors.ts";
import { assertVillageId, DataPaths } from "../storage/paths.ts";
import { villageExists } from "../storage/villages.ts";
import { dataDir } from "./common.ts";

/**
 * The data directory of a command. Only commands that create data (`villages create`,
 * `claims ingest`) pass `create`; every other one refuses a directory that does not exist, so a
 * mistyped --data is an error naming it rather than an empty answer.
 */
export function openData(args: { data?: string | undefined }, opts: { create?: boolean } = {}): DataPaths {
  const paths = new DataPaths(dataDir(args));
  if (!opts.create) assertDataDir(paths.root);
  return paths;
}

function assertDataDir(root: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(root).isDirectory();
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOENT" && (e as { code?: string }).code !== "ENOTDIR") throw e;
    throw new LinksError(
      "data_dir_not_found",
      `data directory ${root} does not exist (pass --data DIR or set LINKS_DATA; links villages create or links serve makes one)`,
    );
  }
  if (!isDir) throw new LinksError("data_dir_not_found", `data directory ${root} is not a directory`);
}

/**
 * A village id given to narrow a read (`--village-id`): checked, and the village must exist, so
 * a typo is an error rather than an empty list.
 */
export function existingVillage(paths: DataPaths, value: string): string {
  const vid = assertVillageId(value);
  if (!villageExists(paths, vid)) {
    throw new LinksError("village_not_found", `village ${JSON.stringify(vid)} does not exist in ${paths.root}`);
  }
  return vid;
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
