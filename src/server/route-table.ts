/**
 * The routes the app serves, kept as data so a known path asked with the wrong method answers
 * 405 with an `Allow` header instead of a bare 404 (Hono's router only says "no match").
 */

export type Method = "GET" | "POST";

interface Entry {
  method: Method;
  pattern: RegExp;
}

/** `/villages/:id/inbox` -> /^\/villages\/[^/]+\/inbox$/ */
function compile(path: string): RegExp {
  const parts = path.split("/").map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  return new RegExp(`^${parts.join("/")}$`);
}

export class RouteTable {
  private readonly entries: Entry[] = [];

  /** Records a route and returns its path, for `app.get(table.add("GET", "/x"), ...)`. */
  add<P extends string>(method: Method, path: P): P {
    this.entries.push({ method, pattern: compile(path) });
    return path;
  }

  /** The methods some route accepts for this path (HEAD goes with GET), in a stable order. */
  allowedMethods(path: string): string[] {
    const methods = new Set<string>();
    for (const e of this.entries) {
      if (!e.pattern.test(path)) continue;
      methods.add(e.method);
      if (e.method === "GET") methods.add("HEAD");
    }
    return ["GET", "HEAD", "POST"].filter((m) => methods.has(m));
  }
}
