import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { parseJson, toJsonText, type JsonValue } from "../core/canonical.ts";
import { Derivation, edgesToGraphml, OBSERVATION_FIELDS, ObservationSchema, SKIP_REASONS, type Edge, type Observation, type SkipCounts } from "../core/derive.ts";
import { LinksError } from "../core/errors.ts";
import { parseWith } from "../core/schema.ts";
import { AtomicFileWriter } from "../storage/atomic.ts";
import { jsonArgs, parsePositiveInt, printJson, say, warn, writeOutputFile } from "./common.ts";
import { forEachLine, inputSize, withRereadable } from "./input-stream.ts";
import { startProgress } from "./progress.ts";
import type { MetaWithDetails } from "./run.ts";

/** What `links derive --help` prints after the options (the README says the same). */
const OBSERVATION_FORMAT = `OBSERVATIONS (one JSON object per line; blank lines are ignored)

  observation_id    required  string or integer; the same id twice counts once
  timestamp         required  ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z (no zone: UTC)
  actor_entity_id   required  string: who acted (the edge starts here)
  kind              required  string: only "user_talk_edit" counts
  target_entity_id  optional  string or null: who was acted on (the edge ends here)
  context           optional  any JSON value (not used)
  evidence_uri      optional  string or null (not used)

  Example line:
  {"observation_id":"obs-1","timestamp":"2024-05-01T12:00:00Z","actor_entity_id":"wikipedia:en:Alice","kind":"user_talk_edit","target_entity_id":"wikipedia:en:Bob"}

  The window is --window-days long and ends at the newest counted observation. An edge's weight
  is log(1 + the number of its observations in the window). Observations that do not count are
  reported by reason: invalid (not an observation; the first lines are named), other_kind,
  no_target, outside_window, duplicate. Fields not listed above are ignored and reported.

EXIT STATUS
  0 edges written; 1 nothing to derive ([no_edges], no file written) or the input is unreadable.
`;

const REASON_WORDS: Record<keyof SkipCounts, string> = {
  invalid: "invalid",
  other_kind: "other kind",
  no_target: "no target",
  outside_window: "outside the window",
  duplicate: "duplicate",
};

/** How many invalid lines are named one by one before the rest are only counted. */
const INVALID_SHOWN = 5;

interface Summary {
  status: "ok";
  edges: number;
  observations: number;
  counted: number;
  skipped: SkipCounts;
  window_days: number;
  window_end: string | null;
  unknown_fields: Record<string, number>;
  out: string;
  graphml: string | null;
}

export default defineCommand({
  meta: { ...groupMeta("derive"), details: OBSERVATION_FORMAT } as MetaWithDetails,
  args: {
    observations: { type: "string", description: "Observations, one JSON object per line (- for stdin)", required: true, valueHint: "file" },
    out: { type: "string", description: "Edges JSON output", required: true, valueHint: "file" },
    graphml: { type: "string", description: "Also write the edges as GraphML", valueHint: "file" },
    "window-days": { type: "string", description: "Window counted, ending at the newest observation", default: "30" },
    ...jsonArgs,
  },
  run({ args }) {
    const windowDays = parsePositiveInt(args["window-days"], "window-days", 30);
    const { derivation, lines, unknownFields } = withRereadable(args.observations, "observations file", (path) =>
      derive(path, args.observations === "-" ? "standard input" : args.observations, windowDays, args),
    );
    const summary: Summary = {
      status: "ok",
      edges: derivation.edgeCount,
      observations: lines,
      counted: derivation.counted,
      skipped: derivation.skipped,
      window_days: windowDays,
      window_end: derivation.windowEnd,
      unknown_fields: Object.fromEntries(unknownFields),
      out: args.out,
      graphml: args.graphml ?? null,
    };
    if (unknownFields.size > 0) warn(unknownFieldsNote(unknownFields));
    if (derivation.edgeCount === 0) throw new LinksError("no_edges", noEdgesDetail(summary));
    writeEdges(args.out, derivation.edges(), derivation.edgeCount);
    if (args.graphml) writeOutputFile(args.graphml, edgesToGraphml([...derivation.edges()]));
    if (args.json) printJson(summary);
    else say(`derived ${derivation.edgeCount} edges from ${describeCounts(summary)} -> ${args.out}`);
  },
});

