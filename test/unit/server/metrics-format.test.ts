import { describe, expect, test } from "bun:test";
import { exponentialBounds, Histogram } from "../../../src/core/stats.ts";
import { escapeLabelValue, renderExposition } from "../../../src/server/metrics-format.ts";
import { LabeledCounter, LabeledHistogram, MetricsRegistry } from "../../../src/server/metrics.ts";
import { parseExposition, sampleValue } from "./prom-parse.ts";

describe("the histogram kept as plain data", () => {
  test("puts a value equal to a bound in that bucket, above the last bound in +Inf, and keeps sum and count", () => {
    const h = new Histogram([1, 2, 5]);
    for (const v of [0.5, 1, 1, 2, 100]) h.observe(v);
    h.observe(Number.NaN);
    expect(h.snapshot()).toEqual({ bounds: [1, 2, 5], counts: [3, 1, 0, 1], sum: 104.5, count: 5 });
  });

  test.each([[[]], [[2, 1]], [[1, 1]], [[1, Number.POSITIVE_INFINITY]]])("refuses bounds %p", (bounds) => {
    expect(() => new Histogram(bounds)).toThrow(RangeError);
  });

  test("exponential bounds", () => {
    expect(exponentialBounds(1, 2, 4)).toEqual([1, 2, 4, 8]);
  });
});

describe("the exposition writer, read back by a strict parser", () => {
  const tricky = ['a "quoted" value', "back\\slash", "two\nlines", "ünïcode ✓", "", "}{,=\\n"];

  test("label values and help texts survive escaping exactly", () => {
    const c = new LabeledCounter(["what"]);
    tricky.forEach((v, i) => c.inc({ what: v }, i + 1));
    const text = renderExposition([{ name: "t_total", help: 'help with \\ and\nnewline and "quotes"', type: "counter", samples: c.samples() }]);
    const f = parseExposition(text).get("t_total");
    expect(f?.help).toBe('help with \\ and\nnewline and "quotes"');
    expect(f?.type).toBe("counter");
    expect(f?.samples.map((s) => [s.labels.what, s.value])).toEqual(tricky.map((v, i) => [v, i + 1]));
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });

  test("histograms are written cumulative, ending at +Inf, with _sum and _count", () => {
    const h = new LabeledHistogram(["route"], [0.1, 1]);
    for (const v of [0.05, 0.1, 0.5, 3]) h.observe({ route: "/a" }, v);
    h.observe({ route: "/b" }, 0.2);
    const text = renderExposition([{ name: "lat_seconds", help: "latency", type: "histogram", samples: h.samples() }]);
    expect(text).toContain('lat_seconds_bucket{route="/a",le="0.1"} 2\n');
    expect(text).toContain('lat_seconds_bucket{route="/a",le="1"} 3\n');
    expect(text).toContain('lat_seconds_bucket{route="/a",le="+Inf"} 4\n');
    const fams = parseExposition(text);
    expect(sampleValue(fams, "lat_seconds", "lat_seconds_sum", { route: "/a" })).toBeCloseTo(3.65, 10);
    expect(sampleValue(fams, "lat_seconds", "lat_seconds_count", { route: "/b" })).toBe(1);
    expect(sampleValue(fams, "lat_seconds", "lat_seconds_bucket", { route: "/b", le: "0.1" })).toBe(0);
  });

  test("special values are spelled as the format spells them", () => {
    const text = renderExposition([
      { name: "g", help: "g", type: "gauge", samples: [{ labels: { k: "nan" }, value: Number.NaN }, { labels: { k: "inf" }, value: Number.POSITIVE_INFINITY }, { labels: { k: "ninf" }, value: Number.NEGATIVE_INFINITY }] },
    ]);
    expect(text).toBe('# HELP g g\n# TYPE g gauge\ng{k="nan"} NaN\ng{k="inf"} +Inf\ng{k="ninf"} -Inf\n');
    expect(parseExposition(text).get("g")?.samples).toHaveLength(3);
  });

  test("refuses bad names, a label named le on a histogram and a family twice", () => {
    expect(() => renderExposition([{ name: "1bad", help: "", type: "gauge", samples: [] }])).toThrow("invalid metric name");
    expect(() => renderExposition([{ name: "g", help: "", type: "gauge", samples: [{ labels: { "bad-name": "x" }, value: 1 }] }])).toThrow("invalid label name");
    expect(() => renderExposition([{ name: "g", help: "", type: "gauge", samples: [{ labels: { __x: "x" }, value: 1 }] }])).toThrow("invalid label name");
    const snap = new Histogram([1]).snapshot();
    expect(() => renderExposition([{ name: "h", help: "", type: "histogram", samples: [{ labels: { le: "1" }, histogram: snap }] }])).toThrow("le");
    expect(() => renderExposition([{ name: "g", help: "", type: "gauge", samples: [] }, { name: "g", help: "", type: "gauge", samples: [] }])).toThrow("twice");
  });
});

