// The Express example (deploy/express) as a real server on 127.0.0.1: every answer it gives is
// the core's answer for that request (compared with verifier.authorize on the same request), and
// what reaches a route is what the configuration promises (forwarded claims, no spoofed copies,
// no Authorization).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import express from "express";
import { JwtVerifier } from "tokengate";
import { createApp } from "../express/server.mjs";
import { tokengate } from "../express/tokengate-middleware.mjs";
import { DEPLOY, configFor, rawRequest, request, testIssuer } from "./helpers.mjs";

const issuer = testIssuer();
const READER = "3q9f1k7c2m8v4n6b0x5z1l2h7d";
let verifier;
let server;
let base;

function listen(app) {
  return new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
}

// What the core answers for the same request, through the same verifier (the reference).
async function expected(method, path, headers = {}) {
  const ref = JwtVerifier.fromConfig(configFor(issuer));
  return ref.authorize({ method, url: path, headers });
}

before(async () => {
  verifier = JwtVerifier.fromConfig(configFor(issuer));
  server = await listen(createApp(verifier));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => new Promise((r) => (server ? server.close(r) : r())));

test("an anonymous route is served without a token", async () => {
  const r = await request(`${base}/health`);
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { ok: true });
});

for (const [name, method, path, headers] of [
  ["no token: 401 with a bare challenge", "GET", "/orders", {}],
  ["a malformed token: 401 invalid_token", "GET", "/orders", { authorization: "Bearer not-a-jwt" }],
  ["a path not in normal form: 400 before any route", "GET", "/orders/..;/admin", {}],
  ["an encoded dot segment: 400", "GET", "/health/%2e%2e/orders", {}],
  ["a route no rule names: default deny", "GET", "/admin", {}],
]) {
  test(`${name}, exactly the core's answer`, async () => {
    const r = await rawRequest(base, { method, path, headers });
    const want = await expected(method, path, headers);
    assert.equal(want.ok, false);
    assert.equal(r.status, want.status);
    assert.equal(r.body, want.body);
    for (const [h, v] of Object.entries(want.headers)) assert.equal(r.headers[h], v, h);
    assert.equal(JSON.parse(r.body).error, want.code);
  });
}

test("a read token reads; the route sees the forwarded client id, not the one the client sent", async () => {
  const r = await request(`${base}/orders`, {
    headers: { authorization: `Bearer ${issuer.token({ scope: "orders/read" })}`, "x-tokengate-client-id": "spoofed" },
  });
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { orders: [], client_id: READER, route: "read" });
});

test("a read token cannot write: 403 insufficient_scope naming orders/write", async () => {
  const token = issuer.token({ scope: "orders/read" });
  const r = await request(`${base}/orders`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 403);
  assert.equal(r.headers["www-authenticate"], 'Bearer realm="tokengate", error="insufficient_scope", scope="orders/write"');
  assert.equal(JSON.parse(r.body).error, "scope_insufficient");
});

test("a write token writes", async () => {
  const token = issuer.token({ scope: "orders/read orders/write" });
  const r = await request(`${base}/orders`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 201);
  assert.deepEqual(JSON.parse(r.body), { created: true, client_id: READER });
});

test("an expired token and an unlisted client are refused with their codes", async () => {
  const expired = await request(`${base}/orders`, { headers: { authorization: `Bearer ${issuer.token({ expIn: -120 })}` } });
  assert.equal(expired.status, 401);
  assert.equal(JSON.parse(expired.body).error, "token_expired");
  const stranger = await request(`${base}/orders`, { headers: { authorization: `Bearer ${issuer.token({ clientId: "someone-else" })}` } });
  assert.equal(stranger.status, 401);
  assert.equal(JSON.parse(stranger.body).error, "client_not_allowed");
});

test("Authorization and spoofed claim headers never reach the route (strip_authorization)", async () => {
  const app = express();
  app.use(tokengate(verifier));
  app.get("/orders", (req, res) => res.json({ authorization: req.headers.authorization ?? null, scope: req.headers["x-tokengate-scope"] }));
  const s = await listen(app);
  try {
    const r = await request(`http://127.0.0.1:${s.address().port}/orders`, {
      headers: { authorization: `Bearer ${issuer.token({ scope: "orders/read" })}`, "x-tokengate-scope": "orders/admin" },
    });
    assert.deepEqual(JSON.parse(r.body), { authorization: null, scope: "orders/read" });
  } finally {
    await new Promise((r) => s.close(r));
  }
});

test("mounted under a path, the middleware judges the path as the client sent it", async () => {
  // app.use("/orders", …) shows the middleware req.url "/" ; the gate must see "/orders" and
  // apply the "read" rule, not the default.
  const app = express();
  app.use("/orders", tokengate(verifier), (req, res) => res.json({ route: req.tokengate.route }));
  const s = await listen(app);
  try {
    const r = await request(`http://127.0.0.1:${s.address().port}/orders`, {
      headers: { authorization: `Bearer ${issuer.token({ scope: "orders/read" })}` },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { route: "read" });
  } finally {
    await new Promise((r) => s.close(r));
  }
});

test("node server.mjs starts with TOKENGATE_CONFIG and PORT and serves the routes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tokengate-express-"));
  const config = join(dir, "tokengate.json");
  writeFileSync(config, JSON.stringify(configFor(issuer)));
  const child = spawn(process.execPath, [join(DEPLOY, "express/server.mjs")], {
    env: { ...process.env, TOKENGATE_CONFIG: config, PORT: "0", HOST: "127.0.0.1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 15_000);
      child.stdout.on("data", (d) => {
        out += d;
        const m = out.match(/listening on (http:\/\/\S+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.stderr.on("data", (d) => (out += d));
      child.on("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
    });
    assert.equal((await request(`${url}/health`)).status, 200);
    assert.equal((await request(`${url}/orders`)).status, 401);
    const ok = await request(`${url}/orders`, { headers: { authorization: `Bearer ${issuer.token()}` } });
    assert.equal(ok.status, 200);
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
