/**
 * The machine's HTTP floor for the ingest benchmark: a Bun server that reads each POST body and
 * answers a small JSON document, nothing else. Prints its port on stdout.
 */
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch: async (req) => {
    await req.arrayBuffer();
    return new Response('{"status":"accepted"}', { headers: { "content-type": "application/json" } });
  },
});
console.log(server.port);
