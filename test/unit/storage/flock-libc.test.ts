import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { libcCandidates, libcFromMaps } from "../../../src/storage/flock.ts";

const GLIBC_MAPS = `
55d0c8a00000-55d0c8a28000 r--p 00000000 08:01 1234 /usr/local/bin/links
7f1c2a400000-7f1c2a428000 r--p 00000000 08:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2a600000-7f1c2a62a000 r--p 00000000 08:01 5679 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
`;
const MUSL_MAPS = `
5600aa000000-5600aa100000 r--p 00000000 00:2a 99 /usr/local/bin/links
7f00bb000000-7f00bb014000 r--p 00000000 00:2a 42 /lib/ld-musl-x86_64.so.1
`;
const MUSL_ARM_MAPS = "7f00bb000000-7f00bb014000 r-xp 00000000 00:2a 42 /lib/libc.musl-aarch64.so.1\n";

describe("which C library a Linux process runs on", () => {
  test("glibc when libc.so.6 is mapped", () => {
    expect(libcFromMaps(GLIBC_MAPS)).toBe("glibc");
  });

  test("musl when musl's loader (which is its libc) is mapped, on x64 and arm64", () => {
    expect(libcFromMaps(MUSL_MAPS)).toBe("musl");
    expect(libcFromMaps(MUSL_ARM_MAPS)).toBe("musl");
  });

  test("unknown when neither shows (a static binary, an unreadable /proc)", () => {
    expect(libcFromMaps("")).toBeNull();
    expect(libcFromMaps("7f00 r--p 0 0:0 1 /usr/lib/libc.so.6.bak-notes/readme\n")).toBeNull();
  });

  test("this test process is found to run on the libc it really maps", () => {
    const maps = readFileSync("/proc/self/maps", "utf8");
    expect(libcFromMaps(maps)).toBe(maps.includes("ld-musl") ? "musl" : "glibc");
  });
});

describe("where flock and errno are looked for", () => {
  test("glibc: libc.so.6 with __errno_location, and nothing else", () => {
    expect(libcCandidates("linux", "x64", "glibc")).toEqual([{ path: "libc.so.6", errno: "__errno_location" }]);
    expect(libcCandidates("linux", "arm64", "glibc")).toEqual([{ path: "libc.so.6", errno: "__errno_location" }]);
  });

  test("musl: Alpine's libc.musl-<arch>.so.1, then libc.so (musl's name for itself), with __errno_location", () => {
    expect(libcCandidates("linux", "x64", "musl")).toEqual([
      { path: "libc.musl-x86_64.so.1", errno: "__errno_location" },
      { path: "libc.so", errno: "__errno_location" },
    ]);
    expect(libcCandidates("linux", "arm64", "musl")[0]).toEqual({ path: "libc.musl-aarch64.so.1", errno: "__errno_location" });
  });

  test("an unknown Linux libc: glibc first, then musl's names", () => {
    expect(libcCandidates("linux", "x64", null).map((c) => c.path)).toEqual(["libc.so.6", "libc.musl-x86_64.so.1", "libc.so"]);
  });

  test("macOS: libSystem with __error, whatever the architecture", () => {
    for (const arch of ["arm64", "x64"]) {
      expect(libcCandidates("darwin", arch, null)).toEqual([{ path: "/usr/lib/libSystem.B.dylib", errno: "__error" }]);
    }
  });

  test("any other platform: nothing to try (flock_unavailable)", () => {
    expect(libcCandidates("win32", "x64", null)).toEqual([]);
    expect(libcCandidates("freebsd", "x64", null)).toEqual([]);
  });
});

describe("the checkpoint's filesystem sync", () => {
  test("is `sync -f <path>` (syncfs) on Linux and plain `sync` on macOS, which has no syncfs", async () => {
    const { syncCommand } = await import("../../../src/storage/syncfs.ts");
    expect(syncCommand("linux", "/usr/bin/sync", "/var/lib/links")).toEqual(["/usr/bin/sync", "-f", "/var/lib/links"]);
    expect(syncCommand("darwin", "/bin/sync", "/var/lib/links")).toEqual(["/bin/sync"]);
  });
});
