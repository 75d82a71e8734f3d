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
let sharedJwks, feedServer, cacheServer, isolateUrls;
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

// workerd's Cache API outbound protocol: PUT stores the serialised response (status line,
// headers, body) under the request URL; GET answers it with Cf-Cache-Status: HIT, or MISS.
async function cacheApiServer() {
  const store = new Map();
  const { createServer: httpServer } = await import("node:http");
  const server = httpServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "PUT") {
        store.set(req.url, Buffer.concat(chunks));
        res.writeHead(204).end();
      } else if (req.method === "GET" && store.has(req.url)) {
        const raw = store.get(req.url);
        const split = raw.indexOf("\r\n\r\n");
        const [statusLine, ...lines] = raw.subarray(0, split).toString("latin1").split("\r\n");
        const headers = { "cf-cache-status": "HIT" };
        let chunked = false;
        for (const l of lines) {
          const i = l.indexOf(":");
          const name = l.slice(0, i).trim().toLowerCase();
          if (name === "transfer-encoding") chunked = true;
          else if (name !== "content-length") headers[name] = l.slice(i + 1).trim();
        }
        let body = raw.subarray(split + 4);
        if (chunked) {
          const parts = [];
          for (let at = 0; ; ) {
            const eol = body.indexOf("\r\n", at);
            const n = parseInt(body.subarray(at, eol).toString(), 16);
            if (!n) break;
            parts.push(body.subarray(eol + 2, eol + 2 + n));
            at = eol + 2 + n + 2;
          }
          body = Buffer.concat(parts);
        }
        res.writeHead(Number(statusLine.split(" ")[1]), headers).end(body);
      } else if (req.method === "PURGE") {
        res.writeHead(store.delete(req.url) ? 200 : 404).end();
      } else {
        res.writeHead(504, { "cf-cache-status": "MISS" }).end();
      }
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { port: server.address().port, puts: () => store.size, close: () => new Promise((r) => server.close(r)) };
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
  // Two isolates that share JWKS and feed through the Cache API, whose outbound service is a
  // local store speaking workerd's cache protocol.
  sharedJwks = await serve((req, res) => {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=300" });
    res.end(JSON.stringify(f.jwks()));
  });
  feedServer = await serve((req, res) => {
    res.writeHead(200, { "content-type": "application/json", etag: '"7"' });
    res.end(JSON.stringify({ format: 1, version: 7, issued_at: 0, providers: { [f.ISSUER]: { revoke: { jti: ["revoked-jti"] } } } }));
  });
  cacheServer = await cacheApiServer();
  const gate = {
    providers: [{ cognito_user_pool_id: f.POOL_ID, client_ids: [f.CLIENT_ID], jwks: { uri: `${sharedJwks.url}/jwks.json` } }],
    feed: { uri: `${feedServer.url}/edge-policy.json`, unsigned: true },
  };
  const [gw, conf, isoA, isoB] = [await freePort(), await freePort(), await freePort(), await freePort()];
  isolateUrls = [`http://127.0.0.1:${isoA}`, `http://127.0.0.1:${isoB}`];
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
    (name = "isolate-a", worker = .isolateA),
    (name = "isolate-b", worker = .isolateB),
    (name = "cache", external = (address = "127.0.0.1:${cacheServer.port}", http = ())),
  ],
  sockets = [
    (name = "gateway", address = "127.0.0.1:${gw}", http = (), service = "gateway"),
    (name = "conformance", address = "127.0.0.1:${conf}", http = (), service = "conformance"),
    (name = "isolate-a", address = "127.0.0.1:${isoA}", http = (), service = "isolate-a"),
    (name = "isolate-b", address = "127.0.0.1:${isoB}", http = (), service = "isolate-b"),
  ],
);
const isolateA :Workerd.Worker = (
  modules = [
    (name = "shared.mjs", esModule = embed "${stage(join(PKG, "test/workerd/shared.mjs"), "shared.mjs")}"),
    ${packageModules()}
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
  cacheApiOutbound = "cache",
  bindings = [(name = "GATE_CONFIG", text = ${JSON.stringify(JSON.stringify(gate))})],
);
const isolateB :Workerd.Worker = (
  modules = [
    (name = "shared.mjs", esModule = embed "shared.mjs"),
    ${packageModules()}
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
  cacheApiOutbound = "cache",
  bindings = [(name = "GATE_CONFIG", text = ${JSON.stringify(JSON.stringify(gate))})],
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
  for (const u of isolateUrls) await waitUp(u, deadline);
});

after(async () => {
  if (proc) {
    proc.kill("SIGTERM");
    await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
  }
  await origin?.close();
  await jwksServer?.close();
  await sharedJwks?.close();
  await feedServer?.close();
  await cacheServer?.close();
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

// Cases whose answer does not depend on the certificate's SANs, which Workers do not receive.
const WITHOUT_SANS = /^(conn_subject_|conn_sha256_|binding_(?!match_and_pin)|conn_pinned_client_without|conn_unpinned_|conn_spoofed_|always_pinned_client_without)/;

test("cf.tlsClientAuth (simulated on the Request) gives the gate the subject and SHA-256 of a verified certificate", async () => {
  const tls = loadHttpCases().filter(
    (c) => c.file === "identity.json" && (c.configDoc.client_certificate?.source ?? "connection") === "connection" && c.request.peer !== undefined,
  );
  const res = await fetch(conformanceUrl, { method: "POST", body: JSON.stringify({ tls }), signal: AbortSignal.timeout(60_000) });
  assert.equal(res.status, 200, logs + await res.clone().text());
  const out = await res.json();
  assert.equal(out.length, tls.length);
  assert.deepEqual(out.filter((r) => !r.same), [], "authorize(cf.tlsClientAuth) = decide(subject, sha256)");
  const independent = out.filter((r) => WITHOUT_SANS.test(r.name));
  assert.ok(independent.length >= 20, `only ${independent.length} cases without SANs`);
  assert.deepEqual(independent.filter((r) => !r.expected), [], "cases that need no SAN get the vector's answer");
  assert.ok(out.some((r) => r.got.status === 200) && out.some((r) => r.got.code === "identity_mismatch") && out.some((r) => r.got.code === "identity_missing"));
});

test("a cold isolate takes the JWKS and the feed from the Cache API, not from their servers", async () => {
  const token = f.signToken(f.cognitoClaims());
  const ask = async (url, t) => (await fetch(url + "/orders", { headers: { authorization: `Bearer ${t}` }, signal: AbortSignal.timeout(10_000) })).json();
  const a = await ask(isolateUrls[0], token);
  assert.equal(a.status, 200, JSON.stringify(a) + logs);
  assert.equal(a.feed.version, 7);
  assert.equal(sharedJwks.requests.length, 1);
  assert.equal(feedServer.requests.length, 1);
  assert.ok(cacheServer.puts() >= 2, "both documents stored");
  const b = await ask(isolateUrls[1], token);
  assert.equal(b.status, 200, JSON.stringify(b) + logs);
  assert.equal(b.feed.version, 7, "the other isolate has the feed");
  assert.equal(sharedJwks.requests.length, 1, "no second JWKS fetch");
  assert.equal(feedServer.requests.length, 1, "no second feed fetch");
  const revoked = await ask(isolateUrls[1], f.signToken(f.cognitoClaims({ jti: "revoked-jti" })));
  assert.deepEqual([revoked.status, revoked.code], [401, "token_revoked"]);
});
