#!/usr/bin/env python3
"""End-to-end: the built tokengate filter in real Envoy 1.40 (V8), with a local JWKS server and a
local origin on 127.0.0.1, checked with curl. Then, each with its own Envoy: a sample of the HTTP
request-gate vectors over raw sockets with Envoy's default path settings and with the README's
(vectors_e2e.py), request bodies held while the filter waits for keys (paused_body_e2e.py), and
the policy feed polled through a cluster: revoke-to-deny time, 304s, the stale policy
(feed_e2e.py), and workload identity: clients pinned to SPIFFE certificates made here, over
mTLS listeners and behind a certificate-header proxy (identity_e2e.py), and a flood of forged
tokens against the signature budget (budget_e2e.py).
Prints one line per check and a closing 'N passed, N failed'. Bounded: every request has a
timeout and the whole run a deadline.

Run: python3 tests/e2e/envoy/test_envoy.py   (after scripts/build-proxy.sh)
"""

import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import budget_e2e  # noqa: E402
import feed_e2e  # noqa: E402
import harness as h  # noqa: E402
import identity_e2e  # noqa: E402
import paused_body_e2e  # noqa: E402
import vectors_e2e  # noqa: E402

DEADLINE_S = 180
RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append((name, bool(ok)))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f"  -- {detail}"), flush=True)


def provider(cluster="jwks", **extra):
    p = {"issuer": h.ISS,
         "jwks": {"cluster": cluster, "path": h.POOL_PATH, "authority": "cognito-idp.local", "timeout_ms": 2000},
         "client_ids": ["client-a", "client-b", "client-rl"], "algorithms": ["RS256"], "leeway_s": 30}
    p.update(extra)
    return p


RULES = [
    {"name": "health", "match": {"prefix": "/health"}, "allow": "anonymous"},
    {"name": "orders-read", "match": {"prefix": "/orders", "methods": ["GET"]}, "scopes": {"all": ["orders/read"]}},
    {"name": "orders-write", "match": {"prefix": "/orders"}, "scopes": {"all": ["orders/write"]}},
]
FORWARD = {"client_id": "x-tokengate-client-id", "scope": "x-tokengate-scope"}