/** Both passes over the file, each a line at a time. */
function derive(path: string, shownAs: string, windowDays: number, args: { json?: boolean | undefined }) {
  const what = "observations file";
  const size = inputSize(path, what);
  const progress = startProgress(args, "derive: finding the window", size, "bytes");
  const derivation = new Derivation(windowDays);
  const unknownFields = new Map<string, number>();
  let invalidShown = 0;
  let lines = 0;
  // Pass 1: where the window ends; invalid lines are named here, once.
  forEachLine(
    path,
    what,
    (line, lineNo) => {
      if (line.trim() === "") return;
      lines++;
      const o = readObservation(line, (detail) => {
        if (invalidShown++ < INVALID_SHOWN) warn(`${shownAs} line ${lineNo} is not an observation, skipped: ${detail}`);
      }, unknownFields);
      if (o) derivation.see(o);
    },
    (n) => progress.update(n),
  );
  if (invalidShown > INVALID_SHOWN) warn(`${invalidShown - INVALID_SHOWN} more lines are not observations and were skipped`);
  // Pass 2: count.
  progress.phase("derive: counting", size);
  forEachLine(
    path,
    what,
    (line) => {
      if (line.trim() === "") return;
      const o = readObservation(line, () => {});
      if (o) derivation.count(o);
      else derivation.invalid();
    },
    (n) => progress.update(n),
  );
  progress.finish();
  return { derivation, lines, unknownFields };
}

function readObservation(line: string, onInvalid: (detail: string) => void, unknownFields?: Map<string, number>): Observation | null {
  let raw: JsonValue;
  try {
    raw = parseJson(line);
  } catch (e) {
    onInvalid(e instanceof LinksError ? e.detail : String(e));
    return null;
  }
  if (unknownFields && typeof raw === "object" && raw !== null && !Array.isArray(raw)) {
    for (const key of Object.keys(raw)) {
      if (!OBSERVATION_FIELDS.includes(key)) unknownFields.set(key, (unknownFields.get(key) ?? 0) + 1);
    }
  }
  try {
    return parseWith(ObservationSchema, raw, "observation");
  } catch (e) {
    onInvalid(e instanceof LinksError ? e.detail : String(e));
    return null;
  }
}

/** Writes the edges one per line inside the array, without building the whole text first. */
function writeEdges(path: string, edges: Iterable<Edge>, count: number): void {
  const out = new AtomicFileWriter(path);
  try {
    out.write("[\n");
    let i = 0;
    for (const e of edges) out.write(`${toJsonText(e as unknown as JsonValue)}${++i < count ? "," : ""}\n`);
    out.write("]\n");
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}

function describeCounts(s: Summary): string {
  const skipped = SKIP_REASONS.filter((r) => s.skipped[r] > 0).map((r) => `${s.skipped[r]} ${REASON_WORDS[r]}`);
  const total = SKIP_REASONS.reduce((n, r) => n + s.skipped[r], 0);
  return `${s.observations} observations: ${s.counted} counted, ${total} skipped${skipped.length ? ` (${skipped.join(", ")})` : ""}`;
}

function unknownFieldsNote(fields: Map<string, number>): string {
  const list = [...fields].map(([name, n]) => `${JSON.stringify(name)} (${n} ${n === 1 ? "line" : "lines"})`).join(", ");
  return `fields that are not part of the observation format were ignored: ${list}; the fields are ${OBSERVATION_FIELDS.join(", ")} (see links derive --help)`;
}

function noEdgesDetail(s: Summary): string {
  if (s.observations === 0) return "no edges: the observations file holds no observations (see links derive --help for the format)";
  const hint = s.skipped.no_target > 0 ? "; the target field is target_entity_id" : s.skipped.other_kind > 0 ? '; only kind "user_talk_edit" counts' : "";
  return `no edges derived from ${describeCounts(s)}${hint} (see links derive --help); nothing was written`;
}
