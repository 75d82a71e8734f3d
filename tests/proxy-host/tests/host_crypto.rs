//! Signatures checked by the host's crypto: Envoy's `verify_signature` foreign function, served
//! here by an independent implementation (the `rsa` and `p256` crates reading the DER key and
//! signature the filter sends), and the core's own check when the host has no such function,
//! cannot answer, or the configuration says `"crypto": "wasm"`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use serde_json::json;
use tokengate_proxy_host::{Env, Request, Response, Vm};

const NATIVE: &str = "tokengate_signature_checks_total.crypto.native";
const WASM: &str = "tokengate_signature_checks_total.crypto.wasm";

/// An Env whose host serves `verify_signature` with `f`, counting the calls.
fn env_with(
    f: impl Fn(&[u8]) -> Result<Vec<u8>, i32> + Send + Sync + 'static,
) -> (Env, Arc<AtomicUsize>) {
    env_at_with(NOW, f)
}

/// [`env_with`] with the clock at `now`.
fn env_at_with(
    now: u64,
    f: impl Fn(&[u8]) -> Result<Vec<u8>, i32> + Send + Sync + 'static,
) -> (Env, Arc<AtomicUsize>) {
    let env = Env::at(now);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    env.set_foreign_function("verify_signature", move |args| {
        counted.fetch_add(1, Ordering::SeqCst);
        f(args)
    });
    (env, calls)
}

/// A token of key A with its payload widened to `orders/write`, the signature left as it was.
fn widened() -> String {
    let t = key_a().sign(&claims("orders/read", json!({"jti": "widened"})));
    let forged = key_a().sign(&claims(
        "orders/read orders/write",
        json!({"jti": "widened"}),
    ));
    let (head_payload, _) = forged.rsplit_once('.').unwrap();
    format!("{head_payload}.{}", t.rsplit_once('.').unwrap().1)
}

/// A new token of key A for `GET /orders` passes; key A's token widened to `orders/write`
/// (its signature left as it was) gets `POST /orders` refused as signature_invalid.
fn pass_then_refuse_widened(vm: &mut Vm, n: u32) {
    let r = vm
        .request(Request::get("/orders").bearer(&fresh("orders/read", n)))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    let r = vm
        .request(Request::new("POST", "/orders").bearer(&widened()))
        .unwrap();
    assert_denied(&r, 401, "signature_invalid");
}

fn fresh(scope: &str, n: u32) -> String {
    key_a().sign(&claims(scope, json!({"jti": format!("fresh-{n}")})))
}

#[test]
fn envoys_crypto_checks_each_new_signature_and_its_answer_stands() {
    let (env, calls) = env_with(envoy_verify_signature);
    let mut vm = start(&env, &config(json!({})));
    let ok = fresh("orders/read", 1);
    let r = vm.request(Request::get("/orders").bearer(&ok)).unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    // The same token again is a cache hit: no second check. (The first call is the probe at
    // start.)
    let r = vm.request(Request::get("/orders/2").bearer(&ok)).unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let r = vm
        .request(Request::new("POST", "/orders").bearer(&widened()))
        .unwrap();
    assert_denied(&r, 401, "signature_invalid");
    // Key B is not published: refused before any signature check.
    let b = key_b().sign(&claims("orders/read", json!({})));
    let r = vm.request(Request::get("/orders").bearer(&b)).unwrap();
    assert_denied(&r, 401, "kid_unknown");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    vm.tick().unwrap();
    assert_eq!((env.metric(NATIVE), env.metric(WASM)), (2, 0));
    assert!(
        env.logs().iter().any(|l| l
            .message
            .contains("signatures checked by the host's verify_signature")),
        "{:?}",
        env.logs()
    );
}

#[test]
fn the_hosts_refusal_is_the_verdict() {
    // A host whose crypto refuses everything: a valid token is refused too, as signature_invalid
    // (the core does not second-guess the host's answer, just as with node:crypto).
    let (env, _) = env_with(|_| Ok(vec![0x08, 0x00]));
    let mut vm = start(&env, &config(json!({})));
    let r = vm
        .request(Request::get("/orders").bearer(&fresh("orders/read", 2)))
        .unwrap();
    assert_denied(&r, 401, "signature_invalid");
}

