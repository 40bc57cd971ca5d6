/**
 * Runs the citty command tree with the behaviour operators expect: `--help` on every command,
 * unknown options refused, and every failure a one-line message on stderr with a non-zero exit.
 */
import { renderUsage, runCommand, type ArgsDef, type CommandDef } from "citty";
import { isLinksError } from "../core/errors.ts";
import { printable } from "../core/printable.ts";

/** Thrown by a command to end with a specific exit code (after printing its own output). */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export class UsageError extends Error {
  constructor(message: string, readonly commandPath?: string) {
    super(message);
  }
}

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
 */
async function usageOf(chain: AnyCommand[]): Promise<string> {
  const cmd = chain[chain.length - 1] as AnyCommand;
  if (chain.length < 2) return renderUsage(cmd);
  const version = (await resolve(chain[0]?.meta))?.version;
  return renderUsage(cmd, { meta: { name: await commandPath(chain.slice(0, -1)), version } });
}

/**
 * Refuses unknown options and returns the arguments with each string option's value joined to
 * it (`--token -abc` -> `--token=-abc`). citty parses the whole command line again at every level
 * of the command tree, where no option is known: there a separate value that starts with "-" (a
 * base64url token does one time in 64) reads as a group of short flags, and one holding "_" set
 * the flag "_", which overwrote the positionals and crashed the parser.
 */
async function checkOptions(cmd: AnyCommand, rest: string[]): Promise<string[]> {
  const defs = (cmd.args ? await resolve(cmd.args) : {}) as ArgsDef;
  const known = new Map<string, string>();
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") continue;
    known.set(name, def.type ?? "string");
    const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    known.set(kebab, def.type ?? "string");
    for (const alias of [(def as { alias?: string | string[] }).alias ?? []].flat()) known.set(alias, def.type ?? "string");
  }
  const out: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === "--") {
      out.push(...rest.slice(i));
      break;
    }
    out.push(arg);
    if (!arg.startsWith("-") || arg === "-") continue;
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
  return out;
}

export interface CliOptions {
  /** a light copy of root (names and descriptions only) for the top-level usage */
  overview?: AnyCommand;
}

export async function runCli(root: AnyCommand, rawArgs: string[], opts: CliOptions = {}): Promise<number> {
  let path = "links";
  try {
    const help = (args: string[]) => args.includes("--help") || args.includes("-h");
    if (opts.overview && (rawArgs.length === 0 || (help(rawArgs) && rawArgs.every((a) => a.startsWith("-"))))) {
      process[rawArgs.length === 0 ? "stderr" : "stdout"].write(`${await usageOf([opts.overview])}\n`);
      return rawArgs.length === 0 ? 2 : 0;
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
      return 2;
    }
    const args = await checkOptions(cmd, rest);
    await runCommand(root, { rawArgs: [...rawArgs.slice(0, rawArgs.length - rest.length), ...args] });
    return 0;
  } catch (error) {
    return reportError(error, path);
  }
}

function reportError(error: unknown, path: string): number {
  if (error instanceof ExitCode) return error.code;
  if (isLinksError(error)) {
    // a detail can carry stored text or another node's words: one line, no escape sequences
    process.stderr.write(`links: error: ${printable(error.detail, { max: 2000 })} [${error.code}]\n`);
    return 1;
  }
  const name = (error as { name?: string })?.name;
  if (error instanceof UsageError || name === "CLIError") {
    const where = (error instanceof UsageError && error.commandPath) || path;
    process.stderr.write(`links: ${(error as Error).message}\nRun "${where} --help" for usage.\n`);
    return 2;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`links: internal error: ${printable(message)}\n`);
  if (process.env.LINKS_DEBUG) console.error(error);
  return 70;
}
