"""A request paused while the filter waits for JWKS keys never leaks its body.

Envoy runs the filter with `allow_on_headers_stop_iteration: true`: a Pause from
on_http_request_headers is then a plain StopIteration, and Envoy goes on calling the filter with
the body (and trailers). If the filter let those through, Envoy would resume the request and send
headers and body upstream before the decision. So: POSTs with a body (content-length, and
chunked with trailers) written slowly while the keys load, with a forged token (unknown kid) or
while the key set never arrives, must not put a single byte on the origin's sockets; the same
POSTs with a valid token must reach the origin with the whole body once the keys are there.
"""

import os
import socket
import threading
import time

import harness as h

RULES = [{"name": "orders-write", "match": {"prefix": "/orders"}, "scopes": {"all": ["orders/write"]}}]
FIRST_FETCH_DELAY_S = 2.5  # the first JWKS answer of the slow server
PIECES, PIECE_BYTES, GAP_S = 4, 16384, 0.15


def plugin(cluster, jwks_timeout_ms, wait_timeout_ms):
    return {"providers": [{"issuer": h.ISS,
                           "jwks": {"cluster": cluster, "path": h.POOL_PATH, "authority": "cognito-idp.local",
                                    "timeout_ms": jwks_timeout_ms},
                           "client_ids": ["client-a"], "algorithms": ["RS256"], "leeway_s": 30}],
            "rules": RULES, "wait": {"timeout_ms": wait_timeout_ms, "max_requests": 100}}


def body_pieces(name):
    marker = f"BODY-{name}-{os.urandom(6).hex()}-".encode()
    pieces = [marker + str(i).encode() + b"." * (PIECE_BYTES - len(marker) - 1) for i in range(PIECES)]
    return marker, pieces


def streamed_post(port, target, token, name, chunked, pieces, gap_s=GAP_S, timeout_s=10.0):
    """POST whose body is written in pieces, `gap_s` apart, after the headers. Returns the parsed
    answer, the seconds until it was complete, and whether every byte could be written."""
    head = [f"POST {target} HTTP/1.1", f"host: 127.0.0.1:{port}", f"authorization: Bearer {token}",
            f"x-e2e-case: {name}", "content-type: application/octet-stream", "connection: close"]
    head.append("transfer-encoding: chunked" if chunked else f"content-length: {sum(map(len, pieces))}")
    t0 = time.monotonic()
    buf, wrote_all = b"", True
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for p in pieces:
                time.sleep(gap_s)
                s.sendall(b"%x\r\n%s\r\n" % (len(p), p) if chunked else p)
            if chunked:
                s.sendall(b"0\r\nx-e2e-trailer: t\r\n\r\n")
        except OSError:
            wrote_all = False  # Envoy answered and closed while the body was still being written
        s.settimeout(max(0.5, timeout_s - (time.monotonic() - t0)))
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            buf += chunk
            if h.read_http_message(buf, is_response=True) is not None:
                break
    return h.parse_response(buf), time.monotonic() - t0, wrote_all


