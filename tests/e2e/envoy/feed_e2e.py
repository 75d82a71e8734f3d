"""The policy feed in real Envoy: a local feed server with ETag / If-None-Match / 304, an Envoy
cluster to it, and the filter polling it every second (two workers, one fetch per poll).

- the first request waits for the first document, then passes;
- while nothing changes the server sees 304s, about one fetch per poll_s for both workers;
- the document changes to revoke the client of a valid, already cached token: Envoy denies it
  (401 token_revoked) within poll_s + a margin (measured, asserted <= 3 s), unsigned and signed;
- signed: a document whose payload was swapped (a cache trying to un-revoke) is refused;
- the server stops: after max_stale_s (3 s) `fail_closed` answers 503 policy_unavailable and
  `keep` keeps answering 200, each said once in the log; the server comes back: fresh again.
"""

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness as h

POLL_S, MAX_STALE_S = 1, 3
REVOKE_WITHIN_S = 3.0
RULES = [{"name": "health", "match": {"prefix": "/health"}, "allow": "anonymous"},
         {"name": "orders-read", "match": {"prefix": "/orders", "methods": ["GET"]},
          "scopes": {"all": ["orders/read"]}}]


class FeedServer:
    """Serves one document at /edge-policy.json with a strong ETag; answers 304 to a matching
    If-None-Match. Records (time, status, If-None-Match) per request. stop() and start() again
    on the same port."""

    def __init__(self):
        self.port = h.free_port()
        self.lock = threading.Lock()
        self.body, self.etag = b"", '""'
        self.requests = []
        self.httpd = None
        self.start()

    def set(self, body: bytes):
        with self.lock:
            self.body = body
            self.etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def start(self):
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv = self.server.owner
                inm = self.headers.get("if-none-match")
                with srv.lock:
                    body, etag = srv.body, srv.etag
                    status = 304 if inm == etag else 200
                    srv.requests.append((time.monotonic(), status, inm))
                self.send_response(status)
                self.send_header("etag", etag)
                self.send_header("cache-control", f"max-age={POLL_S}")
                if status == 200:
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                self.end_headers()
                if status == 200:
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def since(self, t0):
        with self.lock:
            return [r for r in self.requests if r[0] >= t0]


def document(version, revoked_clients=()):
    provider = {"revoke": {"client_ids": list(revoked_clients)}} if revoked_clients else {}
    return {"format": 1, "version": version, "issued_at": int(time.time()), "providers": {h.ISS: provider}}


def plugin(key, cluster, stale, feed_keys=None, max_stale_s=MAX_STALE_S):
    feed = {"cluster": cluster, "path": "/edge-policy.json", "authority": "policy.local", "timeout_ms": 1000,
            "poll_s": POLL_S, "max_stale_s": max_stale_s, "stale": stale}
    if feed_keys:
        feed.update({"keys": feed_keys, "algorithms": ["RS256"]})
    else:
        feed["unsigned"] = True
    return {"providers": [{"issuer": h.ISS, "jwks": {"keys": [key.jwk()]},
                           "client_ids": ["client-a", "client-feed"], "algorithms": ["RS256"], "leeway_s": 30}],
            "rules": RULES, "feed": feed}


