// The public API in Node: exports match index.d.ts, config mistakes throw at create, bad input
// always ends in a TokenError with a stable code, audit records never hold the token,
// revocation, authorize(), multi-pool Cognito, and the async crypto.subtle path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import * as api from "../src/node.mjs";
import { createApi } from "../src/core.mjs";
import { subtleCrypto } from "../src/subtle.mjs";
import { nodeCrypto } from "../src/node-crypto.mjs";
import { createRequire } from "node:module";
import { Core, initSync } from "../dist/wasm/tokengate_wasm.js";
import * as f from "./helpers/fixtures.mjs";

const { CognitoVerifier, JwtVerifier, TokenError, authorize } = api;
const DTS = readFileSync(new URL("../index.d.ts", import.meta.url), "utf8");
const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

const cognito = (over = {}) =>
  CognitoVerifier.create({
    userPoolId: f.POOL_ID,
    tokenUse: "access",
    clientId: f.CLIENT_ID,
    scope: ["orders/read"],
    jwks: f.jwks(),
    ...over,
  });

function tokenError(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TokenError, `expected TokenError, got ${e}`);
    return e;
  }
  assert.fail("expected a TokenError");
}

test("the runtime exports exactly the names index.d.ts declares", () => {
  const declared = [...DTS.matchAll(/^export declare (?:class|function) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(Object.keys(api).sort(), declared);
  assert.deepEqual(Object.keys(createRequire(import.meta.url)("../dist/node.cjs")).sort(), declared);
  const iface = DTS.slice(DTS.indexOf("export interface TokenVerifier"));
  const methods = [...iface.slice(0, iface.indexOf("\n}")).matchAll(/^  (?:readonly )?(\w+)[(:]/gm)].map((m) => m[1]).sort();
  const proto = Object.getPrototypeOf(CognitoVerifier.prototype);
  assert.deepEqual(Object.getOwnPropertyNames(proto).filter((n) => n !== "constructor").sort(), methods);
  assert.deepEqual(Object.getOwnPropertyNames(api.TokenClient.prototype).filter((n) => n !== "constructor").sort(), ["getToken", "invalidate", "toJSON"]);
});

test("in Node, signatures go to node:crypto with one KeyObject per kid", () => {
  const calls = { importKey: 0, verify: 0 };
  const counting = {
    sync: true,
    importKey: (...a) => (calls.importKey++, nodeCrypto.importKey(...a)),
    verify: (...a) => (calls.verify++, nodeCrypto.verify(...a)),
  };
  const wasm = initSync();
  const { CognitoVerifier: V } = createApi({ Core, memory: wasm.memory, crypto: counting, fetch: globalThis.fetch });
  const v = V.create({ userPoolId: f.POOL_ID, tokenUse: "access", clientId: f.CLIENT_ID, jwks: f.jwks(), cache: false });
  for (const key of ["rsa-a", "rsa-b", "rsa-a", "rsa-b"]) v.verifySync(f.signToken(f.cognitoClaims(), { key }));
  assert.deepEqual(calls, { importKey: 2, verify: 4 });
  // A key the host cannot import is left to the core, never decided by JS.
  const failing = { sync: true, importKey: () => { throw new Error("no"); }, verify: () => true };
  const w = createApi({ Core, memory: wasm.memory, crypto: failing, fetch: globalThis.fetch }).CognitoVerifier.create({
    userPoolId: f.POOL_ID, tokenUse: "access", clientId: f.CLIENT_ID, jwks: f.jwks(), cache: false });
  const good = f.signToken(f.cognitoClaims());
  assert.equal(w.verifySync(good).client_id, f.CLIENT_ID);
  assert.equal(tokenError(() => w.verifySync(good.slice(0, -3) + "AAA")).code, "signature_invalid");
});

test('the gate configuration\'s "crypto" is honoured, and the option wins over it', () => {
  const calls = { verify: 0 };
  const counting = { sync: true, importKey: nodeCrypto.importKey, verify: (...a) => (calls.verify++, nodeCrypto.verify(...a)) };
  const wasm = initSync();
  const { JwtVerifier: J } = createApi({ Core, memory: wasm.memory, crypto: counting, fetch: globalThis.fetch });
  const doc = (crypto) => ({
    providers: [{ issuer: f.ISSUER, jwks: f.jwks(), client_ids: [f.CLIENT_ID], token_use: "access" }],
    token_cache: { capacity: 0 },
    ...(crypto === undefined ? {} : { crypto }),
  });
  const token = f.signToken(f.cognitoClaims());
  const forged = token.slice(0, -3) + (token.endsWith("AAA") ? "BBB" : "AAA");
  const count = (v) => {
    const before = calls.verify;
    assert.equal(v.verifySync(token).client_id, f.CLIENT_ID);
    assert.equal(tokenError(() => v.verifySync(forged)).code, "signature_invalid");
    return calls.verify - before;
  };
  assert.equal(count(J.fromConfig(doc())), 2);
  assert.equal(count(J.fromConfig(doc("native"))), 2);
  assert.equal(count(J.fromConfig(doc("wasm"))), 0);
  assert.equal(count(J.fromConfig(doc("wasm"), { crypto: "native" })), 2);
  assert.equal(count(J.fromConfig(doc(), { crypto: "wasm" })), 0);
  assert.throws(() => J.fromConfig(doc("boringssl")), (e) => e instanceof TypeError && /crypto/.test(e.message));
  assert.throws(() => J.fromConfig(doc(), { crypto: "boringssl" }), (e) => e instanceof TypeError && /crypto/.test(e.message));
  // create(): the same setting, checked by the core.
  const { CognitoVerifier: C } = createApi({ Core, memory: wasm.memory, crypto: counting, fetch: globalThis.fetch });
  const props = { userPoolId: f.POOL_ID, tokenUse: "access", clientId: f.CLIENT_ID, jwks: f.jwks(), cache: false };
  assert.equal(count(C.create(props)), 2);
  assert.equal(count(C.create({ ...props, crypto: "wasm" })), 0);
  assert.throws(() => C.create({ ...props, crypto: "boringssl" }), (e) => e instanceof TypeError && /crypto: must be "native" or "wasm"/.test(e.message));
});

test("the ErrorCode union, the README table and the core list the same codes", () => {
  const wasm = initSync();
  void wasm;
  const core = new Core(JSON.stringify({ providers: [{ issuer: "i", client_ids: null, jwks: { keys: [] } }] }), 0, 0);
  const codes = JSON.parse(core.info()).codes.map((c) => c.code).sort();
  const union = DTS.slice(DTS.indexOf("export type ErrorCode"), DTS.indexOf(";", DTS.indexOf("export type ErrorCode")));
  assert.deepEqual([...union.matchAll(/"(\w+)"/g)].map((m) => m[1]).sort(), codes);
  const table = [...README.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]).filter((c) => codes.includes(c) || /^[a-z_]+$/.test(c));
  for (const c of codes) assert.ok(table.includes(c), `README error table lacks ${c}`);
});

test("config mistakes throw at create with the field named", () => {
  const throwsConfig = (fn, re) => assert.throws(fn, (e) => e instanceof TypeError && re.test(e.message));
  throwsConfig(() => CognitoVerifier.create({ userPoolId: f.POOL_ID, tokenUse: "access" }), /clientId is required/);
  throwsConfig(() => CognitoVerifier.create({ userPoolId: f.POOL_ID, clientId: null }), /tokenUse is required/);
  throwsConfig(() => CognitoVerifier.create({ userPoolId: "eu-west-1", tokenUse: "access", clientId: null }), /userPoolId: "eu-west-1" is not a Cognito user pool id/);
  throwsConfig(() => cognito({ graceSeconds: 5 }), /graceSeconds.*leewaySeconds/);
  throwsConfig(() => JwtVerifier.create({ issuer: "https://i", clientId: null }), /jwksUri or jwks/);
  throwsConfig(() => JwtVerifier.create({ issuer: "https://i", clientId: null, jwks: f.jwks(), algorithms: ["HS256"] }), /algorithms\[0\]/);
  throwsConfig(() => JwtVerifier.create({ issuer: "https://i", clientId: null, jwksUri: "ftp://x" }), /jwksUri/);
  throwsConfig(() => JwtVerifier.create({ issuer: "https://i", clientId: null, jwks: "{nope" }), /jwks is not JSON/);
  throwsConfig(() => cognito({ scope: { all: ["a"], any: ["b"] } }), /scope/);
  throwsConfig(() => cognito({ leewaySeconds: -1 }), /leewaySeconds/);
  throwsConfig(() => cognito({ cache: { size: 1 } }), /cache: unknown option "size"/);
  throwsConfig(() => CognitoVerifier.create([]), /at least one issuer/);
  assert.throws(() => new (Object.getPrototypeOf(CognitoVerifier))(), /create\(\)/);
});

test("anything that is not a token string gets a TokenError with a stable code", () => {
  const v = cognito({ realm: "api" });
  for (const [input, code] of [
    [undefined, "token_missing"],
    [null, "token_missing"],
    ["", "token_missing"],
    [42, "token_malformed"],
    [{ toString: () => "x" }, "token_malformed"],
    [["a.b.c"], "token_malformed"],
    ["a.b", "token_malformed"],
    ["é.ü.ß", "token_malformed"],
    ["\ud800.\udfff.x", "token_malformed"],
    [" " + f.signToken(f.cognitoClaims()), "token_malformed"],
  ]) {
    const e = tokenError(() => v.verifySync(input));
    assert.equal(e.code, code, `${inspect(input)}`);
    assert.equal(e.status, 401);
    assert.match(e.wwwAuthenticate, /^Bearer realm="api"/);
  }
  assert.equal(tokenError(() => v.verifySync(undefined)).wwwAuthenticate, 'Bearer realm="api"');
});

test("a huge token is refused as token_too_large without copying it", () => {
  const v = cognito();
  const huge = "a".repeat(50 * 1024 * 1024);
  const t = process.hrtime.bigint();
  const e = tokenError(() => v.verifySync(huge));
  assert.equal(e.code, "token_too_large");
  assert.ok(Number(process.hrtime.bigint() - t) < 1e9, "took more than a second");
  const multibyte = "€".repeat(6000); // 6000 UTF-16 units, 18000 UTF-8 bytes
  assert.equal(tokenError(() => v.verifySync(multibyte)).code, "token_too_large");
});

test("claims are returned frozen, again from the token cache, with every check re-run", () => {
  const v = cognito();
  const token = f.signToken(f.cognitoClaims());
  const a = v.verifySync(token);
  const b = v.verifySync(token);
  assert.equal(a.client_id, f.CLIENT_ID);
  assert.ok(Object.isFrozen(a));
  assert.equal(b, a);
  // A cached token still fails a route scope and its expiry.
  assert.equal(tokenError(() => v.verifySync(token, { scope: ["orders/admin"] })).code, "scope_insufficient");
  assert.equal(tokenError(() => v.verifySync(token, { now: a.exp })).code, "token_expired");
});

test("a small token cache under churn never answers with another token's claims", () => {
  // Three clients' tokens through a 2-entry cache: entries are evicted and re-verified in turn
  // (CLOCK ring), claims ids are handed out again, and every answer is its own token's.
  const v = cognito({ cache: { maxEntries: 2 } });
  const tokens = [0, 1, 2].map((i) => f.signToken(f.cognitoClaims({ jti: `churn-${i}` }), { key: i === 1 ? "rsa-b" : "rsa-a" }));
  const seen = new Map();
  for (let round = 0; round < 50; round++) {
    const i = (round * 7 + (round >> 2)) % 3;
    const claims = v.verifySync(tokens[i]);
    assert.equal(claims.jti, `churn-${i}`);
    assert.ok(Object.isFrozen(claims));
    if (!seen.has(i)) seen.set(i, claims);
  }
  // A revoked token that was cached is refused, the others still pass from the cache.
  v.revoke({ jti: "churn-1" });
  assert.equal(tokenError(() => v.verifySync(tokens[1])).code, "token_revoked");
  assert.equal(v.verifySync(tokens[0]).jti, "churn-0");
  assert.equal(v.verifySync(tokens[2]).jti, "churn-2");
});

test("scope_insufficient is a 403 whose challenge lists the requirement the token fails", () => {
  const v = cognito({ realm: "orders" });
  const token = f.signToken(f.cognitoClaims({ scope: "orders/read" }));
  const e = tokenError(() => v.verifySync(token, { scope: ["orders/write"] }));
  assert.equal(e.code, "scope_insufficient");
  assert.equal(e.status, 403);
  // The verifier's own scope (orders/read) is met; the call's is not, so it alone is listed.
  assert.equal(e.wwwAuthenticate, 'Bearer realm="orders", error="insufficient_scope", scope="orders/write"');
  const missing = f.signToken(f.cognitoClaims({ scope: "orders/write" }));
  assert.equal(
    tokenError(() => v.verifySync(missing, { scope: ["orders/write"] })).wwwAuthenticate,
    'Bearer realm="orders", error="insufficient_scope", scope="orders/read"',
    "the verifier's requirement is checked (and listed) first",
  );
  assert.equal(e.claims.client_id, f.CLIENT_ID, "claims are attached once the signature was valid");
  const bad = tokenError(() => v.verifySync(token.slice(0, -4) + "AAAA"));
  assert.equal(bad.code, "signature_invalid");
  assert.equal(bad.claims, null, "no claims without a valid signature");
});

test("the reused input buffer never mixes up tokens, per-request strings or sizes", () => {
  const v = cognito({ cache: false });
  const a = f.signToken(f.cognitoClaims({ jti: "a" }));
  const b = f.signToken(f.cognitoClaims({ jti: "b", pad: "x".repeat(5000) }));
  const sequence = [
    [a, undefined, "a"],
    [a.slice(), undefined, "a"], // equal content, another string
    [b, { route: "/r" }, "b"],
    [a, undefined, "a"],
    [b, undefined, "b"],
    [a.slice(0, -10) + (a.at(-10) === "A" ? "B" : "A") + a.slice(-9), undefined, "signature_invalid"],
    [a, { certThumbprint: "x" }, "a"],
    [undefined, { route: "/health" }, "token_missing"],
    [a, undefined, "a"],
    ["x".repeat(20000), undefined, "token_too_large"],
    [a, undefined, "a"],
  ];
  // More clients than the buffer keeps tokens for, in turn, between other writes.
  const many = [0, 1, 2, 3, 4, 5].map((i) => f.signToken(f.cognitoClaims({ jti: `m${i}` })));
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < many.length; i += 1 + (round % 2)) sequence.push([many[i], undefined, `m${i}`]);
    sequence.push([many[round], { route: "/r" }, `m${round}`], [b, undefined, "b"], [many[5 - round], undefined, `m${5 - round}`]);
  }
  for (const [n, [token, options, want]] of sequence.entries()) {
    let got;
    try {
      got = v.verifySync(token, options).jti;
    } catch (e) {
      got = e.code;
    }
    assert.equal(got, want);
    if (n % 5 === 4) {
      // A whole request written into the same buffer in between.
      const auth = v.decideSync({ method: "GET", target: "/", authorization: [`Bearer ${many[n % 6]}`] });
      assert.equal(auth.claims.jti, `m${n % 6}`);
    }
  }
});

