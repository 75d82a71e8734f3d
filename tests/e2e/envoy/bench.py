#!/usr/bin/env python3
"""Throughput and latency through real Envoy with wrk, for (a) no auth filter, (b) Envoy's
jwt_authn with the same JWKS, (c) tokengate; with a fixed set of tokens (warm caches) and with
unique tokens (cache misses). Routes answer with direct_response, so the origin is out of the
measurement. Loopback only; every run is bounded (BENCH_SECONDS, default 8).

python3 tests/e2e/envoy/bench.py [--seconds N] [--out FILE]
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", "/orders", { ["authorization"] = "Bearer " .. tokens[i] })
end
"""


def jwt_authn(jwks_port: int) -> dict:
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"cognito": {
                "issuer": h.ISS,
                "remote_jwks": {"http_uri": {"uri": f"http://127.0.0.1:{jwks_port}{h.POOL_PATH}",
                                             "cluster": "jwks", "timeout": "2s"},
                                "cache_duration": "900s", "async_fetch": {}},
                "forward": True,
                "jwt_cache_config": {"jwt_cache_size": 4096},
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "cognito"}}],
        },
    }


def tokengate(anonymous: bool = False) -> dict:
    rule = {"match": {"prefix": "/"}, "allow": "anonymous"} if anonymous else \
        {"match": {"prefix": "/"}, "scopes": {"all": ["orders/read"]}}
    return h.wasm_filter({
        "providers": [{"issuer": h.ISS, "jwks": {"cluster": "jwks", "path": h.POOL_PATH},
                       "client_ids": [f"bench-{i}" for i in range(16)], "algorithms": ["RS256"]}],
        "rules": [rule],
        "forward": {"client_id": "x-tokengate-client-id"},
        "audit_log": False,
    }, vm_id="tokengate-bench-anon" if anonymous else "tokengate-bench")


def wrk(port: int, seconds: int, script: Path = None, conns: int = 16) -> dict:
    args = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run(args + [f"http://127.0.0.1:{port}/orders"], capture_output=True, text=True,
                         timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def lat(label):
        m = re.search(rf"\s{label}\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    avg = re.search(r"Latency\s+([\d.]+)(us|ms|s)", out)
    avg_ms = float(avg.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[avg.group(2)] if avg else float("nan")
    return {"rps": rps, "requests": total, "errors": int(non2xx.group(1)) if non2xx else 0,
            "avg_ms": avg_ms, "p50_ms": lat("50%"), "p99_ms": lat("99%")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--miss-tokens", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(h.ROOT / "target" / "bench-proxy.md"))
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tokengate-bench-"))
    key = h.TestKey("rsa-a.pem", "bench-key-a")
    jwks = h.JwksServer({"keys": [key.jwk()]})
    clients = ",".join(f"bench-{i}" for i in range(16))
    t0 = time.monotonic()
    warm_file, miss_file = work / "warm.txt", work / "miss.txt"
    for path, count, distinct in [(warm_file, 16, ""), (miss_file, a.miss_tokens, "1")]:
        subprocess.run(["node", str(Path(__file__).with_name("make_tokens.mjs")), str(key.path), key.kid,
                        h.ISS, str(count), clients, str(path), distinct], check=True, timeout=300)
    print(f"[bench] signed {a.miss_tokens + 16} tokens in {time.monotonic() - t0:.1f}s", flush=True)
    warm_lua, miss_lua = work / "warm.lua", work / "miss.lua"
    warm_lua.write_text(LUA % warm_file)
    miss_lua.write_text(LUA % miss_file)
    ports = {k: h.free_port() for k in ["admin", "none", "jwt", "tg", "tg0"]}
    ok = {"direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
    listeners = [h.listener("none", ports["none"], [], ok),
                 h.listener("jwt", ports["jwt"], [jwt_authn(jwks.port)], ok),
                 h.listener("tg", ports["tg"], [tokengate()], ok),
                 h.listener("tg0", ports["tg0"], [tokengate(anonymous=True)], ok)]
    envoy = h.Envoy(work, h.bootstrap(ports["admin"], listeners, [h.cluster("jwks", jwks.port)]),
                    ports["admin"], concurrency=1, name="envoy-bench")
    rows = []
    try:
        envoy.start()
        # Let both filters load their keys, then warm every path once.
        for p in ("jwt", "tg"):
            for _ in range(50):
                r = h.curl(f"http://127.0.0.1:{ports[p]}/orders", "-H",
                           f"authorization: Bearer {warm_file.read_text().split()[0]}")
                if r["status"] == 200:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"{p} never accepted the token: {r}")
        runs = [("(a) no auth filter", "none", None),
                ("(b) jwt_authn, warm (16 tokens)", "jwt", warm_lua),
                ("(c) tokengate, warm (16 tokens)", "tg", warm_lua),
                ("(c0) tokengate, anonymous route (fixed filter cost)", "tg0", warm_lua),
                ("(b) jwt_authn, cache miss (unique tokens)", "jwt", miss_lua),
                ("(c) tokengate, cache miss (unique tokens)", "tg", miss_lua)]
        best = {}
        # Interleaved rounds, best of each: other work on a shared machine only ever slows a run
        # down, so the best round is the least disturbed one.
        for rnd in range(a.rounds):
            for name, port, script in runs:
                if "miss" in name and rnd > 0:
                    continue  # one miss round: the unique-token pool is consumed by it
                wrk(ports[port], 1, script)  # warm-up, discarded
                r = wrk(ports[port], a.seconds, script)
                r["name"] = name
                if name not in best or r["rps"] > best[name]["rps"]:
                    best[name] = r
                print(f"[bench] round {rnd + 1} {name}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.2f} ms, "
                      f"non-2xx {r['errors']}", flush=True)
        rows = [best[name] for name, _, _ in runs]
    finally:
        envoy.stop()
        jwks.close()
        shutil.rmtree(work, ignore_errors=True)
    by = {r["name"][:3] + ("w" if "warm" in r["name"] else "m" if "miss" in r["name"] else ""): r
          for r in rows if not r["name"].startswith("(c0)")}
    lines = [f"Envoy 1.40 (--concurrency 1), wrk -t1 -c16 -d{a.seconds}s on loopback, direct_response route, "
             f"RS256 2048-bit, best of {a.rounds} interleaved rounds (miss: 1 round); {time.strftime('%Y-%m-%d')}", "",
             "| setup | req/s | avg ms | p50 ms | p99 ms | non-2xx |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['rps']:.0f} | {r['avg_ms']:.2f} | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['errors']} |")
    warm_ratio = by["(c)w"]["rps"] / by["(b)w"]["rps"]
    miss_ratio = by["(c)m"]["rps"] / by["(b)m"]["rps"]
    lines += ["", f"(c)/(b) throughput, warm caches: **{warm_ratio:.2f}**; cache miss: **{miss_ratio:.2f}**",
              f"miss runs drew from {a.miss_tokens} unique tokens "
              f"(jwt_authn sent {by['(b)m']['requests']}, tokengate {by['(c)m']['requests']} requests; "
              "beyond the pool the oldest tokens come round again, already evicted from 4096-entry caches)"]
    table = "\n".join(lines)
    print("\n" + table)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(table + "\n")
    bad = [r["name"] for r in rows if r["errors"]]
    if bad:
        print(f"[bench] non-2xx answers in: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
