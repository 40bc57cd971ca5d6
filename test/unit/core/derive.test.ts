import { describe, expect, test } from "bun:test";
import { canonicalize, JsonFloat, type JsonValue } from "../../../src/core/canonical.ts";
import {
  DERIVATION,
  Derivation,
  deriveEdges,
  OBSERVATION_FIELDS,
  SKIP_REASONS,
  type Edge,
  edgesToGraphml,
  type Observation,
  ObservationSchema,
  xmlEscape,
} from "../../../src/core/derive.ts";

let nextId = 0;
function obs(actor: string, target: string | null | undefined, timestamp = "2024-05-31T00:00:00Z", extra: Partial<Observation> = {}): Observation {
  return {
    observation_id: `o${nextId++}`,
    timestamp,
    actor_entity_id: actor,
    kind: "user_talk_edit",
    ...(target === undefined ? {} : { target_entity_id: target }),
    ...extra,
  };
}

const pairs = (edges: Edge[]) => edges.map((e) => [e.from_entity_id, e.to_entity_id]);
const counts = (edges: Edge[]) =>
  Object.fromEntries(edges.map((e) => [`${e.from_entity_id}->${e.to_entity_id}`, Math.round(Math.expm1(e.weight.value))]));

describe("when deriving edges from observations", () => {
  test("each (actor, target) pair counts its observations, weighted log1p(count)", () => {
    const edges = deriveEdges(
      [obs("a", "b"), obs("a", "b"), obs("a", "b"), obs("a", "c"), obs("b", "a"), obs("b", "a")],
      30,
    );
    expect(edges).toEqual([
      { from_entity_id: "a", to_entity_id: "b", weight: new JsonFloat(Math.log1p(3)), window_days: 30, derivation: DERIVATION },
      { from_entity_id: "a", to_entity_id: "c", weight: new JsonFloat(Math.log1p(1)), window_days: 30, derivation: DERIVATION },
      { from_entity_id: "b", to_entity_id: "a", weight: new JsonFloat(Math.log1p(2)), window_days: 30, derivation: DERIVATION },
    ]);
    expect(DERIVATION).toBe("log(1 + count_30d)");
  });

  test("the weight is a JsonFloat and canonicalizes as a Python float", () => {
    const [edge] = deriveEdges([obs("a", "b")], 30);
    expect(edge!.weight).toBeInstanceOf(JsonFloat);
    expect(canonicalize(edge as unknown as JsonValue)).toBe(
      `{"derivation":"log(1 + count_30d)","from_entity_id":"a","to_entity_id":"b","weight":0.6931471805599453,"window_days":30}`,
    );
  });

  test("an actor's edge to itself is kept like any other", () => {
    expect(pairs(deriveEdges([obs("a", "a")], 30))).toEqual([["a", "a"]]);
  });

  test("no observations give no edges", () => {
    expect(deriveEdges([], 30)).toEqual([]);
  });
});

describe("when observations are not talk edits with a target", () => {
  test("other kinds are ignored, case included", () => {
    const edges = deriveEdges(
      [obs("a", "b"), obs("a", "c", undefined, { kind: "page_edit" }), obs("a", "d", undefined, { kind: "User_talk_edit" }), obs("a", "e", undefined, { kind: "user_talk_edit " })],
      30,
    );
    expect(pairs(edges)).toEqual([["a", "b"]]);
  });

  test("a null, missing or empty target is ignored", () => {
    const edges = deriveEdges([obs("a", null), obs("a", undefined), obs("a", ""), obs("a", "b")], 30);
    expect(pairs(edges)).toEqual([["a", "b"]]);
  });

  test("only talk edits with a target decide where the window ends", () => {
    const edges = deriveEdges(
      [
        obs("a", "b", "2024-05-01T00:00:00Z"),
        obs("a", "c", "2030-01-01T00:00:00Z", { kind: "page_edit" }),
        obs("a", "d", "2030-01-01T00:00:00Z", { target_entity_id: null }),
      ],
      30,
    );
    expect(pairs(edges)).toEqual([["a", "b"]]);
  });

  test("only non-talk observations give no edges", () => {
    expect(deriveEdges([obs("a", "b", undefined, { kind: "page_edit" })], 30)).toEqual([]);
  });
});

