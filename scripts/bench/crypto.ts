/**
 * Crypto and canonical JSON throughput on this machine: Ed25519 verifies per second with the
 * native runtime (what the node uses) and with pure-JS noble, and canonicalize+hash per second
 * of a 10-claim bundle. Single core, fixed duration per figure.
 * Usage: bun scripts/bench/crypto.ts [--seconds 2]
 */
import { normalizeBundle, signBundle, signedBytes, verifyBundle } from "../../src/core/bundle.ts";
import { canonicalize, JsonFloat, parseJson, sha256Hex } from "../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed, sign, verify, verifyNoble } from "../../src/core/ed25519.ts";

const seconds = Number(process.argv[process.argv.indexOf("--seconds") + 1]) || 2;

/** Runs fn repeatedly for the given time; returns operations per second. */
export function rate(fn: (i: number) => void, durationMs = seconds * 1000): number {
  for (let i = 0; i < 200; i++) fn(i); // warm up
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < durationMs) {
    for (let k = 0; k < 64; k++) fn(n++);
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

export function sampleBundle(claims = 10) {
  const seed = generateSeed();
  const created = "2026-11-25T12:00:00.123456Z";
  return signBundle(
    normalizeBundle({
      bundle_id: "",
      issuer: "bench-node",
      created_at: created,
      window_days: 30,
      claims: Array.from({ length: claims }, (_, i) => ({
        issuer: "bench-node",
        subject: `wikipedia:en:User_${i}`,
        predicate: "links.weighted_to",
        object: `wikipedia:en:User_${i + 1}`,
        value: new JsonFloat(Math.log1p(i + 1)),
        window_days: 30,
        computed_at: created,
        derivation: "log(1 + count_30d)",
        evidence: [],
      })),
    }),
    seed,
  );
}

if (import.meta.main) {
  const seed = generateSeed();
  const pub = publicKeyFromSeed(seed);
  const messages = Array.from({ length: 256 }, (_, i) => new TextEncoder().encode(`message ${i} `.repeat(40)));
  const sigs = messages.map((m) => sign(m, seed));
  const bundle = sampleBundle();
  const text = canonicalize(bundle as never);
  const bytes = new TextEncoder().encode(text);

  const figures: Array<[string, number, string]> = [
    ["ed25519 verify, native (BoringSSL) + strict checks", rate((i) => verify(sigs[i & 255]!, messages[i & 255]!, pub)), "verifies/s"],
    ["ed25519 verify, noble (pure JS) + strict checks", rate((i) => verifyNoble(sigs[i & 255]!, messages[i & 255]!, pub), seconds * 500), "verifies/s"],
    ["canonicalize + sha256 of a 10-claim bundle", rate(() => sha256Hex(canonicalize(bundle as never))), "bundles/s"],
    ["parse + normalize + verify a 10-claim bundle", rate(() => verifyBundle(normalizeBundle(parseJson(bytes)))), "bundles/s"],
    ["signed bytes of a 10-claim bundle", rate(() => signedBytes(bundle)), "bundles/s"],
  ];
  console.log(`crypto bench on ${navigator.hardwareConcurrency} cores, Bun ${Bun.version}, bundle ${bytes.length} bytes`);
  for (const [name, value, unit] of figures) {
    console.log(`${name.padEnd(52)} ${Math.round(value).toLocaleString("en-US").padStart(10)} ${unit}`);
  }
  const native = figures[0]![1];
  const noble = figures[1]![1];
  console.log(`native/noble verify ratio: ${(native / noble).toFixed(1)}x`);
}
