// The demo's story: machines get tokens with client credentials (TokenClient, the npm package's
// Node entry) and call GET/POST /orders through each edge that runs tokengate — Envoy with the
// proxy-wasm filter and the Cloudflare worker in workerd. Every step sends the same request to
// every edge and checks the verdict (status + reason code) against what the story expects.
//
//   node demo/story.mjs --issuer URL --envoy URL [--worker URL] [--quick]
//        [--envoy-mtls URL --token-mtls URL --certs DIR]
// With the mTLS options (Envoy's mTLS listeners and the certificates of demo/certs.sh), the
// story also shows workload identity: a pinned client's token only from its workload's
// certificate, and a token bound to a certificate (RFC 8705) only with that certificate.
// Exit status 0 only if every verdict matched.
import { TokenClient } from "../js/src/node.mjs";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { gateConfig } from "./gate-config.mjs";

const policy = JSON.parse(readFileSync(new URL("./policy.json", import.meta.url), "utf8"));
const opt = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const quick = process.argv.includes("--quick");
const issuer = opt("issuer");
const adminToken = opt("admin-token") ?? "tokengate-demo-admin-token";
const edges = [
  ["Envoy", opt("envoy")],
  ["worker", opt("worker")],
].filter(([, url]) => url);
if (!issuer || edges.length === 0) {
  console.error("usage: node demo/story.mjs --issuer URL --envoy URL [--worker URL] [--quick] [--envoy-mtls URL --token-mtls URL --certs DIR]");
  process.exit(2);
}
const envoyMtls = opt("envoy-mtls");
const tokenMtls = opt("token-mtls");
const certs = opt("certs");
const pool = policy.pool;
const tokenEndpoint = `${issuer}/${pool}/oauth2/token`;
const REQUEST_TIMEOUT_MS = 10_000;

const SECRETS = {
  "orders-reader": "orders-reader-secret",
  "orders-reader-v2": "orders-reader-v2-secret",
  "orders-writer": "orders-writer-secret",
  "not-allowed-client": "not-allowed-secret",
  "revoked-client": "revoked-secret",
  "orders-batch": "orders-batch-secret",
};
const client = (id) => new TokenClient({ tokenEndpoint, clientId: id, clientSecret: SECRETS[id], timeoutMs: 5000 });

// ---------------------------------------------------------------------------------------------

const results = [];
const W = { n: 3, request: 34, verdict: 23, expected: 22 };
const tty = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code, s) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
let stepNo = 0;

function header() {
  if (quick) return;
  const cells = ["", "request", ...edges.map(([name]) => name), "expected"];
  const widths = [W.n, W.request, ...edges.map(() => W.verdict), W.expected];
  console.log(cells.map((c, i) => c.padEnd(widths[i])).join(" ").trimEnd());
  console.log("-".repeat(widths.reduce((a, b) => a + b + 1, 0) + 1));
}