describe("when observation ids repeat", () => {
  test("a duplicated observation counts once", () => {
    const one = obs("a", "b");
    expect(counts(deriveEdges([one, one, { ...one }], 30))).toEqual({ "a->b": 1 });
  });

  test("integer ids are deduplicated too", () => {
    const edges = deriveEdges([obs("a", "b", undefined, { observation_id: 7 }), obs("a", "b", undefined, { observation_id: 7 }), obs("a", "b", undefined, { observation_id: 8 })], 30);
    expect(counts(edges)).toEqual({ "a->b": 2 });
  });

  test("the first of two observations with one id is the one counted", () => {
    const edges = deriveEdges([obs("a", "b", undefined, { observation_id: "x" }), obs("c", "d", undefined, { observation_id: "x" })], 30);
    expect(pairs(edges)).toEqual([["a", "b"]]);
  });
});

describe("when observations fall outside the window", () => {
  // The window ends at the newest observation: 2024-05-31T00:00:00Z minus 30 days is 2024-05-01T00:00:00Z.
  const newest = obs("z", "z", "2024-05-31T00:00:00Z");

  test("older observations are excluded and newer ones kept", () => {
    const edges = deriveEdges(
      [newest, obs("old", "x", "2024-04-01T00:00:00Z"), obs("recent", "x", "2024-05-15T00:00:00Z")],
      30,
    );
    expect(pairs(edges)).toEqual([["recent", "x"], ["z", "z"]]);
  });

  test("the window's start is excluded and a second later is included", () => {
    const edges = deriveEdges(
      [newest, obs("at", "x", "2024-05-01T00:00:00Z"), obs("after", "x", "2024-05-01T00:00:01Z"), obs("before", "x", "2024-04-30T23:59:59Z")],
      30,
    );
    expect(pairs(edges)).toEqual([["after", "x"], ["z", "z"]]);
  });

  test("a wider window takes the older observations in", () => {
    const input = [newest, obs("old", "x", "2024-04-01T00:00:00Z")];
    expect(pairs(deriveEdges(input, 30))).toEqual([["z", "z"]]);
    expect(pairs(deriveEdges(input, 90))).toEqual([["old", "x"], ["z", "z"]]);
    expect(deriveEdges(input, 90).every((e) => e.window_days === 90)).toBe(true);
  });

  test("the window does not depend on the order of the observations or the clock", () => {
    const input = [obs("recent", "x", "2024-05-15T00:00:00Z"), newest, obs("old", "x", "2024-04-01T00:00:00Z")];
    expect(deriveEdges(input, 30)).toEqual(deriveEdges([...input].reverse(), 30));
  });

  test("timestamps with offsets are compared as instants", () => {
    const edges = deriveEdges(
      [
        obs("z", "z", ObservationSchema.parse({ ...newest, timestamp: "2024-05-31T05:30:00+05:30" }).timestamp),
        obs("in", "x", ObservationSchema.parse({ ...newest, timestamp: "2024-05-01T00:00:01-00:00" }).timestamp),
      ],
      30,
    );
    expect(pairs(edges)).toEqual([["in", "x"], ["z", "z"]]);
  });
});

describe("when edges are sorted", () => {
  test("they are ordered by (from, to) in code-point order, not UTF-16 order", () => {
    const actors = ["😀", "～", "é", "a", "B", "", "aa"];
    const edges = deriveEdges([...actors.map((a) => obs(a, "t")), obs("a", "😀"), obs("a", "～"), obs("a", "b")], 30);
    expect(pairs(edges)).toEqual([
      ["", "t"],
      ["B", "t"],
      ["a", "b"],
      ["a", "t"],
      ["a", "～"],
      ["a", "😀"],
      ["aa", "t"],
      ["é", "t"],
      ["～", "t"],
      ["😀", "t"],
    ]);
  });
});

describe("when there are a million observations", () => {
  test("the newest is found without overflowing the stack", () => {
    const many: Observation[] = Array.from({ length: 1_000_000 }, (_, i) => ({
      observation_id: i,
      timestamp: "2024-05-01T12:00:00Z",
      actor_entity_id: i % 2 ? "a" : "b",
      kind: "user_talk_edit",
      target_entity_id: "c",
    }));
    expect(counts(deriveEdges(many, 30))).toEqual({ "a->c": 500_000, "b->c": 500_000 });
  }, 20_000);
});

