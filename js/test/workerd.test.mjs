// The sample worker (examples/worker) under real workerd on 127.0.0.1, protecting a real
// origin, with its JWKS served by a local server; plus a sample of the conformance vectors
// verified inside workerd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, copyFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import * as f from "./helpers/fixtures.mjs";
import { serve } from "./helpers/servers.mjs";
import { loadGroups, loadHttpCases, sample } from "./helpers/vectors-node.mjs";

const PKG = fileURLToPath(new URL("..", import.meta.url));
const WORKERD = join(PKG, "node_modules/.bin/workerd");
let dir, proc, origin, jwksServer, gatewayUrl, conformanceUrl;
let logs = "";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Files are copied next to the config (capnp embeds relative paths only).
function stage(from, to) {
  mkdirSync(dirname(join(dir, to)), { recursive: true });
  copyFileSync(from, join(dir, to));
  return to;
}

// The package as workerd sees it: every module named by its path, so the package's relative
// imports resolve as they do from node_modules; "tokengate" is the workerd entry.
function packageModules() {
  const files = ["src/workerd.mjs", "src/core.mjs", "src/http.mjs", "src/subtle.mjs", "src/client.mjs", "dist/wasm/tokengate_wasm.js"];
  const mods = files.map((p) => `(name = "node_modules/tokengate/${p}", esModule = embed "${stage(join(PKG, p), `node_modules/tokengate/${p}`)}")`);
  const wasm = "dist/wasm/tokengate_wasm_bg.wasm";
  mods.push(`(name = "node_modules/tokengate/${wasm}", wasm = embed "${stage(join(PKG, wasm), `node_modules/tokengate/${wasm}`)}")`);
  mods.push(`(name = "tokengate", esModule = embed "tokengate.mjs")`);
  return mods.join(",\n    ");
}

async function waitUp(url, deadline) {
  for (;;) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`workerd did not come up:\n${logs}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tokengate-workerd-"));
  origin = await serve((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ origin: true, path: req.url, method: req.method, client: req.headers["x-client-id"] ?? null, authorization: req.headers.authorization ?? null }));
  });
  jwksServer = await serve((req, res) => {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=300" });
    res.end(JSON.stringify(f.jwks()));
  });
  writeFileSync(join(dir, "tokengate.mjs"), 'export * from "./node_modules/tokengate/src/workerd.mjs";\n');
  const [gw, conf] = [await freePort(), await freePort()];
  gatewayUrl = `http://127.0.0.1:${gw}`;
  conformanceUrl = `http://127.0.0.1:${conf}`;
  writeFileSync(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "gateway", worker = .gateway),
    (name = "conformance", worker = .conformance),
    (name = "loopback", network = (allow = ["local", "private"])),
  ],
  sockets = [
    (name = "gateway", address = "127.0.0.1:${gw}", http = (), service = "gateway"),
    (name = "conformance", address = "127.0.0.1:${conf}", http = (), service = "conformance"),
  ],
);
const gateway :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "${stage(join(PKG, "examples/worker/worker.mjs"), "worker.mjs")}"),
    ${packageModules()}
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
  bindings = [
    (name = "USER_POOL_ID", text = "${f.POOL_ID}"),
    (name = "CLIENT_IDS", text = "${f.CLIENT_ID},another-client"),
    (name = "JWKS_URI", text = "${jwksServer.url}/${f.POOL_ID}/.well-known/jwks.json"),
    (name = "ORIGIN", text = "${origin.url}"),
  ],
);
const conformance :Workerd.Worker = (
  modules = [
    (name = "conformance.mjs", esModule = embed "${stage(join(PKG, "test/workerd/conformance.mjs"), "conformance.mjs")}"),
    (name = "vectors.mjs", esModule = embed "${stage(join(PKG, "test/helpers/vectors.mjs"), "vectors.mjs")}"),
    ${packageModules()}
  ],
  compatibilityDate = "2025-09-01",
);
`,
  );
  proc = spawn(WORKERD, ["serve", join(dir, "config.capnp")], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (d) => (logs += d));
  proc.stderr.on("data", (d) => (logs += d));
  const deadline = Date.now() + 20_000;
  await waitUp(gatewayUrl, deadline);
  await waitUp(conformanceUrl, deadline);
});

after(async () => {
  if (proc) {
    proc.kill("SIGTERM");
    await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
  }
  await origin?.close();
  await jwksServer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function get(path, token, init = {}) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  return fetch(gatewayUrl + path, { ...init, headers, signal: AbortSignal.timeout(10_000) });
}

test("a valid token reaches the origin: 200, client id added, Authorization removed", async () => {
  const res = await get("/orders/42?x=1", f.signToken(f.cognitoClaims()));
  assert.equal(res.status, 200, logs + await res.clone().text());
  assert.deepEqual(await res.json(), { origin: true, path: "/orders/42?x=1", method: "GET", client: f.CLIENT_ID, authorization: null });
  // The second key of the JWKS, and the second request, hit the same isolate's caches.
  const again = await get("/orders", f.signToken(f.cognitoClaims(), { key: "rsa-b" }));
  assert.equal(again.status, 200);
  assert.equal(jwksServer.requests.length, 1, "one JWKS fetch for the isolate");
});

test("no token: 401 with a bare Bearer challenge", async () => {
  const res = await get("/orders");
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="orders"');
  assert.equal((await res.json()).error, "token_missing");
});

for (const [name, token, code] of [
  ["a forged signature", () => f.signToken(f.cognitoClaims(), { key: "attacker-rsa", header: { kid: f.testKey("rsa-a").kid } }), "signature_invalid"],
  ["an expired token", () => f.signToken(f.cognitoClaims({ exp: Math.floor(Date.now() / 1000) - 10 })), "token_expired"],
  ["another client", () => f.signToken(f.cognitoClaims({ client_id: "intruder" })), "client_not_allowed"],
  ["garbage", () => "not.a.jwt", "token_malformed"],
]) {
  test(`${name}: 401 invalid_token (${code})`, async () => {
    const res = await get("/orders", token());
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="orders", error="invalid_token"');
    assert.equal((await res.json()).error, code);
  });
}

test("a token without the route's scope: 403 insufficient_scope with scope=", async () => {
  const res = await get("/orders", f.signToken(f.cognitoClaims({ scope: "orders/read" })), { method: "POST" });
  assert.equal(res.status, 403);
  assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="orders", error="insufficient_scope", scope="orders/write"');
  assert.equal((await res.json()).error, "scope_insufficient");
  assert.equal(origin.requests.filter((r) => r.method === "POST").length, 0, "the origin never saw it");
});

test("a sample of the conformance vectors agrees inside workerd (pure wasm and crypto.subtle)", async () => {
  const cases = sample(loadGroups(), 6);
  const res = await fetch(conformanceUrl, { method: "POST", body: JSON.stringify(cases), signal: AbortSignal.timeout(60_000) });
  assert.equal(res.status, 200, logs + await res.clone().text());
  const out = await res.json();
  assert.equal(out.length, cases.length * 2);
  assert.deepEqual(out.filter((r) => !r.ok), []);
});

test("every HTTP vector gets the same answer inside workerd (pure wasm and crypto.subtle)", async () => {
  const http = loadHttpCases();
  const res = await fetch(conformanceUrl, { method: "POST", body: JSON.stringify({ http }), signal: AbortSignal.timeout(90_000) });
  assert.equal(res.status, 200, logs + await res.clone().text());
  const out = await res.json();
  assert.equal(out.length, http.length * 2);
  assert.deepEqual(out.filter((r) => !r.ok), []);
});
