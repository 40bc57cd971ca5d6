/**
 * Opaque page cursors: base64url of "<tag>:<n>". A cursor this node did not hand out (another
 * tag, a number in another spelling, other bytes) is invalid_cursor, never a guess.
 */
import { LinksError } from "../core/errors.ts";

export interface CursorCodec {
  encode(n: number): string;
  decode(cursor: string): number;
}

export function cursorCodec(tag: string): CursorCodec {
  const text = new RegExp(`^${tag}:(0|[1-9][0-9]{0,14})$`);
  const encode = (n: number) => Buffer.from(`${tag}:${n}`, "utf8").toString("base64url");
  const decode = (cursor: string): number => {
    const bad = (): never => {
      throw new LinksError("invalid_cursor", "the cursor is not one this node handed out");
    };
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(cursor)) bad();
    const m = text.exec(Buffer.from(cursor, "base64url").toString("utf8"));
    if (!m) return bad();
    const n = Number(m[1]);
    if (encode(n) !== cursor) bad();
    return n;
  };
  return { encode, decode };
}
