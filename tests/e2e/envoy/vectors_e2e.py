"""The HTTP request-gate vectors (tests/vectors/http) through real Envoy, twice: with Envoy's
default HttpConnectionManager path settings and with the ones crates/tokengate-proxy/README.md
recommends. Requests are written byte for byte on raw sockets; a counting origin
(harness.RawOrigin) sees what Envoy forwards.

The vectors judge at `now` = 2026-01-01T12:00:00Z, which is in the past on this machine, and
real Envoy reads the real clock. So a token is sent unchanged only when its answer is decided
before the time step of the pipeline (tests/vectors/README.md, steps 1-9: size, syntax, header,
alg, kid, key, signature, payload syntax): that is every credential that is not a JWT carrying a
valid signature of a TEST key we hold. A token that does carry one is minted again: the same
header and payload bytes, except that every epoch-second time claim (`exp`, `iat`, `nbf`,
`auth_time`) is shifted by (real now - vector now), so iat = now - 60 and exp = now + 3600 become
the same offsets from the real clock. The number of digits does not change, so the token keeps
its length (the size vectors still hold); it is signed with the same TEST key with `openssl dgst`
(no tokengate code signs anything). time.json is not sent: time boundaries are tested in the
wasmtime host with an injected clock. identity.json is sent without its cases that have a
connection certificate (`request.peer`: a real one is needed; identity_e2e.py presents real
ones over mTLS): the certificate header sources and forged certificate headers go through Envoy
as written, and no untrusted certificate header may reach the origin.
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import time

import harness as h

VECTORS = h.ROOT / "tests" / "vectors" / "http"
# Every sendable case of paths.json; every REST_EVERY-th sendable case of the others (file order).
ALL_OF = ["paths", "identity"]
SAMPLED = ["answers", "bearer", "methods", "routes"]
REST_EVERY = 2
TCHAR = set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
TAG = "x-e2e-case"
VERBOSE = bool(os.environ.get("TOKENGATE_E2E_VERBOSE"))

# Requests Envoy answers itself, before any HTTP filter, under both path settings (observed with
# Envoy 1.40; see `envoy_answers_first`): its HTTP/1 codec refuses CONNECT with an origin-form
# target and methods outside its own list (custom methods need the work-in-progress
# `allow_custom_methods`), both with 400 "Bad Request"; the connection manager answers a target
# that does not start with "/" (`OPTIONS *`) with 404. The filter never sees these requests, so
# their answer is not the gate's: for them only "nothing reached the origin and the answer is not
# a 2xx" is asserted, and they are counted apart.
ENVOY_CODEC_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
                       "PURGE", "PROPFIND"}


def envoy_answers_first(case) -> bool:
    r = case["request"]
    return r["method"] == "CONNECT" or r["target"] == "*" or r["method"] not in ENVOY_CODEC_METHODS


def b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")


class Minter:
    """Re-mints, for the real clock, tokens that carry a valid RS256 signature of a TEST key."""

    def __init__(self):
        self.keys = []  # (n, e, pem path)
        for pem in sorted(h.KEYS.glob("*.pem")):
            out = subprocess.run(["openssl", "rsa", "-in", str(pem), "-noout", "-text"],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                continue  # not an RSA key
            mod = subprocess.run(["openssl", "rsa", "-in", str(pem), "-noout", "-modulus"],
                                 check=True, capture_output=True, text=True).stdout
            n = int(mod.strip().split("=", 1)[1], 16)
            e = int(re.search(r"publicExponent: (\d+)", out.stdout).group(1))
            self.keys.append((n, e, pem))
        self.cache = {}
        self.minted = 0

    def _key_for(self, kid, jwks_keys):
        """The held private key whose modulus is that of the JWK the configuration has for `kid`."""
        for jwk in jwks_keys:
            if jwk.get("kid") == kid and jwk.get("kty") == "RSA" and isinstance(jwk.get("n"), str):
                try:
                    n = int.from_bytes(b64d(jwk["n"]), "big")
                except ValueError:
                    continue
                for kn, ke, pem in self.keys:
                    if kn == n:
                        return kn, ke, pem
        return None

    @staticmethod
    def _rs256_valid(n, e, signing_input: bytes, sig: bytes) -> bool:
        k = (n.bit_length() + 7) // 8
        if len(sig) != k or int.from_bytes(sig, "big") >= n:
            return False
        em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
        t = DIGEST_INFO_SHA256 + hashlib.sha256(signing_input).digest()
        return em == b"\x00\x01" + b"\xff" * (k - 3 - len(t)) + b"\x00" + t

    def remint(self, token: str, jwks_keys: list, delta: int):
        """(new token, {old claim text: new claim text}) or None when the token is not one to
        re-mint (not a strictly encoded JWT with a valid signature of a held key)."""
        key = (token, delta)
        if key in self.cache:
            return self.cache[key]
        self.cache[key] = result = self._remint(token, jwks_keys, delta)
        return result

    def _remint(self, token, jwks_keys, delta):
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            raw = [b64d(p) for p in parts]
        except ValueError:
            return None
        if [h.b64url(r) for r in raw] != parts:
            return None  # not strict base64url: decided at the syntax step, sent unchanged
        try:
            header = json.loads(raw[0])
            kid = header.get("kid")
        except (ValueError, AttributeError):
            return None
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            return None
        found = self._key_for(kid, jwks_keys)
        if not found or not self._rs256_valid(found[0], found[1], f"{parts[0]}.{parts[1]}".encode(), raw[2]):
            return None
        subst = {}

        def shift(m):
            num = m.group(2)
            whole, dot, frac = num.partition(b".")
            if not 1_600_000_000 <= int(whole) <= 1_900_000_000:
                return m.group(0)
            new = str(int(whole) + delta).encode()
            if len(new) != len(whole):
                return m.group(0)
            subst[(whole + dot + frac).decode()] = (new + dot + frac).decode()
            return m.group(1) + new + dot + frac

        payload = re.sub(rb'("(?:exp|iat|nbf|auth_time)"\s*:\s*)(\d+(?:\.\d+)?)', shift, raw[1])
        signing_input = parts[0] + "." + h.b64url(payload)
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(found[2])],
                             input=signing_input.encode(), check=True, capture_output=True).stdout
        self.minted += 1
        out = signing_input + "." + h.b64url(sig)
        assert len(out) == len(token)
        return out, subst


JWT_RE = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def skip_reason(case):
    """Why a case cannot be written by an HTTP/1.1 client (None when it can)."""
    r = case["request"]
    m, t = r["method"], r["target"]
    if not m or any(ch not in TCHAR for ch in m):
        return "method is not a token"
    if not (t == "*" or t.startswith("/")):
        return "target is not origin-form or *"
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in t):
        return "target byte outside 0x21-0x7E"
    for v in r["authorization"]:
        if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in v):
            return "control character in a header value"
    if r.get("peer") is not None:
        return "client certificate of the connection (identity_e2e.py sends real ones)"
    return None


def load_sample():
    """[(group, case, config)] chosen deterministically, and the skip counts."""
    chosen, skipped = [], {}
    for group in ALL_OF + SAMPLED:
        doc = json.loads((VECTORS / f"{group}.json").read_text())
        sendable = []
        for case in doc["cases"]:
            why = skip_reason(case)
            if why:
                skipped[why] = skipped.get(why, 0) + 1
            else:
                sendable.append(case)
        if group in SAMPLED:
            sendable = sendable[::REST_EVERY]
        chosen += [(group, c, doc["configs"][c["config"]]) for c in sendable]
    return chosen, skipped


def prepare(chosen, minter):
    """Per case: the Authorization values to send (tokens re-minted where needed) and the expected
    forwarded headers with the same shift applied to time claims."""
    out = []
    for i, (group, case, config) in enumerate(chosen):
        keys = [k for p in config["providers"] for k in p.get("jwks", {}).get("keys", [])]
        delta = int(time.time()) - case["now"]
        subst, values = {}, []
        for v in case["request"]["authorization"]:
            def repl(m):
                got = minter.remint(m.group(0), keys, delta)
                if not got:
                    return m.group(0)
                subst.update(got[1])
                return got[0]
            values.append(JWT_RE.sub(repl, v))
        forward = case["expect"]["forward"]
        if forward:
            forward = {k: subst.get(v, v) for k, v in forward.items()}
        out.append({"id": f"v{i}", "group": group, "case": case, "config": config,
                    "authorization": values, "forward": forward,
                    "reminted": values != case["request"]["authorization"]})
    return out


def send(port, item, tag, target=None):
    r = item["case"]["request"]
    headers = [("authorization", v) for v in item["authorization"]]
    headers += [(k, v) for k, v in r.get("headers") or []] + [(TAG, tag)]
    return h.raw_request(port, r["method"], r["target"] if target is None else target, headers, timeout_s=5)


def is_gate_answer(resp, method) -> bool:
    if method == "HEAD":  # Envoy sends no body with the answer to a HEAD request
        return resp["headers"].get("content-type") == "application/json" and resp["status"] != 200
    return isinstance(resp["json"], dict) and "error" in resp["json"]


def answer_of(resp, method):
    code = resp["json"].get("error") if isinstance(resp["json"], dict) else None
    return (resp["status"], code if method != "HEAD" else None, resp["headers"].get("www-authenticate"),
            resp["headers"].get("retry-after"))


def untrusted_certificate_headers(config, headers) -> list:
    """Certificate header names in `headers` that the configuration's source does not trust
    (RFC 9440 `client-cert*` unless "client_cert_header", ALB `x-amzn-mtls-clientcert*` unless
    "alb"): the filter must have removed them."""
    source = (config.get("client_certificate") or {}).get("source", "connection")
    return [k for k in headers
            if (k in ("client-cert", "client-cert-chain") and source != "client_cert_header")
            or (k.startswith("x-amzn-mtls-clientcert") and source != "alb")]


def judge_default(item, resp, seen):
    """Exact: Envoy's default path settings hand the target to the filter as received."""
    case, exp = item["case"], item["case"]["expect"]
    fwd_names = set((item["config"].get("forward") or {}).values())
    if exp["status"] == 200:
        if envoy_answers_first(case) and not seen and resp["status"] and not 200 <= resp["status"] < 300:
            return None  # refused by Envoy itself (see ENVOY_CODEC_METHODS)
        if resp["status"] != 200 or len(seen) != 1:
            return f"expected 200 via the origin, got {resp['status']} {resp['body'][:120]!r}, origin saw {len(seen)}"
        got = seen[0]
        if got["method"] != case["request"]["method"] or got["target"] != case["request"]["target"]:
            return f"origin saw {got['method']} {got['target']!r}, not the request as sent"
        fwd = {k: got["headers"][k][0] for k in fwd_names if k in got["headers"]}
        if fwd != (item["forward"] or {}):
            return f"forwarded {fwd}, expected {item['forward']}"
        leaked = untrusted_certificate_headers(item["config"], got["headers"])
        if leaked:
            return f"untrusted certificate headers reached the origin: {leaked}"
        return None
    if seen:
        return f"DENIED CASE REACHED THE ORIGIN: {[(s['method'], s['target']) for s in seen]}, answer {resp['status']}"
    method = case["request"]["method"]
    if not is_gate_answer(resp, method):
        # Envoy answered before the filter (HTTP/1 codec / connection manager). Accepted only for
        # a case whose expected status is 400, or one of the requests Envoy always refuses itself.
        if exp["status"] == 400 and resp["status"] == 400:
            return None
        if envoy_answers_first(case) and not 200 <= resp["status"] < 300 and resp["status"]:
            return None
        return f"answered by Envoy, not the filter: {resp['status']} {resp['body'][:120]!r}"
    want = (exp["status"], exp["code"] if method != "HEAD" else None, exp["www_authenticate"], exp["retry_after"])
    got = answer_of(resp, method)
    if got != want:
        return f"got {got}, expected {want}"
    if (resp["headers"].get("content-type"), resp["headers"].get("cache-control")) != ("application/json", "no-store"):
        return f"answer headers {resp['headers']}"
    return None


