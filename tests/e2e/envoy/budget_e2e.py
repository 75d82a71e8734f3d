"""A flood of forged tokens through real Envoy meets the signature budget.

One worker with `signature_checks_per_s: 5`. Forged tokens carry the published kid and a
signature of another key (each one different, so none is a cache hit). Within one second of the
filter's clock at most 5 of them get a signature check (401 signature_invalid); the rest get 503
signature_budget_exhausted with Retry-After: 1 and no challenge, none reaches the origin, the
metric counts every one, and a token verified before the flood keeps passing during it. The
flood is bounded (FLOOD requests on loopback) and the exact count is judged per wall-clock
second, so a flood that straddles a second boundary is judged with two budgets.
"""

import json
import time

import harness as h

PER_S = 5
FLOOD = 60


def forged_copies(valid: str, signer_token: str, n: int) -> list:
    """`n` tokens with the header of `valid` (published kid), distinct payloads, and the signature
    of `signer_token` (another key): only a signature check can refuse them."""
    header, payload, _ = valid.split(".")
    sig = signer_token.split(".")[2]
    claims = json.loads(h.base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    out = []
    for i in range(n):
        c = dict(claims, jti=f"forged-{i}-{time.monotonic_ns()}")
        out.append(f"{header}.{h.b64url(json.dumps(c, separators=(',', ':')).encode())}.{sig}")
    return out


def run(check, work):
    started = time.monotonic()
    check, failed = h.tracking(check)
    key_a = h.TestKey("rsa-a.pem", "e2e-key-a")
    other = h.TestKey("rsa-b.pem", "e2e-key-a")  # same kid, another key: a forgery
    jwks = h.JwksServer({"keys": [key_a.jwk()]})
    origin = h.Origin()
    ports = {k: h.free_port() for k in ["admin", "main"]}
    plugin = {"providers": [{"issuer": h.ISS,
                             "jwks": {"cluster": "jwks", "path": h.POOL_PATH, "authority": "cognito-idp.local"},
                             "client_ids": ["client-a"], "algorithms": ["RS256"], "leeway_s": 30}],
              "signature_checks_per_s": PER_S}
    listeners = [h.listener("budget", ports["main"], [h.wasm_filter(plugin, vm_id="budget")],
                            {"route": {"cluster": "origin"}})]
    clusters = [h.cluster("origin", origin.port), h.cluster("jwks", jwks.port)]
    envoy = h.Envoy(work, h.bootstrap(ports["admin"], listeners, clusters), ports["admin"],
                    concurrency=1, name="envoy-budget")
    valid = key_a.sign(h.claims("client-a", "orders/read"))
    forged = forged_copies(valid, other.sign(h.claims("client-a", "orders/read")), FLOOD)

    def send(token, tag):
        return h.raw_request(ports["main"], "GET", f"/orders?probe={tag}",
                             [("authorization", f"Bearer {token}"), ("x-e2e-case", tag)])

    try:
        envoy.start()
        first = send(valid, "valid-before")
        check("budget: a valid token before the flood passes (and is now verified)", first["status"] == 200, first)
        time.sleep(1.1)  # a fresh second for the flood
        answers = []  # (wall second, status, code, headers)
        for i, token in enumerate(forged):
            r = send(token, f"forged-{i}")
            doc = r["json"] if isinstance(r["json"], dict) else {}
            answers.append((int(time.time()), r["status"], doc.get("error"), r["headers"]))
            if i == FLOOD // 2:
                mid = send(valid, "valid-during")
        per_second = {}
        for sec, status, code, _ in answers:
            per_second.setdefault(sec, []).append(code)
        checked = sum(c == "signature_invalid" for _, _, c, _ in answers)
        refused = [a for a in answers if a[2] == "signature_budget_exhausted"]
        other_codes = [a[1:3] for a in answers if a[2] not in ("signature_invalid", "signature_budget_exhausted")]
        # The filter's clock is its tick clock, so a check made just after a wall-clock second
        # boundary may still count in the previous second: judge against the seconds touched.
        check(f"budget: {FLOOD} forged tokens get at most {PER_S} signature checks per second "
              f"({len(per_second)} second(s) touched)",
              1 <= checked <= PER_S * (len(per_second) + 1) and not other_codes,
              {"checked": checked, "per_second": {s: len(v) for s, v in per_second.items()}, "other": other_codes})
        check("budget: the rest get 503 signature_budget_exhausted with Retry-After: 1 and no challenge",
              len(refused) >= FLOOD - PER_S * (len(per_second) + 1)
              and all(a[1] == 503 and a[3].get("retry-after") == "1" and "www-authenticate" not in a[3]
                      for a in refused),
              [(a[1], a[2], a[3].get("retry-after")) for a in refused[:3]])
        check("budget: the token verified before the flood passes during it", mid["status"] == 200, mid)
        check("budget: no forged request reached the origin",
              not any(origin.find(f"probe=forged-{i}") for i in range(FLOOD)))
        stats = envoy.stats()
        counted = int(stats.get("wasmcustom.tokengate_denied_total.code.signature_budget_exhausted", "0") or 0)
        # Counters may be flushed on the filter's tick: give it a moment.
        deadline = time.monotonic() + 3
        while counted < len(refused) and time.monotonic() < deadline:
            time.sleep(0.2)
            stats = envoy.stats()
            counted = int(stats.get("wasmcustom.tokengate_denied_total.code.signature_budget_exhausted", "0") or 0)
        check("budget: tokengate_denied_total.code.signature_budget_exhausted counts every one",
              counted == len(refused), (counted, len(refused)))
        time.sleep(1.1)
        after = send(forged[0], "forged-after")
        check("budget: a second later a forged token gets its signature check again (401 signature_invalid)",
              after["status"] == 401 and (after["json"] or {}).get("error") == "signature_invalid", after)
    except Exception as e:  # a crash of this part is a failed check, with its Envoy log
        check("budget checks ran to completion", False, f"{type(e).__name__}: {e}")
    finally:
        envoy.stop()
        if failed:
            print(f"---- {envoy.name} log (tail) ----\n" + envoy.log_text()[-3000:])
        jwks.close()
        origin.close()
    print(f"     (signature budget: {time.monotonic() - started:.1f}s)", flush=True)
    return envoy
