// A test-only worker: POST a list of conformance cases (token vectors), or {http: [...]} (HTTP
// vectors with their configurations), get each verdict as computed by the package inside
// workerd (sync = pure wasm, async = crypto.subtle).
import * as api from "tokengate";
import { runCase, mismatch, runHttpCase, httpMismatch, answerOf, jsonEqual } from "./vectors.mjs";

// A Request as Cloudflare's edge hands it to a Worker on an mTLS-enabled zone: the client
// certificate's verification result, subject and SHA-256 in request.cf.tlsClientAuth (no SANs).
function withTlsClientAuth(c) {
  const r = c.request;
  const peer = r.peer;
  const tlsClientAuth = peer
    ? { certPresented: "1", certVerified: "SUCCESS", certSubjectDNRFC2253: peer.subject ?? "", certFingerprintSHA256: peer.sha256 ?? "" }
    : { certPresented: "0", certVerified: "NONE", certSubjectDNRFC2253: "", certFingerprintSHA256: "" };
  const headers = new Headers();
  for (const v of r.authorization) headers.append("authorization", v);
  for (const [k, v] of r.headers ?? []) headers.append(k, v);
  return new Request(`https://api.example${r.target}`, { method: r.method, headers, cf: { tlsClientAuth } });
}

export default {
  async fetch(request) {
    const body = await request.json();
    const out = [];
    if (Array.isArray(body)) {
      for (const c of body) {
        for (const how of ["sync", "async"]) {
          const why = mismatch(c, await runCase(api, c, how));
          out.push({ name: c.name, how, ok: why === null, why });
        }
      }
    } else if (body.tls) {
      // authorize(request) with cf.tlsClientAuth against decide() with the facts Workers have.
      for (const c of body.tls) {
        const v = api.JwtVerifier.fromConfig(c.configDoc);
        const got = answerOf(await v.authorize(withTlsClientAuth(c), { now: c.now }));
        const p = c.request.peer;
        const facts = { method: c.request.method, target: c.request.target, authorization: c.request.authorization };
        if (p) facts.peer = { subject: p.subject, sha256: p.sha256 };
        const want = answerOf(v.decideSync(facts, { now: c.now }));
        out.push({ name: c.name, got, want, same: jsonEqual(got, want), expected: jsonEqual(got, c.expect) });
      }
    } else {
      for (const c of body.http) {
        for (const how of ["sync", "async"]) {
          const why = httpMismatch(c, await runHttpCase(api, c, c.configDoc, how));
          out.push({ name: c.name, how, ok: why === null, why });
        }
      }
    }
    return Response.json(out);
  },
};