/** One HTTP request to an edge; the verdict is the status plus the reason code. */
async function send(base, method, path, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const res = await fetch(base + path, { method, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  return verdict(res.status, (name) => res.headers.get(name), await res.text());
}

/** A workload's TEST certificate and key (demo/certs.sh), and the CA that signed Envoy's. */
const identity = (name) => ({
  ca: readFileSync(join(certs, "ca.pem")),
  cert: readFileSync(join(certs, `${name}.pem`)),
  key: readFileSync(join(certs, `${name}-key.pem`)),
});

/** RFC 8705 §3.1 thumbprint of a workload's certificate: base64url of the DER's SHA-256. */
const thumbprintOf = (name) =>
  Buffer.from(new X509Certificate(readFileSync(join(certs, `${name}.pem`))).fingerprint256.replaceAll(":", ""), "hex")
    .toString("base64url");

/** One HTTPS request over mTLS, presenting the workload `who`'s certificate. */
function requestTls(url, { method, headers = {}, body }, who) {
  return new Promise((resolveAnswer, reject) => {
    const req = httpsRequest(
      url,
      { method, headers, ...identity(who), agent: false, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolveAnswer({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** `send` over Envoy's mTLS listener, as the workload `who`. */
async function sendTls(base, method, path, token, who) {
  const res = await requestTls(base + path, { method, headers: token ? { authorization: `Bearer ${token}` } : {} }, who);
  return verdict(res.status, (name) => res.headers[name] ?? null, res.text);
}

/** A token for a tls_client_auth client: authenticated by its certificate at Envoy's mTLS token listener. */
async function tokenByCertificate(clientId, who) {
  const res = await requestTls(
    `${tokenMtls}/${pool}/oauth2/token`,
    {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId }).toString(),
    },
    who,
  );
  if (res.status !== 200) throw new Error(`token request for ${clientId} over mTLS answered ${res.status}: ${res.text}`);
  return JSON.parse(res.text).access_token;
}

/** The verdict of an edge's answer: status, reason code, and a line of detail. */
function verdict(status, header, text) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const challenge = header("www-authenticate");
  const oauthError = /error="([^"]+)"/.exec(challenge ?? "")?.[1] ?? null;
  // The reason code is the JSON body's "error"; the RFC 6750 challenge is the fallback.
  const code = status === 200 ? "ok" : body?.error ?? oauthError ?? "?";
  let detail;
  if (status === 200) {
    const f = body?.forwarded ?? {};
    detail = f["x-tokengate-client-id"]
      ? `origin saw client_id=${f["x-tokengate-client-id"]} scope="${f["x-tokengate-scope"] ?? ""}"`
      : "origin answered";
  } else if (challenge) {
    // The realm is the same on every line; the error and scope parameters are the news.
    const params = challenge.replace(/^Bearer\s+/, "").replace(/realm="[^"]*"(,\s*)?/, "");
    detail = `WWW-Authenticate: Bearer ${params || "(realm only)"}`;
  } else if (header("retry-after")) {
    detail = `Retry-After: ${header("retry-after")}`;
  }
  return { status, code, detail };
}

/**
 * A story step: the same request to every edge (`run(edgeUrl, edgeName)` returns {status, code,
 * detail}); each verdict must equal `expect`, or `expect[edgeName]` where the edges differ
 * (the worker gets no client certificate).
 */
async function step(title, request, expect, run) {
  stepNo += 1;
  const verdicts = [];
  const wanted = (name) => expect[name] ?? expect;
  for (const [name, base] of edges) {
    let v;
    try {
      v = await run(base, name);
    } catch (e) {
      v = { status: 0, code: "error", detail: e.message };
    }
    const ok = v.status === wanted(name).status && v.code === wanted(name).code;
    results.push({ title, edge: name, ok });
    verdicts.push({ name, v, ok });
  }
  const allOk = verdicts.every((x) => x.ok);
  const want = [...new Set(edges.map(([name]) => `${wanted(name).status} ${wanted(name).code}`))].join(" / ");
  if (quick) {
    if (!allOk) {
      const got = verdicts.map((x) => `${x.name} ${x.v.status} ${x.v.code}${x.v.detail ? ` (${x.v.detail})` : ""}`);
      console.log(`MISMATCH ${stepNo}. ${title}: expected ${want}; ${got.join("; ")}`);
    }
    return;
  }
  const cells = verdicts.map((x) => paint(x.ok ? 32 : 31, `${x.v.status} ${x.v.code}`.padEnd(W.verdict)));
  const mark = allOk ? paint(32, "✓") : paint(31, "✗ MISMATCH");
  console.log(`${String(stepNo).padStart(2)}. ${request.padEnd(W.request)} ${cells.join(" ")} ${want.padEnd(W.expected)} ${mark}`);
  const details = [...new Set(verdicts.map((x) => x.v.detail).filter(Boolean))];
  const detail =
    details.length <= 1 ? details[0] : verdicts.map((x) => `${x.name}: ${x.v.detail ?? "-"}`).join("; ");
  console.log(paint(2, `    └ ${title}${detail ? ` — ${detail}` : ""}`));
}

async function mint(body) {
  const res = await fetch(`${issuer}/admin/${pool}/mint`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`admin mint answered ${res.status}`);
  return (await res.json()).access_token;
}

async function rotate() {
  const res = await fetch(`${issuer}/admin/${pool}/rotate?immediate=true`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}` },
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw new Error(`admin rotate answered ${res.status}`);
  return res.json();
}

/** An admin call that changes the policy feed; resolves to the issuer's answer (its version). */
async function admin(path, body) {
  const res = await fetch(`${issuer}/admin/${pool}/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`admin ${path} answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/**
 * Seconds from `t0` until `token` gets `want` (a status) from the edge at `base`, polling every
 * 100 ms (within the per-client rate limit), at most `limitS` seconds; null if it never did.
 */
async function secondsUntil(base, method, token, want, t0, limitS = 15) {
  for (;;) {
    const v = await send(base, method, "/orders", token);
    const s = (performance.now() - t0) / 1000;
    if (v.status === want) return { s, v };
    if (s > limitS) return { s: null, v };
    await new Promise((r) => setTimeout(r, 100));
  }
}

const kidOf = (token) => JSON.parse(Buffer.from(token.split(".")[0], "base64url")).kid;
const short = (kid) => `${kid.slice(0, 8)}…`;

// ---------------------------------------------------------------------------------------------

// `--feed-bench N`: instead of the story, N breach trials — revoke a client at the issuer and
// time how long until each edge denies its token, then lift the revocation — printing p50 and
// max per edge (scripts/bench-feed.sh).
const feedTrials = Number(opt("feed-bench") ?? 0);
if (feedTrials > 0) {
  const token = await client("orders-writer").getToken();
  const times = Object.fromEntries(edges.map(([name]) => [name, []]));
  for (let i = 0; i < feedTrials; i++) {
    for (const [, base] of edges) {
      if ((await secondsUntil(base, "GET", token, 200, performance.now(), 10)).s === null) throw new Error("token not admitted");
    }
    const t0 = performance.now();
    await admin("revoke-client", { client_id: "orders-writer", until: Math.floor(Date.now() / 1000) + 600 });
    const got = await Promise.all(edges.map(([, base]) => secondsUntil(base, "GET", token, 401, t0, 10)));
    edges.forEach(([name], j) => times[name].push(got[j].s ?? Infinity));
    await admin("revoke-client", { client_id: "orders-writer", until: Math.floor(Date.now() / 1000) - 1 });
  }
  const fmt = (xs) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return `p50 ${sorted[Math.floor((sorted.length - 1) / 2)].toFixed(2)} s, max ${sorted[sorted.length - 1].toFixed(2)} s`;
  };
  console.log(`time from revoke-client at the issuer to a 401 at the edge, ${feedTrials} trials (feed poll_s ${gateConfig({ iss: "-", issuerUrl: issuer }).feed.poll_s}):`);
  for (const [name] of edges) console.log(`  ${name.padEnd(7)} ${fmt(times[name])}`);
  process.exit(Object.values(times).flat().every(Number.isFinite) ? 0 : 1);
}

const reader = client("orders-reader");
const writer = client("orders-writer");
const readerToken = await reader.getToken();
const writerToken = await writer.getToken();
const OK = { status: 200, code: "ok" };

header();

await step("orders-reader (scope orders/read) reads the orders", "GET  /orders  orders-reader", OK,
  (base) => send(base, "GET", "/orders", readerToken));

await step("creating an order needs orders/write", "POST /orders  orders-reader",
  { status: 403, code: "scope_insufficient" }, (base) => send(base, "POST", "/orders", readerToken));

await step("orders-writer (orders/read orders/write) creates one", "POST /orders  orders-writer", OK,
  (base) => send(base, "POST", "/orders", writerToken));

await step("no Authorization header", "GET  /orders  (no token)", { status: 401, code: "token_missing" },
  (base) => send(base, "GET", "/orders"));

const outsider = await client("not-allowed-client").getToken();
await step("a valid token from the same pool, client not in the allow-list", "GET  /orders  not-allowed-client",
  { status: 401, code: "client_not_allowed" }, (base) => send(base, "GET", "/orders", outsider));

const now = Math.floor(Date.now() / 1000);
const expired = await mint({ client_id: "orders-reader", scope: "orders/read", issued_at: now - 7200, lifetime_s: 3600 });
await step("minted 2 h ago for 1 h (issuer admin API)", "GET  /orders  expired token",
  { status: 401, code: "token_expired" }, (base) => send(base, "GET", "/orders", expired));

const revoked = await client("revoked-client").getToken();
await step("the issuer still signs for it; the edges revoke its client_id", "GET  /orders  revoked-client",
  { status: 401, code: "token_revoked" }, (base) => send(base, "GET", "/orders", revoked));

const tampered = (() => {
  const [h, p, s] = readerToken.split(".");
  const claims = JSON.parse(Buffer.from(p, "base64url"));
  claims.scope = "orders/read orders/write";
  return [h, Buffer.from(JSON.stringify(claims)).toString("base64url"), s].join(".");
})();
await step("orders-reader's token with orders/write added to the payload", "POST /orders  edited token",
  { status: 401, code: "signature_invalid" }, (base) => send(base, "POST", "/orders", tampered));

// Key rotation: the issuer publishes a new key and signs with it at once; the edges learn the
// new kid on first sight (one JWKS refetch) and keep accepting the old key's tokens.
const rotated = await rotate();
const fresh = await client("orders-reader").getToken();
const kids = `kid ${short(kidOf(readerToken))} → ${short(kidOf(fresh))}`;
await step(`key rotated (admin rotate ?immediate=true), ${kids}`, "GET  /orders  new-key token", OK,
  (base) => send(base, "GET", "/orders", fresh));
await step("the token from before the rotation still passes", "GET  /orders  old-key token", OK,
  (base) => send(base, "GET", "/orders", readerToken));
if (rotated.signing_kid !== kidOf(fresh)) console.log(`note: the issuer reports signing kid ${rotated.signing_kid}`);

// A burst: the per-client limit (policy.json) lets `burst` requests through, then answers 429.
const BURST = policy.rate_limit.burst * 2 + 5;
const limit = `${policy.rate_limit.per_client_per_s}/s, burst ${policy.rate_limit.burst}`;
await step(`${BURST} requests at once, per-client limit ${limit}`, `GET  /orders  ${BURST}× orders-writer`,
  { status: 429, code: "rate_limited" }, async (base) => {
    const all = await Promise.all(Array.from({ length: BURST }, () => send(base, "GET", "/orders", writerToken)));
    const counts = {};
    for (const v of all) counts[v.status] = (counts[v.status] ?? 0) + 1;
    const v = all.find((x) => x.status === 429) ?? all[all.length - 1];
    const summary = Object.entries(counts).map(([st, n]) => `${n}×${st}`).join(" ");
    return { ...v, detail: `${summary}; ${v.detail ?? ""}` };
  });

// Workload identity: orders-batch is a Cognito-style client (secret, no cnf) pinned to the
// certificate spiffe://demo/orders-batch, so its token passes only over a connection that
// presents that certificate — Envoy's mTLS listener here; the worker gets no client
// certificate at all. reports authenticates to the issuer with its certificate (RFC 8705
// tls_client_auth, through Envoy's mTLS token listener), and its token is bound to it (cnf).
// "@own" / "@other" in the request column: the client certificate Envoy's listener received.
if (envoyMtls && tokenMtls && certs) {
  // Envoy: its mTLS listener, with the workload `who`'s certificate; the worker: no certificate.
  const from = (who, token) => (base, name) =>
    name === "Envoy" ? sendTls(envoyMtls, "GET", "/orders", token, who) : send(base, "GET", "/orders", token);
  const batchToken = await client("orders-batch").getToken();
  const pins = policy.client_identities["orders-batch"].map((pin) => Object.values(pin)[0]).join(", ");
  const missing = { status: 401, code: "identity_missing" };
  await step(`orders-batch is pinned to ${pins}: Envoy's mTLS listener got that certificate, the worker none`,
    "GET  /orders  orders-batch @own", { Envoy: OK, worker: missing }, from("orders-batch", batchToken));
  await step("the same token with the reports workload's certificate: a stolen pinned token is useless without its workload's",
    "GET  /orders  orders-batch @other", { Envoy: { status: 401, code: "identity_mismatch" }, worker: missing },
    from("reports", batchToken));

  const boundToken = await tokenByCertificate("reports", "reports");
  const cnf = JSON.parse(Buffer.from(boundToken.split(".")[1], "base64url")).cnf?.["x5t#S256"];
  const boundTo =
    cnf === thumbprintOf("reports") ? `cnf.x5t#S256 ${cnf.slice(0, 8)}… is its certificate's` : `cnf ${JSON.stringify(cnf)} is not its certificate's thumbprint`;
  const unbound = { status: 401, code: "binding_mismatch" };
  await step(`reports got its token with its certificate (tls_client_auth via Envoy's mTLS token listener), ${boundTo}`,
    "GET  /orders  reports (cnf) @own", { Envoy: OK, worker: unbound }, from("reports", boundToken));
  await step("the certificate-bound token with orders-batch's certificate", "GET  /orders  reports (cnf) @other",
    unbound, from("orders-batch", boundToken));
}

// Client rotation through the policy feed, with no restart: the replacement client is admitted,
// traffic moves to it, the old client is removed and revoked, and a steady stream of requests
// to both edges never sees a failure.
const v2 = client("orders-reader-v2");
const v2Token = await v2.getToken();
await step("a new client before the edges admit it (not in the feed's allow-list)", "GET  /orders  orders-reader-v2",
  { status: 401, code: "client_not_allowed" }, (base) => send(base, "GET", "/orders", v2Token));
let streamToken = readerToken;
let streaming = true;
const stream = { sent: 0, failed: [] };
const streamLoop = (async () => {
  while (streaming) {
    const all = await Promise.all(edges.map(([name, base]) => send(base, "GET", "/orders", streamToken).then((v) => [name, v])));
    for (const [name, v] of all) {
      stream.sent += 1;
      if (v.status !== 200) stream.failed.push(`${name} ${v.status} ${v.code}`);
    }
    await new Promise((r) => setTimeout(r, 100)); // ~10 requests/s per edge, under the rate limit
  }
})();
const tAdd = performance.now();
const added = await admin("edge-clients", { add: "orders-reader-v2" });
const admitted = await Promise.all(edges.map(([, base]) => secondsUntil(base, "GET", v2Token, 200, tAdd)));
streamToken = v2Token; // traffic moves to the new client once every edge admits it
const tRemove = performance.now();
await admin("edge-clients", { remove: "orders-reader" });
await admin("revoke-client", { client_id: "orders-reader" });
const dropped = await Promise.all(edges.map(([, base]) => secondsUntil(base, "GET", readerToken, 401, tRemove)));
streaming = false;
await streamLoop;
const secs = (xs) => edges.map(([name], i) => `${name} ${xs[i].s === null ? "never" : `${xs[i].s.toFixed(1)} s`}`).join(", ");
await step(`orders-reader → orders-reader-v2 (feed version ${added.version}): admitted after ${secs(admitted)}`,
  `rotation: ${stream.sent} requests, both edges`, OK, async () => ({
    status: stream.failed.length === 0 && admitted.every((x) => x.s !== null) ? 200 : 500,
    code: stream.failed.length === 0 ? "ok" : "failed",
    detail: `${stream.sent} requests during the change, ${stream.failed.length} failed${stream.failed.length ? `: ${stream.failed.slice(0, 3).join("; ")}` : ""}`,
  }));
await step(`the old client, removed and revoked: refused after ${secs(dropped)}`, "GET  /orders  orders-reader (old)",
  { status: 401, code: "client_not_allowed" }, (base) => send(base, "GET", "/orders", readerToken));

// Breach: orders-writer's credentials leak. One call at the issuer revokes the client, and both
// edges deny its tokens (cached ones included) within the feed's poll interval.
await step("orders-writer before the breach", "GET  /orders  orders-writer", OK,
  (base) => send(base, "GET", "/orders", writerToken));
const tRevoke = performance.now();
const breach = await admin("revoke-client", { client_id: "orders-writer" });
const denied = await Promise.all(edges.map(([, base]) => secondsUntil(base, "GET", writerToken, 401, tRevoke)));
await step(`breach: revoke-client at the issuer (feed version ${breach.version}), denied after ${secs(denied)}`,
  "GET  /orders  orders-writer", { status: 401, code: "token_revoked" },
  (base) => send(base, "GET", "/orders", writerToken));

const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
if (!quick) console.log();
console.log(`demo: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
