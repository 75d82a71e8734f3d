// Workload identity over real TLS in Node: an https server that asks for client certificates,
// clients presenting the TEST leaves of tests/vectors/keys/certs, and authorize(req) reading the
// certificate from the request's TLSSocket. The identity HTTP vectors whose certificate is one
// of those files are replayed this way and must get the same answer as everywhere else.
import { test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { X509Certificate } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import * as api from "../src/node.mjs";
import { loadHttpCases } from "./helpers/vectors-node.mjs";

const CERTS = new URL("../../tests/vectors/keys/certs/", import.meta.url);
const read = (name) => readFileSync(new URL(name, CERTS));

// Every leaf with its key, and the facts Node reads from it (to find the file of a vector's peer).
const leaves = readdirSync(CERTS)
  .filter((f) => f.endsWith(".pem") && !f.endsWith("-key.pem") && f !== "ca.pem")
  .map((f) => {
    const pem = read(f);
    const x = new X509Certificate(pem);
    const sans = (x.subjectAltName ?? "").split(", ").filter(Boolean);
    return {
      name: f.replace(/\.pem$/, ""),
      cert: pem,
      key: read(f.replace(/\.pem$/, "-key.pem")),
      facts: {
        sha256: x.fingerprint256.replaceAll(":", "").toLowerCase(),
        subject: x.subject.split("\n").reverse().join(","),
        uri_sans: sans.filter((s) => s.startsWith("URI:")).map((s) => s.slice(4)),
        dns_sans: sans.filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4)),
      },
    };
  });

const sameFacts = (a, b) =>
  a.sha256 === b.sha256 &&
  a.subject === b.subject &&
  JSON.stringify(a.uri_sans) === JSON.stringify(b.uri_sans) &&
  JSON.stringify(a.dns_sans) === JSON.stringify(b.dns_sans);

// The server presents a TEST leaf as its own certificate: the clients here do not check it
// (rejectUnauthorized: false); what is under test is the client certificate.
async function server(t, handler, tls = {}) {
  const s = https.createServer(
    { key: read("intruder-key.pem"), cert: read("intruder.pem"), ca: read("ca.pem"), requestCert: true, rejectUnauthorized: false, ...tls },
    handler,
  );
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  t.after(() => s.close());
  return s.address().port;
}

