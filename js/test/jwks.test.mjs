// JWKS fetching against a real HTTP server on 127.0.0.1: first use, single flight, unknown-kid
// refetch, and every way an endpoint can fail (HTML, broken JSON, 500, oversize, no answer).
// A failure never accepts a token, never hangs, and never replaces good keys.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CognitoVerifier, TokenError } from "../src/node.mjs";
import * as f from "./helpers/fixtures.mjs";
import { serve } from "./helpers/servers.mjs";

function verifier(url, over = {}) {
  return CognitoVerifier.create({
    userPoolId: f.POOL_ID,
    tokenUse: "access",
    clientId: f.CLIENT_ID,
    jwksUri: url,
    ...over,
  });
}

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof TokenError, `expected TokenError, got ${e}`);
    return e;
  }
  assert.fail("expected a rejection");
}

const json = (res, doc, headers = {}) => {
  res.writeHead(200, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(doc));
};

test("verify() fetches the JWKS on first use, once for many concurrent callers", async (t) => {
  const srv = await serve((req, res) => setTimeout(() => json(res, f.jwks(), { "cache-control": "max-age=300" }), 50));
  t.after(srv.close);
  const v = verifier(`${srv.url}/jwks`);
  const token = f.signToken(f.cognitoClaims());
  assert.equal(tokenErrorSync(() => v.verifySync(token)).code, "jwks_unavailable", "verifySync does no I/O");
  const results = await Promise.all(Array.from({ length: 20 }, () => v.verify(token)));
  assert.ok(results.every((c) => c.client_id === f.CLIENT_ID));
  assert.equal(srv.requests.length, 1);
  assert.equal(srv.requests[0].headers.accept, "application/json");
  assert.equal(v.verifySync(token).client_id, f.CLIENT_ID);
});

function tokenErrorSync(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TokenError);
    return e;
  }
  assert.fail("expected a TokenError");
}

for (const [name, handler, why] of [
  ["HTML", (req, res) => { res.writeHead(200, { "content-type": "text/html" }); res.end("<html><body>Login</body></html>"); }, /not a JSON object/],
  ["broken JSON", (req, res) => { res.writeHead(200); res.end('{"keys": [{"kid": '); }, /not a JSON object/],
  ["no usable key", (req, res) => json(res, { keys: [{ kid: "x", kty: "oct", k: "AAAA" }] }), /no usable/],
  ["HTTP 500", (req, res) => { res.writeHead(500); res.end("oops"); }, /HTTP 500/],
  ["an oversize body", (req, res) => json(res, { keys: f.jwks().keys, pad: "x".repeat(200_000) }), /larger than the limit/],
  // Redirects are never followed (they could lead to keys in clear text): a failed refresh.
  ["a redirect", (req, res) => { res.writeHead(302, { location: req.url }); res.end(); }, /HTTP 302/],
]) {
  test(`a JWKS endpoint answering ${name} gives jwks_unavailable (503), not an exception`, async (t) => {
    const srv = await serve(handler);
    t.after(srv.close);
    const v = verifier(`${srv.url}/jwks`);
    const e = await rejection(v.verify(f.signToken(f.cognitoClaims())));
    assert.equal(e.code, "jwks_unavailable");
    assert.equal(e.status, 503);
    assert.equal(e.wwwAuthenticate, null);
    assert.match(e.message, why);
    const h = await rejection(v.hydrate());
    assert.equal(h.code, "jwks_unavailable");
  });
}

test("a JWKS endpoint that never answers times out within the deadline", async (t) => {
  const srv = await serve(() => {}); // holds every request open
  t.after(srv.close);
  const v = verifier(`${srv.url}/jwks`, { jwksCache: { timeoutMs: 300 } });
  const started = Date.now();
  const e = await rejection(v.verify(f.signToken(f.cognitoClaims())));
  assert.equal(e.code, "jwks_unavailable");
  assert.match(e.message, /timed out after 300 ms/);
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  // Backoff: an immediate second attempt does not hit the endpoint again.
  await rejection(v.verify(f.signToken(f.cognitoClaims())));
  assert.equal(srv.requests.length, 1);
});

test("an unreachable JWKS endpoint gives jwks_unavailable", async () => {
  const srv = await serve(() => {});
  const url = `${srv.url}/jwks`;
  await srv.close();
  const e = await rejection(verifier(url).verify(f.signToken(f.cognitoClaims())));
  assert.equal(e.code, "jwks_unavailable");
  assert.match(e.message, /fetch failed/);
});

test("a failed refresh (HTML) keeps the last good keys", async (t) => {
  let mode = "good";
  const srv = await serve((req, res) => {
    if (mode === "good") json(res, f.jwks());
    else {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>maintenance</html>");
    }
  });
  t.after(srv.close);
  const v = verifier(`${srv.url}/jwks`, { jwksCache: { refreshSeconds: 60 } });
  const token = f.signToken(f.cognitoClaims());
  await v.hydrate();
  mode = "html";
  const later = { now: Date.now() / 1000 + 61 }; // past the refresh interval, no sleeping
  assert.equal((await v.verify(token, later)).client_id, f.CLIENT_ID); // starts the refresh in the background
  await v.hydrate(); // waits for it
  assert.equal(srv.requests.length, 2, "the refresh happened");
  assert.equal(v.verifySync(token, later).client_id, f.CLIENT_ID);
  assert.equal((await v.verify(f.signToken(f.cognitoClaims(), { key: "rsa-b" }), later)).client_id, f.CLIENT_ID);
});

test("an unknown kid triggers one refetch (key rotation), then a cooldown", async (t) => {
  let published = f.jwks("rsa-a");
  const srv = await serve((req, res) => json(res, published));
  t.after(srv.close);
  const v = verifier(`${srv.url}/jwks`);
  assert.equal((await v.verify(f.signToken(f.cognitoClaims()))).client_id, f.CLIENT_ID);
  published = f.jwks("rsa-a", "rsa-b");
  const rotated = f.signToken(f.cognitoClaims(), { key: "rsa-b" });
  assert.equal((await v.verify(rotated)).client_id, f.CLIENT_ID);
  assert.equal(srv.requests.length, 2);
  const e = await rejection(v.verify(f.signToken(f.cognitoClaims(), { key: "attacker-rsa" })));
  assert.equal(e.code, "kid_unknown");
  assert.equal(srv.requests.length, 2, "no refetch inside the cooldown");
});

test("inline keys answer at once and are refreshed from jwksUri later", async (t) => {
  const srv = await serve((req, res) => json(res, f.jwks()));
  t.after(srv.close);
  const v = verifier(`${srv.url}/jwks`, { jwks: f.jwks("rsa-a") });
  assert.equal(v.verifySync(f.signToken(f.cognitoClaims())).client_id, f.CLIENT_ID);
  assert.equal(srv.requests.length, 0);
  assert.equal((await v.verify(f.signToken(f.cognitoClaims(), { key: "rsa-b" }))).client_id, f.CLIENT_ID);
  assert.equal(srv.requests.length, 1);
});