def run(check, work):
    started = time.monotonic()
    check, failed = h.tracking(check)
    key_a = h.TestKey("rsa-a.pem", "e2e-key-a")
    forger = h.TestKey("rsa-b.pem", "never-published")
    jwks = h.JwksServer({"keys": [key_a.jwk()]})
    jwks.first_delay_s = FIRST_FETCH_DELAY_S
    silent = h.SilentServer()
    origin = h.RawOrigin()
    ports = {k: h.free_port() for k in ["admin", "slow", "never"]}
    hold = {"allow_on_headers_stop_iteration": True}
    listeners = [
        h.listener("hold_slow", ports["slow"], [h.wasm_filter(plugin("slow_jwks", 5000, 6000),
                                                               vm_id="hold-slow", **hold)],
                   {"route": {"cluster": "origin"}}),
        h.listener("hold_never", ports["never"], [h.wasm_filter(plugin("silent_jwks", 4000, 1000),
                                                                 vm_id="hold-never", **hold)],
                   {"route": {"cluster": "origin"}}),
    ]
    for lst in listeners:  # Envoy drops HTTP/1 trailers unless asked: keep them, so they reach the filter
        lst["filter_chains"][0]["filters"][0]["typed_config"]["http_protocol_options"] = {"enable_trailers": True}
    clusters = [h.cluster("origin", origin.port), h.cluster("slow_jwks", jwks.port),
                h.cluster("silent_jwks", silent.port)]
    envoy = h.Envoy(work, h.bootstrap(ports["admin"], listeners, clusters), ports["admin"],
                    concurrency=1, name="envoy-hold")
    valid = key_a.sign(h.claims("client-a", "orders/write"))
    forged = forger.sign(h.claims("client-a", "orders/write"))
    try:
        envoy.start()
        check("Envoy accepts allow_on_headers_stop_iteration on the Wasm PluginConfig", True)
        results, markers, bodies = {}, {}, {}
        # Slow key set: the first fetch answers after FIRST_FETCH_DELAY_S. These POSTs start at
        # once and write their bodies (and the chunked ones, trailers) while they are paused.
        # "never": the key set never arrives; the wait ends after 1 s with 503 - "never_late"
        # is still writing its body when that answer comes.
        plan = [("forged_cl", "slow", forged, False, GAP_S), ("forged_chunked", "slow", forged, True, GAP_S),
                ("valid_cl", "slow", valid, False, GAP_S), ("valid_chunked", "slow", valid, True, GAP_S),
                ("never_cl", "never", valid, False, GAP_S), ("never_chunked", "never", valid, True, GAP_S),
                ("never_late", "never", valid, True, 0.4)]
        threads = []
        for name, where, token, chunked, gap in plan:
            markers[name], pieces = body_pieces(name)
            bodies[name] = b"".join(pieces)

            def go(name=name, where=where, token=token, chunked=chunked, pieces=pieces, gap=gap):
                results[name] = streamed_post(ports[where], f"/orders?probe={name}", token, name, chunked,
                                              pieces, gap_s=gap)
            threads.append(threading.Thread(target=go, daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
        # After the keys loaded.
        for name, token, chunked in [("after_valid_cl", valid, False), ("after_valid_chunked", valid, True),
                                     ("after_forged_chunked", forged, True)]:
            markers[name], pieces = body_pieces(name)
            bodies[name] = b"".join(pieces)
            results[name] = streamed_post(ports["slow"], f"/orders?probe={name}", token, name, chunked, pieces,
                                          gap_s=0.02)
        time.sleep(0.3)  # anything Envoy would (wrongly) still send upstream has time to arrive

        def status(name):
            return results.get(name, ({"status": None},))[0]

        def code(name):
            doc = status(name).get("json")
            return doc.get("error") if isinstance(doc, dict) else None

        def leaked(name):
            return origin.tagged("x-e2e-case", name) or origin.saw_bytes(markers[name])

        for name in ["forged_cl", "forged_chunked"]:
            r, took, _ = results.get(name, ({"status": None}, 0, None))
            check(f"paused POST ({'chunked' if 'chunked' in name else 'content-length'}), forged kid, keys "
                  f"loading: 401 kid_unknown once they load", r["status"] == 401 and code(name) == "kid_unknown"
                  and took >= 1.0, (r.get("status"), code(name), f"{took:.2f}s"))
            check("  ... the origin received neither the request nor one byte of its body", not leaked(name),
                  origin.tagged("x-e2e-case", name))
        for name in ["valid_cl", "valid_chunked"]:
            r, took, _ = results.get(name, ({"status": None}, 0, None))
            got = origin.tagged("x-e2e-case", name)
            check(f"paused POST ({'chunked' if 'chunked' in name else 'content-length'}), valid token, keys "
                  f"loading: 200 once they load, after waiting", r["status"] == 200 and took >= 1.0,
                  (r.get("status"), r.get("body", "")[:200], f"{took:.2f}s"))
            check("  ... the origin received it once, with the whole body",
                  len(got) == 1 and got[0]["body"] == bodies[name],
                  [(len(g["body"]), g["target"]) for g in got])
        for name in ["never_cl", "never_chunked", "never_late"]:
            r, took, wrote_all = results.get(name, ({"status": None, "headers": {}}, 0, None))
            check(f"paused POST ({name}), key set never arrives: 503 jwks_unavailable with Retry-After "
                  f"after the 1 s wait", r["status"] == 503 and code(name) == "jwks_unavailable"
                  and r["headers"].get("retry-after", "").isdigit() and took >= 0.9,
                  (r.get("status"), code(name), r.get("headers"), f"{took:.2f}s"))
            check("  ... the origin received neither the request nor one byte of its body"
                  + (" (the answer came while the body was still being written)" if name == "never_late" else ""),
                  not leaked(name), origin.tagged("x-e2e-case", name))
        for name in ["after_valid_cl", "after_valid_chunked"]:
            r = status(name)
            got = origin.tagged("x-e2e-case", name)
            check(f"POST ({'chunked' if 'chunked' in name else 'content-length'}) with a valid token after the "
                  f"keys loaded: 200, the origin received the whole body",
                  r["status"] == 200 and len(got) == 1 and got[0]["body"] == bodies[name],
                  (r.get("status"), [(len(g["body"]), g["target"]) for g in got]))
        check("chunked POST with a forged kid after the keys loaded: 401, nothing reaches the origin",
              status("after_forged_chunked")["status"] == 401 and code("after_forged_chunked") == "kid_unknown"
              and not leaked("after_forged_chunked"), (status("after_forged_chunked"), leaked("after_forged_chunked")))
        check("  ... no request the filter refused appears anywhere in the origin's traffic",
              all(not origin.saw_bytes(markers[n]) for n in markers if "forged" in n or "never" in n))
    except Exception as e:  # a crash of this part is a failed check, with its Envoy log
        check("paused-body checks ran to completion", False, f"{type(e).__name__}: {e}")
    finally:
        envoy.stop()
        if failed:
            print(f"---- {envoy.name} log (tail) ----\n" + envoy.log_text()[-3000:])
        jwks.close()
        silent.close()
        origin.close()
    print(f"     (paused bodies: {time.monotonic() - started:.1f}s)", flush=True)
    return envoy
