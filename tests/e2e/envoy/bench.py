#!/usr/bin/env python3
"""Throughput through real Envoy with wrk, one Envoy and one run for every setup so that the ratios
compare like with like: no auth filter, the empty proxy-wasm filter (tests/bench-filter: reads
`authorization`, continues), the same filter making the host calls of a warm tokengate request (so
that what those calls cost in Envoy stands apart from tokengate's own work), Envoy's jwt_authn with
the same JWKS, tokengate with its default configuration (audit record as filter state) and with the
audit line (`"audit": "log"`), each with 16 tokens in rotation (warm caches); then jwt_authn and
tokengate with a new token on every request (cache misses). Routes answer with direct_response, so
the origin is out of the measurement. Besides req/s, each row has Envoy's CPU time per request (its
threads' scheduler time over the run): on a machine shared with other work it moves less than
throughput does. Loopback only; bounded (about 5 minutes with the defaults).

python3 tests/e2e/envoy/bench.py [--seconds N] [--rounds N] [--out FILE]
    [--only a,b,...]             # row keys: none empty empty_calls jwt tg tg_log jwt_miss tg_miss tg_miss_wasm
    [--extra-wasm A,B]           # other builds of the filter, a row each, in the same run
    [--probes]                   # price single host calls with variants of the empty filter
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

EMPTY_FILTER = h.ROOT / "target" / "tokengate_bench_filter.opt.wasm"
# Before each every-token-new run, FLUSH_S seconds on FLUSH_TOKENS tokens of their own: more
# than either cache's 4,096 entries even at 3,000 req/s, so no measured token is still cached.
FLUSH_TOKENS, FLUSH_S = 8000, 2

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


def tokengate(vm_id: str, wasm: Path = None, **extra) -> dict:
    """The filter with the configuration the README starts from (defaults for everything not
    named), plus `extra` fields."""
    config = dict({
        "providers": [{"issuer": h.ISS, "jwks": {"cluster": "jwks", "path": h.POOL_PATH},
                       "client_ids": [f"bench-{i}" for i in range(16)], "algorithms": ["RS256"]}],
        "rules": [{"match": {"prefix": "/"}, "scopes": {"all": ["orders/read"]}}],
        "forward": {"client_id": "x-tokengate-client-id"},
    }, **extra)
    f = h.wasm_filter(config, vm_id=vm_id)
    if wasm:
        f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(wasm)
    return f


def empty_wasm(work: str = "", vm_id: str = "bench-empty") -> dict:
    """The empty filter; `work` names more host calls per request (tests/bench-filter)."""
    f = h.wasm_filter({}, vm_id=vm_id)
    f["typed_config"]["config"]["configuration"]["value"] = work
    f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(EMPTY_FILTER)
    return f


# --probes: the empty filter doing one more kind of host call per request, to price each under
# V8 (the difference to the empty filter's row).
PROBES = [
    ("p_map", "probe: + the whole header map, ×20", "map,x20"),
    ("p_singles", "probe: + `:method` and `:path` read one by one, ×20", "singles,x20"),
    ("p_state", "probe: + set_property (200 B), ×20", "set_property,x20"),
    ("p_add", "probe: + add_header, ×20", "add_header,x20"),
    ("p_log", "probe: + one 200 B info log line, ×20", "log,x20"),
    ("p_spin", "probe: + 24k wasm instructions of tight compute (spin1000)", "spin1000"),
]


# The rows each target compares, in the order they run back to back within a round.
PAIRED = ["empty_calls", "empty", "tg", "jwt_miss", "tg_miss", "tg_miss_wasm"]


def run_order(rows, rnd: int):
    """The order of one round: the warm rows, then the every-token-new rows, each target's two
    rows next to each other (PAIRED), and every other round reversed. A machine whose speed
    drifts over a round then slows the earlier row of a pair in one round and the later one in
    the next, instead of always the same one, and the two rows of a pair run seconds apart."""
    def place(r):
        return (r[3] == "miss", PAIRED.index(r[0]) if r[0] in PAIRED else -1)
    ordered = sorted(rows, key=place)  # stable: the other rows keep their order, first
    if rnd % 2:
        warm = [r for r in ordered if r[3] != "miss"]
        miss = [r for r in ordered if r[3] == "miss"]
        ordered = warm[::-1] + miss[::-1]
    return ordered


def placement(pin: bool):
    """CPUs for Envoy and for wrk. With two or more CPUs each gets its own, so that wrk never
    preempts Envoy's worker and the rows measure Envoy's CPU rather than how the scheduler
    shared two CPUs between the two (rounds still spread widely on a shared machine). Every
    row runs under the same placement."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


