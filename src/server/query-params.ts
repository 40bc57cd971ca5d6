/** Query-string parameters, read strictly: a parameter given twice or a bad limit is a 400. */
import { LinksError } from "../core/errors.ts";
import type { AppContext } from "./context.ts";

/** One query parameter: absent (or empty) -> undefined; given twice -> invalid_argument. */
export function single(c: AppContext, name: string): string | undefined {
  const values = c.req.queries(name) ?? [];
  if (values.length > 1) throw new LinksError("invalid_argument", `query parameter ${name} is given ${values.length} times`);
  const value = values[0];
  return value === undefined || value === "" ? undefined : value;
}

export function parseLimit(text: string | undefined, page: { defaultLimit: number; maxLimit: number }): number {
  if (text === undefined) return page.defaultLimit;
  const n = /^[0-9]{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1 && n <= page.maxLimit)) {
    throw new LinksError("invalid_argument", `limit must be an integer from 1 to ${page.maxLimit}, got ${JSON.stringify(text.slice(0, 40))}`);
  }
  return n;
}
