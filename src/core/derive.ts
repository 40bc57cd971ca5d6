/**
 * Observations -> directed, weighted links. Each distinct `user_talk_edit` observation with a
 * target counts once for (actor, target); weight = log1p(count) over the window that ends at the
 * newest observation (so a re-run on the same data gives the same edges).
 */
import { z } from "zod";
import { compareCodePoints, JsonFloat } from "./canonical.ts";
import { datetimeToMs } from "./datetime.ts";
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

export function deriveEdges(observations: Observation[], windowDays: number): Edge[] {
  const edits = observations.filter((o) => o.kind === TALK_EDIT && o.target_entity_id);
  if (edits.length === 0) return [];
  // Not Math.max(...array): spreading a million arguments overflows the stack.
  const newest = edits.reduce((max, o) => Math.max(max, datetimeToMs(o.timestamp)), -Infinity);
  const cutoff = newest - windowDays * DAY_MS;
  const seen = new Set<string>();
  const counts = new Map<string, { from: string; to: string; count: number }>();
  for (const o of edits) {
    const id = String(o.observation_id);
    if (seen.has(id) || datetimeToMs(o.timestamp) <= cutoff) continue;
    seen.add(id);
    const to = o.target_entity_id as string;
    const key = JSON.stringify([o.actor_entity_id, to]);
    const entry = counts.get(key) ?? { from: o.actor_entity_id, to, count: 0 };
    entry.count += 1;
    counts.set(key, entry);
  }
  return [...counts.values()]
    .sort((a, b) => compareCodePoints(a.from, b.from) || compareCodePoints(a.to, b.to))
    .map(({ from, to, count }) => ({
      from_entity_id: from,
      to_entity_id: to,
      weight: new JsonFloat(Math.log1p(count)),
      window_days: windowDays,
      derivation: DERIVATION,
    }));
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