test("many distinct route scopes (beyond the registry size) keep their meaning", () => {
  const v = cognito();
  const token = f.signToken(f.cognitoClaims({ scope: "orders/read s1050" }));
  for (let i = 0; i < 1100; i++) {
    const want = `s${i}`;
    let code = "accept";
    try {
      v.verifySync(token, { scope: [want] });
    } catch (e) {
      code = e.code;
    }
    assert.equal(code, i === 1050 ? "accept" : "scope_insufficient", want);
  }
  assert.equal(tokenError(() => v.verifySync(token, { scope: '["s1050"]' })).code, "scope_insufficient");
});

test("options.now and other per-request options are checked", () => {
  const v = cognito();
  const token = f.signToken(f.cognitoClaims());
  assert.throws(() => v.verifySync(token, { now: "soon" }), TypeError);
  assert.throws(() => v.verifySync(token, { now: -1 }), TypeError);
  assert.throws(() => v.verifySync(token, { certThumbprint: 5 }), TypeError);
  assert.throws(() => v.verifySync(token, { scope: { some: [] } }), TypeError);
});

test("onDecision gets one redacted record per decision, and its exceptions change nothing", () => {
  const records = [];
  const v = cognito({ onDecision: (r) => records.push(r) });
  const token = f.signToken(f.cognitoClaims());
  v.verifySync(token, { route: "/orders" });
  v.verifySync(token);
  tokenError(() => v.verifySync("x.y.z"));
  tokenError(() => v.verifySync(undefined, { route: "/health" }));
  assert.equal(records.length, 4);
  assert.deepEqual(
    records.map((r) => [r.decision, r.code, r.route, r.cached]),
    [
      ["allow", null, "/orders", false],
      ["allow", null, null, true],
      ["deny", "token_malformed", null, false],
      ["deny", "token_missing", "/health", false],
    ],
  );
  assert.equal(records[0].client_id, f.CLIENT_ID);
  assert.match(records[0].jti_sha256, /^[0-9a-f]{64}$/);
  const text = JSON.stringify(records);
  assert.ok(!text.includes(token) && !text.includes(token.split(".")[2]), "the token must not be logged");
  assert.ok(!text.includes("c4584f2c-9b84"), "jti is logged hashed");
  const noisy = cognito({ onDecision: () => { throw new Error("sink down"); } });
  assert.equal(noisy.verifySync(token).client_id, f.CLIENT_ID);
});