def late_arrivals(origin, quiet):
    """Requests that had not reached the origin when their answer came must not arrive later."""
    time.sleep(0.3)
    return [f"{it['group']}:{it['case']['name']}: REACHED THE ORIGIN AFTER THE ANSWER"
            for tag, it in quiet.items() if origin.tagged(TAG, tag)]


def _recording(check):
    failed = []

    def rec(name, ok, detail=""):
        check(name, ok, detail)
        if not ok:
            failed.append(name)
    return rec, failed


def run(check, work):
    started = time.monotonic()
    check, failed = _recording(check)
    minter = Minter()
    chosen, skipped = load_sample()
    items = prepare(chosen, minter)
    origin = h.RawOrigin()
    configs = {}
    for it in items:
        configs.setdefault(f"{it['group']}/{it['case']['config']}", it["config"])
    ports = {"admin": h.free_port()}
    listeners = []
    for n, (name, cfg) in enumerate(sorted(configs.items())):
        for mode, settings in [("default", {}), ("readme", None)]:
            port = ports[(name, mode)] = h.free_port()
            listeners.append(h.listener(f"vec{n}_{mode}", port, [h.wasm_filter(cfg, vm_id=f"vec{n}_{mode}")],
                                        {"route": {"cluster": "origin"}}, path_settings=settings))
    envoy = h.Envoy(work, h.bootstrap(ports["admin"], listeners, [h.cluster("origin", origin.port)]),
                    ports["admin"], concurrency=1, name="envoy-vectors")
    try:
        envoy.start()
        _run_default(check, items, ports, origin, skipped, minter)
        _run_readme(check, items, ports, origin)
    except Exception as e:  # a crash of this part is a failed check, with its Envoy log
        check("vectors through Envoy ran to completion", False, f"{type(e).__name__}: {e}")
    finally:
        envoy.stop()
        if failed:
            print(f"---- {envoy.name} log (tail) ----\n" + envoy.log_text()[-3000:])
        origin.close()
    print(f"     (vectors through Envoy: {time.monotonic() - started:.1f}s)", flush=True)
    return envoy


