//! Per-verification cost of the built filter inside the wasmtime host: a cache miss (RS256
//! signature + policy), a verified-token cache hit through the gate (each request with another
//! query string, so none is a replay), and a replayed answer (the same request again within a
//! tick); the first two net of the host's own per-request cost (measured on an anonymous route
//! that runs the same ABI calls through the gate without verification). When the empty filter
//! of `scripts/bench-proxy.sh` is built (`scripts/build-proxy.sh --with-bench-filter`), it also
//! prints the floor: that filter's request against a replayed one, in time and in wasm
//! instructions (wasmtime fuel, which no other load on the machine changes).
//!
//! cargo run --release -p tokengate-proxy-host --example verify_cost

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use common::*;
use serde_json::json;
use tokengate_proxy_host::{Env, Filter, Request, Response, Vm};

fn per_request_us(mut f: impl FnMut(usize), n: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let env = Env::at(NOW);
    let cfg = config(json!({"token_cache": {"capacity": 4096, "max_ttl_s": 600}}));
    let mut vm = start(&env, &cfg);
    let misses = 400;
    let tokens: Vec<String> = (0..misses)
        .map(|i| key_a().sign(&claims("orders/read", json!({"jti": format!("bench-{i}")}))))
        .collect();
    let hit = token("orders/read");
    let ok = |r: Response| assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    // Warm up the JIT'd code paths.
    for _ in 0..200 {
        ok(vm.request(Request::get("/health")).unwrap());
        ok(vm.request(Request::get("/orders").bearer(&hit)).unwrap());
    }
    // Same headers (the token too) on an anonymous route: everything but the verification.
    let base = per_request_us(
        |i| {
            ok(vm
                .request(Request::get(&format!("/health?n={i}")).bearer(&hit))
                .unwrap())
        },
        5000,
    );
    let hit_us = per_request_us(
        |i| {
            ok(vm
                .request(Request::get(&format!("/orders?n={i}")).bearer(&hit))
                .unwrap())
        },
        5000,
    );
    let replay_us = per_request_us(
        |_| ok(vm.request(Request::get("/orders").bearer(&hit)).unwrap()),
        5000,
    );
    let miss_us = per_request_us(
        |i| {
            ok(vm
                .request(Request::get("/orders").bearer(&tokens[i]))
                .unwrap())
        },
        misses,
    );
    println!("filter: {}", filter().path().display());
    println!("| wasmtime host, per request | total µs | net of host overhead µs |");
    println!("| --- | ---: | ---: |");
    println!("| anonymous route, same headers (host + ABI baseline) | {base:.1} | – |");
    println!(
        "| token, verified-token cache hit through the gate | {hit_us:.1} | {:.1} |",
        hit_us - base
    );
    println!("| token, the same request again (replayed, no gate) | {replay_us:.1} | – |");
    println!(
        "| token, cache miss (RS256 verify) | {miss_us:.1} | {:.1} |",
        miss_us - base
    );
    floor(&env, &hit);
}

/// The empty filter against the filter's warm path (a replayed answer), per request.
fn floor(env: &Env, token: &str) {
    let empty =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tokengate_bench_filter.opt.wasm");
    if !empty.exists() {
        println!("(no {}: the floor is not measured)", empty.display());
        return;
    }
    println!();
    println!("| wasmtime host, a warm request as Envoy hands it over | µs | wasm instructions |");
    println!("| --- | ---: | ---: |");
    let cfg = config(json!({}));
    for (name, path, plugin_config) in [
        ("empty filter (reads `authorization`)", empty.as_path(), ""),
        (
            "tokengate, default config, replayed",
            filter().path(),
            cfg.as_str(),
        ),
    ] {
        let per_request = |metered: bool| -> (f64, u64) {
            let f = if metered {
                Filter::load_metered(path)
            } else {
                Filter::load(path)
            };
            let f = f.unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            let mut vm = env
                .vm(&f, plugin_config)
                .unwrap_or_else(|_| panic!("{} did not start", path.display()));
            let one = |vm: &mut Vm| {
                let id = vm
                    .send(envoy_request("GET", "/orders", Some(token)))
                    .unwrap();
                vm.end(id).unwrap();
            };
            for _ in 0..300 {
                one(&mut vm);
            }
            let n = 20_000;
            let before = vm.wasm_instructions();
            let us = per_request_us(|_| one(&mut vm), n);
            (us, (vm.wasm_instructions() - before) / n as u64)
        };
        let (us, _) = per_request(false);
        let (_, instructions) = per_request(true);
        println!("| {name} | {us:.1} | {instructions} |");
    }
}