def main():
    started = time.monotonic()
    if not h.FILTER.exists():
        print(f"missing {h.FILTER}: run scripts/build-proxy.sh", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tokengate-envoy-e2e-"))
    key_a, key_b = h.TestKey("rsa-a.pem", "e2e-key-a"), h.TestKey("rsa-b.pem", "e2e-key-b")
    jwks = h.JwksServer({"keys": [key_a.jwk()]})
    jwks.delay_s = 1.0  # the first fetch is slow: early requests must pause, then pass
    origin = h.Origin()
    certs = h.make_certs(work)
    ports = {k: h.free_port() for k in ["admin", "main", "rl", "mtls", "dead", "dead_jwks", "bad_admin", "bad", "es"]}
    ec_key = h.EcTestKey("ec-a.pem", "e2e-ec-a")
    listeners = [
        # The default audit record (filter state), written by the README's access log.
        h.listener("main", ports["main"], [h.wasm_filter({
            "providers": [provider()], "rules": RULES, "forward": FORWARD, "realm": "tokengate-e2e"},
            vm_id="tokengate-main")],
            {"route": {"cluster": "origin"}}, access_log=[h.readme_access_log()]),
        h.listener("rl", ports["rl"], [h.wasm_filter({
            "providers": [provider()], "rules": RULES, "audit": "log",
            "rate_limit": {"per_client_per_s": 1, "burst": 10}}, vm_id="tokengate-rl")],
            {"route": {"cluster": "origin"}}),
        h.listener("mtls", ports["mtls"], [h.wasm_filter({
            "providers": [provider()], "rules": RULES, "forward": FORWARD, "mtls_binding": "required"},
            vm_id="tokengate-mtls")],
            {"route": {"cluster": "origin"}},
            tls={"cert": certs["server"]["cert"], "key": certs["server"]["key"], "ca": certs["ca"]}),
        # ES256 with inline keys: Envoy's verify_signature gets the P-256 key and a DER signature.
        h.listener("es", ports["es"], [h.wasm_filter({
            "providers": [dict(provider(), jwks={"keys": [ec_key.jwk()]}, algorithms=["ES256"])],
            "rules": RULES}, vm_id="tokengate-es")],
            {"route": {"cluster": "origin"}}),
        h.listener("dead", ports["dead"], [h.wasm_filter({
            "providers": [provider(cluster="dead_jwks")], "rules": RULES,
            "wait": {"timeout_ms": 1500, "max_requests": 100}}, vm_id="tokengate-dead")],
            {"route": {"cluster": "origin"}}),
    ]
    clusters = [h.cluster("origin", origin.port), h.cluster("jwks", jwks.port),
                h.cluster("dead_jwks", ports["dead_jwks"])]
    envoy = h.Envoy(work, h.bootstrap(ports["admin"], listeners, clusters), ports["admin"])
    base = f"http://127.0.0.1:{ports['main']}"
    try:
        envoy.start()
        run_checks(envoy, base, ports, jwks, origin, certs, key_a, key_b, ec_key)
        bad_config_is_refused(work, ports)
    except Exception as e:  # a crash of the harness is a failed check, with the Envoy log
        check("harness ran to completion", False, f"{type(e).__name__}: {e}")
    finally:
        envoy.stop()
        jwks.close()
        origin.close()
        if any(not ok for _, ok in RESULTS):
            print("---- envoy log (tail) ----\n" + envoy.log_text()[-4000:])
    try:
        vectors_e2e.run(check, work)
        paused_body_e2e.run(check, work)
        feed_e2e.run(check, work)
        identity_e2e.run(check, work)
        budget_e2e.run(check, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    check("finished within the deadline", time.monotonic() - started < DEADLINE_S)
    passed = sum(ok for _, ok in RESULTS)
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def run_checks(envoy, base, ports, jwks, origin, certs, key_a, key_b, ec_key):
    read_a = key_a.sign(h.claims("client-a", "orders/read"))

    # Keys load while the first request waits.
    t0 = time.monotonic()
    r = h.curl(base + "/orders?probe=first", "-H", f"authorization: Bearer {read_a}")
    waited = time.monotonic() - t0
    check("first request pauses while the JWKS loads, then passes (200)", r["status"] == 200, r)
    check("  ... and it did wait for the slow JWKS", waited >= 0.3, f"{waited:.3f}s")
    jwks.delay_s = 0.0
    fetches_after_start = jwks.fetches
    # Three filter configurations (main, rl, mtls) use this JWKS server; each has two workers.
    check("workers share one initial fetch per filter configuration", 1 <= fetches_after_start <= 3,
          fetches_after_start)

    r = h.curl(base + "/health?probe=health")
    check("anonymous /health reaches the origin", r["status"] == 200 and origin.find("probe=health"), r)

    r = h.curl(base + "/orders?probe=nologin")
    check("no token: 401 token_missing", r["status"] == 401 and r["json"] == {
        "error": "token_missing", "message": r["json"]["message"]} if r["json"] else False, r)
    check("  ... WWW-Authenticate: Bearer realm only",
          r["headers"].get("www-authenticate") == 'Bearer realm="tokengate-e2e"', r["headers"])
    check("  ... origin never reached", not origin.find("probe=nologin"))

    r = h.curl(base + "/orders?probe=bad", "-H", "authorization: Bearer not.a.token")
    check("malformed token: 401 invalid_token", r["status"] == 401 and r["json"]["error"] == "token_malformed", r)
    check("  ... error=\"invalid_token\"",
          r["headers"].get("www-authenticate") == 'Bearer realm="tokengate-e2e", error="invalid_token"', r["headers"])
    check("  ... origin never reached", not origin.find("probe=bad"))

    expired = key_a.sign(h.claims("client-a", "orders/read", exp=int(time.time()) - 120))
    r = h.curl(base + "/orders?probe=expired", "-H", f"authorization: Bearer {expired}")
    check("expired token: 401 token_expired", r["status"] == 401 and r["json"]["error"] == "token_expired", r)

    r = h.curl(base + "/orders?probe=two", "-H", f"authorization: Bearer {read_a}",
               "-H", f"authorization: Bearer {read_a}")
    check("two Authorization headers: 401", r["status"] == 401 and not origin.find("probe=two"), r)

    r = h.curl(base + "/orders?probe=ok", "-H", f"authorization: Bearer {read_a}",
               "-H", "x-tokengate-client-id: spoofed")
    seen = origin.find("probe=ok")
    check("valid token: 200 from the origin", r["status"] == 200 and r["json"] == {"origin": "ok"}, r)
    check("  ... claims forwarded, spoofed copy stripped",
          seen and seen[0]["headers"].get("x-tokengate-client-id") == "client-a"
          and seen[0]["headers"].get("x-tokengate-scope") == "orders/read", seen)

    r = h.curl(base + "/orders?probe=write", "-X", "POST", "-H", f"authorization: Bearer {read_a}")
    check("missing scope: 403 scope_insufficient", r["status"] == 403 and r["json"]["error"] == "scope_insufficient", r)
    check("  ... insufficient_scope with scope=\"orders/write\"",
          r["headers"].get("www-authenticate") ==
          'Bearer realm="tokengate-e2e", error="insufficient_scope", scope="orders/write"', r["headers"])
    check("  ... origin never reached", not origin.find("probe=write"))

    r = h.curl(base + "/other?probe=default", "-H", f"authorization: Bearer {read_a}")
    check("unmatched route with a valid token: 403 (default deny)", r["status"] == 403, r)

    r = h.curl(base + "/health/../orders?probe=dots")
    check("dot segments are normalised by Envoy before the rules: 401",
          r["status"] == 401 and not origin.find("probe=dots"), r)

    # Rate limit (its own listener): one bucket per client across both workers.
    rl_base = f"http://127.0.0.1:{ports['rl']}"
    rl = key_a.sign(h.claims("client-rl", "orders/read"))
    statuses, last = [], None
    for i in range(14):
        last = h.curl(rl_base + f"/orders?probe=rl{i}", "-H", f"authorization: Bearer {rl}")
        statuses.append(last["status"])
    limited = [r for r in statuses if r == 429]
    check("rate limit: 429 once the burst of 10 is spent", statuses[:10] == [200] * 10 and limited, statuses)
    if limited:
        r = h.curl(rl_base + "/orders?probe=rl-last", "-H", f"authorization: Bearer {rl}")
        check("  ... with Retry-After", r["status"] == 429 and r["headers"].get("retry-after", "").isdigit(), r)

    # Key rotation while Envoy serves: traffic with the old key never fails; a token signed with
    # the new key triggers one refetch and passes.
    stop = threading.Event()
    background = []

    def traffic():
        i = 0
        while not stop.is_set() and i < 200:
            t = key_a.sign(h.claims("client-b", "orders/read", jti=f"bg-{i}")) if i % 10 == 0 else bg_token
            background.append(h.curl(base + f"/orders?probe=bg{i}", "-H", f"authorization: Bearer {t}")["status"])
            i += 1

    bg_token = key_a.sign(h.claims("client-b", "orders/read"))
    th = threading.Thread(target=traffic, daemon=True)
    th.start()
    time.sleep(0.3)
    before = jwks.fetches
    jwks.doc = {"keys": [key_a.jwk(), key_b.jwk()]}
    rotated = key_b.sign(h.claims("client-a", "orders/read"))
    r = h.curl(base + "/orders?probe=rotated", "-H", f"authorization: Bearer {rotated}")
    check("rotation: token from the new key passes (unknown kid -> refetch)", r["status"] == 200, r)
    check("  ... after a refetch", jwks.fetches > before, (before, jwks.fetches))
    time.sleep(0.3)
    stop.set()
    th.join(timeout=20)
    check("  ... old-key traffic kept passing during the rotation",
          background and all(s == 200 for s in background), background[:20])
    forged = h.TestKey("rsa-b.pem", "never-published").sign(h.claims("client-a", "orders/read"))
    r = h.curl(base + "/orders?probe=forged", "-H", f"authorization: Bearer {forged}")
    check("unknown kid after the refetch: 401 kid_unknown",
          r["status"] == 401 and r["json"]["error"] == "kid_unknown", r)
    # Published kids, signatures that do not verify: refused by Envoy's verify_signature.
    head, body, sig = key_a.sign(h.claims("client-a", "orders/read")).split(".")
    widened = h.b64url(json.dumps(h.claims("client-a", "orders/read orders/write")).encode())
    for probe, token in [("tampered", f"{head}.{widened}.{sig}"),
                         ("bitflip", f"{head}.{body}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"),
                         ("other-key", f"{head}.{body}.{rotated.split('.')[2]}")]:
        r = h.curl(base + f"/orders?probe={probe}", "-X", "POST", "-H", f"authorization: Bearer {token}")
        check(f"signature that does not verify ({probe}): 401 signature_invalid, never a pass",
              r["status"] == 401 and r["json"]["error"] == "signature_invalid"
              and not origin.find(f"probe={probe}"), r)

    # ES256: the P-256 key and the DER form of r || s go to Envoy's verify_signature.
    es = f"http://127.0.0.1:{ports['es']}"
    es_token = ec_key.sign(h.claims("client-a", "orders/read"))
    r = h.curl(es + "/orders?probe=es256", "-H", f"authorization: Bearer {es_token}")
    check("ES256 token checked by Envoy's crypto: 200", r["status"] == 200 and origin.find("probe=es256"), r)
    head, body, sig = es_token.split(".")
    other = ec_key.sign(h.claims("client-a", "orders/read")).split(".")[2]
    widened = h.b64url(json.dumps(h.claims("client-a", "orders/read orders/write")).encode())
    for probe, token in [("es256-tampered", f"{head}.{widened}.{sig}"), ("es256-other", f"{head}.{body}.{other}")]:
        r = h.curl(es + f"/orders?probe={probe}", "-X", "POST", "-H", f"authorization: Bearer {token}")
        check(f"ES256 signature that does not verify ({probe}): 401 signature_invalid",
              r["status"] == 401 and r["json"]["error"] == "signature_invalid" and not origin.find(f"probe={probe}"), r)

    # mTLS listener: token bound to client certificate A.
    mtls = f"https://127.0.0.1:{ports['mtls']}"
    bound = key_a.sign(h.claims("client-a", "orders/read", cnf={"x5t#S256": certs["client-a"]["x5t"]}))
    tls_a = ["--cacert", certs["ca"], "--cert", certs["client-a"]["cert"], "--key", certs["client-a"]["key"]]
    tls_b = ["--cacert", certs["ca"], "--cert", certs["client-b"]["cert"], "--key", certs["client-b"]["key"]]
    r = h.curl(mtls + "/orders?probe=mtls-ok", *tls_a, "-H", f"authorization: Bearer {bound}")
    check("mTLS: token bound to the presented certificate: 200", r["status"] == 200, r)
    r = h.curl(mtls + "/orders?probe=mtls-other", *tls_b, "-H", f"authorization: Bearer {bound}")
    check("mTLS: another client certificate: 401 binding_mismatch",
          r["status"] == 401 and r["json"]["error"] == "binding_mismatch" and not origin.find("probe=mtls-other"), r)
    r = h.curl(mtls + "/orders?probe=mtls-unbound", *tls_a, "-H", f"authorization: Bearer {read_a}")
    check("mTLS required: unbound token: 401 binding_mismatch",
          r["status"] == 401 and r["json"]["error"] == "binding_mismatch", r)

    # No key set can be had: fail closed.
    dead = f"http://127.0.0.1:{ports['dead']}"
    r = h.curl(dead + "/orders?probe=dead", "-H", f"authorization: Bearer {read_a}")
    check("JWKS unreachable: 503 jwks_unavailable, never a pass",
          r["status"] == 503 and r["json"]["error"] == "jwks_unavailable" and not origin.find("probe=dead"), r)
    check("  ... with Retry-After", r["headers"].get("retry-after", "").isdigit(), r["headers"])

    # Metrics and audit log. Counters reach Envoy on the filter's next tick (100 ms).
    time.sleep(0.5)
    stats = envoy.stats()
    get = lambda k: int(stats.get(k, "0") or 0)  # noqa: E731
    check("metric tokengate_allowed_total counts", get("wasmcustom.tokengate_allowed_total") >= 10,
          {k: v for k, v in stats.items() if "tokengate" in k})
    check("metric tokengate_denied_total per code",
          get("wasmcustom.tokengate_denied_total.code.token_missing") >= 1
          and get("wasmcustom.tokengate_denied_total.code.rate_limited") >= 1
          and get("wasmcustom.tokengate_denied_total.code.jwks_unavailable") >= 1)
    check("metric tokengate_jwks_refresh_total per result",
          get("wasmcustom.tokengate_jwks_refresh_total.result.ok") >= 2
          # Envoy answers a refused connection with its own 503: http_error, not transport.
          and get("wasmcustom.tokengate_jwks_refresh_total.result.http_error")
          + get("wasmcustom.tokengate_jwks_refresh_total.result.transport") >= 1)
    # Envoy 1.40 serves the verify_signature foreign function: every signature in this run was
    # checked by its BoringSSL, none by the wasm RSA (which the forged-signature checks above
    # would also have refused).
    check("metric tokengate_signature_checks_total: Envoy's crypto checked every signature",
          get("wasmcustom.tokengate_signature_checks_total.crypto.native") >= 5
          and get("wasmcustom.tokengate_signature_checks_total.crypto.wasm") == 0,
          {k: v for k, v in stats.items() if "signature_checks" in k})
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['admin']}/stats/prometheus", timeout=5) as resp:
        prom = resp.read().decode()
    # Envoy exports its custom (wasmcustom) namespace without the envoy_ prefix.
    check("prometheus: code is a label", '\ntokengate_denied_total{code="token_missing"}' in prom,
          [l for l in prom.splitlines() if "tokengate_denied" in l][:3])
    log = envoy.log_text()
    # "audit": "log" (the rl listener): one JSON line per decision in Envoy's log.
    lines = [l for l in log.splitlines() if '"decision":' in l]
    check("\"audit\": \"log\": one JSON audit line per decision", len([l for l in lines if "tokengate-rl:" in l]) >= 15,
          len(lines))
    check("  ... only where configured: the default records go to filter state",
          not [l for l in lines if "tokengate-main:" in l], lines[:2])
    check("  ... never the token", read_a not in log and rl not in log)
    line = next((l for l in lines if '"code":"rate_limited"' in l), "")
    try:
        doc = json.loads(line[line.index("{"):])
    except ValueError:
        doc = {}
    check("  ... with decision, code, client_id, scopes, kid, jti_sha256, route, mode, status",
          doc.get("decision") == "deny" and doc.get("client_id") == "client-rl" and doc.get("status") == 429
          and doc.get("scopes") == "orders/read" and len(doc.get("jti_sha256") or "") == 64
          and doc.get("mode") == "enforce" and doc.get("route") == "orders-read", line)
    access_log_records(envoy, read_a)


def access_log_records(envoy, token):
    """The README's access log: every request through the main listener carries the record of its
    decision, allowed and denied alike, next to Envoy's own fields."""
    # Envoy writes access logs out every 200 ms here (harness): wait until no more lines come.
    seen, deadline = -1, time.monotonic() + 5
    while time.monotonic() < deadline:
        n = len(envoy.access_log_lines())
        if n == seen and n > 0:
            break
        seen = n
        time.sleep(0.5)
    lines = envoy.access_log_lines()
    text = "\n".join(lines)
    entries = [json.loads(l) for l in lines]
    records = [(e, json.loads(e["tokengate"])) for e in entries if isinstance(e.get("tokengate"), str)]
    # The first request waited for the JWKS and was let through from the root context: its
    # record, like every other, is on its own stream.
    check("access log: every request through the filter has its record (%FILTER_STATE(wasm.tokengate:PLAIN)%)",
          len(entries) >= 20 and len(records) == len(entries),
          [e for e in entries if not isinstance(e.get("tokengate"), str)][:3])
    check("  ... and never the token", token not in text)
    allowed = next((r for e, r in records if r.get("route") == "orders-read" and r.get("decision") == "allow"
                    and e.get("status") == 200), {})
    check("  ... an allowed request: decision, route, client_id, scopes, iss, kid, jti_sha256, status 200",
          allowed.get("client_id") == "client-a" and allowed.get("scopes") == "orders/read"
          and allowed.get("iss") == h.ISS and allowed.get("kid") in ("e2e-key-a", "e2e-key-b")
          and len(allowed.get("jti_sha256") or "") == 64 and allowed.get("status") == 200, allowed)
    mismatched = [(e.get("status"), r) for e, r in records if e.get("status") != r.get("status")]
    check("  ... the record's status is the status Envoy answered", not mismatched, mismatched[:3])
    denied = next(((e, r) for e, r in records
                   if r.get("code") == "scope_insufficient" and r.get("route") == "orders-write"), ({}, {}))
    check("  ... a denied request: code and status, as Envoy answered it",
          denied[1].get("decision") == "deny" and denied[1].get("route") == "orders-write"
          and denied[1].get("status") == 403 and denied[0].get("status") == 403, denied)
    missing = next(((e, r) for e, r in records if r.get("code") == "token_missing"), ({}, {}))
    check("  ... a request without a token: token_missing, no claims",
          missing[0].get("status") == 401 and "client_id" not in missing[1], missing)


def bad_config_is_refused(work, ports):
    listeners = [h.listener("bad", ports["bad"], [h.wasm_filter({
        "providers": [provider()], "rules": RULES, "mode": "audit"}, vm_id="tokengate-bad")],
        {"route": {"cluster": "origin"}})]
    envoy = h.Envoy(work, h.bootstrap(ports["bad_admin"], listeners, [h.cluster("origin", 9)]),
                    ports["bad_admin"], concurrency=1, name="envoy-bad")
    try:
        envoy.start(expect_ready=False)
        rc = envoy.wait_exit(30)
        log = envoy.log_text()
        line = [l for l in log.splitlines() if "invalid configuration" in l]
        check("bad plugin config: Envoy refuses it at load", rc not in (None, 0), rc)
        check("  ... one log line naming the field",
              len(line) >= 1 and "invalid configuration: mode: " in line[0], line or log[-1500:])
    finally:
        envoy.stop()


if __name__ == "__main__":
    sys.exit(main())
