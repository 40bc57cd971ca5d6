/**
 * Runs the citty command tree with the behaviour operators expect: `--help` on every command,
 * unknown options and extra arguments refused, and every failure one line on stderr
 * (`links: error: <what> [<code>]`) with a non-zero exit: 2 for a usage mistake (then a hint to
 * --help), 1 for a refusal, 70 for a bug. With `--json` a failure also prints exactly one
 * `{"status":"error","code","detail"}` document on stdout, unless the command already printed one.
 */
import { renderUsage, runCommand, type ArgsDef, type CommandDef, type CommandMeta } from "citty";
import { isLinksError, LinksError, type ErrorCode } from "../core/errors.ts";
import { printable } from "../core/printable.ts";
import { interruptProgress } from "./progress.ts";

/** Thrown by a command to end with a specific exit code (after printing its own output). */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** A mistake in the command line: exit 2, with a hint to the command's --help. */
export class UsageError extends LinksError {
  constructor(message: string, readonly commandPath?: string) {
    super("usage", message);
  }
}

/** A command's meta with a longer text that `--help` prints after the options. */
export type MetaWithDetails = CommandMeta & { details?: string };

type AnyCommand = CommandDef<ArgsDef>;

async function resolve<T>(value: T | (() => T | Promise<T>) | Promise<T>): Promise<T> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}

/** Walks the positional words down the tree; returns the chain of commands reached. */
async function resolveChain(root: AnyCommand, rawArgs: string[]): Promise<{ chain: AnyCommand[]; rest: string[] }> {
  const chain = [root];
  let rest = rawArgs;
  for (;;) {
    const cmd = chain[chain.length - 1] as AnyCommand;
    const subs = cmd.subCommands ? await resolve(cmd.subCommands) : undefined;
    const index = rest.findIndex((a) => !a.startsWith("-"));
    if (!subs || index === -1) return { chain, rest };
    const name = rest[index] as string;
    const sub = (subs as Record<string, unknown>)[name];
    if (!sub) {
      if (cmd.run) return { chain, rest };
      throw new UsageError(`unknown command "${name}"`, await commandPath(chain));
    }
    chain.push((await resolve(sub)) as AnyCommand);
    rest = rest.slice(index + 1);
  }
}

function commandPath(chain: AnyCommand[]): Promise<string> {
  return Promise.all(chain.map(async (c) => (await resolve(c.meta))?.name ?? "")).then((names) =>
    names.filter(Boolean).join(" "),
  );
}

/**
 * citty names a command after its immediate parent only ("USAGE villages create"): give it the
 * whole path instead, so the USAGE line is a command an operator can run ("links villages create").
 * A command's `details` (e.g. an input format) follow the options.
 */
async function usageOf(chain: AnyCommand[]): Promise<string> {
  const cmd = chain[chain.length - 1] as AnyCommand;
  const details = ((await resolve(cmd.meta)) as MetaWithDetails | undefined)?.details;
  const version = (await resolve(chain[0]?.meta))?.version;
  const usage = chain.length < 2 ? await renderUsage(cmd) : await renderUsage(cmd, { meta: { name: await commandPath(chain.slice(0, -1)), version } });
  return details ? `${usage}\n${details.trimEnd()}\n` : usage;
}

/**
 * Refuses unknown options and more positional words than the command takes, and returns the
 * arguments with each string option's value joined to it (`--token -abc` -> `--token=-abc`).
 * citty parses the whole command line again at every level of the command tree, where no option
 * is known: there a separate value that starts with "-" (a base64url token does one time in 64)
 * reads as a group of short flags, and one holding "_" set the flag "_", which overwrote the
 * positionals and crashed the parser.
 */
async function checkOptions(cmd: AnyCommand, rest: string[]): Promise<string[]> {
  const defs = (cmd.args ? await resolve(cmd.args) : {}) as ArgsDef;
  const known = new Map<string, string>();
  let positionals = 0;
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") {
      positionals++;
      continue;
    }
    known.set(name, def.type ?? "string");
    const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    known.set(kebab, def.type ?? "string");
    for (const alias of [(def as { alias?: string | string[] }).alias ?? []].flat()) known.set(alias, def.type ?? "string");
  }
  const out: string[] = [];
  const words: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === "--") {
      out.push(...rest.slice(i));
      words.push(...rest.slice(i + 1));
      break;
    }
    out.push(arg);
    if (!arg.startsWith("-") || arg === "-") {
      words.push(arg);
      continue;
    }
    const name = arg.replace(/^--?/, "").split("=")[0] as string;
    const type = known.get(name) ?? (name.startsWith("no-") ? known.get(name.slice(3)) : undefined);
    if (type === undefined) throw new UsageError(`unknown option "${arg.split("=")[0]}"`);
    // The parser takes the next word as a string option's value, whatever it starts with.
    const value = rest[i + 1];
    if (type === "boolean" || arg.includes("=") || value === undefined) continue;
    i++;
    if (arg.startsWith("--")) out[out.length - 1] = `${arg}=${value}`;
    else out.push(value);
  }
  if (words.length > positionals) throw new UsageError(`unexpected argument ${JSON.stringify(words[positionals])}`);
  return out;
}