def _run_default(check, items, ports, origin, skipped, minter):
    failures, by_group, envoy_first, quiet = [], {}, 0, {}
    for it in items:
        port = ports[(f"{it['group']}/{it['case']['config']}", "default")]
        tag = f"default-{it['id']}"
        resp = send(port, it, tag)
        seen = origin.tagged(TAG, tag)
        method = it["case"]["request"]["method"]
        why = judge_default(it, resp, seen)
        if why is None and not seen and not is_gate_answer(resp, method):
            envoy_first += 1
            if VERBOSE:
                print(f"       answered by Envoy: {it['group']}:{it['case']['name']} {method!r} "
                      f"{it['case']['request']['target']!r} -> {resp['status']} (vectors {it['case']['expect']['status']})")
        if not seen:
            quiet[tag] = it
        by_group.setdefault(it["group"], [0, 0])
        by_group[it["group"]][0] += 1
        if why:
            by_group[it["group"]][1] += 1
            failures.append(f"{it['group']}:{it['case']['name']} {it['case']['request']['method']} "
                            f"{it['case']['request']['target']!r}: {why}")
    failures += late_arrivals(origin, quiet)
    n = len(items)
    denied = sum(1 for it in items if it["case"]["expect"]["status"] != 200)
    summary = (f"{n} cases ({', '.join(f'{g} {c[0]}' for g, c in by_group.items())}; {denied} expected denials; "
               f"{sum(it['reminted'] for it in items)} with re-minted tokens ({minter.minted} tokens); "
               f"{envoy_first} answered by Envoy before the filter; not sendable and skipped: {skipped})")
    print(f"     default HCM path settings: {summary}", flush=True)
    check(f"vectors via Envoy, default path settings ({n} cases): status, code, challenge, Retry-After and "
          f"forwarded headers exact; no denied case reaches the origin",
          not failures and n >= 60,
          "\n    " + "\n    ".join(failures[:40]))


