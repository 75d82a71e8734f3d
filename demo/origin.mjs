// The demo's origin: a tiny "orders API" that answers every request with what reached it, in
// particular the claims the edge (Envoy or the worker) forwarded as x-tokengate-* headers. It
// never checks a token itself: whatever gets here was let through by the edge.
//
//   node demo/origin.mjs [--port 0]      prints one line {"origin":"http://127.0.0.1:PORT"} when ready
import { createServer } from "node:http";

const port = Number(argValue("--port") ?? 0);
const FORWARDED = ["x-tokengate-client-id", "x-tokengate-scope", "x-tokengate-edge"];

const server = createServer((req, res) => {
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > 64 * 1024) req.destroy();
  });
  req.on("end", () => {
    const forwarded = {};
    for (const h of FORWARDED) if (req.headers[h] !== undefined) forwarded[h] = req.headers[h];
    const body = JSON.stringify({
      origin: "orders-api",
      method: req.method,
      path: req.url,
      forwarded,
      // The edge must not pass the token on unless told to; show whether it did.
      authorization: req.headers.authorization === undefined ? "absent" : "present",
    });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 5000;
server.headersTimeout = 10000;
server.requestTimeout = 10000;

server.listen(port, "127.0.0.1", () => {
  console.log(JSON.stringify({ origin: `http://127.0.0.1:${server.address().port}` }));
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)).closeAllConnections());

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
