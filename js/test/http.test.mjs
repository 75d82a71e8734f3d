// Every HTTP vector (tests/vectors/http) through the package in Node: decide() with the
// configuration the Envoy filter takes (JwtVerifier.fromConfig), synchronously with node:crypto,
// with the pure-wasm backend, asynchronously, and once more from the verified-token cache; then
// authorize() behind a real node:http server, with the request bytes sent raw over a socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import * as api from "../src/node.mjs";
import { factsFor, httpMismatch, replayBefore, runHttpCase } from "./helpers/vectors.mjs";
import { loadHttpCases } from "./helpers/vectors-node.mjs";

const cases = loadHttpCases();

test("every HTTP vector gets the core's answer from decide()", async () => {
  assert.ok(cases.length >= 250, `only ${cases.length} HTTP vectors`);
  const failures = [];
  for (const c of cases) {
    for (const [how, extra] of [["sync", undefined], ["sync", { crypto: "wasm" }], ["async", undefined]]) {
      const why = httpMismatch(c, await runHttpCase(api, c, c.configDoc, how, extra));
      if (why) failures.push(`${c.file}/${c.name} [${how}${extra ? " wasm" : ""}]: ${why}`);
    }
    const v = api.JwtVerifier.fromConfig(c.configDoc);
    await replayBefore(v, c);
    v.decideSync(factsFor(c, v), { now: c.now });
    const why = httpMismatch(c, v.decideSync(factsFor(c, v), { now: c.now }));
    if (why) failures.push(`${c.file}/${c.name} [cached]: ${why}`);
  }
  assert.deepEqual(failures, []);
});

// What a raw HTTP/1.1 request line and headers can carry to a node:http handler: visible ASCII
// targets (or `*`), methods Node's parser knows (it answers others itself; CONNECT goes to a
// separate event), header values without control characters, within Node's 16 KiB header
// limit. A connection certificate needs TLS: those cases run in identity.test.mjs.
function sendable(c) {
  const r = c.request;
  const headers = r.headers ?? [];
  const value = (v) => /^[\x20-\x7e]*$/.test(v) && v.trim() === v && v !== "";
  return (
    http.METHODS.includes(r.method) &&
    r.method !== "CONNECT" &&
    /^[\x21-\x7e]+$/.test(r.target) &&
    !r.target.includes("#") &&
    r.authorization.every(value) &&
    !r.peer &&
    headers.every(([, v]) => value(v)) &&
    headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0) < 15_000
  );
}

function rawRequest(port, c) {
  return new Promise((resolve, reject) => {
    const r = c.request;
    const lines = [`${r.method} ${r.target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
    for (const v of r.authorization) lines.push(`Authorization: ${v}`);
    for (const [k, v] of r.headers ?? []) lines.push(`${k}: ${v}`);
    const sock = net.connect(port, "127.0.0.1");
    let data = "";
    sock.setTimeout(5000, () => sock.destroy(new Error("timeout")));
    sock.on("data", (d) => (data += d));
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
    sock.end(lines.join("\r\n") + "\r\n\r\n");
  });
}

test("authorize() behind node:http answers the sendable HTTP vectors the same way", async (t) => {
  let current;
  const reached = [];
  const server = http.createServer(async (req, res) => {
    const result = await current.verifier.authorize(req, { now: current.case.now });
    const send = (status, headers, body) =>
      res.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) }).end(body);
    if (!result.ok) {
      send(result.status, result.headers, result.body);
      return;
    }
    reached.push(current.case.name);
    send(200, { "content-type": "application/json" }, JSON.stringify({ forward: result.forward }));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => server.close());
  const port = server.address().port;
  const failures = [];
  let sent = 0;
  for (const c of cases.filter(sendable)) {
    current = { case: c, verifier: api.JwtVerifier.fromConfig(c.configDoc) };
    await replayBefore(current.verifier, c);
    const before = reached.length;
    const text = await rawRequest(port, c);
    sent++;
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
    const body = text.slice(text.indexOf("\r\n\r\n") + 4);
    if (c.expect.status !== 200 && reached.length !== before) failures.push(`${c.name}: a denied request reached the handler`);
    if (status === 400 && c.expect.status === 400 && !body.includes('"error"')) continue; // Node's own parser refused it first
    if (status !== c.expect.status) {
      failures.push(`${c.name}: expected ${c.expect.status} ${c.expect.code}, got ${status} ${body.slice(0, 120)}`);
      continue;
    }
    if (c.request.method === "HEAD") continue; // no body to read the code or forward from
    if (status === 200) {
      const fwd = JSON.parse(body).forward;
      if (JSON.stringify(Object.entries(fwd).sort()) !== JSON.stringify(Object.entries(c.expect.forward).sort())) {
        failures.push(`${c.name}: forwarded ${JSON.stringify(fwd)}, expected ${JSON.stringify(c.expect.forward)}`);
      }
    } else if (JSON.parse(body).error !== c.expect.code) {
      failures.push(`${c.name}: expected ${c.expect.code}, got ${body}`);
    }
  }
  assert.ok(sent >= 150, `only ${sent} vectors could be sent`);
  assert.deepEqual(failures, []);
});
