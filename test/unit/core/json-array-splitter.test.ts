import { describe, expect, test } from "bun:test";
import { parseJson } from "../../../src/core/canonical.ts";
import { JsonArraySplitter } from "../../../src/core/json-array-splitter.ts";

/** Feeds text in pieces of the given sizes (the rest in one piece); returns the elements' texts. */
function split(text: string, pieceSizes: number[] = []): string[] {
  const s = new JsonArraySplitter("test.json");
  const out: string[] = [];
  let at = 0;
  for (const size of pieceSizes) {
    s.push(text.slice(at, at + size), (t) => out.push(t));
    at += size;
  }
  s.push(text.slice(at), (t) => out.push(t));
  s.end();
  return out;
}

const values = [
  { a: 1, s: "x,y]}" },
  [1, [2, [3]]],
  "a \"quoted\" ] , } string with \\ backslash",
  null,
  12.5,
  { nested: { deep: [{ e: "]" }] } },
];

describe("when an array is split into elements", () => {
  test("compact, pretty and one-element-per-line arrays give the same elements", () => {
    const forms = [JSON.stringify(values), JSON.stringify(values, null, 2), `[\n${values.map((v) => JSON.stringify(v)).join(",\n")}\n]\n`];
    for (const text of forms) {
      expect(split(text).map((t) => JSON.parse(t))).toEqual(values);
    }
  });

  test("the result is the same whatever the piece boundaries, at every position", () => {
    const text = ` ${JSON.stringify(values, null, 1)} \n`;
    const whole = split(text);
    for (let cut = 0; cut <= text.length; cut++) {
      expect(split(text, [cut])).toEqual(whole);
    }
    expect(split(text, Array(text.length).fill(1))).toEqual(whole);
  });

  test("each element text parses on its own, losslessly", () => {
    const [first] = split('[{"weight": 1.0}]');
    expect(parseJson(first as string)).toEqual({ weight: expect.anything() });
    expect(first).toBe('{"weight": 1.0}');
  });

  test("an empty array gives no elements", () => {
    expect(split("[]")).toEqual([]);
    expect(split(" [ \n ] \n")).toEqual([]);
  });
});

describe("when the text is not one array", () => {
  const refused: [string, RegExp][] = [
    ["", /empty input/],
    ["   ", /empty input/],
    ['{"a": 1}', /expected a JSON array/],
    ["[1, 2", /not closed/],
    ["[1,, 2]", /element is missing before ','/],
    ["[1, 2,]", /element is missing before '\]'/],
    ["[,]", /element is missing/],
    ["[1] [2]", /unexpected data after the array/],
    ["[1}", /unexpected '}'/],
    ['["unterminated]', /not closed/],
  ];
  for (const [text, message] of refused) {
    test(`refuses ${JSON.stringify(text)} naming the file`, () => {
      expect(() => split(text)).toThrow(message);
      expect(() => split(text)).toThrow(/test\.json/);
    });
  }

  test("leaves bad element contents to the element's own parse", () => {
    const [bad] = split("[1 2]");
    expect(() => parseJson(bad as string)).toThrow(/unexpected data/);
  });
});