function send(port, { method = "GET", path, headers = {}, leaf }) {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        headers,
        rejectUnauthorized: false,
        agent: false,
        ...(leaf ? { cert: leaf.cert, key: leaf.key } : {}),
        timeout: 5000,
      },
      (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

function authHeaders(r) {
  const h = {};
  if (r.authorization.length === 1) h.authorization = r.authorization[0];
  else if (r.authorization.length > 1) h.authorization = r.authorization;
  for (const [k, v] of r.headers ?? []) h[k] = v;
  return h;
}

test("identity vectors over real mTLS: the certificate comes from the TLS socket", async (t) => {
  let current;
  const records = [];
  const port = await server(t, async (req, res) => {
    const auth = await current.verifier.authorize(req, { now: current.case.now });
    const body = auth.ok ? JSON.stringify({ forward: auth.forward }) : auth.body;
    res.writeHead(auth.status, { ...auth.headers, "content-length": Buffer.byteLength(body) }).end(body);
  });
  const cases = loadHttpCases().filter(
    (c) => c.file === "identity.json" && (c.configDoc.client_certificate?.source ?? "connection") === "connection",
  );
  const failures = [];
  let sent = 0;
  let withCert = 0;
  for (const c of cases) {
    const r = c.request;
    const leaf = r.peer ? leaves.find((l) => sameFacts(l.facts, r.peer)) : null;
    if (r.peer && !leaf) continue; // facts no TEST leaf has (hosts that hand in facts replay those)
    if (!/^[\x21-\x7e]+$/.test(r.target) || r.authorization.some((v) => !/^[\x20-\x7e]+$/.test(v) || v.trim() !== v)) continue;
    current = {
      case: c,
      verifier: api.JwtVerifier.fromConfig(c.configDoc, { onDecision: (d) => records.push(d) }),
    };
    const got = await send(port, { method: r.method, path: r.target, headers: authHeaders(r), leaf });
    sent++;
    if (leaf) withCert++;
    const code = got.status === 200 ? null : JSON.parse(got.body).error;
    if (got.status !== c.expect.status || code !== c.expect.code) {
      failures.push(`${c.name}: expected ${c.expect.status} ${c.expect.code}, got ${got.status} ${code}`);
    } else if (got.status === 200 && JSON.stringify(JSON.parse(got.body).forward) !== JSON.stringify(c.expect.forward)) {
      failures.push(`${c.name}: forwarded ${got.body}`);
    }
  }
  assert.deepEqual(failures, []);
  assert.ok(sent >= 50, `only ${sent} identity vectors went over TLS`);
  assert.ok(withCert >= 40, `only ${withCert} with a client certificate`);
  // The audit record names the pin that matched, never the certificate.
  const matched = records.filter((d) => d.identity !== undefined);
  assert.ok(matched.some((d) => d.identity === "uri_san:spiffe://prod/orders-writer"));
  for (const d of records) assert.ok(!JSON.stringify(d).includes("BEGIN CERTIFICATE"));
});

const orders = loadHttpCases().find((c) => c.name === "conn_uri_san_exact_match");
const ordersLeaf = leaves.find((l) => l.name === "orders-writer");

test("a certificate the server did not verify counts as none: identity_missing", async (t) => {
  // The server trusts no CA that signed the leaf (the orders-writer leaf is not a CA at all).
  const verifier = api.JwtVerifier.fromConfig(orders.configDoc);
  const port = await server(
    t,
    async (req, res) => {
      const auth = await verifier.authorize(req, { now: orders.now });
      res.writeHead(auth.status, auth.headers).end(auth.body ?? "ok");
    },
    { ca: read("orders-writer.pem") },
  );
  const got = await send(port, { path: orders.request.target, headers: authHeaders(orders.request), leaf: ordersLeaf });
  assert.equal(got.status, 401);
  assert.equal(JSON.parse(got.body).error, "identity_missing");
});

test("a certificate header sent by the client is ignored with the connection source, and listed for removal", async (t) => {
  const verifier = api.JwtVerifier.fromConfig(orders.configDoc);
  assert.equal(verifier.certificateHeader, null);
  for (const h of ["client-cert", "client-cert-chain", "x-amzn-mtls-clientcert-leaf", "x-amzn-mtls-clientcert"]) {
    assert.ok(verifier.removeHeaders.includes(h), `${h} is removed`);
  }
  assert.ok(verifier.removeHeaders.includes("x-tokengate-client-id"));
  assert.deepEqual(verifier.forwardHeaders, verifier.removeHeaders);
  const der = new X509Certificate(ordersLeaf.cert).raw.toString("base64");
  let seen;
  const port = await server(t, async (req, res) => {
    const auth = await verifier.authorize(req, { now: orders.now });
    seen = auth;
    res.writeHead(auth.status, auth.headers).end(auth.body ?? "ok");
  });
  // No TLS client certificate, but the headers of a trusted proxy: still identity_missing.
  const forged = { ...authHeaders(orders.request), "client-cert": `:${der}:`, "x-amzn-mtls-clientcert-leaf": encodeURIComponent(ordersLeaf.cert.toString()) };
  const got = await send(port, { path: orders.request.target, headers: forged });
  assert.equal(got.status, 401);
  assert.equal(seen.code, "identity_missing");
  // With its certificate on the connection the same request passes.
  const ok = await send(port, { path: orders.request.target, headers: forged, leaf: ordersLeaf });
  assert.equal(ok.status, 200);
});

test("decide() takes the certificate as DER, PEM, facts or a thumbprint, with the same answer", () => {
  const verifier = api.JwtVerifier.fromConfig(orders.configDoc);
  const intruder = leaves.find((l) => l.name === "intruder");
  const base = { method: "GET", target: orders.request.target, authorization: orders.request.authorization };
  const o = { now: orders.now };
  const forms = (leaf) => [
    new X509Certificate(leaf.cert).raw,
    leaf.cert.toString(),
    { uriSans: leaf.facts.uri_sans, dnsSans: leaf.facts.dns_sans, subject: leaf.facts.subject, sha256: leaf.facts.sha256 },
  ];
  for (const peer of forms(ordersLeaf)) assert.equal(verifier.decideSync({ ...base, peer }, o).status, 200);
  for (const peer of forms(intruder)) assert.equal(verifier.decideSync({ ...base, peer }, o).code, "identity_mismatch");
  // A thumbprint alone has no SAN: the uri_san pin cannot match it.
  assert.equal(verifier.decideSync({ ...base, peer: ordersLeaf.facts.sha256 }, o).code, "identity_mismatch");
  assert.equal(verifier.decideSync(base, o).code, "identity_missing");
  assert.equal(verifier.decideSync({ ...base, peer: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----" }, o).code, "request_invalid");
  assert.throws(() => verifier.decideSync({ ...base, peer: { uri: [] } }, o), TypeError);
  assert.throws(() => verifier.decideSync({ ...base, clientCert: 5 }, o), TypeError);
  // verify() takes the same `peer` option.
  assert.equal(verifier.verifySync(orders.request.authorization[0].slice(7), { ...o, peer: ordersLeaf.cert.toString() }).client_id, "orders-writer");
  assert.throws(() => verifier.verifySync(orders.request.authorization[0].slice(7), { ...o, peer: intruder.cert.toString() }), { code: "identity_mismatch" });
});

test("Workers' cf.tlsClientAuth: a verified certificate's subject and SHA-256, nothing else", async () => {
  const reports = loadHttpCases().find((c) => c.name.startsWith("conn_subject") && c.expect.status === 200);
  assert.ok(reports, "a subject-pin case");
  const verifier = api.JwtVerifier.fromConfig(reports.configDoc);
  const leaf = leaves.find((l) => sameFacts(l.facts, reports.request.peer));
  const request = (tls) => {
    const r = new Request(`https://api.example${reports.request.target}`, { headers: { authorization: reports.request.authorization[0] } });
    return Object.assign(r, { cf: { tlsClientAuth: tls } });
  };
  const tls = {
    certPresented: "1",
    certVerified: "SUCCESS",
    certSubjectDNRFC2253: leaf.facts.subject,
    certFingerprintSHA256: leaf.facts.sha256,
  };
  assert.equal((await verifier.authorize(request(tls), { now: reports.now })).status, 200);
  for (const bad of [{ certVerified: "FAILED:self signed certificate" }, { certPresented: "0", certVerified: "NONE" }]) {
    const got = await verifier.authorize(request({ ...tls, ...bad }), { now: reports.now });
    assert.equal(got.code, "identity_missing", JSON.stringify(bad));
  }
  const other = await verifier.authorize(request({ ...tls, certSubjectDNRFC2253: "CN=intruder,O=Example" }), { now: reports.now });
  assert.equal(other.code, "identity_mismatch");
});