test("revoke() and setRevocation() apply at once, cached tokens included", () => {
  const v = cognito();
  const t1 = f.signToken(f.cognitoClaims({ jti: "jti-1" }));
  const t2 = f.signToken(f.cognitoClaims({ jti: "jti-2", iat: Math.floor(Date.now() / 1000) - 600 }));
  v.verifySync(t1);
  v.revoke({ jti: "jti-1" });
  assert.equal(tokenError(() => v.verifySync(t1)).code, "token_revoked");
  v.verifySync(t2);
  v.revoke({ clientId: f.CLIENT_ID, issuedBefore: new Date(Date.now() - 300_000) });
  assert.equal(tokenError(() => v.verifySync(t2)).code, "token_revoked");
  v.setRevocation({});
  assert.equal(v.verifySync(t1).jti, "jti-1");
  v.revoke({ clientId: f.CLIENT_ID });
  assert.equal(tokenError(() => v.verifySync(t2)).code, "token_revoked");
  assert.throws(() => v.revoke({ jti: 1 }), TypeError);
  assert.throws(() => v.revoke({ issuer: "x" }), TypeError);
  assert.throws(() => v.revoke({}), TypeError);
});

test("authorize() answers per RFC 6750 for Node headers, Fetch Requests and plain objects", async () => {
  const v = cognito({ realm: "api" });
  const token = f.signToken(f.cognitoClaims({ scope: "orders/read" }));
  const ok = await v.authorize({ headers: { authorization: `Bearer ${token}` } });
  assert.equal(ok.ok, true);
  assert.equal(ok.status, 200);
  assert.equal(ok.claims.client_id, f.CLIENT_ID);
  const viaFetch = await authorize(v, new Request("http://x/", { headers: { Authorization: `bearer ${token}` } }));
  assert.equal(viaFetch.ok, true);
  const missing = await v.authorize({ headers: {} });
  assert.deepEqual([missing.status, missing.headers["www-authenticate"]], [401, 'Bearer realm="api"']);
  assert.deepEqual(JSON.parse(missing.body), { error: "token_missing", message: "the request carries no access token" });
  const basic = await v.authorize({ headers: { Authorization: "Basic dXNlcjpwdw==" } });
  assert.equal(basic.error.code, "token_missing");
  const forged = await v.authorize({ headers: { authorization: `Bearer ${token}x` } });
  assert.equal(forged.status, 401);
  assert.equal(forged.headers["www-authenticate"], 'Bearer realm="api", error="invalid_token"');
  assert.equal(forged.headers["cache-control"], "no-store");
  const scope = await v.authorize({ headers: { authorization: `Bearer ${token}` } }, { scope: "orders/write" });
  assert.equal(scope.status, 403);
  assert.equal(scope.headers["www-authenticate"], 'Bearer realm="api", error="insufficient_scope", scope="orders/write"');
  assert.ok(!scope.body.includes(token));
  // RFC 9110: one or more spaces after the scheme; the same answer as the Envoy filter.
  assert.equal((await v.authorize({ headers: { authorization: `Bearer  ${token}` } })).status, 200);
  // Several Authorization values are refused, however the runtime hands them over.
  const twice = [`Bearer ${token}`, `Bearer ${token}`];
  assert.equal((await v.authorize({ headers: { authorization: twice } })).code, "token_malformed");
  assert.equal((await v.authorize({ headers: {}, headersDistinct: { authorization: twice } })).code, "token_malformed");
  assert.equal((await v.authorize({ headers: {}, rawHeaders: ["Authorization", twice[0], "authorization", twice[1]] })).code, "token_malformed");
  const joined = new Headers();
  joined.append("authorization", twice[0]);
  joined.append("authorization", twice[1]);
  assert.equal((await v.authorize(new Request("http://x/", { headers: joined }))).code, "token_malformed");
  // Per-call scope lists that name nothing would require nothing: refused.
  for (const scope of [[], { all: [] }, { any: [] }, ""]) {
    await assert.rejects(v.authorize({ headers: { authorization: `Bearer ${token}` } }, { scope }), TypeError);
    assert.throws(() => v.verifySync(token, { scope }), TypeError);
  }
});

