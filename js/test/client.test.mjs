// TokenClient against a real token endpoint on 127.0.0.1: caching, single flight, retries,
// 429 Retry-After, redirects refused, http only to loopback, and the secret kept out of every
// error and log string. Imports client.mjs itself: it needs no wasm build (api.test.mjs checks
// that the package entries export it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { TokenClient, TokenClientError } from "../src/client.mjs";
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

test("a redirecting token endpoint is refused and the Location receives no request", async (t) => {
  const other = await serve((req, res) => answer(res, 200, { access_token: "stolen", expires_in: 3600 }));
  t.after(other.close);
  for (const status of [301, 302, 303, 307, 308]) {
    const srv = await serve((req, res) => {
      res.writeHead(status, { location: `${other.url}/oauth2/token?from=redirect` });
      res.end();
    });
    t.after(srv.close);
    for (const authMethod of ["client_secret_basic", "client_secret_post"]) {
      const e = await rejection(client(srv.url, { authMethod }).getToken());
      assert.equal(e.code, "token_endpoint_redirected");
      assert.equal(e.status, status);
      assert.match(e.message, new RegExp(`redirected with HTTP ${status} to ${other.url};.*credentials are never re-sent`));
      assert.ok(!e.message.includes("from=redirect") && !e.message.includes(`${other.url}/`), e.message);
      secretFree(e);
    }
    assert.equal(srv.requests.length, 2, "one request per client: a redirect is not retried");
  }
  assert.equal(other.requests.length, 0);
  const relative = await serve((req, res) => {
    res.writeHead(307, { location: "/elsewhere" });
    res.end();
  });
  t.after(relative.close);
  assert.match((await rejection(client(relative.url).getToken())).message, new RegExp(`HTTP 307 to ${relative.url};`));
  const bare = await serve((req, res) => {
    res.writeHead(302);
    res.end();
  });
  t.after(bare.close);
  assert.match((await rejection(client(bare.url).getToken())).message, /HTTP 302 without a Location;/);
});

test("a fetch option that follows redirects anyway, and a browser's opaqueredirect, fail closed", async (t) => {
  const other = await serve((req, res) => answer(res, 200, { access_token: "stolen", expires_in: 3600 }));
  t.after(other.close);
  const srv = await serve((req, res) => {
    res.writeHead(307, { location: `${other.url}/oauth2/token` });
    res.end();
  });
  t.after(srv.close);
  const asked = [];
  const follows = client(srv.url, {
    fetch: (url, init) => {
      asked.push(init.redirect);
      return globalThis.fetch(url, { ...init, redirect: "follow" });
    },
  });
  const e = await rejection(follows.getToken());
  assert.deepEqual(asked, ["manual"]);
  assert.equal(e.code, "token_endpoint_redirected");
  assert.match(e.message, /followed it although redirect: "manual" was asked for/);
  secretFree(e);
  assert.equal(other.requests.length, 1, "this fetch option did re-send the request; its token must not be used");
  const opaque = client("https://auth.example", {
    fetch: async () => ({ type: "opaqueredirect", status: 0, redirected: false, headers: new Headers(), body: null }),
  });
  const o = await rejection(opaque.getToken());
  assert.equal(o.code, "token_endpoint_redirected");
  assert.equal(o.status, null);
  assert.match(o.message, /hides where to.*credentials are never re-sent/);
});

test("an http token endpoint is refused unless it is loopback or allowInsecureHttp is set", async (t) => {
  const opts = (tokenEndpoint, over = {}) => ({ tokenEndpoint, clientId: "svc-a", clientSecret: SECRET, ...over });
  const refused = (e) => e instanceof TypeError && /tokenEndpoint/.test(e.message) && !e.message.includes(SECRET);
  for (const u of [
    "http://example.com/oauth2/token",
    "HTTP://example.com/oauth2/token",
    "http://10.0.0.1/oauth2/token",
    "http://127.0.0.1.example.com/oauth2/token",
    "http://localhost.example.com/oauth2/token",
    "http://[::ffff:10.0.0.1]/oauth2/token",
  ]) {
    assert.throws(() => new TokenClient(opts(u)), (e) => refused(e) && /allowInsecureHttp/.test(e.message), u);
    assert.equal(new TokenClient(opts(u, { allowInsecureHttp: true })).toJSON().tokenEndpoint, u);
  }
  for (const u of ["ftp://example.com/token", "file:///etc/passwd", "javascript:alert(1)", "//example.com/token", "https://svc-a:pw@auth.example/oauth2/token", "http://svc-a@127.0.0.1/"]) {
    assert.throws(() => new TokenClient(opts(u, { allowInsecureHttp: true })), refused, u);
  }
  for (const u of ["http://127.0.0.1:9000/oauth2/token", "http://127.9.8.7/oauth2/token", "http://localhost:9000/oauth2/token", "http://[::1]:9000/oauth2/token"]) {
    assert.doesNotThrow(() => new TokenClient(opts(u)), u);
  }
  assert.throws(() => new TokenClient(opts("http://example.com/", { allowInsecureHttp: "yes" })), /allowInsecureHttp must be a boolean/);
  const srv = await serve((req, res) => answer(res, 200, { access_token: "local", expires_in: 60 }));
  t.after(srv.close);
  assert.ok(srv.url.startsWith("http://127.0.0.1:"));
  assert.equal(await client(srv.url).getToken(), "local");
});

test("error_description is redacted before it is truncated, and an echoed secret is never a code", async (t) => {
  let reply = null;
  const srv = await serve((req, res) => answer(res, 401, reply));
  t.after(srv.close);
  const basic = Buffer.from(`svc-a:${encodeURIComponent(SECRET)}`).toString("base64");
  for (const echo of [SECRET, encodeURIComponent(SECRET), basic, `Basic ${basic}`]) {
    // The limit is 200 characters: each echo starts before it and ends after it.
    for (const at of [190, 195, 199]) {
      reply = { error: "invalid_client", error_description: `${"x".repeat(at)}${echo} and more` };
      const e = await rejection(client(srv.url).getToken());
      assert.equal(e.code, "invalid_client");
      secretFree(e);
      const secretLike = echo.startsWith("Basic ") ? echo.slice(6) : echo;
      for (let n = 4; n <= secretLike.length; n++) assert.ok(!e.message.includes(secretLike.slice(0, n)), `${n} chars of the secret: ${e.message}`);
      const kept = `${"x".repeat(at)}${echo.startsWith("Basic ") ? "Basic [redacted]" : "[redacted]"}`.slice(0, 200);
      assert.ok(e.message.endsWith(`(${kept})`), e.message);
    }
  }
  reply = { error: SECRET, error_description: "no" };
  const e = await rejection(client(srv.url, { authMethod: "client_secret_post" }).getToken());
  assert.equal(e.code, "token_endpoint_error");
  secretFree(e);
});
