// TokenClient against a real token endpoint on 127.0.0.1: caching, single flight, retries,
// 429 Retry-After, and the secret kept out of every error and log string.
import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { TokenClient, TokenClientError } from "../src/node.mjs";
import { serve } from "./helpers/servers.mjs";

const SECRET = "s3cr3t+/=Zq9";

function answer(res, status, doc, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(doc));
}

function client(url, over = {}) {
  return new TokenClient({ tokenEndpoint: `${url}/oauth2/token`, clientId: "svc-a", clientSecret: SECRET, scope: ["orders/read", "orders/write"], ...over });
}

async function rejection(p) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TokenClientError, `expected TokenClientError, got ${e}`);
    return e;
  }
  assert.fail("expected a rejection");
}

function secretFree(e) {
  for (const s of [e.message, e.stack, JSON.stringify(e), inspect(e)]) assert.ok(!s.includes(SECRET), s);
}

test("a client-credentials request per RFC 6749 §4.4, cached until shortly before expiry", async (t) => {
  let n = 0;
  const srv = await serve((req, res) => answer(res, 200, { access_token: `tok${++n}`, token_type: "Bearer", expires_in: 3600 }));
  t.after(srv.close);
  const c = client(srv.url);
  assert.equal(await c.getToken(), "tok1");
  assert.equal(await c.getToken(), "tok1");
  assert.equal(srv.requests.length, 1);
  const r = srv.requests[0];
  assert.equal(r.method, "POST");
  assert.equal(r.headers["content-type"], "application/x-www-form-urlencoded");
  assert.equal(Buffer.from(r.headers.authorization.slice(6), "base64").toString(), `svc-a:${encodeURIComponent(SECRET)}`);
  assert.deepEqual(Object.fromEntries(new URLSearchParams(r.body)), { grant_type: "client_credentials", scope: "orders/read orders/write" });
  c.invalidate();
  assert.equal(await c.getToken(), "tok2");
  const post = client(srv.url, { authMethod: "client_secret_post" });
  await post.getToken();
  assert.equal(new URLSearchParams(srv.requests.at(-1).body).get("client_secret"), SECRET);
  assert.equal(srv.requests.at(-1).headers.authorization, undefined);
});

test("concurrent callers share one request", async (t) => {
  const srv = await serve((req, res) => setTimeout(() => answer(res, 200, { access_token: "shared", expires_in: 3600 }), 100));
  t.after(srv.close);
  const c = client(srv.url);
  const all = await Promise.all(Array.from({ length: 25 }, () => c.getToken()));
  assert.ok(all.every((x) => x === "shared"));
  assert.equal(srv.requests.length, 1);
});

test("a short-lived token is refreshed before it expires", async (t) => {
  let n = 0;
  const srv = await serve((req, res) => answer(res, 200, { access_token: `t${++n}`, expires_in: 1 }));
  t.after(srv.close);
  const c = client(srv.url);
  assert.equal(await c.getToken(), "t1");
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(await c.getToken(), "t2");
});

test("5xx answers are retried with backoff", async (t) => {
  const srv = await serve((req, res) => (srv.requests.length < 3 ? answer(res, 503, {}) : answer(res, 200, { access_token: "ok", expires_in: 60 })));
  t.after(srv.close);
  assert.equal(await client(srv.url).getToken(), "ok");
  assert.equal(srv.requests.length, 3);
  const always = await serve((req, res) => answer(res, 502, {}));
  t.after(always.close);
  const e = await rejection(client(always.url, { maxRetries: 1 }).getToken());
  assert.equal(e.code, "token_endpoint_error");
  assert.equal(e.status, 502);
  assert.equal(always.requests.length, 2);
});

test("429 Retry-After is honoured, and a long one is not waited for", async (t) => {
  const srv = await serve((req, res) =>
    srv.requests.length === 1 ? answer(res, 429, { error: "slow_down" }, { "retry-after": "1" }) : answer(res, 200, { access_token: "after", expires_in: 60 }),
  );
  t.after(srv.close);
  assert.equal(await client(srv.url).getToken(), "after");
  const gap = srv.requests[1].at - srv.requests[0].at;
  assert.ok(gap >= 950, `retried after ${gap} ms`);
  const long = await serve((req, res) => answer(res, 429, {}, { "retry-after": "3600" }));
  t.after(long.close);
  const started = Date.now();
  const e = await rejection(client(long.url).getToken());
  assert.equal(e.code, "rate_limited");
  assert.equal(e.retryAfter, 3600);
  assert.ok(Date.now() - started < 1000);
});

test("OAuth errors keep their code and never carry the secret", async (t) => {
  const srv = await serve((req, res) => answer(res, 400, { error: "invalid_client", error_description: `bad secret ${SECRET}` }));
  t.after(srv.close);
  const c = client(srv.url);
  const e = await rejection(c.getToken());
  assert.equal(e.code, "invalid_client");
  assert.equal(e.status, 400);
  assert.match(e.message, /invalid_client.*\[redacted\]/);
  secretFree(e);
  for (const s of [inspect(c), JSON.stringify(c), String(c)]) assert.ok(!s.includes(SECRET), s);
  const junk = await serve((req, res) => { res.writeHead(200); res.end("<html>"); });
  t.after(junk.close);
  assert.equal((await rejection(client(junk.url).getToken())).code, "token_response_invalid");
});

test("timeouts and unreachable endpoints end in token_endpoint_unreachable", async (t) => {
  const hang = await serve(() => {});
  t.after(hang.close);
  const e = await rejection(client(hang.url, { timeoutMs: 200, maxRetries: 1 }).getToken());
  assert.equal(e.code, "token_endpoint_unreachable");
  assert.match(e.message, /within 200 ms/);
  secretFree(e);
  const gone = await serve(() => {});
  await gone.close();
  assert.equal((await rejection(client(gone.url, { maxRetries: 0 }).getToken())).code, "token_endpoint_unreachable");
});

test("bad options are refused without echoing the secret", () => {
  assert.throws(() => new TokenClient({ tokenEndpoint: "nope", clientId: "a", clientSecret: SECRET }), (e) => e instanceof TypeError && !e.message.includes(SECRET));
  assert.throws(() => new TokenClient({ tokenEndpoint: "https://x", clientId: "a", clientSecret: "" }), /clientSecret/);
  assert.throws(() => new TokenClient({ tokenEndpoint: "https://x", clientId: "a", clientSecret: SECRET, secret: 1 }), /unknown option/);
});
