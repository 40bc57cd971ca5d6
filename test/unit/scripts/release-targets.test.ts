import { describe, expect, test } from "bun:test";
import { executableName, hostTarget, RELEASE_TARGETS, sha256sums } from "../../../scripts/release-targets.ts";

describe("the release targets", () => {
  test("are the five platforms, each with Bun's --target name", () => {
    expect(RELEASE_TARGETS).toEqual({
      "linux-x64": "bun-linux-x64",
      "linux-arm64": "bun-linux-arm64",
      "linux-x64-musl": "bun-linux-x64-musl",
      "darwin-arm64": "bun-darwin-arm64",
      "darwin-x64": "bun-darwin-x64",
    });
    expect(executableName("linux-arm64")).toBe("links-linux-arm64");
  });

  test("the host is one of them when it is a released platform", () => {
    expect(hostTarget("linux", "x64")).toBe("linux-x64");
    expect(hostTarget("darwin", "arm64")).toBe("darwin-arm64");
    expect(hostTarget("win32", "x64")).toBeNull();
  });

  test("SHA256SUMS has one sorted '<hex>  <name>' line per file, as sha256sum -c reads it", () => {
    const a = "a".repeat(64);
    const b = "b".repeat(64);
    expect(sha256sums([{ name: "links-linux-x64", sha256: b }, { name: "links-darwin-x64", sha256: a }])).toBe(
      `${a}  links-darwin-x64\n${b}  links-linux-x64\n`,
    );
  });
});