#[test]
fn without_the_function_the_core_checks_and_the_host_is_asked_once_at_start() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    for n in 0..3 {
        pass_then_refuse_widened(&mut vm, 10 + n);
    }
    assert_eq!(vm.host_calls().get("proxy_call_foreign_function"), Some(&1));
    vm.tick().unwrap();
    assert_eq!((env.metric(NATIVE), env.metric(WASM)), (0, 6));
    let said: Vec<_> = env
        .logs()
        .into_iter()
        .filter(|l| l.message.contains("verify_signature"))
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0]
        .message
        .contains("signatures checked in wasm: this host has no verify_signature"));
}

#[test]
fn a_host_that_cannot_answer_leaves_each_check_to_the_core() {
    for answer in [Err(BAD_ARGUMENT), Ok(vec![0x08]), Ok(vec![0x0b, 0x01])] {
        let (env, calls) = env_with(move |_| answer.clone());
        let mut vm = start(&env, &config(json!({})));
        let r = vm
            .request(Request::get("/orders").bearer(&fresh("orders/read", 19)))
            .unwrap();
        assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
        pass_then_refuse_widened(&mut vm, 20);
        // Asked every time (after the probe at start): such a failure is about one call, not
        // the host.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        vm.tick().unwrap();
        assert_eq!((env.metric(NATIVE), env.metric(WASM)), (0, 3));
    }
}

#[test]
fn crypto_wasm_never_asks_the_host() {
    let (env, calls) = env_with(envoy_verify_signature);
    let mut vm = start(&env, &config(json!({"crypto": "wasm"})));
    pass_then_refuse_widened(&mut vm, 30);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    vm.tick().unwrap();
    assert_eq!((env.metric(NATIVE), env.metric(WASM)), (0, 2));
}

#[test]
fn a_bad_crypto_setting_is_refused_at_start() {
    let env = Env::at(NOW);
    match env.vm(filter(), &config(json!({"crypto": "boringssl"}))) {
        Err(tokengate_proxy_host::Start::Refused(logs)) => {
            assert!(logs.iter().any(|l| l.contains("crypto")), "{logs:?}");
        }
        Err(tokengate_proxy_host::Start::Trap(e)) => panic!("trap: {e:#}"),
        Ok(_) => panic!("started with crypto: boringssl"),
    }
}

#[test]
fn es256_signatures_go_to_the_host_as_der() {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors_dir().join("accept.json")).unwrap()).unwrap();
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "es256_generic_issuer_with_audience_is_accepted")
        .unwrap();
    let mut provider = case["policy"].clone();
    provider["jwks"] = json!({"keys": case["jwks"]["keys"]});
    let config = json!({"providers": [provider], "rules": [{"match": {"prefix": "/"}, "allow": "authenticated"}]})
        .to_string();
    let token = case["token"].as_str().unwrap();
    let (head_payload, sig) = token.rsplit_once('.').unwrap();
    // One character of s changed (r stays): still strict base64url, no longer valid.
    let mut sig = sig.to_string();
    let at = sig.len() - 10;
    let c = if &sig[at..=at] == "A" { "B" } else { "A" };
    sig.replace_range(at..=at, c);
    let flipped = format!("{head_payload}.{sig}");
    let now = case["now"].as_u64().unwrap();
    let (env, calls) = env_at_with(now, envoy_verify_signature);
    let mut vm = start(&env, &config);
    let r = vm.request(Request::get("/x").bearer(token)).unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    let r = vm.request(Request::get("/x").bearer(&flipped)).unwrap();
    assert_denied(&r, 401, "signature_invalid");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the probe, then both signatures"
    );
    vm.tick().unwrap();
    assert_eq!((env.metric(NATIVE), env.metric(WASM)), (2, 0));
}