test("routes: the Envoy rule list in a Node or Worker host, with path safety and forwarded claims", async () => {
  const v = cognito({
    scope: undefined,
    routes: [
      { name: "health", match: { prefix: "/health" }, allow: "anonymous" },
      { name: "admin", match: { prefix: "/admin" }, scopes: { all: ["admin"] } },
      { name: "read", match: { prefix: "/orders", methods: ["GET"] }, scopes: { all: ["orders/read"] } },
      { name: "rest", match: { prefix: "/" }, allow: "authenticated" },
    ],
    forward: { client_id: "x-client-id", scope: "x-scope" },
  });
  const token = f.signToken(f.cognitoClaims({ scope: "orders/read" }));
  const req = (method, url, auth = `Bearer ${token}`) => ({ method, url, headers: auth ? { authorization: auth } : {} });
  assert.equal((await v.authorize(req("GET", "/health", null))).route, "health");
  const ok = await v.authorize(req("GET", "/orders/7?x=1"));
  assert.deepEqual([ok.status, ok.route, ok.forward], [200, "read", { "x-client-id": f.CLIENT_ID, "x-scope": "orders/read" }]);
  // What an origin could resolve to /admin is refused (400) or matched as /admin (403).
  for (const url of ["/admin;x=1", "/health/../admin", "/health/..;/admin", "/%2e%2e/admin", "//admin", "/health%2Fadmin"]) {
    const r = await v.authorize(req("GET", url));
    assert.deepEqual([r.status, r.code], [400, "request_invalid"], url);
    assert.equal(r.headers["www-authenticate"], undefined);
  }
  const encoded = await v.authorize(req("GET", "/%61dmin"));
  assert.deepEqual([encoded.status, encoded.headers["www-authenticate"]], [403, 'Bearer realm="tokengate", error="insufficient_scope", scope="admin"']);
  assert.deepEqual([(await v.authorize(req("get", "/orders"))).code], ["request_invalid"]);
  // A Fetch Request's URL is parsed by the runtime (as the origin will see it).
  const viaFetch = await v.authorize(new Request("http://x/health/../admin", { headers: { authorization: `Bearer ${token}` } }));
  assert.deepEqual([viaFetch.status, viaFetch.route], [403, null]);
  // decide() takes the facts directly.
  const d = v.decideSync({ method: "POST", target: "/orders", authorization: `Bearer ${token}` });
  assert.deepEqual([d.status, d.route], [200, "rest"]);
});

