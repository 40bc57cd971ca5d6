/** Arguments shared by commands that talk to a node over HTTP. */
import { Remote } from "../client/remote.ts";
import { LinksError } from "../core/errors.ts";

export const urlArg = { url: { type: "positional", description: "Node URL, e.g. https://node.example", required: true } } as const;

export const tokenArgs = {
  token: { type: "string", description: "Bearer token (default: env LINKS_TOKEN)" },
} as const;

export function remoteFor(
  args: { url: string; token?: string | undefined },
  opts: { tokenRequired?: boolean; maxRetryWaitMs?: number } = {},
): Remote {
  const token = args.token || process.env.LINKS_TOKEN || undefined;
  if (opts.tokenRequired && !token) {
    throw new LinksError("missing_token", "this command needs a member token: pass --token or set LINKS_TOKEN");
  }
  return new Remote({ baseUrl: args.url, token, ...(opts.maxRetryWaitMs === undefined ? {} : { maxRetryWaitMs: opts.maxRetryWaitMs }) });
}