def _run_readme(check, items, ports, origin):
    """With normalize_path / merge_slashes / UNESCAPE_AND_REDIRECT Envoy rewrites some targets
    (or redirects) before the filter sees them, so the vectors' exact answers do not apply. What
    must hold: a case the vectors deny is either not answered with a 2xx, or - when Envoy turned
    it into another request that the filter let through - the origin saw a target other than the
    one sent, and that target, sent as is with the same method and credentials through the
    DEFAULT-settings listener of the same configuration (where the filter sees it unchanged and
    which the run above checked against the vectors), is allowed there too, and, where the
    vectors hold a case for that exact request, they say 200. That is: Envoy's normalisation
    never yields a request the gate itself would refuse. (A re-derivation of the rules in Python
    would be a second reference model; the default listener is the checked one.)"""
    index = {}
    for it in items:
        r = it["case"]["request"]
        index[(it["group"], it["case"]["config"], r["method"], r["target"], tuple(r["authorization"]))] = it
    failures, stats = [], {"denied_not_2xx": 0, "denied_rewritten_allowed": 0, "redirect": 0,
                           "allowed_forwarded": 0, "allowed_other": 0}
    quiet = {}
    for it in items:
        case = it["case"]
        cfg_name = f"{it['group']}/{case['config']}"
        tag = f"readme-{it['id']}"
        resp = send(ports[(cfg_name, "readme")], it, tag)
        seen = origin.tagged(TAG, tag)
        if 300 <= resp["status"] < 400:
            stats["redirect"] += 1
        label = f"{it['group']}:{case['name']} {case['request']['method']} {case['request']['target']!r}"
        if case["expect"]["status"] == 200:
            stats["allowed_forwarded" if seen and resp["status"] == 200 else "allowed_other"] += 1
            if VERBOSE and not (seen and resp["status"] == 200):
                print(f"       expected 200, README settings: {label} -> {resp['status']} {resp['headers'].get('location')}")
            continue
        if not seen:
            quiet[tag] = it
            if 200 <= resp["status"] < 300 or resp["status"] == 0:
                failures.append(f"{label}: answer {resp['status']} without reaching the origin")
            else:
                stats["denied_not_2xx"] += 1
            continue
        got = seen[0]
        if got["target"] == case["request"]["target"]:
            failures.append(f"{label}: DENIED CASE REACHED THE ORIGIN UNCHANGED ({resp['status']})")
            continue
        ptag = f"probe-{it['id']}"
        probe = send(ports[(cfg_name, "default")], it, ptag, target=got["target"])
        probe_seen = origin.tagged(TAG, ptag)
        twin = index.get((it["group"], case["config"], case["request"]["method"], got["target"],
                          tuple(case["request"]["authorization"])))
        if got["method"] != case["request"]["method"] or probe["status"] != 200 or len(probe_seen) != 1:
            failures.append(f"{label}: Envoy forwarded it as {got['method']} {got['target']!r}, which the "
                            f"gate refuses when sent directly ({probe['status']} {probe['body'][:100]!r})")
        elif twin is not None and twin["case"]["expect"]["status"] != 200:
            failures.append(f"{label}: forwarded as {got['target']!r}, which the vectors deny "
                            f"({twin['case']['name']})")
        else:
            stats["denied_rewritten_allowed"] += 1
            if VERBOSE:
                print(f"       rewritten: {label} -> {got['target']!r} {resp['status']}")
    failures += late_arrivals(origin, quiet)
    n = len(items)
    print(f"     README path settings: {n} cases; expected denials: {stats['denied_not_2xx']} not 2xx, "
          f"{stats['denied_rewritten_allowed']} rewritten by Envoy into a request the gate allows, "
          f"expected 200: {stats['allowed_forwarded']} forwarded, {stats['allowed_other']} not "
          f"(Envoy normalised or refused them); {stats['redirect']} redirects", flush=True)
    check(f"vectors via Envoy, README path settings ({n} cases): no denied case reaches the origin unless "
          f"Envoy rewrote it into a request the gate allows", not failures and n >= 60,
          "\n    " + "\n    ".join(failures[:40]))
