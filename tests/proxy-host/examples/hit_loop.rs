#[path = "../tests/common/mod.rs"]
mod common;
use common::*;
use serde_json::json;
use tokengate_proxy_host::{Env, Filter, Request};
fn main() {
    let env = Env::at(NOW);
    if let Ok(l) = std::env::var("LOGLEVEL") {
        env.set_log_level(l.parse().unwrap());
    }
    let audit = std::env::args().nth(1).unwrap_or_default();
    let patch = if audit.is_empty() {
        json!({})
    } else {
        serde_json::from_str(&audit).unwrap()
    };
    let f = Filter::load_metered(&Filter::default_path()).unwrap();
    let cfg = std::env::var("RAWCONFIG").unwrap_or_else(|_| config(patch));
    let mut vm = env.vm(&f, &cfg).map_err(|_| "start").unwrap();
    let hit = token("orders/read");
    let n: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1000);
    let path = std::env::args().nth(3).unwrap_or("/orders".into());
    let bearer = std::env::var("NOBEARER").is_err();
    let req = || {
        let r = Request::new("GET", &path)
            .header(":scheme", "http")
            .header("user-agent", "wrk")
            .header("x-forwarded-proto", "http")
            .header("x-request-id", "7c4bb3b0-6d5a-4f5e-9c84-3f3d1c0a8e11");
        if bearer {
            r.bearer(&hit)
        } else {
            r
        }
    };
    for _ in 0..10 {
        let id = vm.send(req()).unwrap();
        vm.end(id).unwrap();
    }
    let before = vm.wasm_instructions();
    for _ in 0..n {
        let id = vm.send(req()).unwrap();
        vm.end(id).unwrap();
    }
    println!(
        "{} wasm instructions/request",
        (vm.wasm_instructions() - before) / n as u64
    );
}
