import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { parseJson } from "../core/canonical.ts";
import { deriveEdges, edgesToGraphml, ObservationSchema, type Observation } from "../core/derive.ts";
import { LinksError } from "../core/errors.ts";
import { parseWith } from "../core/schema.ts";
import { parsePositiveInt, readInputFile, say, writeOutputFile } from "./common.ts";

export default defineCommand({
  meta: groupMeta("derive"),
  args: {
    observations: { type: "string", description: "Observations, one JSON object per line", required: true, valueHint: "file" },
    out: { type: "string", description: "Edges JSON output", required: true, valueHint: "file" },
    graphml: { type: "string", description: "Also write the edges as GraphML", valueHint: "file" },
    "window-days": { type: "string", description: "Window counted, ending at the newest observation", default: "30" },
  },
  run({ args }) {
    const windowDays = parsePositiveInt(args["window-days"], "window-days", 30);
    const observations = readObservations(args.observations);
    const edges = deriveEdges(observations, windowDays);
    writeOutputFile(args.out, edges);
    if (args.graphml) writeOutputFile(args.graphml, edgesToGraphml(edges));
    say(`derived ${edges.length} edges from ${observations.length} observations -> ${args.out}`);
  },
});

function readObservations(path: string): Observation[] {
  const text = new TextDecoder().decode(readInputFile(path, "observations file"));
  const out: Observation[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(parseWith(ObservationSchema, parseJson(line), "observation"));
    } catch (e) {
      const detail = e instanceof LinksError ? e.detail : String(e);
      throw new LinksError("invalid_schema", `${path} line ${i + 1}: ${detail}`);
    }
  });
  return out;
}
