//! Replayed answers (`crates/tokengate-proxy/src/replay.rs`): an allow the gate gave is given
//! again for the identical request only while nothing it depends on can have changed. Each test
//! changes one thing without a tick in between, the case where a stale replay would show.

mod common;

use common::*;
use serde_json::{json, Value};
use tokengate_proxy_host::{Env, Request, Response, Vm};

fn get_orders(vm: &mut Vm, token: &str) -> Response {
    vm.request(Request::get("/orders").bearer(token)).unwrap()
}

fn forwarded(r: &Response) -> bool {
    matches!(r, Response::Forwarded(_))
}

fn jwks_body(keys: &[&TestKey]) -> Vec<u8> {
    jwks(keys).to_string().into_bytes()
}

#[test]
fn a_policy_feed_answer_ends_replays_at_once_even_within_one_clock_reading() {
    let feed = json!({
        "cluster": "policy", "path": "/p.json", "authority": "policy.test", "timeout_ms": 1000,
        "unsigned": true, "poll_s": 5
    });
    let mut cfg: Value = serde_json::from_str(&config(json!({}))).unwrap();
    cfg["feed"] = feed;
    let env = Env::at(NOW);
    let mut vm = start(&env, &cfg.to_string());
    let doc = |version: u64, provider: Value| {
        json!({"format": 1, "version": version, "issued_at": NOW, "providers": {ISS: provider}})
            .to_string()
            .into_bytes()
    };
    vm.tick().unwrap();
    let call = vm.callouts()[0].clone();
    vm.answer(call.token, 200, &[], &doc(1, json!({}))).unwrap();
    let t = token("orders/read");
    // The next poll starts (the clock reading changes here, then stays): the token's answer is
    // given by the gate, then replayed.
    vm.advance_ms(5000).unwrap();
    let call = vm.callouts()[0].clone();
    assert!(forwarded(&get_orders(&mut vm, &t)));
    vm.reset_host_calls();
    assert!(forwarded(&get_orders(&mut vm, &t)));
    // The feed revokes the client; no tick, no clock change.
    vm.answer(
        call.token,
        200,
        &[],
        &doc(2, json!({"revoke": {"client_ids": [CLIENT]}})),
    )
    .unwrap();
    assert_denied(&get_orders(&mut vm, &t), 401, "token_revoked");
}

#[test]
fn a_jwks_answer_that_withdraws_the_key_ends_replays_at_once() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &remote_config(json!({})));
    vm.tick().unwrap();
    let call = vm.callouts()[0].clone();
    vm.answer(call.token, 200, &[], &jwks_body(&[key_a()]))
        .unwrap();
    vm.advance_ms(10_000).unwrap();
    let t = token("orders/read");
    // A token under an unknown kid waits for one refetch, started on the next tick.
    let rotated = key_b().sign(&claims("orders/read", json!({})));
    let waiting = vm.send(Request::get("/orders").bearer(&rotated)).unwrap();
    assert_eq!(vm.response(waiting), Response::Paused);
    vm.tick().unwrap();
    let call = vm.callouts()[0].clone();
    assert!(forwarded(&get_orders(&mut vm, &t)));
    assert!(forwarded(&get_orders(&mut vm, &t)), "replayed meanwhile");
    // The new key set drops key A (no tick, no clock change): its tokens verify no more.
    vm.answer(call.token, 200, &[], &jwks_body(&[key_b()]))
        .unwrap();
    assert!(forwarded(&vm.response(waiting)));
    assert_denied(&get_orders(&mut vm, &t), 401, "kid_unknown");
}

#[test]
fn an_answer_judged_on_the_exact_clock_near_exp_is_never_replayed() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    // Expires inside the tick clock's uncertainty: the filter reads the exact clock for it.
    let t = key_a().sign(&claims("orders/read", json!({"exp": NOW - 30})));
    assert!(
        forwarded(&get_orders(&mut vm, &t)),
        "within the 60 s leeway"
    );
    assert!(forwarded(&get_orders(&mut vm, &t)));
    // Time passes the leeway; the filter has seen no tick.
    env.set_time(NOW + 31);
    assert_denied(&get_orders(&mut vm, &t), 401, "token_expired");
}

#[test]
fn a_rate_limit_or_client_certificates_turn_replays_off() {
    let t = token("orders/read");
    for patch in [
        json!({"rate_limit": {"per_client_per_s": 100, "burst": 100}}),
        json!({"mtls_binding": "when_present"}),
        json!({"token_cache": {"capacity": 0}}),
    ] {
        let env = Env::at(NOW);
        let mut vm = start(&env, &config(patch.clone()));
        let first = get_orders(&mut vm, &t);
        vm.reset_host_calls();
        let again = get_orders(&mut vm, &t);
        assert_eq!(first, again);
        let calls = vm.host_calls();
        match patch
            .as_object()
            .and_then(|o| o.keys().next())
            .map(String::as_str)
        {
            // Each request takes its own token from the shared bucket.
            Some("rate_limit") => assert_eq!(calls.get("proxy_set_shared_data"), Some(&1)),
            // Each request reads the connection's certificate.
            Some("mtls_binding") => assert_eq!(calls.get("proxy_get_property"), Some(&4)),
            _ => {}
        }
    }
}

#[test]
fn different_paths_methods_and_tokens_are_different_requests() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let read = token("orders/read");
    let write = token("orders/write");
    assert!(forwarded(&get_orders(&mut vm, &read)));
    assert!(forwarded(&get_orders(&mut vm, &read)));
    let post = |vm: &mut Vm, t: &str| {
        vm.request(Request::new("POST", "/orders").bearer(t))
            .unwrap()
    };
    assert_denied(&post(&mut vm, &read), 403, "scope_insufficient");
    assert!(forwarded(&post(&mut vm, &write)));
    assert_denied(&get_orders(&mut vm, &write), 403, "scope_insufficient");
    assert_denied(
        &vm.request(Request::get("/admin").bearer(&read)).unwrap(),
        401,
        "client_not_allowed",
    );
}
