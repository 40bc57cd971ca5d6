/**
 * The review page in a real headless Chromium (Debian's package, driven over the DevTools
 * protocol with puppeteer-core) against the compiled node: sign in, see the queue, a refused
 * approval, an approval once the policy allows it, a rejection with a reason, then the results
 * checked over the API and on disk. One browser for the whole file. Without Chromium the tests
 * fail and say how to install it; they are never skipped.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import type { AuditRow } from "../../src/storage/audit.ts";
import { lastLine, links, linksOk, makeTempDir, readJsonlFile, signedBundleFile, unsignedBundle, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";

// Functions handed to page.evaluate run in the browser; this project is type-checked without the
// DOM library, so the few browser globals they use are declared here, for this file only.
declare const document: any;
declare const window: any;
declare const location: any;
declare const sessionStorage: any;
type HTMLInputElement = { value: string };

const CHROMIUM = process.env.LINKS_CHROMIUM ?? "/usr/bin/chromium";
// The flags this machine's notes give for a headless Chromium without network access.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const VID = "garden";
const VILLAGE_NAME = 'Garden <b id="injected">&amp;</b>';
const EVIL_SUBJECT = "<img src=x onerror=\"window.__pwned=1\">\u202eevil";
const REJECT_REASON = 'spam from <i id="reason">mallory</i>';
const PHONE = { width: 375, height: 800 };

let tmp: TempDir;
let node: RunningNode;
let browser: Browser | null = null;
let browserProblem = "";
let userDataDir = "";
const tok: { alice: string; bob: string } = { alice: "", bob: "" };
let key2Hash = "";
let held: { bundleId: string }[] = [];
const requests: string[] = [];
const consoleLines: string[] = [];

const D = () => ["--data", tmp.join("data")];

function requireBrowser(): Browser {
  if (browser === null) throw new Error(browserProblem);
  return browser;
}

async function push(file: string): Promise<Response> {
  return fetch(`${node.url}/villages/${VID}/inbox`, {
    method: "POST",
    headers: { authorization: `Bearer ${tok.bob}`, "content-type": "application/json" },
    body: readFileSync(file),
  });
}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${node.url}${path}`, { headers: { authorization: `Bearer ${tok.alice}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

async function openPage(path: string): Promise<Page> {
  const page = await requireBrowser().newPage();
  await page.setViewport(PHONE);
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${(e as Error).message}`));
  await page.goto(`${node.url}${path}`, { waitUntil: "domcontentloaded" });
  return page;
}

const card = (id: string) => `article.entry[data-bundle-id="${id}"]`;

beforeAll(async () => {
  tmp = makeTempDir("links-review-");
  tok.alice = lastLine((await linksOk(["villages", "create", VID, VILLAGE_NAME, "alice", ...D()])).stdout);
  tok.bob = lastLine((await linksOk(["villages", "add-member", VID, "bob", "--role", "member", ...D()])).stdout);
  const key1Hash = lastLine((await linksOk(["keys", "gen", "--out-dir", tmp.join("k1")])).stdout);
  key2Hash = lastLine((await linksOk(["keys", "gen", "--out-dir", tmp.join("k2")])).stdout);
  // Only key1 may issue: everything key2 signs is held for review.
  await linksOk(["villages", "allow-issuer-key", VID, key1Hash, ...D()]);
  node = await startNode(tmp.join("data"));

  const key2 = tmp.join("k2", "ed25519.key");
  held = [
    await signedBundleFile(tmp.path, "evil", key2, { issuer: "issuer<script>", subject: EVIL_SUBJECT }),
    await signedBundleFile(tmp.path, "spam", key2, { subject: "wikipedia:en:Spam" }),
  ];
  for (const b of held) {
    const res = await push(join(tmp.path, `${b === held[0] ? "evil" : "spam"}.json`));
    expect(res.status).toBe(202);
  }

  if (!existsSync(CHROMIUM)) {
    browserProblem = `Chromium is not installed at ${CHROMIUM}: install Debian's package (apt-get install -y chromium; .ci/run does) or set LINKS_CHROMIUM`;
    return;
  }
  userDataDir = mkdtempSync(join(tmpdir(), "links-chromium-"));
  try {
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, userDataDir });
  } catch (e) {
    browserProblem = `Chromium at ${CHROMIUM} did not start: ${(e as Error).message}`;
  }
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await node?.stop();
  tmp?.remove();
}, 30_000);

describe("the review page in headless Chromium", () => {
  const evil = () => held[0] as { bundleId: string };
  const spam = () => held[1] as { bundleId: string };

  test("a typed admin token shows the village's queue, policy and audit rows, with stored text escaped", async () => {
    const page = await openPage("/admin");
    await page.type("#token", tok.alice);
    await page.click('#sign-in-form button[type="submit"]');
    await page.waitForSelector(card(spam().bundleId), { timeout: 15_000 });
    await page.waitForFunction(() => document.querySelector("section.village table.audit") !== null, { timeout: 15_000 });

    const view = await page.evaluate((evilCard) => ({
      heading: document.querySelector("section.village h2")?.textContent ?? "",
      count: document.querySelector("section.village .count")?.textContent ?? "",
      evilCard: document.querySelector(evilCard)?.textContent ?? "",
      injected: document.querySelectorAll("#injected, main img, main script").length,
      pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
      policy: document.querySelector("section.village .policy")?.textContent ?? "",
      stored: sessionStorage.getItem("links.admin.token"),
      cookie: document.cookie,
      tokenField: (document.getElementById("token") as HTMLInputElement).value,
      overflow: document.documentElement.scrollWidth - window.innerWidth,
    }), card(evil().bundleId));
    expect(view.heading).toBe(`${'Garden <b id="injected">&amp;</b>'} (garden)`);
    expect(view.count).toBe("2");
    expect(view.evilCard).toContain('<img src=x onerror="window.__pwned=1">\\u202eevil');
    expect(view.evilCard).toContain("issuer<script>");
    expect(view.evilCard).toContain("issuer_key_not_allowed");
    expect(view.evilCard).toContain(key2Hash);
    expect(view.injected).toBe(0);
    expect(view.pwned).toBeNull();
    expect(view.policy).toContain("links.weighted_to");
    expect(view.stored).toBe(tok.alice);
    expect(view.cookie).toBe("");
    expect(view.tokenField).toBe("");
    expect(view.overflow).toBeLessThanOrEqual(0);
    console.log(`signed in at ${PHONE.width} px: 2 held bundles listed, stored markup shown as text, horizontal overflow ${view.overflow} px`);
    await page.close();
  }, 60_000);

  test("approve is refused with the policy's reason, then succeeds once the policy allows the key; reject takes a reason", async () => {
    const page = await openPage(`/admin#token=${tok.alice}`);
    await page.waitForSelector(card(evil().bundleId), { timeout: 15_000 });
    expect(new URL(page.url()).hash).toBe("");
    expect(page.url()).not.toContain(tok.alice);

    await page.click(`${card(evil().bundleId)} button.approve`);
    await page.waitForFunction((sel) => (document.querySelector(`${sel} .refusal`)?.textContent ?? "") !== "", { timeout: 15_000 }, card(evil().bundleId));
    const refusal = await page.$eval(`${card(evil().bundleId)} .refusal`, (e) => e.textContent ?? "");
    expect(refusal).toContain("[issuer_key_not_allowed]");
    expect(refusal).toContain("still does not allow");

    await linksOk(["villages", "allow-issuer-key", VID, key2Hash, ...D()]);
    await page.click(`${card(evil().bundleId)} button.approve`);
    await page.waitForSelector(card(evil().bundleId), { hidden: true, timeout: 15_000 });

    await page.type(`${card(spam().bundleId)} input[name="reason"]`, REJECT_REASON);
    await page.click(`${card(spam().bundleId)} button.reject`);
    await page.waitForSelector(card(spam().bundleId), { hidden: true, timeout: 15_000 });
    await page.waitForFunction(
      () => [...document.querySelectorAll("table.audit td")].some((td) => td.textContent === "quarantine.reject"),
      { timeout: 15_000 },
    );
    const after = await page.evaluate(() => ({
      count: document.querySelector("section.village .count")?.textContent ?? "",
      queue: document.querySelector("section.village .queue")?.textContent ?? "",
      audit: document.querySelector("table.audit")?.textContent ?? "",
      injected: document.querySelectorAll("#reason").length,
    }));
    expect(after.count).toBe("0");
    expect(after.queue).toContain("Nothing held");
    expect(after.audit).toContain("quarantine.approve");
    expect(after.audit).toContain(REJECT_REASON);
    expect(after.injected).toBe(0);

    // The results, over the API and on disk.
    expect((await api<{ entries: unknown[] }>(`/villages/${VID}/quarantine`)).entries).toEqual([]);
    const claims = await api<{ claims: { bundle_id: string; subject: string }[] }>(
      `/villages/${VID}/claims?subject=${encodeURIComponent(EVIL_SUBJECT)}`,
    );
    expect(claims.claims.map((c) => c.bundle_id)).toEqual([evil().bundleId]);
    const rejectedMeta = JSON.parse(readFileSync(tmp.join("data", "store", "rejected", VID, "meta", `${spam().bundleId}.json`), "utf8"));
    expect(rejectedMeta).toMatchObject({ rejected_by: "alice", rejection_reason: REJECT_REASON });
    const audit = readJsonlFile<AuditRow>(tmp.join("data", "store", "audit", "audit.log.jsonl"));
    expect(audit.filter((r) => r.action === "quarantine.approve").map((r) => [r.bundle_id, r.actor])).toEqual([[evil().bundleId, "alice"]]);
    expect(audit.filter((r) => r.action === "quarantine.reject").map((r) => [r.bundle_id, r.actor, r.reason])).toEqual([
      [spam().bundleId, "alice", REJECT_REASON],
    ]);
    console.log("in the browser: approve refused [issuer_key_not_allowed], approved after allow-issuer-key, rejected with a reason; API and audit agree");
    await page.close();
  }, 60_000);

  test("a wrong token in the address signs out with the node's reason; sign-out forgets the token", async () => {
    const page = await openPage("/admin#token=not-a-real-token");
    await page.waitForFunction(() => (document.getElementById("status")?.textContent ?? "").includes("invalid_token"), { timeout: 15_000 });
    expect(await page.evaluate(() => [sessionStorage.getItem("links.admin.token"), location.hash])).toEqual([null, ""]);

    await page.type("#token", tok.alice);
    await page.click('#sign-in-form button[type="submit"]');
    await page.waitForSelector("section.village", { timeout: 15_000 });
    await page.click("#sign-out");
    expect(await page.evaluate(() => [sessionStorage.getItem("links.admin.token"), document.querySelectorAll("section.village").length])).toEqual([null, 0]);
    await page.close();
  }, 60_000);

  test("a queue longer than a page shows its total and the first 100; Show more brings the rest", async () => {
    requireBrowser();
    const olive = lastLine((await linksOk(["villages", "create", "orchard", "Orchard", "olive", ...D()])).stdout);
    await linksOk(["villages", "allow-issuer-key", "orchard", "a".repeat(64), ...D()]); // so key2's bundles are held
    const drafts = tmp.join("orchard-drafts");
    mkdirSync(drafts);
    for (let i = 1; i <= 101; i++) writeFileSync(join(drafts, `${i}.json`), unsignedBundle({ subject: `wikipedia:en:Tree${i}` }));
    await linksOk(["claims", "sign", drafts, "--key", tmp.join("k2", "ed25519.key"), "--out", tmp.join("orchard-signed")]);
    // through the village's pipeline on the node's host (101 pushes would wait on the member rate limit)
    const ingested = await links(["claims", "ingest", tmp.join("orchard-signed"), "--village-id", "orchard", ...D()]);
    expect(ingested.code).toBe(3); // quarantined

    const page = await openPage(`/admin#token=${olive}`);
    await page.waitForSelector("section.village button.more", { timeout: 15_000 });
    const first = await page.evaluate(() => [document.querySelector("section.village .count")?.textContent, document.querySelectorAll("article.entry").length]);
    expect(first).toEqual(["101", 100]);
    await page.click("section.village button.more");
    await page.waitForFunction(() => document.querySelectorAll("article.entry").length === 101, { timeout: 15_000 });
    expect(await page.evaluate(() => document.querySelectorAll("section.village button.more").length)).toBe(0);
    console.log("101 held bundles: 100 shown, then all 101 after Show more");
    await page.close();
  }, 60_000);

  test("the page loaded nothing from elsewhere and broke no rule of its Content-Security-Policy", () => {
    requireBrowser();
    const foreign = requests.filter((u) => !u.startsWith(`${node.url}/`));
    expect(foreign).toEqual([]);
    expect(requests.some((u) => u.endsWith("/me/villages"))).toBe(true);
    expect(consoleLines.filter((l) => /Content.Security.Policy|pageerror/i.test(l))).toEqual([]);
    console.log(`${requests.length} requests, all to ${node.url}; no CSP violation`);
  });
});
