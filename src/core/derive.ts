/**
 * Observations -> directed, weighted links. Each distinct `user_talk_edit` observation with a
 * target counts once for (actor, target); weight = log1p(count) over the window that ends at the
 * newest observation (so a re-run on the same data gives the same edges).
 *
 * The work is two passes so that a caller can stream its input: the first finds where the
 * window ends (`Derivation.see`), the second counts (`Derivation.count`). What is kept is the
 * count of each (actor, target) pair and the id of each counted observation (to drop repeats).
 */
import { z } from "zod";
import { compareCodePoints, JsonFloat } from "./canonical.ts";
import { datetimeToMs } from "./datetime.ts";
import { IntCounter } from "./number-table.ts";
import { detached } from "./strings.ts";
import { zDatetime, zInt, zJson } from "./schema.ts";

export const ObservationSchema = z.object({
  observation_id: z.union([z.string(), zInt]),
  timestamp: zDatetime,
  actor_entity_id: z.string(),
  kind: z.string(),
  target_entity_id: z.string().nullable().optional(),
  context: zJson.optional(),
  evidence_uri: z.string().nullable().optional(),
});

export type Observation = z.output<typeof ObservationSchema>;

/** The fields an observation may have: anything else on a line is ignored (and reported). */
export const OBSERVATION_FIELDS: readonly string[] = Object.keys(ObservationSchema.shape);

export const DERIVATION = "log(1 + count_30d)";
export const TALK_EDIT = "user_talk_edit";
const DAY_MS = 86_400_000;

export interface Edge {
  from_entity_id: string;
  to_entity_id: string;
  weight: JsonFloat;
  window_days: number;
  derivation: string;
}

/** Why an observation did not count, in the order the checks run. */
export const SKIP_REASONS = ["invalid", "other_kind", "no_target", "outside_window", "duplicate"] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export type SkipCounts = Record<SkipReason, number>;

export function noSkips(): SkipCounts {
  return { invalid: 0, other_kind: 0, no_target: 0, outside_window: 0, duplicate: 0 };
}

/** Entity ids as small integers, so a pair of them is one number (a cheap map key). */
class Interner {
  private readonly ids = new Map<string, number>();
  readonly names: string[] = [];

  idOf(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      const own = detached(name);
      this.ids.set(own, id);
      this.names.push(own);
    }
    return id;
  }
}

/** Pairs are from * PAIR_BASE + to: exact in a double for up to 2^26 distinct entities. */
const PAIR_BASE = 2 ** 26;

/** Observation ids already counted: integer ids (and integer texts) as numbers, others as strings. */
class SeenIds {
  /** non-negative integer ids n as 2n, negative ones as -2n-1 (every safe integer fits) */
  private readonly numbers = new IntCounter();
  private readonly texts = new Set<string>();

  /** Adds the id; false when it was there already. */
  add(id: string | number): boolean {
    const n = typeof id === "number" ? id : /^(0|-?[1-9]\d{0,14})$/.test(id) ? Number(id) : null;
    if (n !== null && Math.abs(n) < 2 ** 51) return this.numbers.increment(n >= 0 ? 2 * n : -2 * n - 1) === 0;
    const key = String(id);
    if (this.texts.has(key)) return false;
    this.texts.add(detached(key));
    return true;
  }
}

function countsToward(o: Observation): boolean {
  return o.kind === TALK_EDIT && Boolean(o.target_entity_id);
}

export class Derivation {
  private newestMs = -Infinity;
  private newestText: string | null = null;
  private readonly seen = new SeenIds();
  private readonly entities = new Interner();
  /** pair (see PAIR_BASE) -> count */
  private readonly counts = new IntCounter();
  readonly skipped: SkipCounts = noSkips();
  counted = 0;

  constructor(readonly windowDays: number) {}

  /** First pass: every valid observation, so the window can end at the newest one that counts. */
  see(o: Observation): void {
    if (!countsToward(o)) return;
    const ms = datetimeToMs(o.timestamp);
    if (ms > this.newestMs) {
      this.newestMs = ms;
      this.newestText = detached(o.timestamp);
    }
  }