test("several Cognito pools in one verifier; both issuer forms; cacheJwks needs the issuer", () => {
  const other = "us-east-1_OTHERpool";
  const otherIss = `https://cognito-idp.us-east-1.amazonaws.com/${other}`;
  const v = CognitoVerifier.create(
    [
      { userPoolId: f.POOL_ID, tokenUse: "access", clientId: f.CLIENT_ID, jwks: f.jwks("rsa-a") },
      { userPoolId: other, tokenUse: "access", clientId: "otherclient", jwks: f.jwks("rsa-b") },
    ],
    { realm: "api" },
  );
  assert.equal(v.verifySync(f.signToken(f.cognitoClaims())).iss, f.ISSUER);
  const alt = f.ISSUER.replace("cognito-idp", "issuer-cognito-idp");
  assert.equal(v.verifySync(f.signToken(f.cognitoClaims({ iss: alt }))).iss, alt);
  const fromOther = f.signToken(f.cognitoClaims({ iss: otherIss, client_id: "otherclient" }), { key: "rsa-b" });
  assert.equal(v.verifySync(fromOther).client_id, "otherclient");
  const crossed = f.signToken(f.cognitoClaims({ iss: otherIss }), { key: "rsa-b" });
  assert.equal(tokenError(() => v.verifySync(crossed)).code, "client_not_allowed");
  assert.throws(() => v.cacheJwks(f.jwks()), /pass the issuer/);
  assert.throws(() => v.cacheJwks(f.jwks(), "https://nope"), /not a configured issuer/);
  assert.throws(() => v.cacheJwks({ keys: [] }, otherIss), /no usable/);
  v.cacheJwks(f.jwks("rsa-a", "rsa-b"), other); // a pool id works too, as in aws-jwt-verify
  assert.equal(v.verifySync(f.signToken(f.cognitoClaims({ iss: otherIss, client_id: "otherclient" }), { key: "rsa-a" })).iss, otherIss);
});