WRK_CPUS = None


def wrk(port: int, seconds: int, script: Path = None, conns: int = 16) -> dict:
    args = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        args += ["-s", str(script)]
    cpus = WRK_CPUS
    out = subprocess.run(args + [f"http://127.0.0.1:{port}/orders"], capture_output=True, text=True,
                         timeout=seconds + 30,
                         preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def lat(label):
        m = re.search(rf"\s{label}\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    return {"rps": rps, "requests": total, "errors": int(non2xx.group(1)) if non2xx else 0,
            "p50_ms": lat("50%"), "p99_ms": lat("99%")}


def cpu_ns(pid: int) -> int:
    """CPU time Envoy's threads have run so far (ns, from the scheduler's own accounting)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


# (key, label, listener, token pool). Warm rows first; the miss rows consume the unique pool.
ROWS = [
    ("none", "no auth filter", "none", None),
    ("empty", "empty proxy-wasm filter (reads `authorization`)", "empty", "warm"),
    # The host calls a warm tokengate request makes with the default configuration, made by the
    # empty filter with nothing decided: the header map read, the audit record as filter state
    # and one forwarded header (after which Envoy clears its route cache and matches the route
    # again). What tokengate costs beyond the empty filter, less this row, is its own work.
    ("empty_calls", "empty filter + the default config's host calls (header map, filter state, one header)",
     "empty_calls", "warm"),
    ("jwt", "jwt_authn, warm", "jwt", "warm"),
    ("tg", "tokengate, default config (audit record as filter state), warm", "tg", "warm"),
    ("tg_log", "tokengate, `\"audit\": \"log\"` (one log line per decision), warm", "tg_log", "warm"),
    ("jwt_miss", "jwt_authn, every request a new token", "jwt", "miss"),
    ("tg_miss", "tokengate, every request a new token (`signature_checks_per_s`: unlimited)", "tg_new", "miss"),
    ("tg_miss_wasm", "tokengate, every request a new token, `\"crypto\": \"wasm\"` (RSA in the filter, not Envoy's)",
     "tg_new_wasm", "miss"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=7, help="N interleaved rounds of every row (best of each, and the median of the rounds' own ratios)")
    ap.add_argument("--miss-tokens", type=int, default=20000)
    ap.add_argument("--only", default="", help="comma-separated row keys (default: all)")
    ap.add_argument("--extra-wasm", default="", help="other builds of the filter (comma-separated), a row each")
    ap.add_argument("--probes", action="store_true", help="also price single host calls (empty filter variants)")
    ap.add_argument("--no-pin", action="store_true", help="let the scheduler place Envoy and wrk (default: a CPU of their own each)")
    ap.add_argument("--out", default=str(h.ROOT / "target" / "bench-proxy.md"))
    a = ap.parse_args()
    global WRK_CPUS
    envoy_cpus, WRK_CPUS = placement(not a.no_pin)
    for path in (h.FILTER, EMPTY_FILTER):
        if not path.exists():
            print(f"missing {path}: run scripts/build-proxy.sh --with-bench-filter", file=sys.stderr)
            return 2
    only = set(filter(None, a.only.split(",")))
    all_rows = list(ROWS)
    if a.probes:
        at = next(i for i, r in enumerate(all_rows) if r[0] == "jwt_miss")
        all_rows[at:at] = [(k, label, k, "warm") for k, label, _ in PROBES]
    extras = [Path(p).resolve() for p in a.extra_wasm.split(",") if p]
    at = next(i for i, r in enumerate(all_rows) if r[0] == "jwt_miss")
    all_rows[at:at] = [(f"extra{i}", f"tokengate, {p.name}, warm", f"extra{i}", "warm")
                       for i, p in enumerate(extras)]
    rows = [r for r in all_rows if not only or r[0] in only or r[0].startswith("extra")]
    work = Path(tempfile.mkdtemp(prefix="tokengate-bench-"))
    key = h.TestKey("rsa-a.pem", "bench-key-a")
    jwks = h.JwksServer({"keys": [key.jwk()]})
    clients = ",".join(f"bench-{i}" for i in range(16))
    t0 = time.monotonic()
    pools = {"warm": work / "warm.txt", "miss": work / "miss.txt", "miss_warmup": work / "miss_warmup.txt"}
    need_miss = any(r[3] == "miss" for r in rows)
    # The miss rows warm up on tokens of their own: had the warm-up sent the start of the
    # measured pool, the first seconds of the measurement would be cache hits.
    for name, count, distinct, first in [("warm", 16, "", 0), ("miss", a.miss_tokens, "1", 0),
                                         ("miss_warmup", FLUSH_TOKENS, "1", a.miss_tokens)]:
        if name.startswith("miss") and not need_miss:
            continue
        subprocess.run(["node", str(Path(__file__).with_name("make_tokens.mjs")), str(key.path), key.kid,
                        h.ISS, str(count), clients, str(pools[name]), distinct, str(first)],
                       check=True, timeout=300)
        (work / f"{name}.lua").write_text(LUA % pools[name])
    print(f"[bench] signed tokens in {time.monotonic() - t0:.1f}s", flush=True)
    names = (["admin", "none", "empty", "empty_calls", "jwt", "tg", "tg_log", "tg_new", "tg_new_wasm"] + [k for k, _, _ in PROBES]
             + [f"extra{i}" for i in range(len(extras))])
    ports = {k: h.free_port() for k in names}
    ok = {"direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
    filters = {"none": [], "empty": [empty_wasm()],
               "empty_calls": [empty_wasm("as_filter,set_property,add_header", vm_id="bench-empty-calls")],
               "jwt": [jwt_authn(jwks.port)],
               "tg": [tokengate("bench-tg")], "tg_log": [tokengate("bench-tg-log", audit="log")],
               # The default signature budget (1000 checks per second per worker) would answer
               # most of this flood of new tokens with 503: lifted to measure the verification.
               "tg_new": [tokengate("bench-tg-new", signature_checks_per_s="unlimited")],
               # The same with the filter's own RSA (simd128) instead of Envoy's verify_signature.
               "tg_new_wasm": [tokengate("bench-tg-new-wasm", signature_checks_per_s="unlimited", crypto="wasm")]}
    for i, p in enumerate(extras):
        filters[f"extra{i}"] = [tokengate(f"bench-extra{i}", wasm=p)]
    for k, _, calls in PROBES:
        filters[k] = [empty_wasm(calls, vm_id=f"bench-{k}")]
    used = {r[2] for r in rows}
    listeners = [h.listener(k, ports[k], f, ok) for k, f in filters.items() if k in used]
    envoy = h.Envoy(work, h.bootstrap(ports["admin"], listeners, [h.cluster("jwks", jwks.port)]),
                    ports["admin"], concurrency=1, name="envoy-bench", cpus=envoy_cpus)
    best = {}
    per_round = {}  # key -> [req/s of each round]
    try:
        envoy.start()
        # Let every filter load its keys before measuring.
        first = pools["warm"].read_text().split()[0]
        for p in sorted({r[2] for r in rows if r[3]}):
            for _ in range(50):
                r = h.curl(f"http://127.0.0.1:{ports[p]}/orders", "-H", f"authorization: Bearer {first}")
                if r["status"] == 200:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"{p} never accepted the token: {r}")
        # One settling run per warm row before the rounds (discarded): the first round of the
        # filter with the most code was otherwise the slowest of every run (V8 still tiering up).
        for key_, _, listener, pool in rows:
            if pool != "miss":
                wrk(ports[listener], 3, work / f"{pool}.lua" if pool else None)
        # Interleaved rounds, best of each: other work on a shared machine only ever slows a run
        # down, so the best round is the least disturbed one. The miss rows run in every round
        # too, each after the flush (FLUSH_TOKENS); within a run a token comes back only after
        # the rest of the pool, long evicted.
        for rnd in range(a.rounds):
            for key_, label, listener, pool in run_order(rows, rnd):
                script = work / f"{pool}.lua" if pool else None
                if pool == "miss":
                    wrk(ports[listener], FLUSH_S, work / "miss_warmup.lua")  # cache flush, discarded
                else:
                    wrk(ports[listener], 1, script)  # warm-up, discarded
                before = cpu_ns(envoy.proc.pid)
                r = wrk(ports[listener], a.seconds, script)
                # Envoy's CPU time per request: unlike req/s, barely moved by other load on the
                # machine (wrk itself runs on the same cores).
                r["cpu_us"] = (cpu_ns(envoy.proc.pid) - before) / 1000 / max(r["requests"], 1)
                per_round.setdefault(key_, []).append(r["rps"])
                if key_ not in best or r["rps"] > best[key_]["rps"]:
                    best[key_] = dict(r, cpu_us=min(r["cpu_us"], best.get(key_, r)["cpu_us"]))
                else:
                    best[key_]["cpu_us"] = min(best[key_]["cpu_us"], r["cpu_us"])
                print(f"[bench] round {rnd + 1} {key_}: {r['rps']:.0f} req/s, Envoy CPU {r['cpu_us']:.1f} µs/req, "
                      f"p99 {r['p99_ms']:.2f} ms, non-2xx {r['errors']}", flush=True)
    finally:
        envoy.stop()
        jwks.close()
        shutil.rmtree(work, ignore_errors=True)

    def ratio(k, base):
        if k not in best or base not in best or k == base:
            return "–"
        return f"{best[k]['rps'] / best[base]['rps']:.2f}"

    def cpu_ratio(k, base):
        if k not in best or base not in best or k == base:
            return "–"
        return f"{best[base]['cpu_us'] / best[k]['cpu_us']:.2f}"

    lines = [f"Envoy 1.40 (`--concurrency 1`), wrk `-t1 -c16 -d{a.seconds}s` on loopback, direct_response "
             f"route, RS256 2048-bit, best of {a.rounds} interleaved rounds, every other round in reverse order (every-token-new: "
             f"{a.miss_tokens} distinct tokens, each round after {FLUSH_TOKENS:,} others); "
             + (f"Envoy on CPU {','.join(map(str, sorted(envoy_cpus)))}, wrk on CPU {','.join(map(str, sorted(WRK_CPUS)))}; "
                if envoy_cpus else "Envoy and wrk placed by the scheduler; ")
             + time.strftime('%Y-%m-%d'), "",
             "| setup | req/s | × empty filter | × jwt_authn | Envoy CPU µs/req | × empty (CPU) | × jwt_authn (CPU) | p50 ms | p99 ms | non-2xx |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key_, label, _, pool in rows:
        r = best[key_]
        jwt = "jwt_miss" if pool == "miss" else "jwt"
        warm = pool not in ("miss", None)
        lines.append(f"| {label} | {r['rps']:.0f} | {ratio(key_, 'empty') if warm else '–'} | {ratio(key_, jwt)} | "
                     f"{r['cpu_us']:.1f} | {cpu_ratio(key_, 'empty') if warm else '–'} | {cpu_ratio(key_, jwt)} | "
                     f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} |")
    def round_ratios(k, base):
        """The ratio within each round: the two rows ran a few seconds apart, so a slow stretch
        of the machine mostly cancels out (the best rounds of two rows may be minutes apart)."""
        return [x / y for x, y in zip(per_round.get(k, []), per_round.get(base, []))]

    def target(label, k, base, goal=None):
        """`label`: the median of the paired rounds (what a target is read on: one outlier round
        of either row moves the best-of-each ratio, and barely moves the median), then the
        best-of-each and CPU ratios; with `goal`, the rounds and whether the target is met."""
        rr = round_ratios(k, base)
        med = statistics.median(rr)
        if goal is None:
            return f"{label}: {med:.2f} median, {cpu_ratio(k, base)} by Envoy CPU per request"
        return (f"{label}: **{med:.2f}** median of the rounds' own ratios "
                f"({', '.join(f'{x:.2f}' for x in rr)}; target ≥ {goal}: {'met' if med >= goal else 'NOT met'}), "
                f"{ratio(k, base)} best of each, {cpu_ratio(k, base)} by Envoy CPU per request")

    targets = []
    if "tg" in best and "empty" in best:
        targets.append(target("default config warm / empty filter", "tg", "empty", 0.9))
    if "empty_calls" in best and "empty" in best:
        targets.append(target("its host calls alone in the empty filter / empty filter", "empty_calls", "empty"))
    if "tg" in best and "empty_calls" in best:
        targets.append(target("tokengate / those host calls alone", "tg", "empty_calls"))
    if "tg_miss" in best and "jwt_miss" in best:
        targets.append(target("every token new, tokengate / jwt_authn", "tg_miss", "jwt_miss", 0.6))
    if "tg_miss_wasm" in best and "jwt_miss" in best:
        targets.append(target('with `"crypto": "wasm"`', "tg_miss_wasm", "jwt_miss"))
    if targets:
        lines += ["", "; ".join(targets)]
    table = "\n".join(lines)
    print("\n" + table)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(table + "\n")
    bad = [k for k, r in best.items() if r["errors"]]
    if bad:
        print(f"[bench] non-2xx answers in: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
