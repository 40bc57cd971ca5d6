import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireVerified } from "../../../src/core/bundle.ts";
import { toJsonText } from "../../../src/core/canonical.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { latestBundle, storeBundle } from "../../../src/storage/store.ts";
import { keypair, signedBundle } from "../server/helpers.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), "links-latest-"));
  dirs.push(d);
  return new DataPaths(d);
};
const key = keypair();

describe("the newest bundle", () => {
  test("of a village is the one stored last, found through its pointer", () => {
    const paths = fresh();
    const a = requireVerified(signedBundle(key));
    const b = requireVerified(signedBundle(key));
    storeBundle(paths, a, "v", "village");
    storeBundle(paths, b, "v", "village");
    expect(latestBundle(paths, "v")?.bundle_id).toBe(b.bundle_id);
  });

  test("of a village without a pointer (Python Links' layout) is its newest file", () => {
    const paths = fresh();
    const b = requireVerified(signedBundle(key));
    mkdirSync(join(paths.bundlesDir(), "v"), { recursive: true });
    writeFileSync(paths.bundleFile(b.bundle_id, "v"), toJsonText(b as never));
    expect(latestBundle(paths, "v")?.bundle_id).toBe(b.bundle_id);
  });

  test("of the public store is never a file Python Links v0.7 left at the top of store/bundles", () => {
    const paths = fresh();
    const legacy = requireVerified(signedBundle(key));
    mkdirSync(paths.bundlesDir(), { recursive: true });
    writeFileSync(paths.bundleFile(legacy.bundle_id), toJsonText(legacy as never));
    expect(latestBundle(paths, null)).toBeNull();
    const pub = requireVerified(signedBundle(key));
    storeBundle(paths, pub, null, "public");
    expect(latestBundle(paths, null)?.bundle_id).toBe(pub.bundle_id);
  });
});
