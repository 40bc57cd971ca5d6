/**
 * A hostile node and hostile stored text, met by the real `links` binary:
 * - a remote that answers with a 400 MB field, a 400 MB declared length, a 400 MB error, an
 *   error full of ANSI escapes and newlines, or a policy_hash that is not a hash (a real HTTP
 *   server in this process, streaming its answers as the client reads them);
 * - stored text with ESC sequences and newlines (bundle subjects, reject reasons) printed by
 *   `audit tail`, `claims query` and `quarantine list`;
 * - public keys given as private keys, and base64 with non-zero unused bits.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorCode, LINKS_BIN, links, linksOk, makeTempDir, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";
import { bundleText, makeBundle, signingKey } from "../faults/lib/bundles.ts";
import { figures } from "../faults/lib/scale.ts";
import { makeVillage, type TestVillage } from "../faults/lib/village.ts";

const HUGE = 400 * 1024 * 1024;
const CHUNK = new Uint8Array(64 * 1024).fill(0x61); // "aaaa..."
const ESCAPES = /[\u001b\u009b]/;

let tmp: TempDir;
let data: string;
let v: TestVillage;
let hostile: ReturnType<typeof Bun.serve>;
/** bytes the hostile server handed to the socket, per mode, before the client hung up */
const sent = new Map<string, number>();

/** A body of `prefix`, then up to HUGE bytes of "a", then `suffix`, made as the client reads. */
function endless(mode: string, prefix: string, suffix = '"}'): ReadableStream<Uint8Array> {
  let total = 0;
  sent.set(mode, 0);
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(prefix));
    },
    pull(controller) {
      if (total >= HUGE) {
        controller.enqueue(new TextEncoder().encode(suffix));
        controller.close();
        return;
      }
      controller.enqueue(CHUNK);
      total += CHUNK.length;
      sent.set(mode, total);
    },
  });
}

function hostileAnswer(req: Request): Response {
  const url = new URL(req.url);
  const mode = url.pathname.split("/")[1] ?? "";
  const json = { "Content-Type": "application/json" };
  switch (mode) {
    case "huge-field":
      return new Response(endless(mode, '{"policy_hash":"'), { headers: json });
    case "huge-declared":
      return new Response(endless(mode, '{"policy_hash":"'), { headers: { ...json, "Content-Length": String(HUGE + 20) } });
    case "huge-error":
      return new Response(endless(mode, '{"code":"policy_rollback","detail":"'), { status: 409, headers: json });
    case "huge-bundle":
      return new Response(endless(mode, '{"bundle_id":"'), { headers: json });
    case "huge-verdict":
      return new Response(endless(mode, '{"status":"accepted","bundle_id":"'), { headers: json });
    case "ansi-error":
      return Response.json(
        { code: "policy_rollback", detail: "\u001b[2J\u001b[31mpwned\u009b1m\nlinks: error: forged second line [ok]\r\u001b]0;title\u0007" },
        { status: 409 },
      );
    case "bad-hash":
      return Response.json({ policy_hash: "../../etc/passwd\u001b[31m", artifact: {}, signed: false });
    case "unknown-code":
      return Response.json({ code: "constructor", detail: "not one of ours" }, { status: 418 });
    default:
      return Response.json({ detail: "no", code: "not_found" }, { status: 404 });
  }
}

beforeAll(async () => {
  tmp = makeTempDir("links-faults-hostile-");
  data = join(tmp.path, "data");
  v = await makeVillage(data, "v", { members: ["bob"], scratch: tmp.path });
  hostile = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: hostileAnswer });
}, 60_000);
afterAll(() => {
  hostile?.stop(true);
  tmp?.remove();
});

