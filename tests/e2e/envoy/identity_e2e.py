"""Workload identity through real Envoy: a client id pinned to its workload's certificate
(`client_identities`), judged on the client certificate of a real mTLS connection as Envoy's
connection properties report it, and on certificate headers written by a trusted proxy.

Certificates are made here with openssl: a workload CA (standing in for an IAM Roles Anywhere
trust anchor or a SPIFFE trust domain's CA), SPIFFE X.509 leaves signed by it, and a rogue CA
whose leaf carries the right SPIFFE ID. Tokens are RS256 with the fixed TEST key (openssl signs;
no tokengate code does). Four listeners on 127.0.0.1, one Envoy worker:

- `optional`: TLS that asks for a client certificate but lets a client connect without one,
  so the filter sees "no certificate" and answers identity_missing;
- `required`: TLS with `require_client_certificate`: without a certificate there is no
  connection at all, so a pinned token is never even sent;
- `header`: plain HTTP behind "a TLS-terminating proxy" (this script) that puts the verified
  leaf in RFC 9440 `Client-Cert`;
- `alb`: the same for AWS ALB's `X-Amzn-Mtls-Clientcert-Leaf` (URL-encoded PEM).
"""

import base64
import json
import time
import urllib.parse

import harness as h

TRUST_DOMAIN = "spiffe://e2e.tokengate.test"
WRITER_ID = f"{TRUST_DOMAIN}/orders-writer"
CLIENTS = ["orders-writer", "reports", "batch", "auditor", "unpinned"]
RULES = [
    {"name": "health", "match": {"prefix": "/health"}, "allow": "anonymous"},
    {"name": "orders-read", "match": {"prefix": "/orders", "methods": ["GET"]}, "scopes": {"all": ["orders/read"]}},
]
CERT_HEADERS = ["client-cert", "client-cert-chain", "x-amzn-mtls-clientcert", "x-amzn-mtls-clientcert-leaf",
                "x-amzn-mtls-clientcert-subject"]


