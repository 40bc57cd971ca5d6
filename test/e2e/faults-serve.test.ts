/**
 * One node per data directory, with real processes: a second `links serve` on a directory a node
 * holds exits 1 at once naming the directory and the holder's pid, two started at the same moment
 * leave exactly one running, and CLI commands keep working beside the node. And what a malformed
 * request gets: the node's JSON where the request reaches it, Bun's own bare answers where its
 * HTTP parser stops the request first (the list the README gives).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { errorCode, LINKS_BIN, links, linksOk, makeTempDir, type TempDir } from "./harness.ts";
import { startNode, type RunningNode } from "./node.ts";
import { rawGet, rawRequest } from "../faults/lib/http.ts";
import { figures } from "../faults/lib/scale.ts";

let tmp: TempDir;
beforeAll(() => {
  tmp = makeTempDir("links-faults-serve-");
});
afterAll(() => tmp?.remove());

interface Started {
  proc: ReturnType<typeof Bun.spawn>;
  /** resolves with the port once it listens, or with the exit code and stderr if it exits first */
  outcome: Promise<{ port: number } | { code: number; stderr: string }>;
}

function spawnServe(data: string): Started {
  const proc = Bun.spawn([LINKS_BIN, "serve", "--port", "0", "--data", data], { stdout: "ignore", stderr: "pipe" });
  const outcome = (async () => {
    let stderr = "";
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      stderr += decoder.decode(chunk, { stream: true });
      const m = /listening on http:\/\/\S+:(\d+) /.exec(stderr);
      if (m) return { port: Number(m[1]) };
    }
    return { code: await proc.exited, stderr };
  })();
  return { proc, outcome };
}

describe("when a second links serve starts on a data directory a node holds", () => {
  let node: RunningNode;
  let data: string;
  beforeAll(async () => {
    data = join(tmp.path, "held");
    await linksOk(["villages", "create", "v", "V", "alice", "--data", data]);
    node = await startNode(data);
  });
  afterAll(async () => {
    await node?.stop();
  });

  test("it exits 1 at once, naming the data directory and the pid that holds it", async () => {
    const pid = Number((await Bun.file(join(data, "serve.lock")).text()).trim());
    const second = spawnServe(data);
    const r = await second.outcome;
    expect("code" in r).toBe(true);
    const { code, stderr } = r as { code: number; stderr: string };
    expect(code).toBe(1);
    expect(errorCode(stderr)).toBe("data_dir_in_use");
    expect(stderr).toContain(data);
    expect(stderr).toContain(`pid ${pid}`);
    // the first node still answers
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
  });

  test("CLI commands keep working beside the running node, writers included", async () => {
    expect((await linksOk(["villages", "list", "--data", data])).stdout).toContain("v");
    await linksOk(["villages", "add-member", "v", "bob", "--data", data]);
    expect((await linksOk(["villages", "members", "v", "--data", data])).stdout).toContain("bob");
    expect((await links(["audit", "tail", "--data", data])).code).toBe(0);
  });

  test("once the node stops, the directory can be served again", async () => {
    expect(await node.stop()).toBe(0);
    node = await startNode(data);
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
  });
});

describe("when two links serve start on one data directory at the same moment", () => {
  test("exactly one runs; the other exits 1 naming the winner's pid (5 rounds)", async () => {
    const rounds = 5;
    let winners = 0;
    let losers = 0;
    for (let round = 0; round < rounds; round++) {
      const data = join(tmp.path, `race-${round}`);
      const pair = [spawnServe(data), spawnServe(data)];
      const outcomes = await Promise.all(pair.map((p) => p.outcome));
      try {
        const running = outcomes.flatMap((o, i) => ("port" in o ? [i] : []));
        expect(running).toHaveLength(1);
        const winner = pair[running[0] as number] as Started;
        const loser = outcomes[1 - (running[0] as number)] as { code: number; stderr: string };
        expect(loser.code).toBe(1);
        expect(errorCode(loser.stderr)).toBe("data_dir_in_use");
        expect(loser.stderr).toContain(`pid ${winner.proc.pid}`);
        winners++;
        losers++;
      } finally {
        for (const p of pair) p.proc.kill("SIGTERM");
        await Promise.all(pair.map((p) => p.proc.exited));
      }
    }
    figures("double-serve", { rounds, started_together: rounds * 2, running: winners, refused_data_dir_in_use: losers });
  }, 60_000);
});