/** Runs the binary and reports its exit, output and peak memory. */
async function measured(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number; maxRssMiB: number }> {
  const started = performance.now();
  const proc = Bun.spawn([LINKS_BIN, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const rss = proc.resourceUsage()?.maxRSS ?? 0;
  return { code, stdout, stderr, ms: Math.round(performance.now() - started), maxRssMiB: Math.round(rss / 1024 / 1024) };
}

describe("when a remote node answers with hundreds of megabytes", () => {
  const cases: Array<[string, string, (base: string) => string[]]> = [
    ["a 400 MB policy_hash (policy drift)", "huge-field", (b) => ["policy", "drift", b, "v", "--data", data]],
    ["a 400 MB policy_hash (policy pull)", "huge-field", (b) => ["policy", "pull", b, "v", "--data", data]],
    ["a declared Content-Length of 400 MB (policy drift)", "huge-declared", (b) => ["policy", "drift", b, "v", "--data", data]],
    ["a 400 MB error detail (policy drift)", "huge-error", (b) => ["policy", "drift", b, "v", "--data", data]],
    ["a 400 MB bundle (sync pull-village)", "huge-bundle", (b) => ["sync", "pull-village", b, "v", "--data", data]],
  ];
  for (const [what, mode, args] of cases) {
    test(`${what}: fails fast with a clear error and small memory`, async () => {
      const r = await measured(args(`http://127.0.0.1:${hostile.port}/${mode}`));
      const bytesSent = sent.get(mode) ?? 0;
      figures("hostile-remote", { answer: mode, command: args("")[1] as string, exit: r.code, code: /\[([a-z_]+)\]/.exec(r.stderr)?.[1] ?? "none", ms: r.ms, max_rss_mib: r.maxRssMiB, server_sent_mib: Math.round(bytesSent / 1024 / 1024) });
      expect(r.code).toBe(1);
      expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      expect(r.stderr.length).toBeLessThan(3000);
      // `policy pull` words a refusal its own way ("refused: ... [code]; the local policy is unchanged")
      expect(r.stderr).toMatch(/\[(remote_error|policy_rollback)\]/);
      // the client stopped reading long before the end (sockets buffer a few MB in flight)
      expect(bytesSent).toBeLessThan(100 * 1024 * 1024);
      expect(r.maxRssMiB).toBeLessThan(250);
    }, 60_000);
  }

  test("a 400 MB answer to a push (sync push-village) is cut at 64 KiB", async () => {
    const bundle = join(tmp.path, "push.json");
    writeFileSync(bundle, bundleText(makeBundle(signingKey(), "push")));
    const r = await measured(["sync", "push-village", `http://127.0.0.1:${hostile.port}/huge-verdict`, "v", "--bundle", bundle, "--token", "t".repeat(43)]);
    figures("hostile-remote", { answer: "huge-verdict", exit: r.code, code: errorCode(r.stderr) ?? "none", ms: r.ms, max_rss_mib: r.maxRssMiB });
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("remote_error");
    expect(r.stderr).toContain("65536 bytes");
  }, 60_000);
});

describe("when a remote node answers with hostile text", () => {
  test("an error detail full of escape sequences and newlines is printed as one escaped line", async () => {
    const r = await links(["policy", "drift", `http://127.0.0.1:${hostile.port}/ansi-error`, "v", "--data", data]);
    expect(r.code).toBe(1);
    expect(ESCAPES.test(r.stderr)).toBe(false);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("\\x1b[31mpwned\\u009b1m\\nlinks: error: forged second line [ok]\\r");
    expect(errorCode(r.stderr)).toBe("policy_rollback");
    figures("hostile-text", { remote_error_detail_lines_printed: r.stderr.trimEnd().split("\n").length, escape_bytes_printed: 0 });
  });

  test("a policy_hash that is not 64 hex characters is refused before use", async () => {
    const r = await links(["policy", "drift", `http://127.0.0.1:${hostile.port}/bad-hash`, "v", "--data", data]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("remote_error");
    expect(r.stderr).not.toContain("passwd");
  });

  test("an error code that is not one of ours (even an Object property name) is remote_error", async () => {
    const r = await links(["policy", "drift", `http://127.0.0.1:${hostile.port}/unknown-code`, "v", "--data", data]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("remote_error");
  });
});

describe("when stored text holds escape sequences and newlines", () => {
  let node: RunningNode;
  const EVIL = "\u001b[2J\u001b[31mevil\u009b0m\n2030-01-01T00:00:00Z  ingest.accept by admin  forged\ttab";
  beforeAll(async () => {
    node = await startNode(data);
  });
  afterAll(async () => {
    await node?.stop();
  });

  test("audit tail, claims query and quarantine list print one escaped line per row; --json stays exact", async () => {
    const key = signingKey();
    // a member pushes a bundle whose subject is hostile
    const stored = makeBundle(key, "evil", { subject: EVIL });
    const push = await fetch(`${node.url}/villages/v/inbox`, {
      method: "POST",
      headers: { authorization: `Bearer ${v.tokens.bob}`, "content-type": "application/json" },
      body: bundleText(stored),
    });
    expect(push.status).toBe(200);
    // a bundle with a predicate the village does not allow is quarantined, then rejected with a hostile reason
    const held = makeBundle(key, "held", { predicate: "not.allowed" });
    const q = await fetch(`${node.url}/villages/v/inbox`, {
      method: "POST",
      headers: { authorization: `Bearer ${v.tokens.bob}`, "content-type": "application/json" },
      body: bundleText(held),
    });
    expect(q.status).toBe(202);
    const rej = await fetch(`${node.url}/villages/v/quarantine/${held.bundle_id}/reject`, {
      method: "POST",
      headers: { authorization: `Bearer ${v.tokens.alice}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: EVIL }),
    });
    expect(rej.status).toBe(200);

    // and one stays held: its predicate is the hostile text
    const kept = makeBundle(key, "kept", { predicate: EVIL });
    const k = await fetch(`${node.url}/villages/v/inbox`, {
      method: "POST",
      headers: { authorization: `Bearer ${v.tokens.bob}`, "content-type": "application/json" },
      body: bundleText(kept),
    });
    expect(k.status).toBe(202);
    const list = await linksOk(["quarantine", "list", "--village-id", "v", "--data", data]);
    const show = await linksOk(["quarantine", "show", kept.bundle_id, "--data", data]);
    expect(list.stdout.trimEnd().split("\n")).toHaveLength(1);
    for (const out of [list.stdout, show.stderr]) expect(ESCAPES.test(out)).toBe(false);
    expect(show.stderr.trimEnd().split("\n")).toHaveLength(1);

    const audit = await linksOk(["audit", "tail", "--village-id", "v", "--data", data]);
    const query = await linksOk(["claims", "query", "--village-id", "v", "--data", data]);
    for (const out of [audit.stdout, query.stdout]) {
      expect(ESCAPES.test(out)).toBe(false);
      expect(out).not.toContain("\nforged");
      expect(out).toContain("\\x1b[2J\\x1b[31mevil\\u009b0m\\n2030-01-01T00:00:00Z");
    }
    const auditRows = await linksOk(["audit", "tail", "--village-id", "v", "--data", data, "--json"]);
    expect(audit.stdout.trimEnd().split("\n")).toHaveLength((JSON.parse(auditRows.stdout) as unknown[]).length);
    const claimRows = await linksOk(["claims", "query", "--village-id", "v", "--data", data, "--json"]);
    const rows = JSON.parse(claimRows.stdout) as Array<{ subject: string }>;
    expect(query.stdout.trimEnd().split("\n")).toHaveLength(rows.length);
    expect(rows.some((row) => row.subject === EVIL)).toBe(true); // --json gives the exact text back
    figures("hostile-text", { stored_rows_with_escapes: 2, escape_bytes_printed: 0, forged_lines: 0 });
  });
});

describe("when a public key is given as a private key", () => {
  let keys: string;
  let pubHash: string;
  beforeAll(async () => {
    keys = join(tmp.path, "keys");
    pubHash = (await linksOk(["keys", "gen", "--out-dir", keys])).stdout.trim();
    copyFileSync(join(keys, "ed25519.pub"), join(keys, "signing"));
  });

  test("claims sign, policy sign and sign-add refuse it (invalid_key_file) and write nothing", async () => {
    const draft = join(tmp.path, "draft.json");
    writeFileSync(draft, bundleText({ ...makeBundle(signingKey(), "draft"), bundle_id: "", public_key: null, signature: null }));
    await linksOk(["policy", "export", "v", "--out", join(tmp.path, "update.json"), "--data", data]);
    const attempts: string[][] = [];
    for (const key of [join(keys, "ed25519.pub"), join(keys, "signing")]) {
      attempts.push(["claims", "sign", draft, "--key", key, "--out", join(tmp.path, "never-1.json")]);
      attempts.push(["policy", "sign", join(tmp.path, "update.json"), "--key", key, "--out", join(tmp.path, "never-2.json")]);
      attempts.push(["policy", "sign-add", join(tmp.path, "update.json"), key, join(tmp.path, "never-3.json")]);
    }
    for (const args of attempts) {
      const r = await links(args);
      expect(r.code).toBe(1);
      expect(errorCode(r.stderr)).toBe("invalid_key_file");
    }
    for (const n of [1, 2, 3]) expect(await Bun.file(join(tmp.path, `never-${n}.json`)).exists()).toBe(false);
    // the private key itself still signs
    await linksOk(["claims", "sign", draft, "--key", join(keys, "ed25519.key"), "--out", join(tmp.path, "signed.json")]);
    figures("public-key-as-private", { attempts: attempts.length, refused: attempts.length, signed: 0 });
  });

  test("keys hash of the private key prints the hash of its public key", async () => {
    const r = await linksOk(["keys", "hash", join(keys, "ed25519.key")]);
    expect(r.stdout.trim()).toBe(pubHash);
    expect(r.stderr).toContain("private key");
    expect((await linksOk(["keys", "hash", join(keys, "ed25519.pub")])).stdout.trim()).toBe(pubHash);
  });
});

describe("when base64 has non-zero unused bits in its last character", () => {
  /** The same bytes spelled another way: the last data character with an unused bit set. */
  function loosen(b64: string): string {
    const at = b64.replace(/=+$/, "").length - 1;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const spelled = alphabet[alphabet.indexOf(b64[at] as string) + 1] as string;
    const loose = b64.slice(0, at) + spelled + b64.slice(at + 1);
    expect(Buffer.from(loose, "base64")).toEqual(Buffer.from(b64, "base64")); // same bytes
    return loose;
  }
  let node: RunningNode;
  let village: TestVillage;
  beforeAll(async () => {
    village = await makeVillage(join(tmp.path, "b64-data"), "b64", { scratch: tmp.path });
    node = await startNode(join(tmp.path, "b64-data"));
  });
  afterAll(async () => {
    await node?.stop();
  });

  test("a signature or public key spelled that way is refused at both inboxes and by claims verify", async () => {
    const key = signingKey();
    const base = makeBundle(key, "b64");
    const variants = [
      { ...base, signature: loosen(base.signature as string) },
      { ...base, public_key: loosen(base.public_key as string) },
    ];
    let refused = 0;
    for (const b of variants) {
      for (const [path, auth] of [["/inbox", {}], ["/villages/b64/inbox", { authorization: `Bearer ${village.tokens.alice}` }]] as const) {
        const res = await fetch(`${node.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...auth }, body: bundleText(b) });
        const body = (await res.json()) as { code: string };
        expect(res.status).toBe(400);
        expect(["invalid_signature", "invalid_public_key"]).toContain(body.code);
      }
      const file = join(tmp.path, "loose.json");
      writeFileSync(file, bundleText(b));
      expect((await links(["claims", "verify", file])).code).toBe(1);
      refused++;
    }
    figures("non-canonical-base64", { variants: variants.length, refused, stored: 0 });
  });

  test("a key file spelled that way is refused", async () => {
    const dir = join(tmp.path, "loose-key");
    await linksOk(["keys", "gen", "--out-dir", dir]);
    const text = readFileSync(join(dir, "ed25519.key"), "utf8").trim();
    writeFileSync(join(dir, "ed25519.key"), `${loosen(text)}\n`, { mode: 0o600 });
    const r = await links(["keys", "hash", join(dir, "ed25519.key")]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("invalid_key_file");
  });
});