def make_certs(d):
    ca = h.make_ca(d, "workload-ca", "tokengate e2e workload CA")
    rogue = h.make_ca(d, "rogue-ca", "tokengate e2e rogue CA")

    def client(ca_, name, subject, sans=None):
        ext = "extendedKeyUsage=clientAuth" + (f"\nsubjectAltName={sans}" if sans else "")
        return h.issue_cert(d, ca_, name, subject, ext)

    return ca, {
        "server": h.issue_cert(d, ca, "id-server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        # One SPIFFE ID per certificate, as an X.509-SVID has.
        "writer": client(ca, "orders-writer", "/O=tokengate e2e/CN=orders-writer", f"URI:{WRITER_ID}"),
        "intruder": client(ca, "intruder", "/O=tokengate e2e/CN=intruder", f"URI:{TRUST_DOMAIN}/intruder"),
        # The writer's ID as a second URI SAN: Envoy shows a filter only the first.
        "two_uris": client(ca, "two-uris", "/O=tokengate e2e/CN=migrator",
                           f"URI:{TRUST_DOMAIN}/legacy/migrator,URI:{WRITER_ID}"),
        "reports": client(ca, "reports", "/O=tokengate e2e/OU=finance/CN=reports"),
        "batch": client(ca, "batch", "/O=tokengate e2e/CN=batch", "DNS:batch.e2e.tokengate.test"),
        "auditor": client(ca, "auditor", "/CN=auditor"),
        "rogue_writer": client(rogue, "rogue-writer", "/O=tokengate e2e/CN=orders-writer", f"URI:{WRITER_ID}"),
    }


def plugin(key, certs, source):
    provider = {
        "issuer": h.ISS, "jwks": {"keys": [key.jwk()]}, "client_ids": CLIENTS,
        "algorithms": ["RS256"], "leeway_s": 30,
        "client_identities": {
            "orders-writer": [{"uri_san": WRITER_ID}],
            # Envoy's subject is RFC 2253: the last RDN first.
            "reports": [{"subject": "CN=reports,OU=finance,O=tokengate e2e"}],
            "batch": [{"dns_san": "BATCH.e2e.tokengate.test"}],
            # Envoy gives hex; the pin is written in base64url (RFC 8705 x5t#S256 form).
            "auditor": [{"sha256": certs["auditor"]["x5t"]}],
        },
    }
    # The audit line (rather than the default filter state): the checks below read Envoy's log.
    return {"providers": [provider], "rules": RULES, "forward": {"client_id": "x-tokengate-client-id"},
            "client_certificate": {"source": source}, "audit": "log"}


def client_cert_header(cert) -> str:
    """RFC 9440 §2.1: a structured-field byte sequence of the DER."""
    return ":" + base64.b64encode(cert["der"]).decode() + ":"


def alb_leaf_header(cert) -> str:
    """What ALB's mTLS verify mode sends: the leaf's PEM, URL-encoded."""
    with open(cert["cert"]) as f:
        return urllib.parse.quote(f.read(), safe="")


def run(check, work):
    started = time.monotonic()
    check, failed = h.tracking(check)

    d = work / "identity"
    d.mkdir(exist_ok=True)
    ca, certs = make_certs(d)
    key = h.TestKey("rsa-a.pem", "e2e-key-a")
    origin = h.Origin()
    ports = {k: h.free_port() for k in ["admin", "optional", "required", "header", "alb"]}
    tls = {"cert": certs["server"]["cert"], "key": certs["server"]["key"], "ca": ca["cert"]}
    route = {"route": {"cluster": "origin"}}
    listeners = [
        h.listener("id_optional", ports["optional"], [h.wasm_filter(plugin(key, certs, "connection"),
                                                                    vm_id="id-optional")], route,
                   tls=dict(tls, optional=True)),
        h.listener("id_required", ports["required"], [h.wasm_filter(plugin(key, certs, "connection"),
                                                                    vm_id="id-required")], route, tls=tls),
        h.listener("id_header", ports["header"], [h.wasm_filter(plugin(key, certs, "client_cert_header"),
                                                                vm_id="id-header")], route),
        h.listener("id_alb", ports["alb"], [h.wasm_filter(plugin(key, certs, "alb"), vm_id="id-alb")], route),
    ]
    envoy = h.Envoy(work, h.bootstrap(ports["admin"], listeners, [h.cluster("origin", origin.port)]),
                    ports["admin"], concurrency=1, name="envoy-identity", log_level="warning")
    tokens = {c: key.sign(h.claims(c, "orders/read")) for c in CLIENTS}
    probes = iter(range(1_000_000))

    def get(where, client=None, cert=None, headers=(), path="/orders"):
        """One request; returns (answer, what the origin saw or None)."""
        probe = f"id{next(probes)}"
        tls_on = where in ("optional", "required")
        url = f"{'https' if tls_on else 'http'}://127.0.0.1:{ports[where]}{path}?probe={probe}"
        args = ["--cacert", ca["cert"]] if tls_on else []
        if cert:
            args += ["--cert", certs[cert]["cert"], "--key", certs[cert]["key"]]
        if client:
            args += ["-H", f"authorization: Bearer {tokens[client]}"]
        for k, v in headers:
            args += ["-H", f"{k}: {v}"]
        r = h.curl(url, *args, timeout_s=5)
        seen = origin.find(f"probe={probe}")
        return r, (seen[0] if seen else None)

    def passed(r, seen, client):
        return (r["status"] == 200 and seen is not None
                and seen["headers"].get("x-tokengate-client-id") == client)

    def denied(r, seen, code):
        return (r["status"] == 401 and isinstance(r["json"], dict) and r["json"].get("error") == code
                and r["headers"].get("www-authenticate") == 'Bearer realm="tokengate", error="invalid_token"'
                and seen is None)

    def refused_handshake(r, seen):
        return r["status"] == 0 and r["rc"] != 0 and seen is None

    forged = [("Client-Cert", client_cert_header(certs["writer"])),
              ("Client-Cert-Chain", client_cert_header(certs["writer"])),
              ("X-Amzn-Mtls-Clientcert-Leaf", alb_leaf_header(certs["writer"])),
              ("X-Amzn-Mtls-Clientcert-Subject", "CN=orders-writer,O=tokengate e2e")]

    def leaked(seen, keep=()):
        return [k for k in CERT_HEADERS if k in (seen or {}).get("headers", {}) and k not in keep]

    try:
        envoy.start()
        # --- The certificate of the connection (source "connection").
        r, seen = get("optional", "orders-writer", "writer")
        check(f"identity: pinned client with its certificate ({WRITER_ID}): 200 from the origin",
              passed(r, seen, "orders-writer"), r)
        r, seen = get("optional", "orders-writer", "intruder")
        check("identity: the same token with another workload's certificate: 401 identity_mismatch",
              denied(r, seen, "identity_mismatch"), r)
        r, seen = get("optional", "orders-writer")
        check("identity: the same token without a certificate (optional listener): 401 identity_missing",
              denied(r, seen, "identity_missing"), r)
        r, seen = get("optional", "unpinned")
        check("identity: an unpinned client without a certificate passes (when_listed)",
              passed(r, seen, "unpinned"), r)
        r, seen = get("optional", "orders-writer", "two_uris")
        check("identity: the pinned ID as the second URI SAN: 401 identity_mismatch (Envoy shows the first only)",
              denied(r, seen, "identity_mismatch"), r)
        r, seen = get("optional", "reports", "reports")
        check("identity: subject pin against Envoy's RFC 2253 subject: 200", passed(r, seen, "reports"), r)
        r, seen = get("optional", "batch", "batch")
        check("identity: dns_san pin (case-insensitive): 200", passed(r, seen, "batch"), r)
        r, seen = get("optional", "auditor", "auditor")
        check("identity: sha256 pin (base64url) against Envoy's hex digest: 200", passed(r, seen, "auditor"), r)
        r, seen = get("optional", "auditor", "writer")
        check("identity: sha256 pin, another certificate: 401 identity_mismatch",
              denied(r, seen, "identity_mismatch"), r)
        r, seen = get("optional", "orders-writer", "rogue_writer")
        check("identity: the right SPIFFE ID from a CA the listener does not trust: no TLS connection",
              refused_handshake(r, seen), r)

        r, seen = get("required", "orders-writer", "writer")
        check("identity (certificate required): pinned client with its certificate: 200",
              passed(r, seen, "orders-writer"), r)
        r, seen = get("required", "orders-writer", "intruder")
        check("identity (certificate required): another certificate: 401 identity_mismatch",
              denied(r, seen, "identity_mismatch"), r)
        r, seen = get("required", "orders-writer")
        check("identity (certificate required): no certificate: no TLS connection, nothing reaches the origin",
              refused_handshake(r, seen), r)

        # --- A client claiming a certificate with headers, on the connection source.
        r, seen = get("optional", "orders-writer", "intruder", forged)
        check("forged Client-Cert / X-Amzn-Mtls-Clientcert-Leaf of the pinned workload do not help: "
              "401 identity_mismatch", denied(r, seen, "identity_mismatch"), r)
        r, seen = get("optional", "orders-writer", None, forged)
        check("  ... nor without a certificate: 401 identity_missing", denied(r, seen, "identity_missing"), r)
        r, seen = get("optional", "orders-writer", "writer", forged)
        check("  ... with the right certificate: 200, and the origin got none of the certificate headers",
              passed(r, seen, "orders-writer") and not leaked(seen), (r["status"], leaked(seen)))
        r, seen = get("optional", None, None, forged, path="/health")
        check("  ... removed on anonymous routes too", seen is not None and not leaked(seen), leaked(seen))

        # --- Behind a TLS-terminating proxy (this script plays it) that writes RFC 9440 Client-Cert.
        r, seen = get("header", "orders-writer", headers=[("Client-Cert", client_cert_header(certs["writer"]))])
        check("client_cert_header: the trusted proxy's Client-Cert of the pinned workload: 200",
              passed(r, seen, "orders-writer"), r)
        check("  ... the trusted header goes on to the origin",
              seen is not None and seen["headers"].get("client-cert") == client_cert_header(certs["writer"]))
        r, seen = get("header", "orders-writer", headers=[("Client-Cert", client_cert_header(certs["intruder"]))])
        check("client_cert_header: another workload's Client-Cert: 401 identity_mismatch",
              denied(r, seen, "identity_mismatch"), r)
        r, seen = get("header", "orders-writer", headers=[("X-Amzn-Mtls-Clientcert-Leaf",
                                                           alb_leaf_header(certs["writer"]))])
        check("client_cert_header: an ALB leaf header is not trusted: 401 identity_missing",
              denied(r, seen, "identity_missing"), r)
        r, seen = get("header", "unpinned", headers=forged[2:])
        check("  ... and removed before the origin", passed(r, seen, "unpinned") and not leaked(seen), leaked(seen))
        r, seen = get("header", "orders-writer", headers=[("Client-Cert", ":bm90IGEgY2VydGlmaWNhdGU=:")])
        check("client_cert_header: a Client-Cert that is not a certificate: 400 request_invalid",
              r["status"] == 400 and (r["json"] or {}).get("error") == "request_invalid" and seen is None, r)

        r, seen = get("alb", "orders-writer", headers=[("X-Amzn-Mtls-Clientcert-Leaf",
                                                        alb_leaf_header(certs["writer"]))])
        check("alb: X-Amzn-Mtls-Clientcert-Leaf (URL-encoded PEM) of the pinned workload: 200",
              passed(r, seen, "orders-writer"), r)
        r, seen = get("alb", "orders-writer", headers=[("X-Amzn-Mtls-Clientcert-Leaf",
                                                        alb_leaf_header(certs["intruder"])),
                                                       ("Client-Cert", client_cert_header(certs["writer"]))])
        check("alb: another workload's leaf, with a Client-Cert of the pinned one: 401 identity_mismatch",
              denied(r, seen, "identity_mismatch"), r)

        # --- What operators see.
        time.sleep(0.4)  # counters reach Envoy on the next tick
        stats = envoy.stats()

        def count(code):
            return int(stats.get(f"wasmcustom.tokengate_denied_total.code.{code}", "0") or 0)
        check("metrics: tokengate_denied_total counts identity_mismatch and identity_missing",
              count("identity_mismatch") >= 5 and count("identity_missing") >= 3,
              (count("identity_mismatch"), count("identity_missing")))
        log = envoy.log_text()
        audit = [line for line in log.splitlines() if '"decision":' in line]
        named = [line for line in audit if f'"identity":"uri_san:{WRITER_ID}"' in line and '"decision":"allow"' in line]
        check("audit: an allowed decision names the pin that matched", named, audit[:3])
        pem_body = "".join(open(certs["writer"]["cert"]).read().splitlines()[1:-1])
        check("  ... and never the certificate", base64.b64encode(certs["writer"]["der"]).decode() not in log
              and pem_body[:64] not in log)
    except Exception as e:  # a crash of this part is a failed check, with its Envoy log
        check("identity checks ran to completion", False, f"{type(e).__name__}: {e}")
    finally:
        envoy.stop()
        if failed:
            print(f"---- {envoy.name} log (tail) ----\n" + envoy.log_text()[-3000:])
        origin.close()
    print(f"     (identity: {time.monotonic() - started:.1f}s)", flush=True)
    return envoy


if __name__ == "__main__":  # this part alone: python3 tests/e2e/envoy/identity_e2e.py
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    results = []

    def _check(name, ok, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f"  -- {json.dumps(detail, default=str)[:600]}"),
              flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="tokengate-identity-e2e-"))
    try:
        run(_check, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(0 if all(results) else 1)