describe("malformed requests", () => {
  let node: RunningNode;
  beforeAll(async () => {
    node = await startNode(join(tmp.path, "parser"));
  });
  afterAll(async () => {
    await node?.stop();
  });

  test("a declared body of 200 MB gets the node's JSON 413, not Bun's bare one", async () => {
    const r = await rawRequest(node.port, "POST /inbox HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 209715200\r\n\r\n{}");
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toMatchObject({ code: "body_too_large" });
  });

  test("a body that stops short of its declared length and the client goes: no answer or a JSON 400, nothing stored, the node goes on", async () => {
    const stored = () => readdirSync(join(tmp.path, "parser", "store", "bundles"), { withFileTypes: true }).filter((e) => e.isFile()).length;
    const before = existsSync(join(tmp.path, "parser", "store", "bundles")) ? stored() : 0;
    // earlier requests' log lines (written in batches) arrive first, so they are not taken for this one's
    let logBefore = -1;
    while (logBefore !== node.log().length) {
      logBefore = node.log().length;
      await Bun.sleep(100);
    }
    const answer = await new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      const socket = connect({ host: "127.0.0.1", port: node.port }, () => {
        // 5,000 bytes declared, 40 sent, then the client's side of the connection is closed
        socket.end('POST /inbox HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"bundle_id":"0123456789abcdef0123456789');
      });
      socket.on("data", (d: Buffer) => chunks.push(d));
      socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
      socket.on("error", () => resolve(Buffer.concat(chunks).toString("latin1")));
    });
    if (answer !== "") {
      expect(answer).toStartWith("HTTP/1.1 400");
      expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toMatchObject({ code: "invalid_argument" });
    }
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    expect(existsSync(join(tmp.path, "parser", "store", "bundles")) ? stored() : 0).toBe(before);
    // the request log (written in batches) says how the node answered the request it could not read
    const logged = () => node.log().slice(logBefore).split("\n").find((l) => l.includes('"path":"/inbox"'));
    for (let waited = 0; logged() === undefined && waited < 5000; waited += 50) await Bun.sleep(50);
    expect(JSON.parse(logged() ?? "{}")).toMatchObject({ method: "POST", status: 400 });
    expect(node.log()).not.toContain("internal_error");
  });

  test("what Bun's HTTP parser answers itself is what the README lists: a bare status or a closed connection", async () => {
    const cases: Array<[string, string, number | "closed"]> = [
      ["a control character in a header", rawGet("/healthz", { "X-Evil": "a\u0001b" }), 400],
      ["ESC in a header", rawGet("/healthz", { "X-Evil": "\u001b[31m" }), 400],
      ["a header line without a colon", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColon\r\nConnection: close\r\n\r\n", 400],
      ["both Content-Length and Transfer-Encoding", "POST /inbox HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", 400],
      ["headers over 16 KiB", rawGet("/healthz", { "X-Big": "a".repeat(20_000) }), 431],
      ["an unknown HTTP version", "GET /healthz HTTP/9.9\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 505],
      ["an unknown method", rawGet("/healthz", {}, "BREW"), "closed"],
      ["a lowercase method", rawGet("/healthz", {}, "get"), "closed"],
    ];
    for (const [, request, expected] of cases) {
      const r = await rawRequest(node.port, request);
      if (expected === "closed") expect(r.noAnswer).toBe(true);
      else {
        expect(r.status).toBe(expected);
        expect(r.body).toBe("");
      }
    }
    // the node is untouched by all of it
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    figures("parser-answers", { cases: cases.length, bare_or_closed: cases.length });
  });
});
