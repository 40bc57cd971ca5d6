/**
 * Writes a JSONL file of observations for `links derive`, the same every run (seeded): talk
 * edits between wiki users spread over 29 days, each user writing mostly to a few dozen others,
 * with a few duplicates, other kinds, observations without a target and old ones mixed in.
 * About 150 bytes a line: 1,000,000 lines are about 150 MB.
 *
 * Usage: bun scripts/gen-observations.ts --out obs.jsonl [--count 1000000] [--users 20000] [--seed 1]
 */
import { closeSync, openSync, writeSync } from "node:fs";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback);
}

const out = flag("out", "");
if (!out) {
  console.error("usage: bun scripts/gen-observations.ts --out FILE [--count N] [--users N] [--seed N]");
  process.exit(2);
}
const count = Number(flag("count", "1000000"));
const users = Number(flag("users", "20000"));
let state = Number(flag("seed", "1")) >>> 0 || 1;

/** xorshift32: small, fast and the same everywhere. */
function random(): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 0x1_0000_0000;
}

const NEIGHBOURS = 60;
const DAY_MS = 86_400_000;
const end = Date.UTC(2024, 5, 30, 12, 0, 0);
const user = (n: number) => `en:User_${String(n).padStart(5, "0")}`;

const fd = openSync(out, "w");
let buffer: string[] = [];
let previous = "";
const flush = () => {
  writeSync(fd, buffer.join(""));
  buffer = [];
};
for (let i = 0; i < count; i++) {
  const r = random();
  let line: string;
  if (r < 0.005 && previous) {
    line = previous; // the same observation twice
  } else {
    const actor = Math.floor(random() * users);
    // each user writes to NEIGHBOURS others, the first ones far more often (geometric)
    const k = Math.min(NEIGHBOURS - 1, Math.floor(-Math.log(1 - random()) * 12));
    const target = (actor + 1 + ((k * 7919) % users)) % users;
    const days = r < 0.015 ? 30 + random() * 30 : random() * 29;
    const ts = `${new Date(end - Math.floor(days * DAY_MS)).toISOString().slice(0, 19)}Z`;
    const kind = r > 0.97 ? "page_edit" : "user_talk_edit";
    const o: Record<string, unknown> = {
      observation_id: i,
      timestamp: ts,
      actor_entity_id: user(actor),
      kind,
      target_entity_id: r > 0.96 && r <= 0.97 ? null : user(target),
    };
    line = `${JSON.stringify(o)}\n`;
  }
  previous = line;
  buffer.push(line);
  if (buffer.length >= 10_000) flush();
}
flush();
closeSync(fd);
console.error(`wrote ${count} observations to ${out}`);