export interface CliOptions {
  /** a light copy of root (names and descriptions only) for the top-level usage */
  overview?: AnyCommand;
}

/** `--json` anywhere before a `--`: the caller wants JSON, on failure too. */
function wantsJson(rawArgs: string[]): boolean {
  const end = rawArgs.indexOf("--");
  return (end === -1 ? rawArgs : rawArgs.slice(0, end)).some((a) => a === "--json" || a === "--json=true");
}

export async function runCli(root: AnyCommand, rawArgs: string[], opts: CliOptions = {}): Promise<number> {
  let path = "links";
  try {
    const help = (args: string[]) => args.includes("--help") || args.includes("-h");
    if (opts.overview && (rawArgs.length === 0 || (help(rawArgs) && rawArgs.every((a) => a.startsWith("-"))))) {
      if (rawArgs.length > 0) {
        process.stdout.write(`${await usageOf([opts.overview])}\n`);
        return 0;
      }
      process.stderr.write(`${await usageOf([opts.overview])}\n`);
      throw new UsageError("no command given");
    }
    const { chain, rest } = await resolveChain(root, rawArgs);
    const cmd = chain[chain.length - 1] as AnyCommand;
    path = await commandPath(chain);
    if (help(rest)) {
      process.stdout.write(`${await usageOf(chain)}\n`);
      return 0;
    }
    if (chain.length === 1 && rawArgs.length === 1 && (rawArgs[0] === "--version" || rawArgs[0] === "-v")) {
      process.stdout.write(`${(await resolve(root.meta))?.version}\n`);
      return 0;
    }
    if (!cmd.run) {
      process.stderr.write(`${await usageOf(chain)}\n`);
      const subs = cmd.subCommands ? Object.keys(await resolve(cmd.subCommands)) : [];
      throw new UsageError(`"${path}" needs a command: one of ${subs.join(", ")}`);
    }
    const args = await checkOptions(cmd, rest);
    await runCommand(root, { rawArgs: [...rawArgs.slice(0, rawArgs.length - rest.length), ...args] });
    return 0;
  } catch (error) {
    return await reportError(error, path, wantsJson(rawArgs));
  }
}

interface Failure {
  code: ErrorCode;
  detail: string;
  exit: number;
  /** where --help would help, for a usage mistake */
  helpPath?: string;
}

/** citty's own messages, in our words (its parser reports missing or invalid arguments). */
function fromCitty(message: string): string {
  const plain = message.replace(/\x1b\[[0-9;]*m/g, "");
  const missingOption = /^Missing required argument: (--\S+)$/.exec(plain);
  if (missingOption) return `missing required option ${missingOption[1]}`;
  const missingPositional = /^Missing required positional argument: (\S+)$/.exec(plain);
  if (missingPositional) return `missing required argument ${missingPositional[1]}`;
  const invalid = /^Invalid value for argument: (--\S+) \((.*)\)\. Expected one of: (.*)\.$/.exec(plain);
  if (invalid) return `invalid value ${JSON.stringify(invalid[2])} for ${invalid[1]}: expected one of ${invalid[3]}`;
  return plain.charAt(0).toLowerCase() + plain.slice(1);
}

/** What went wrong, as a code, a one-line detail and an exit status. */
export function describeFailure(error: unknown, path: string): Failure {
  if (error instanceof UsageError) return { code: "usage", detail: error.detail, exit: 2, helpPath: error.commandPath ?? path };
  if (isLinksError(error)) {
    return error.code === "usage" ? { code: "usage", detail: error.detail, exit: 2, helpPath: path } : { code: error.code, detail: error.detail, exit: 1 };
  }
  if ((error as { name?: string })?.name === "CLIError") {
    return { code: "usage", detail: fromCitty((error as Error).message), exit: 2, helpPath: path };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: "internal_error", detail: `internal error: ${message}`, exit: 70 };
}

async function reportError(error: unknown, path: string, json: boolean): Promise<number> {
  if (error instanceof ExitCode) return error.code;
  const failure = describeFailure(error, path);
  interruptProgress();
  // a detail can carry stored text or another node's words: one line, no escape sequences
  process.stderr.write(`links: error: ${printable(failure.detail, { max: 2000 })} [${failure.code}]\n`);
  if (failure.helpPath) process.stderr.write(`Run "${failure.helpPath} --help" for usage.\n`);
  if (failure.exit === 70 && process.env.LINKS_DEBUG) console.error(error);
  if (json) {
    // loaded here, not at start: `links --help` stays as light as it can be
    const { jsonWasPrinted, printJson } = await import("./common.ts");
    if (!jsonWasPrinted()) printJson({ status: "error", code: failure.code, detail: failure.detail });
  }
  return failure.exit;
}