  /** The end of the window (the newest counting observation's timestamp), or null when none counts. */
  get windowEnd(): string | null {
    return this.newestText;
  }

  /** Second pass: counts the observation, or says why it does not count. */
  count(o: Observation): SkipReason | null {
    const reason = this.judge(o);
    if (reason !== null) {
      this.skipped[reason]++;
      return reason;
    }
    this.counted++;
    const pair = this.entities.idOf(o.actor_entity_id) * PAIR_BASE + this.entities.idOf(o.target_entity_id as string);
    this.counts.increment(pair);
    return null;
  }

  /** A line that is not an observation (the caller read it): counted as skipped, invalid. */
  invalid(): void {
    this.skipped.invalid++;
  }

  private judge(o: Observation): SkipReason | null {
    if (o.kind !== TALK_EDIT) return "other_kind";
    if (!o.target_entity_id) return "no_target";
    if (this.newestMs === -Infinity || datetimeToMs(o.timestamp) <= this.newestMs - this.windowDays * DAY_MS) return "outside_window";
    return this.seen.add(o.observation_id) ? null : "duplicate";
  }

  /** How many edges there are: one per (actor, target) pair counted. */
  get edgeCount(): number {
    return this.counts.size;
  }

  /** The edges, sorted by (from, to) in code-point order, one at a time. */
  *edges(): Generator<Edge> {
    const names = this.entities.names;
    // entities ranked in code-point order: a pair of ranks sorts as one number
    const order = names.map((_, i) => i).sort((a, b) => compareCodePoints(names[a] as string, names[b] as string));
    const rank = new Float64Array(names.length);
    order.forEach((id, r) => (rank[id] = r));
    const keys = Float64Array.from(this.counts.entries(), ([pair]) => (rank[Math.floor(pair / PAIR_BASE)] as number) * PAIR_BASE + (rank[pair % PAIR_BASE] as number));
    keys.sort();
    for (const key of keys) {
      const from = order[Math.floor(key / PAIR_BASE)] as number;
      const to = order[key % PAIR_BASE] as number;
      yield {
        from_entity_id: names[from] as string,
        to_entity_id: names[to] as string,
        weight: new JsonFloat(Math.log1p(this.counts.get(from * PAIR_BASE + to))),
        window_days: this.windowDays,
        derivation: DERIVATION,
      };
    }
  }
}

/** Both passes over observations already in memory. */
export function deriveEdges(observations: Observation[], windowDays: number): Edge[] {
  const d = new Derivation(windowDays);
  for (const o of observations) d.see(o);
  for (const o of observations) d.count(o);
  return [...d.edges()];
}

/** GraphML (directed) of the edges, with every text escaped for XML. */
export function edgesToGraphml(edges: Edge[]): string {
  const nodes = new Set<string>();
  for (const e of edges) nodes.add(e.from_entity_id).add(e.to_entity_id);
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<graphml xmlns="http://graphml.graphdrawing.org/xmlns">`,
    `  <key id="weight" for="edge" attr.name="weight" attr.type="double"/>`,
    `  <key id="window_days" for="edge" attr.name="window_days" attr.type="int"/>`,
    `  <key id="derivation" for="edge" attr.name="derivation" attr.type="string"/>`,
    `  <graph id="links" edgedefault="directed">`,
  ];
  for (const id of [...nodes].sort(compareCodePoints)) lines.push(`    <node id="${xmlEscape(id)}"/>`);
  edges.forEach((e, i) => {
    lines.push(
      `    <edge id="e${i}" source="${xmlEscape(e.from_entity_id)}" target="${xmlEscape(e.to_entity_id)}">`,
      `      <data key="weight">${e.weight.value}</data>`,
      `      <data key="window_days">${e.window_days}</data>`,
      `      <data key="derivation">${xmlEscape(e.derivation)}</data>`,
      `    </edge>`,
    );
  });
  lines.push(`  </graph>`, `</graphml>`, ``);
  return lines.join("\n");
}

/**
 * Escapes text for XML attributes and content. Characters XML 1.0 cannot hold at all (most
 * C0 controls, lone surrogates, U+FFFE/U+FFFF) become U+FFFD rather than invalid output.
 */
export function xmlEscape(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    .replace(/[\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`);
}
