/**
 * Names in the node's checkpoints. A node signs as its node name (the key name of the signed
 * note) and each audit tree is a log of its own, with origin `links/<node name>/<village id>`.
 * The public scope's tree is `links/<node name>/~public`: "~" is never in a village id, so no
 * village can take that origin.
 */
import { LinksError } from "./errors.ts";

/** Host-name-like: it is a note key name (no spaces, no "+") and one segment of an origin (no "/"). */
export const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const PUBLIC_SCOPE_NAME = "~public";

const VILLAGE_SEGMENT_RE = /^[a-zA-Z0-9_-]{1,64}$/;

export function assertNodeName(name: unknown): string {
  if (typeof name === "string" && NODE_NAME_RE.test(name)) return name;
  const shown = typeof name === "string" ? JSON.stringify(name.slice(0, 80)) : String(name);
  throw new LinksError("invalid_argument", `invalid node name ${shown}: 1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit`);
}

/** The origin of a scope's tree: a village id, or null for the public scope. */
export function checkpointOrigin(nodeName: string, villageId: string | null): string {
  if (villageId !== null && !VILLAGE_SEGMENT_RE.test(villageId)) throw new LinksError("invalid_village_id", `invalid village id ${JSON.stringify(villageId)}`);
  return `links/${assertNodeName(nodeName)}/${villageId ?? PUBLIC_SCOPE_NAME}`;
}
