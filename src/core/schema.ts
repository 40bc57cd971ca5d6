/**
 * zod building blocks over lossless JSON values (see canonical.ts): ints are numbers or bigints,
 * floats are JsonFloat. Typed fields are strict (spec section 2): no "30" or 30.0 for an int.
 */
import { z } from "zod";
import { JsonFloat, type JsonValue } from "./canonical.ts";
import { normalizeDatetime } from "./datetime.ts";
import { LinksError } from "./errors.ts";

export const zInt = z.number({ error: "expected an integer" }).int("expected an integer");

/** A float-typed field: an int token is taken as a float (it canonicalizes as `2.0`). */
export const zFloat = z.custom<JsonFloat | number>(
  (v) => v instanceof JsonFloat || (typeof v === "number" && Number.isFinite(v)),
  { error: "expected a number" },
).transform((v) => (v instanceof JsonFloat ? v : new JsonFloat(v)));

export const zDatetime = z.string({ error: "expected a datetime string" }).transform((s, ctx) => {
  const normalized = normalizeDatetime(s);
  if (normalized === null) {
    ctx.addIssue({
      code: "custom",
      message: `expected a datetime like 2024-05-01T12:00:00Z (YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM])`,
    });
    return z.NEVER;
  }
  return normalized;
});

/** Any JSON value, kept as it is (untyped fields: claim values, policy contents). */
export const zJson = z.custom<JsonValue>(() => true);

/** A JSON object with any members, kept as it is. */
export const zJsonObject = z.custom<{ [key: string]: JsonValue }>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonFloat),
  { error: "expected an object" },
);

/** Parses with a schema; a failure becomes one LinksError naming every bad field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 5).map(describeIssue);
  const more = result.error.issues.length > 5 ? ` (and ${result.error.issues.length - 5} more)` : "";
  throw new LinksError("invalid_schema", `invalid ${what}: ${problems.join("; ")}${more}`);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = formatPath(issue.path);
  const input = (issue as { input?: unknown }).input;
  if (issue.code === "invalid_type" && input === undefined) return `${field}: is required`;
  if (issue.code === "unrecognized_keys") return `${field}: unknown field(s) ${issue.keys.join(", ")}`;
  const got = input === undefined ? "" : `, got ${kindOf(input)}`;
  const message = issue.message.startsWith("Invalid input") ? `expected ${expectedOf(issue)}` : issue.message;
  return `${field}: ${message}${got}`;
}

function expectedOf(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type") return issue.expected === "int" ? "an integer" : `${issue.expected}`;
  if (issue.code === "invalid_value") return `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  return "a valid value";
}

export function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return "(root)";
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

export function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof JsonFloat) return "a float";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "bigint") return "an integer too large for this field";
  if (typeof v === "number") return "an integer";
  if (typeof v === "string") return "a string";
  if (typeof v === "boolean") return "a boolean";
  if (typeof v === "object") return "an object";
  return typeof v;
}