test("ES256 issuers and the pure-wasm backend agree with node:crypto", () => {
  for (const crypto of ["native", "wasm"]) {
    const v = JwtVerifier.create({ issuer: "https://auth.example.test", jwks: f.jwks("ec-a", "rsa-a"), algorithms: ["ES256", "RS256"], clientId: null, crypto });
    const claims = { iss: "https://auth.example.test", exp: Math.floor(Date.now() / 1000) + 60 };
    assert.equal(v.verifySync(f.signToken(claims, { key: "ec-a" })).iss, claims.iss);
    const t = f.signToken(claims, { key: "ec-a" });
    const flipped = t.slice(0, -2) + (t.at(-2) === "A" ? "B" : "A") + t.at(-1);
    assert.equal(tokenError(() => v.verifySync(flipped)).code, "signature_invalid");
  }
});

test("the crypto.subtle path (Workers, browsers) verifies concurrently and agrees", async () => {
  const wasm = initSync();
  const web = createApi({ Core, memory: wasm.memory, crypto: subtleCrypto(), fetch: () => Promise.reject(new Error("offline")) });
  const v = web.JwtVerifier.create({ issuer: f.ISSUER, jwks: f.jwks("rsa-a", "rsa-b", "ec-a"), algorithms: ["RS256", "ES256"], clientId: f.CLIENT_ID, tokenUse: "access", cache: false });
  const jobs = [];
  for (let i = 0; i < 60; i++) {
    const key = ["rsa-a", "rsa-b", "ec-a"][i % 3];
    let t = f.signToken(f.cognitoClaims({ jti: `j${i}` }), { key });
    if (i % 4 === 0) t = t.slice(0, -3) + "AAA";
    jobs.push(v.verify(t).then((c) => c.jti, (e) => e.code));
  }
  const got = await Promise.all(jobs);
  assert.deepEqual(got, got.map((_, i) => (i % 4 === 0 ? "signature_invalid" : `j${i}`)));
  // verifySync has no synchronous Web Crypto: the core checks the signature itself.
  assert.equal(v.verifySync(f.signToken(f.cognitoClaims())).client_id, f.CLIENT_ID);
});
