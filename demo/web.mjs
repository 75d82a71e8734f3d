// Serves the demo's browser page (www/) and the npm package's browser entry (js/src + the built
// js/dist/wasm) on 127.0.0.1, plus two small demo-only helpers:
//   GET  /demo-config.json   the local issuer's URLs, the demo clients (with their demo secrets)
//                            and the edge policy defaults from demo/policy.json
//   POST /demo/expired-token a token minted an hour in the past through the issuer's admin API
//                            (the admin token stays in this process, never in the page)
//
//   node demo/web.mjs --issuer http://127.0.0.1:P [--port 0] [--admin-token T]
//   prints one line {"web":"http://127.0.0.1:PORT"} when ready
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
};
const issuer = arg("issuer");
if (!issuer) {
  console.error("web: --issuer URL is required");
  process.exit(2);
}
const adminToken = arg("admin-token", "tokengate-demo-admin-token");
const policy = JSON.parse(readFileSync(join(ROOT, "demo/policy.json"), "utf8"));

// The demo clients of demo/issuer.toml; their secrets are demo secrets, written there too.
const CLIENTS = [
  { id: "orders-reader", secret: "orders-reader-secret", scopes: ["orders/read"] },
  { id: "orders-writer", secret: "orders-writer-secret", scopes: ["orders/read", "orders/write"] },
  { id: "not-allowed-client", secret: "not-allowed-secret", scopes: ["orders/read"] },
  { id: "revoked-client", secret: "revoked-secret", scopes: ["orders/read"] },
];

// The tokens' `iss` is whatever the issuer's discovery document says (demo/issuer.toml sets a
// Cognito-style issuer); the JWKS and token endpoint are this local server's.
const discovery = await (
  await fetch(`${issuer}/${policy.pool}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) })
).json();
const config = {
  issuer: discovery.issuer,
  jwksUri: `${issuer}/${policy.pool}/.well-known/jwks.json`,
  tokenEndpoint: `${issuer}/${policy.pool}/oauth2/token`,
  clients: CLIENTS,
  policy: { clientIds: policy.client_ids, scopes: ["orders/read"], tokenUse: policy.token_use },
};

// URL prefix → directory; nothing outside these is served.
const MOUNTS = [
  ["/pkg/src/", join(ROOT, "js/src")],
  ["/pkg/dist/wasm/", join(ROOT, "js/dist/wasm")],
  ["/", join(ROOT, "www")],
];
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

function send(res, status, type, body, extra = {}) {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", ...extra });
  res.end(body);
}

async function serveFile(res, path) {
  for (const [prefix, dir] of MOUNTS) {
    if (!path.startsWith(prefix)) continue;
    let rel = decodeURIComponent(path.slice(prefix.length));
    if (rel === "" || rel.endsWith("/")) rel += "index.html";
    const file = normalize(join(dir, rel));
    if (!file.startsWith(dir + sep)) return send(res, 403, "text/plain", "forbidden\n");
    try {
      const body = await readFile(file);
      return send(res, 200, TYPES[extname(file)] ?? "application/octet-stream", body);
    } catch {
      return send(res, 404, "text/plain", "not found\n");
    }
  }
  return send(res, 404, "text/plain", "not found\n");
}

async function expiredToken(res, client) {
  const known = CLIENTS.find((c) => c.id === client) ?? CLIENTS[0];
  const now = Math.floor(Date.now() / 1000);
  const r = await fetch(`${issuer}/admin/${policy.pool}/mint`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ client_id: known.id, scope: known.scopes.join(" "), issued_at: now - 7200, lifetime_s: 3600 }),
    signal: AbortSignal.timeout(5000),
  });
  const body = await r.text();
  send(res, r.status, "application/json", body);
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, "http://127.0.0.1");
    if (req.method === "GET" && url.pathname === "/demo-config.json") {
      return send(res, 200, "application/json", JSON.stringify(config));
    }
    if (req.method === "POST" && url.pathname === "/demo/expired-token") {
      return await expiredToken(res, url.searchParams.get("client"));
    }
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "method not allowed\n");
    return await serveFile(res, url.pathname);
  } catch (e) {
    return send(res, 502, "application/json", JSON.stringify({ error: "demo_server_error", message: String(e.message) }));
  }
});
server.requestTimeout = 10000;
server.listen(Number(arg("port", 0)), "127.0.0.1", () => {
  console.log(JSON.stringify({ web: `http://127.0.0.1:${server.address().port}` }));
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)).closeAllConnections());