def run(check, work):
    started = time.monotonic()
    check, failed = h.tracking(check)

    key_a = h.TestKey("rsa-a.pem", "e2e-key-a")
    feed_key = h.TestKey("rsa-b.pem", "e2e-feed-key")
    servers = {name: FeedServer() for name in ["keep", "closed", "signed"]}
    servers["keep"].set(json.dumps(document(1)).encode())
    servers["closed"].set(json.dumps(document(1)).encode())
    servers["signed"].set(feed_key.sign(document(1)).encode())
    origin = h.Origin()
    ports = {k: h.free_port() for k in ["admin", "keep", "closed", "signed"]}
    configs = {"keep": plugin(key_a, "feed_keep", "keep"),
               "closed": plugin(key_a, "feed_closed", "fail_closed"),
               # Served a tampered document for a while below: a longer max_stale_s keeps it fresh.
               "signed": plugin(key_a, "feed_signed", "fail_closed", feed_keys=[feed_key.jwk()], max_stale_s=10)}
    listeners = [h.listener(f"feed_{n}", ports[n], [h.wasm_filter(configs[n], vm_id=f"tokengate-feed-{n}")],
                            {"route": {"cluster": "origin"}}) for n in configs]
    clusters = [h.cluster("origin", origin.port)] + [h.cluster(f"feed_{n}", s.port) for n, s in servers.items()]
    envoy = h.Envoy(work, h.bootstrap(ports["admin"], listeners, clusters), ports["admin"],
                    concurrency=2, name="envoy-feed", log_level="warning")
    revoked = key_a.sign(h.claims("client-feed", "orders/read"))
    other = key_a.sign(h.claims("client-a", "orders/read"))

    def get(name, token, probe):
        return h.curl(f"http://127.0.0.1:{ports[name]}/orders?probe={probe}", "-H", f"authorization: Bearer {token}",
                      timeout_s=5)

    def code(r):
        return r["json"].get("error") if isinstance(r.get("json"), dict) else None

    try:
        envoy.start()
        # 1. First load: the first requests wait for the document, then pass (and are cached).
        for n in configs:
            r = get(n, revoked, f"{n}-first")
            check(f"feed ({n}): the first request waits for the first document, then 200", r["status"] == 200,
                  (r["status"], r["body"][:200]))

        # 2. Revoke the client of a cached valid token: measure how soon Envoy denies it.
        for n in configs:
            r = get(n, revoked, f"{n}-before")
            check(f"feed ({n}): the token passes before the change", r["status"] == 200, r["status"])
        v2 = document(2, revoked_clients=["client-feed"])
        servers["keep"].set(json.dumps(v2).encode())
        servers["closed"].set(json.dumps(v2).encode())
        signed_v2 = feed_key.sign(v2)
        servers["signed"].set(signed_v2.encode())
        t_change = time.monotonic()
        denied_after, last, denied_probes = {}, {}, []
        i = 0
        while len(denied_after) < len(configs) and time.monotonic() - t_change < 6.0:
            for n in configs:
                if n in denied_after:
                    continue
                r = get(n, revoked, f"{n}-poll{i}")
                last[n] = r
                if r["status"] == 401 and code(r) == "token_revoked":
                    denied_after[n] = time.monotonic() - t_change
                    denied_probes.append(f"{n}-poll{i}")
            i += 1
            time.sleep(0.05)
        for n in configs:
            took = denied_after.get(n)
            print(f"     feed ({n}): revoke-to-deny {took:.2f} s" if took is not None
                  else f"     feed ({n}): never denied", flush=True)
            check(f"feed ({n}): a cached token of a client the document "
                  f"revokes is denied (401 token_revoked) within {REVOKE_WITHIN_S:.0f} s of the change",
                  took is not None and took <= REVOKE_WITHIN_S,
                  (took, last.get(n, {}).get("status"), last.get(n, {}).get("body", "")[:200]))
        r = last.get("keep", {})
        check("  ... with the invalid_token challenge",
              r.get("headers", {}).get("www-authenticate", "").endswith('error="invalid_token"'), r.get("headers"))
        check("  ... and never reaches the origin",
              denied_probes and not any(s["path"] == f"/orders?probe={p}"
                                        for p in denied_probes for s in origin.find(p)), denied_probes)
        r = get("keep", other, "keep-other")
        check("  ... another client's token still passes", r["status"] == 200, r["status"])

        # 3. Nothing changes: 304s, one fetch per poll for both workers. Meanwhile a cache in front
        # of the signed feed swaps the payload for one that un-revokes (version 3): refused.
        head, _, sig = signed_v2.split(".")
        forged_payload = feed_key.sign(document(3)).split(".")[1]
        servers["signed"].set(f"{head}.{forged_payload}.{sig}".encode())
        t0 = time.monotonic()
        time.sleep(1.5)
        r = get("signed", revoked, "signed-tampered")
        check("feed (signed): a payload swapped by a cache is refused; the revocation stays",
              r["status"] == 401 and code(r) == "token_revoked", (r["status"], r["body"][:200]))
        servers["signed"].set(signed_v2.encode())
        time.sleep(1.5)
        window = servers["keep"].since(t0)
        statuses = [s for _, s, _ in window]
        check("feed: while nothing changes the server answers 304 to If-None-Match",
              statuses.count(304) >= 2 and statuses.count(200) == 0 and all(i for _, _, i in window),
              statuses)
        print(f"     feed (keep): {len(window)} fetches in 3.0 s ({statuses.count(304)} answered 304)", flush=True)
        check("  ... about one fetch per poll_s from two workers (a lease: never both)",
              2 <= len(window) <= 4, f"{len(window)} fetches in 3.0 s")

        # 4. The unsigned servers stop: after max_stale_s, fail_closed answers 503, keep goes on.
        servers["keep"].stop()
        servers["closed"].stop()
        t_stop = time.monotonic()
        closed_after, r_closed = None, None
        while time.monotonic() - t_stop < MAX_STALE_S + 5:
            r_closed = get("closed", other, "closed-stale")
            if r_closed["status"] == 503:
                closed_after = time.monotonic() - t_stop
                break
            time.sleep(0.1)
        print(f"     feed (closed): 503 {closed_after:.2f} s after the server stopped (max_stale_s {MAX_STALE_S})"
              if closed_after is not None else "     feed (closed): never 503", flush=True)
        check(f"feed server stopped: after max_stale_s ({MAX_STALE_S} s) fail_closed answers 503 policy_unavailable",
              closed_after is not None and closed_after >= MAX_STALE_S - 1.5 and code(r_closed) == "policy_unavailable",
              (closed_after, r_closed and r_closed["status"], r_closed and r_closed["body"][:200]))
        check("  ... with Retry-After: 5", r_closed and r_closed["headers"].get("retry-after") == "5",
              r_closed and r_closed["headers"])
        r = h.curl(f"http://127.0.0.1:{ports['closed']}/health?probe=closed-health", timeout_s=5)
        check("  ... anonymous routes still pass", r["status"] == 200, r["status"])
        r = get("keep", other, "keep-stale")
        check("feed server stopped: keep goes on with the last version (200)", r["status"] == 200, r["status"])
        r = get("keep", revoked, "keep-stale-revoked")
        check("  ... which still revokes the client (401 token_revoked)",
              r["status"] == 401 and code(r) == "token_revoked", (r["status"], r["body"][:200]))
        time.sleep(0.3)  # counters and gauges reach Envoy on the next tick
        stats = envoy.stats()
        stale_gauge = stats.get("wasmcustom.tokengate_feed_stale")

        # 5. The server comes back: fresh again (after the filter's backoff).
        servers["closed"].start()
        t_back, back_after = time.monotonic(), None
        while time.monotonic() - t_back < 12:
            r = get("closed", other, "closed-back")
            if r["status"] == 200:
                back_after = time.monotonic() - t_back
                break
            time.sleep(0.2)
        check("feed server back: fail_closed serves again", back_after is not None,
              f"{back_after}")
        if back_after is not None:
            print(f"     feed (closed): 200 again {back_after:.2f} s after the server came back", flush=True)

        time.sleep(0.3)
        log = envoy.log_text()
        lines = [line for line in log.splitlines() if "tokengate: policy feed" in line]

        def count(*needles):
            return sum(1 for line in lines if all(n in line for n in needles))
        check("log: 'policy feed loaded version 2' once per filter configuration",
              count("policy feed loaded version 2") == 3, [line for line in lines if "loaded" in line])
        check("log: the turn to stale once per filter configuration (two workers each)",
              count("stale since", "keeping version 2") == 1
              and count("stale since", "failing closed with 503 policy_unavailable") == 1,
              [line for line in lines if "stale" in line])
        check("log: fresh again once", count("policy feed fresh again: version 2") == 1,
              [line for line in lines if "fresh again" in line])
        check("log: the refused signature is named",
              count("refresh failed", "signature does not verify") >= 1,
              [line for line in lines if "refresh failed" in line][:5])
        get_ = lambda k: int(stats.get(k, "0") or 0)  # noqa: E731
        c = "wasmcustom.tokengate_feed_refresh_total.result."
        check("metrics: tokengate_feed_refresh_total per result",
              get_(c + "ok") >= 6 and get_(c + "not_modified") >= 2 and get_(c + "invalid") >= 1
              and get_(c + "http_error") + get_(c + "transport") >= 2,
              {k: v for k, v in stats.items() if "tokengate_feed" in k})
        check("metrics: gauges tokengate_feed_version (2) and tokengate_feed_stale (1 while stale)",
              get_("wasmcustom.tokengate_feed_version") == 2 and stale_gauge == "1",
              (stats.get("wasmcustom.tokengate_feed_version"), stale_gauge))
        check("metrics: denials counted as policy_unavailable and token_revoked",
              get_("wasmcustom.tokengate_denied_total.code.policy_unavailable") >= 1
              and get_("wasmcustom.tokengate_denied_total.code.token_revoked") >= 3)
    except Exception as e:  # a crash of this part is a failed check, with its Envoy log
        check("policy feed checks ran to completion", False, f"{type(e).__name__}: {e}")
    finally:
        envoy.stop()
        if failed:
            print(f"---- {envoy.name} log (tail) ----\n" + envoy.log_text()[-3000:])
        for s in servers.values():
            s.stop()
        origin.close()
    print(f"     (policy feed: {time.monotonic() - started:.1f}s)", flush=True)
    return envoy
