// The policy feed in Node against a real local server: the first document is waited for, a
// revocation or an allow-list change applies to cached tokens on the next poll, If-None-Match
// gets 304s, signed documents are checked, a stale feed keeps serving or fails closed.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as api from "../src/node.mjs";
import * as f from "./helpers/fixtures.mjs";
import { serve } from "./helpers/servers.mjs";

const { CognitoVerifier } = api;

/** A feed server whose document the test changes; ETag = version. */
async function feedServer() {
  let doc = { format: 1, version: 1, issued_at: Math.floor(Date.now() / 1000), providers: {} };
  let down = false;
  let signed = null;
  const srv = await serve((req, res) => {
    if (down) {
      res.writeHead(503).end();
      return;
    }
    const etag = `"${doc.version}"`;
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    const body = signed ? signed(doc) : JSON.stringify(doc);
    res.writeHead(200, { etag, "content-type": signed ? "application/jose" : "application/json" }).end(body);
  });
  return {
    srv,
    set(next) {
      doc = { ...doc, ...next, version: doc.version + 1 };
    },
    down(v) {
      down = v;
    },
    sign(fn) {
      signed = fn;
    },
  };
}

function verifier(feed, over = {}) {
  return CognitoVerifier.create({
    userPoolId: f.POOL_ID,
    tokenUse: "access",
    clientId: [f.CLIENT_ID, "new-client"],
    jwks: f.jwks(),
    feed: { uri: `${feed.srv.url}/edge-policy.json`, unsigned: true, poll_s: 1, max_stale_s: 2, ...over },
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("a revocation in the feed denies a cached token on the next poll; If-None-Match gets 304", async (t) => {
  const feed = await feedServer();
  t.after(() => feed.srv.close());
  const v = verifier(feed);
  const token = f.signToken(f.cognitoClaims());
  const req = { method: "GET", url: "/orders", headers: { authorization: `Bearer ${token}` } };
  assert.equal((await v.authorize(req)).status, 200, "waits for the first document");
  assert.deepEqual(v.feedState().status, "fresh");
  assert.equal((await v.authorize(req)).status, 200);
  await sleep(1100);
  assert.equal((await v.authorize(req)).status, 200); // polls in the background: 304
  await v.hydrate();
  assert.ok(feed.srv.requests.some((r) => r.headers["if-none-match"] === '"1"'), "conditional request sent");
  const until = Math.floor(Date.now() / 1000) + 600;
  feed.set({ providers: { [f.ISSUER]: { revoke: { client_ids: [{ id: f.CLIENT_ID, until }] } } } });
  await sleep(1100);
  await v.authorize(req); // starts the poll
  await v.hydrate(); // waits for it
  const denied = await v.authorize(req);
  assert.deepEqual([denied.status, denied.code], [401, "token_revoked"]);
  assert.equal(v.feedState().version, 2);
  // verify() honours the feed too.
  await assert.rejects(v.verify(token), (e) => e.code === "token_revoked");
});

test("the feed's allow-list replaces the configured one (a client rotation)", async (t) => {
  const feed = await feedServer();
  t.after(() => feed.srv.close());
  feed.set({ providers: { [f.ISSUER]: { client_ids: ["new-client"] } } });
  const v = verifier(feed);
  const old = f.signToken(f.cognitoClaims());
  const fresh = f.signToken(f.cognitoClaims({ client_id: "new-client", sub: "new-client", jti: "n1" }));
  assert.equal((await v.verify(fresh)).client_id, "new-client");
  await assert.rejects(v.verify(old), (e) => e.code === "client_not_allowed");
});

test("signed feeds are checked with the feed keys; a plain document is refused and the last good one stays", async (t) => {
  const feed = await feedServer();
  t.after(() => feed.srv.close());
  const key = f.testKey("ec-a");
  feed.sign((doc) => f.signToken(doc, { key: "ec-a", header: { typ: "tokengate-feed+jwt" } }));
  const v = verifier(feed, { unsigned: undefined, keys: [key.jwk], algorithms: ["ES256"] });
  const token = f.signToken(f.cognitoClaims());
  assert.equal((await v.verify(token)).client_id, f.CLIENT_ID);
  assert.equal(v.feedState().version, 1);
  feed.sign(null); // a cache in between serves an unsigned document
  feed.set({ providers: { [f.ISSUER]: { client_ids: [] } } });
  await sleep(1100);
  await v.verify(token);
  await v.hydrate().catch(() => {});
  assert.equal(v.feedState().version, 1, "the unsigned document was not taken");
  assert.match(v.feedState().last_error, /not signed/);
  assert.equal((await v.verify(token)).client_id, f.CLIENT_ID);
});

test("a stale feed keeps serving by default and fails closed when configured", async (t) => {
  for (const [stale, expect] of [["keep", 200], ["fail_closed", 503]]) {
    const feed = await feedServer();
    t.after(() => feed.srv.close());
    const v = verifier(feed, { stale });
    const token = f.signToken(f.cognitoClaims());
    const req = { method: "GET", url: "/orders", headers: { authorization: `Bearer ${token}` } };
    assert.equal((await v.authorize(req)).status, 200);
    feed.down(true);
    const deadline = Date.now() + 6000;
    while (v.feedState().status !== "stale" && Date.now() < deadline) {
      await v.authorize(req);
      await sleep(200);
    }
    assert.equal(v.feedState().status, "stale", stale);
    const r = await v.authorize(req);
    assert.equal(r.status, expect, stale);
    if (expect === 503) {
      assert.deepEqual([r.code, r.headers["retry-after"]], ["policy_unavailable", "5"]);
    }
  }
});

test("a feed that cannot be had at start: the first requests wait, then the stale policy decides", async (t) => {
  const feed = await feedServer();
  t.after(() => feed.srv.close());
  feed.down(true);
  const v = verifier(feed, { stale: "fail_closed" });
  const r = await v.authorize({ method: "GET", url: "/", headers: { authorization: `Bearer ${f.signToken(f.cognitoClaims())}` } });
  assert.deepEqual([r.status, r.code], [503, "policy_unavailable"]);
  await assert.rejects(v.hydrate(), (e) => e.code === "policy_unavailable");
});

test("a feed written by a pipeline and served by a plain static file server works (no ETag needed)", async (t) => {
  const { spawn } = await import("node:child_process");
  const { mkdtempSync, writeFileSync, renameSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "tokengate-feed-"));
  // The "pipeline": writes the signed document atomically, as a job would upload it to a bucket.
  const publish = (doc) => {
    writeFileSync(join(dir, "next.jws"), f.signToken(doc, { key: "ec-a", header: { typ: "tokengate-feed+jwt" } }));
    renameSync(join(dir, "next.jws"), join(dir, "edge-policy.json"));
  };
  publish({ format: 1, version: 1, issued_at: Math.floor(Date.now() / 1000), providers: {} });
  const server = spawn("python3", ["-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir], { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("python http.server did not start")), 10_000);
    server.stdout.on("data", (d) => {
      const m = /port (\d+)/.exec(String(d));
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  const v = CognitoVerifier.create({
    userPoolId: f.POOL_ID,
    tokenUse: "access",
    clientId: [f.CLIENT_ID],
    jwks: f.jwks(),
    feed: { uri: `http://127.0.0.1:${port}/edge-policy.json`, keys: [f.testKey("ec-a").jwk], algorithms: ["ES256"], poll_s: 1 },
  });
  const token = f.signToken(f.cognitoClaims());
  assert.equal((await v.verify(token)).client_id, f.CLIENT_ID);
  publish({ format: 1, version: 2, issued_at: Math.floor(Date.now() / 1000), providers: { [f.ISSUER]: { revoke: { client_ids: [f.CLIENT_ID] } } } });
  await sleep(1100);
  await v.verify(token).catch(() => {});
  await v.hydrate().catch(() => {});
  assert.equal(v.feedState().version, 2);
  await assert.rejects(v.verify(token), (e) => e.code === "token_revoked");
});