describe("the strict parser itself", () => {
  const good = "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
  test("accepts a well-formed histogram", () => {
    expect(parseExposition(good).get("h")?.samples).toHaveLength(4);
  });
  test.each([
    ["buckets that go down", good.replace('le="+Inf"} 2', 'le="+Inf"} 0').replace("h_count 2", "h_count 0")],
    ["no +Inf bucket", good.replace('h_bucket{le="+Inf"} 2\n', "")],
    ["_count not equal to +Inf", good.replace("h_count 2", "h_count 3")],
    ["no _sum", good.replace("h_sum 3\n", "")],
    ["a sample outside its family", `${good}x_total 1\n`],
    ["TYPE without HELP", "# TYPE g gauge\ng 1\n"],
    ["a bad escape in a label value", '# HELP g g\n# TYPE g gauge\ng{a="\\t"} 1\n'],
    ["an unquoted label value", "# HELP g g\n# TYPE g gauge\ng{a=1} 1\n"],
    ["a missing final newline", "# HELP g g\n# TYPE g gauge\ng 1"],
    ["a bad value", "# HELP g g\n# TYPE g gauge\ng one\n"],
  ])("refuses %s", (_what, text) => {
    expect(() => parseExposition(text)).toThrow();
  });
});

describe("the registry", () => {
  test("reads every family at render time and keeps registration order", () => {
    const r = new MetricsRegistry();
    let n = 0;
    r.counter("reads_total", "reads", () => [{ value: n }]);
    r.gauge("level", "level", () => [{ labels: { v: "x" }, value: 2 }]);
    n = 7;
    const fams = parseExposition(r.render());
    expect([...fams.keys()]).toEqual(["reads_total", "level", "links_metrics_collect_failures_total"]);
    expect(sampleValue(fams, "reads_total", "reads_total")).toBe(7);
  });

  test("a family that cannot be read is left out and counted; the others are still served", () => {
    const r = new MetricsRegistry();
    r.gauge("broken", "broken", () => {
      throw new Error("disk gone");
    });
    r.gauge("fine", "fine", () => [{ value: 1 }]);
    r.render();
    const fams = parseExposition(r.render());
    expect(fams.has("broken")).toBe(false);
    expect(sampleValue(fams, "fine", "fine")).toBe(1);
    expect(sampleValue(fams, "links_metrics_collect_failures_total", "links_metrics_collect_failures_total", { family: "broken" })).toBe(2);
  });

  test("refuses a counter not named *_total, a bad name and the same name twice", () => {
    const r = new MetricsRegistry();
    expect(() => r.counter("reads", "x", () => [])).toThrow("_total");
    expect(() => r.gauge("bad name", "x", () => [])).toThrow("invalid metric name");
    r.gauge("g", "x", () => []);
    expect(() => r.gauge("g", "x", () => [])).toThrow("twice");
    expect(() => new LabeledCounter(["ok", "not-ok"])).toThrow("invalid label name");
  });
});
