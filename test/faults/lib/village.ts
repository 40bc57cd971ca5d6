/**
 * A village made the way an operator makes one: with the `links` binary.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { lastLine, linksOk } from "../../e2e/harness.ts";

export const HIGH_RATE = 100_000_000;

export interface TestVillage {
  data: string;
  vid: string;
  /** member id -> token */
  tokens: Record<string, string>;
}

/**
 * Creates `vid` in `data` with an admin ("alice" unless named), applies a policy with a very high
 * rate_limit_per_min (apply-local --merge), and adds the given members (role member unless listed).
 */
export async function makeVillage(
  data: string,
  vid: string,
  opts: { members?: Array<string | [string, string]>; policy?: Record<string, unknown>; scratch: string; admin?: string },
): Promise<TestVillage> {
  const admin = opts.admin ?? "alice";
  const created = await linksOk(["villages", "create", vid, `Village ${vid}`, admin, "--data", data]);
  const tokens: Record<string, string> = { [admin]: lastLine(created.stdout) };
  const policyFile = join(opts.scratch, `${vid}-policy.json`);
  writeFileSync(policyFile, JSON.stringify({ rate_limit_per_min: HIGH_RATE, ...opts.policy }));
  await linksOk(["policy", "apply-local", vid, policyFile, "--merge", "--data", data]);
  for (const m of opts.members ?? []) {
    const [id, role] = typeof m === "string" ? [m, "member"] : m;
    const r = await linksOk(["villages", "add-member", vid, id, "--role", role, "--data", data]);
    tokens[id] = lastLine(r.stdout);
  }
  return { data, vid, tokens };
}

/** POSTs a bundle text to a village inbox; resolves with the status and parsed body. */
export async function push(url: string, vid: string, token: string, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/villages/${vid}/inbox`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body,
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { unparsed: text.slice(0, 200) };
  }
  return { status: res.status, body: parsed };
}
