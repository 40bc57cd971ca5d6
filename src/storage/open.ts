/** open(2) that creates missing parent folders only when the open says they are missing. */
import { mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";

export function openCreatingParents(path: string, flags: number, mode = 0o644): number {
  try {
    return openSync(path, flags, mode);
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOENT") throw e;
    mkdirSync(dirname(path), { recursive: true });
    return openSync(path, flags, mode);
  }
}
