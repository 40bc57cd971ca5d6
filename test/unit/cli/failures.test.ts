import { describe, expect, test } from "bun:test";
import { LinksError } from "../../../src/core/errors.ts";
import { describeFailure, UsageError } from "../../../src/cli/run.ts";

function cittyError(message: string): Error {
  const e = new Error(message);
  e.name = "CLIError";
  return e;
}

describe("how a failure is reported", () => {
  test("a refusal keeps its code and exits 1", () => {
    expect(describeFailure(new LinksError("village_not_found", "village x does not exist"), "links villages show")).toEqual({
      code: "village_not_found",
      detail: "village x does not exist",
      exit: 1,
    });
  });

  test("a usage mistake is [usage], exits 2 and points to the command's --help", () => {
    expect(describeFailure(new UsageError('unknown option "--x"'), "links claims build")).toEqual({
      code: "usage",
      detail: 'unknown option "--x"',
      exit: 2,
      helpPath: "links claims build",
    });
    expect(describeFailure(new LinksError("usage", "--limit must be a positive integer"), "links audit tail").exit).toBe(2);
  });

  test("citty's parser messages are reworded the same way", () => {
    const cases: [string, string][] = [
      ["Missing required argument: --bundle", "missing required option --bundle"],
      ["Missing required positional argument: FILE", "missing required argument FILE"],
      [
        "Invalid value for argument: \u001b[36m--role\u001b[39m (\u001b[36mboss\u001b[39m). Expected one of: \u001b[36madmin\u001b[39m, \u001b[36mmember\u001b[39m.",
        'invalid value "boss" for --role: expected one of admin, member',
      ],
    ];
    for (const [message, detail] of cases) {
      expect(describeFailure(cittyError(message), "links x")).toEqual({ code: "usage", detail, exit: 2, helpPath: "links x" });
    }
  });

  test("anything else is a bug: internal_error, exit 70", () => {
    expect(describeFailure(new TypeError("x is undefined"), "links y")).toEqual({ code: "internal_error", detail: "internal error: x is undefined", exit: 70 });
  });
});
