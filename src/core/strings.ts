/**
 * A copy of a string that shares no memory with the text it was sliced from. The engine keeps a
 * slice (a parsed field, a line) as a view of its parent, so a short string kept for long, such
 * as a bundle id read from a 1 MiB bundle, would keep the whole text alive with it.
 */
export function detached(s: string): string {
  return Buffer.from(s, "utf8").toString("utf8");
}
