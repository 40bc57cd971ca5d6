/**
 * The Prometheus text exposition format (version 0.0.4), written from plain samples: one
 * `# HELP` and one `# TYPE` line per family, then its samples; histograms as cumulative
 * `_bucket` lines ending in `le="+Inf"`, then `_sum` and `_count`. Label values and help texts
 * are escaped as the format asks (backslash, newline, and the double quote in label values).
 */
import type { HistogramSnapshot } from "../core/stats.ts";

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels?: Labels;
  value: number;
}

export interface HistogramSample {
  labels?: Labels;
  histogram: HistogramSnapshot;
}

export type Family =
  | { name: string; help: string; type: "counter" | "gauge"; samples: readonly Sample[] }
  | { name: string; help: string; type: "histogram"; samples: readonly HistogramSample[] };

export const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A sample value: integers as they are, NaN and infinities spelled as the format spells them. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

function labelText(labels: Labels | undefined, extra?: [string, string]): string {
  const pairs = Object.entries(labels ?? {});
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return "";
  for (const [name] of pairs) {
    if (!LABEL_NAME_RE.test(name) || name.startsWith("__")) throw new Error(`metrics: invalid label name ${JSON.stringify(name)}`);
  }
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

function histogramLines(name: string, s: HistogramSample): string[] {
  if (s.labels && "le" in s.labels) throw new Error(`metrics: histogram ${name} may not carry a label named le`);
  const { bounds, counts, sum, count } = s.histogram;
  const lines: string[] = [];
  let cumulative = 0;
  for (let i = 0; i <= bounds.length; i++) {
    cumulative += counts[i] ?? 0;
    const le = i < bounds.length ? formatValue(bounds[i] as number) : "+Inf";
    lines.push(`${name}_bucket${labelText(s.labels, ["le", le])} ${cumulative}`);
  }
  lines.push(`${name}_sum${labelText(s.labels)} ${formatValue(sum)}`);
  lines.push(`${name}_count${labelText(s.labels)} ${count}`);
  return lines;
}

function renderFamily(f: Family): string {
  if (!METRIC_NAME_RE.test(f.name)) throw new Error(`metrics: invalid metric name ${JSON.stringify(f.name)}`);
  const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
  if (f.type === "histogram") {
    for (const s of f.samples) lines.push(...histogramLines(f.name, s));
  } else {
    for (const s of f.samples) lines.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
  }
  return `${lines.join("\n")}\n`;
}

export function renderExposition(families: readonly Family[]): string {
  const seen = new Set<string>();
  for (const f of families) {
    if (seen.has(f.name)) throw new Error(`metrics: family ${f.name} appears twice`);
    seen.add(f.name);
  }
  return families.map(renderFamily).join("");
}
