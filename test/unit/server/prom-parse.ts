/**
 * A strict reader of the Prometheus text exposition format (0.0.4), written for the tests from
 * the format's rules, independently of the writer: it throws on anything a scraper could
 * misread, and checks histograms (cumulative buckets ending at +Inf, `_sum`, `_count` equal to
 * the +Inf bucket).
 */

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  samples: ParsedSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function unescapeHelp(text: string, where: string): string {
  return text.replace(/\\(.)?/g, (_, ch: string | undefined) => {
    if (ch === "\\") return "\\";
    if (ch === "n") return "\n";
    throw new Error(`${where}: bad escape in HELP`);
  });
}

function parseValue(text: string, where: string): number {
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** `{a="x",b="y\"z"}` at the start of text -> the labels and the rest of the line. */
function parseLabels(text: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  if (!text.startsWith("{")) return { labels, rest: text };
  let i = 1;
  while (text[i] !== "}") {
    const m = LABEL.exec(text.slice(i));
    if (!m) throw new Error(`${where}: bad label name at ${i}`);
    const name = m[0];
    i += name.length;
    if (text.slice(i, i + 2) !== '="') throw new Error(`${where}: expected =" after ${name}`);
    i += 2;
    let value = "";
    for (;;) {
      const ch = text[i];
      if (ch === undefined) throw new Error(`${where}: unterminated label value`);
      if (ch === '"') break;
      if (ch === "\n") throw new Error(`${where}: raw newline in a label value`);
      if (ch === "\\") {
        const next = text[i + 1];
        if (next === "\\") value += "\\";
        else if (next === '"') value += '"';
        else if (next === "n") value += "\n";
        else throw new Error(`${where}: bad escape \\${next} in a label value`);
        i += 2;
        continue;
      }
      value += ch;
      i++;
    }
    i++;
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    labels[name] = value;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new Error(`${where}: expected , or } after a label`);
  }
  return { labels, rest: text.slice(i + 1) };
}

function familyOf(sampleName: string, current: ParsedFamily): boolean {
  if (current.type !== "histogram") return sampleName === current.name;
  return [`${current.name}_bucket`, `${current.name}_sum`, `${current.name}_count`].includes(sampleName);
}

function checkHistogram(f: ParsedFamily): void {
  const series = new Map<string, ParsedSample[]>();
  for (const s of f.samples) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    series.set(key, [...(series.get(key) ?? []), s]);
  }
  for (const [key, samples] of series) {
    const where = `histogram ${f.name} ${key}`;
    const buckets = samples.filter((s) => s.name === `${f.name}_bucket`);
    const sums = samples.filter((s) => s.name === `${f.name}_sum`);
    const counts = samples.filter((s) => s.name === `${f.name}_count`);
    if (buckets.length === 0 || sums.length !== 1 || counts.length !== 1) throw new Error(`${where}: needs buckets, one _sum and one _count`);
    let lastLe = Number.NEGATIVE_INFINITY;
    let lastCount = 0;
    for (const b of buckets) {
      if (b.labels.le === undefined) throw new Error(`${where}: a bucket without le`);
      const le = parseValue(b.labels.le, where);
      if (!(le > lastLe)) throw new Error(`${where}: le values must ascend`);
      if (b.value < lastCount) throw new Error(`${where}: buckets must be cumulative`);
      lastLe = le;
      lastCount = b.value;
    }
    if (buckets[buckets.length - 1]?.labels.le !== "+Inf") throw new Error(`${where}: the last bucket must be le="+Inf"`);
    if (counts[0]?.value !== lastCount) throw new Error(`${where}: _count must equal the +Inf bucket`);
  }
}

export function parseExposition(text: string): Map<string, ParsedFamily> {
  if (text !== "" && !text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const families = new Map<string, ParsedFamily>();
  let current: ParsedFamily | null = null;
  let pendingHelp: { name: string; help: string } | null = null;
  text.split("\n").slice(0, -1).forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line.startsWith("# HELP ")) {
      const m = /^# HELP ([^ ]+) (.*)$/.exec(line);
      if (!m || !NAME.test(m[1] as string)) throw new Error(`${where}: bad HELP line`);
      if (families.has(m[1] as string)) throw new Error(`${where}: family ${m[1]} appears twice`);
      pendingHelp = { name: m[1] as string, help: unescapeHelp(m[2] as string, where) };
      return;
    }
    if (line.startsWith("# TYPE ")) {
      const m = /^# TYPE ([^ ]+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (!m) throw new Error(`${where}: bad TYPE line`);
      const help = pendingHelp as { name: string; help: string } | null;
      if (!help || help.name !== m[1]) throw new Error(`${where}: TYPE ${m[1]} without its HELP just before`);
      current = { name: m[1] as string, help: help.help, type: m[2] as ParsedFamily["type"], samples: [] };
      families.set(current.name, current);
      pendingHelp = null;
      return;
    }
    if (line.startsWith("#") || line.trim() === "") throw new Error(`${where}: unexpected line ${JSON.stringify(line)}`);
    const nm = NAME.exec(line);
    if (!nm) throw new Error(`${where}: bad sample name`);
    const fam = current as ParsedFamily | null;
    if (!fam || !familyOf(nm[0], fam)) throw new Error(`${where}: sample ${nm[0]} outside its family`);
    const { labels, rest } = parseLabels(line.slice(nm[0].length), where);
    if (!rest.startsWith(" ")) throw new Error(`${where}: expected a space before the value`);
    const parts = rest.slice(1).split(" ");
    if (parts.length > 2) throw new Error(`${where}: too many fields`);
    fam.samples.push({ name: nm[0], labels, value: parseValue(parts[0] as string, where) });
  });
  if (pendingHelp) throw new Error("a HELP line without its TYPE");
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

/** The value of the one sample of `name` whose labels include `labels`. */
export function sampleValue(families: Map<string, ParsedFamily>, family: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.get(family);
  const hits = (f?.samples ?? []).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}