describe("when observations are read through the schema", () => {
  test("ids may be strings or integers and timestamps are normalized", () => {
    const o = ObservationSchema.parse({ observation_id: 5, timestamp: "2024-05-01T12:00:00.120Z", actor_entity_id: "a", kind: "user_talk_edit", target_entity_id: "b", extra: 1 });
    expect(o).toEqual({ observation_id: 5, timestamp: "2024-05-01T12:00:00.120000Z", actor_entity_id: "a", kind: "user_talk_edit", target_entity_id: "b" });
  });

  test("a timestamp that is not a datetime is refused", () => {
    expect(ObservationSchema.safeParse({ observation_id: "x", timestamp: "2024-05-01 12:00:00", actor_entity_id: "a", kind: "k" }).success).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// GraphML

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITY = /&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/y;
const NOT_XML_CHAR = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;

/** Every '&' must start a known entity or character reference. */
function checkEntities(s: string): void {
  for (let i = s.indexOf("&"); i >= 0; i = s.indexOf("&", i + 1)) {
    ENTITY.lastIndex = i;
    if (!ENTITY.test(s)) throw new Error(`raw '&' at ${JSON.stringify(s.slice(i, i + 12))}`);
  }
}

function unescapeXml(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/g, (_, ref: string) => {
    const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
    if (ref in named) return named[ref]!;
    return String.fromCodePoint(ref[1] === "x" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10));
  });
}

/**
 * A strict little XML reader, enough for GraphML: an XML declaration, elements, attributes in
 * double quotes and text. Throws on anything not well-formed (unbalanced tags, a raw '<' or '&'
 * in an attribute value or text, characters XML 1.0 cannot hold, duplicate attributes).
 */
function parseXml(xml: string): XmlElement {
  if (NOT_XML_CHAR.test(xml)) throw new Error(`character not allowed in XML: ${JSON.stringify(xml.match(NOT_XML_CHAR)![0])}`);
  const token = /<\?xml [^?<>]*\?>|<\/([A-Za-z_][\w.:-]*)>|<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/y;
  const root: XmlElement = { name: "#document", attrs: {}, children: [], text: "" };
  const stack = [root];
  let pos = 0;
  while (pos < xml.length) {
    token.lastIndex = pos;
    const m = token.exec(xml);
    if (!m) throw new Error(`not well-formed at ${pos}: ${JSON.stringify(xml.slice(pos, pos + 30))}`);
    pos = token.lastIndex;
    const [, close, open, attrText, selfClose, text] = m;
    const top = stack[stack.length - 1]!;
    if (close !== undefined) {
      if (top.name !== close) throw new Error(`</${close}> closes <${top.name}>`);
      stack.pop();
    } else if (open !== undefined) {
      const attrs: Record<string, string> = {};
      for (const [, name, value] of (attrText ?? "").matchAll(/([A-Za-z_][\w.:-]*)="([^"]*)"/g)) {
        if (name! in attrs) throw new Error(`duplicate attribute ${name}`);
        checkEntities(value!);
        attrs[name!] = unescapeXml(value!);
      }
      const el: XmlElement = { name: open, attrs, children: [], text: "" };
      top.children.push(el);
      if (selfClose !== "/") stack.push(el);
    } else if (text !== undefined) {
      checkEntities(text);
      if (stack.length === 1 && text.trim() !== "") throw new Error("text outside the root element");
      top.text += unescapeXml(text);
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1) throw new Error("a document has exactly one root element");
  return root.children[0]!;
}

function edge(from: string, to: string, count = 1): Edge {
  return { from_entity_id: from, to_entity_id: to, weight: new JsonFloat(Math.log1p(count)), window_days: 30, derivation: DERIVATION };
}

describe("when edges are written as GraphML", () => {
  const edges = deriveEdges([obs("a", "b"), obs("a", "b"), obs("b", "c")], 30);
  const xml = edgesToGraphml(edges);
  const doc = parseXml(xml);
  const graph = doc.children.find((c) => c.name === "graph")!;

  test("it is a well-formed directed GraphML document", () => {
    expect(xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n`)).toBe(true);
    expect(doc.name).toBe("graphml");
    expect(doc.attrs.xmlns).toBe("http://graphml.graphdrawing.org/xmlns");
    expect(graph.attrs.edgedefault).toBe("directed");
    expect(doc.children.filter((c) => c.name === "key").map((k) => [k.attrs.id, k.attrs["attr.type"]])).toEqual([
      ["weight", "double"],
      ["window_days", "int"],
      ["derivation", "string"],
    ]);
  });

  test("each node is listed once, in code-point order", () => {
    expect(graph.children.filter((c) => c.name === "node").map((n) => n.attrs.id)).toEqual(["a", "b", "c"]);
  });

  test("each edge carries its source, target, weight, window and derivation", () => {
    const written = graph.children.filter((c) => c.name === "edge").map((e) => ({
      source: e.attrs.source,
      target: e.attrs.target,
      data: Object.fromEntries(e.children.map((d) => [d.attrs.key, d.text])),
    }));
    expect(written).toEqual([
      { source: "a", target: "b", data: { weight: String(Math.log1p(2)), window_days: "30", derivation: "log(1 + count_30d)" } },
      { source: "b", target: "c", data: { weight: String(Math.log1p(1)), window_days: "30", derivation: "log(1 + count_30d)" } },
    ]);
    expect(Number(written[0]!.data.weight)).toBe(Math.log1p(2));
  });

  test("no edges give a well-formed empty graph", () => {
    const empty = parseXml(edgesToGraphml([]));
    expect(empty.children.find((c) => c.name === "graph")!.children).toEqual([]);
  });
});

describe("when entity ids need escaping in GraphML", () => {
  const nasty = [
    `a<b&c"d'e>f`,
    "&amp; already escaped",
    "tab\tnew\nline\rcr",
    "ctl\u0001\u0008\u000b\u000c\u001f end",
    "del\u007f and nel\u0085",
    "astral 😀 and 𝄞",
    "lone \ud800 high and \udc00 low",
    "nonchars \ufffe \uffff",
    "]]> and <!-- -->",
    "",
  ];
  const edges = nasty.map((id, i) => edge(id, nasty[(i + 1) % nasty.length]!));
  const xml = edgesToGraphml(edges);

  test("the document is still well-formed XML", () => {
    expect(() => parseXml(xml)).not.toThrow();
  });

  test("no attribute value holds a raw '<', '&' or '\"'", () => {
    for (const [, value] of xml.matchAll(/\s[\w.:-]+="([^"]*)"/g)) {
      expect(value).not.toMatch(/</);
      expect(value!.replace(/&(?:amp|lt|gt|quot|apos|#\d+);/g, "")).not.toMatch(/&/);
    }
  });

  test("<, &, \", ' and > are written as entities", () => {
    expect(xml).toContain(`id="a&lt;b&amp;c&quot;d&apos;e&gt;f"`);
    expect(xml).toContain(`id="&amp;amp; already escaped"`);
  });

  test("tab, newline and carriage return are character references, so attribute normalization keeps them", () => {
    expect(xml).toContain(`id="tab&#9;new&#10;line&#13;cr"`);
  });

  test("characters XML cannot hold become U+FFFD; astral characters stay raw", () => {
    expect(xmlEscape("ctl\u0001\u0008\u000b\u000c\u001f end")).toBe("ctl\ufffd\ufffd\ufffd\ufffd\ufffd end");
    expect(xmlEscape("lone \ud800 high and \udc00 low")).toBe("lone \ufffd high and \ufffd low");
    expect(xmlEscape("nonchars \ufffe \uffff")).toBe("nonchars \ufffd \ufffd");
    expect(xmlEscape("astral 😀 and 𝄞")).toBe("astral 😀 and 𝄞");
    expect(xmlEscape("del\u007f and nel\u0085")).toBe("del\u007f and nel\u0085");
  });

  test("reading the ids back gives the originals, with only the impossible characters replaced", () => {
    const graph = parseXml(xml).children.find((c) => c.name === "graph")!;
    const readBack = graph.children.filter((c) => c.name === "edge").map((e) => e.attrs.source);
    const expected = nasty.map((id) =>
      id.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd"),
    );
    expect(readBack).toEqual(expected);
  });

  test("the mini XML reader used here does reject what is not well-formed", () => {
    expect(() => parseXml(`<a b="<"/>`)).toThrow();
    expect(() => parseXml(`<a b="&"/>`)).toThrow();
    expect(() => parseXml(`<a>&</a>`)).toThrow();
    expect(() => parseXml(`<a><b></a></b>`)).toThrow();
    expect(() => parseXml(`<a>\u0001</a>`)).toThrow();
    expect(() => parseXml(`<a/><b/>`)).toThrow();
    expect(parseXml(`<a b="&lt;&#9;"/>`).attrs.b).toBe("<\t");
  });
});

describe("when a Derivation counts observations in two passes", () => {
  function run(list: Observation[], windowDays = 30) {
    const d = new Derivation(windowDays);
    for (const o of list) d.see(o);
    const reasons = list.map((o) => d.count(o));
    return { d, reasons };
  }

  test("each observation that does not count says why, and the tallies add up", () => {
    const list = [
      obs("a", "b", "2024-05-31T00:00:00Z", { observation_id: "x1" }),
      obs("a", "b", "2024-05-31T00:00:00Z", { observation_id: "x1" }),
      obs("a", "b", "2024-05-31T00:00:00Z", { kind: "page_edit" }),
      obs("a", null),
      obs("a", "b", "2024-04-01T00:00:00Z"),
    ];
    const { d, reasons } = run(list);
    expect(reasons).toEqual([null, "duplicate", "other_kind", "no_target", "outside_window"]);
    d.invalid();
    expect(d.skipped).toEqual({ invalid: 1, other_kind: 1, no_target: 1, outside_window: 1, duplicate: 1 });
    expect(d.counted).toBe(1);
    expect(SKIP_REASONS).toEqual(["invalid", "other_kind", "no_target", "outside_window", "duplicate"]);
  });

  test("the window ends at the newest counted observation, as given", () => {
    const { d } = run([obs("a", "b", "2024-05-01T00:00:00Z"), obs("a", "c", "2024-05-31T10:00:00.5Z"), obs("a", "d", "2030-01-01T00:00:00Z", { kind: "page_edit" })]);
    expect(d.windowEnd).toBe("2024-05-31T10:00:00.5Z");
  });

  test("an integer id and the same integer as text are one observation; other texts are not", () => {
    const { reasons } = run([
      obs("a", "b", undefined, { observation_id: 7 }),
      obs("a", "b", undefined, { observation_id: "7" }),
      obs("a", "b", undefined, { observation_id: "07" }),
      obs("a", "b", undefined, { observation_id: "-0" }),
      obs("a", "b", undefined, { observation_id: 0 }),
    ]);
    expect(reasons).toEqual([null, "duplicate", null, null, null]);
  });

  test("negative ids are told apart from positive ones, and long digit strings stay texts", () => {
    const { reasons } = run([
      obs("a", "b", undefined, { observation_id: -5 }),
      obs("a", "b", undefined, { observation_id: "-5" }),
      obs("a", "b", undefined, { observation_id: 5 }),
      obs("a", "b", undefined, { observation_id: "12345678901234567890" }),
      obs("a", "b", undefined, { observation_id: "12345678901234567890" }),
      obs("a", "b", undefined, { observation_id: 2 ** 52 }),
      obs("a", "b", undefined, { observation_id: String(2 ** 52) }),
    ]);
    expect(reasons).toEqual([null, "duplicate", null, null, "duplicate", null, "duplicate"]);
  });

  test("no counted observation leaves no window end and no edges", () => {
    const { d } = run([obs("a", null), obs("a", "b", undefined, { kind: "page_edit" })]);
    expect(d.windowEnd).toBeNull();
    expect([...d.edges()]).toEqual([]);
    expect(d.edgeCount).toBe(0);
  });

  test("edges sort by (from, to) in code-point order, whatever order the pairs came in", () => {
    const { d } = run([obs("b", "a"), obs("\u{1F600}", "a"), obs("a", "z"), obs("a", "\uFF21"), obs("a", "b"), obs("B", "a")]);
    expect([...d.edges()].map((e) => [e.from_entity_id, e.to_entity_id])).toEqual([
      ["B", "a"],
      ["a", "b"],
      ["a", "z"],
      ["a", "\uFF21"],
      ["b", "a"],
      ["\u{1F600}", "a"],
    ]);
  });

  test("every field of the schema is listed as an observation field", () => {
    expect([...OBSERVATION_FIELDS].sort()).toEqual(
      ["actor_entity_id", "context", "evidence_uri", "kind", "observation_id", "target_entity_id", "timestamp"],
    );
  });
});
