//! Remote JWKS: fetch in the root context, pause and resume, sharing between workers, refresh
//! failures with last-good keys, unknown-kid rotation, and failing closed.

mod common;

use common::*;
use serde_json::json;
use tokengate_proxy_host::{Env, Request, Response, Vm};

fn jwks_body(keys: &[&TestKey]) -> Vec<u8> {
    jwks(keys).to_string().into_bytes()
}

/// Tick until the VM has started exactly one callout; return its token.
fn one_callout(vm: &mut Vm) -> u32 {
    vm.tick().unwrap();
    let calls = vm.callouts();
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0].token
}

#[test]
fn requests_pause_while_keys_load_and_resume_when_they_arrive() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &remote_config(json!({})));
    assert_eq!(vm.tick_period_ms(), 100);
    let t = token("orders/read");
    let first = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let second = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let anonymous = vm.request(Request::get("/health")).unwrap();
    assert!(
        matches!(anonymous, Response::Forwarded(_)),
        "anonymous routes never wait"
    );
    assert_eq!(vm.response(first), Response::Paused);
    vm.tick().unwrap();
    let calls = vm.callouts();
    assert_eq!(calls.len(), 1, "one fetch however many requests wait");
    let call = &calls[0];
    assert_eq!(call.cluster, "idp");
    assert_eq!(
        call.header(":path"),
        Some("/eu-west-1_TEST0pool/.well-known/jwks.json")
    );
    assert_eq!(call.header(":authority"), Some("cognito-idp.test"));
    assert_eq!(call.header(":method"), Some("GET"));
    assert_eq!(call.timeout_ms, 1000);
    vm.advance_ms(40).unwrap();
    vm.answer(
        call.token,
        200,
        &[("cache-control", "max-age=300")],
        &jwks_body(&[key_a()]),
    )
    .unwrap();
    for id in [first, second] {
        let r = vm.response(id);
        assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
        assert_eq!(r.header("x-tokengate-client-id").as_deref(), Some(CLIENT));
        vm.end(id).unwrap();
    }
    vm.tick().unwrap();
    assert_eq!(env.metric("tokengate_jwks_refresh_total.result.ok"), 1);
    assert_eq!(
        env.metric("tokengate_allowed_total"),
        3,
        "two tokens and one anonymous"
    );
    // Fresh keys: no more fetches until max-age has passed.
    vm.advance_ms(299_000).unwrap();
    assert!(vm.callouts().is_empty());
    vm.advance_ms(2_000).unwrap();
    assert_eq!(vm.callouts().len(), 1, "max-age=300 refresh");
}

#[test]
fn a_paused_request_that_is_denied_gets_its_answer_on_resume() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &remote_config(json!({})));
    let id = vm
        .send(Request::new("POST", "/orders").bearer(&token("orders/read")))
        .unwrap();
    let call = one_callout(&mut vm);
    vm.answer(call, 200, &[], &jwks_body(&[key_a()])).unwrap();
    assert_denied(&vm.response(id), 403, "scope_insufficient");
}

#[test]
fn workers_share_one_fetch_through_shared_data() {
    let env = Env::at(NOW);
    let config = remote_config(json!({}));
    let mut w1 = start(&env, &config);
    let mut w2 = start(&env, &config);
    let t = token("orders/read");
    let r1 = w1.send(Request::get("/orders").bearer(&t)).unwrap();
    let r2 = w2.send(Request::get("/orders").bearer(&t)).unwrap();
    let call = one_callout(&mut w1);
    w2.tick().unwrap();
    assert!(
        w2.callouts().is_empty(),
        "worker 2 waits for worker 1's fetch (lease)"
    );
    w1.answer(call, 200, &[], &jwks_body(&[key_a()])).unwrap();
    assert!(matches!(w1.response(r1), Response::Forwarded(_)));
    assert_eq!(w2.response(r2), Response::Paused);
    w2.tick().unwrap();
    assert!(
        matches!(w2.response(r2), Response::Forwarded(_)),
        "loaded from shared data"
    );
    assert!(w2.callouts().is_empty());
    // A worker started later needs no fetch either.
    let mut w3 = start(&env, &config);
    w3.tick().unwrap();
    assert!(w3.callouts().is_empty());
    assert!(matches!(
        w3.request(Request::get("/orders").bearer(&t)).unwrap(),
        Response::Forwarded(_)
    ));
    for w in [&mut w1, &mut w2, &mut w3] {
        w.tick().unwrap();
    }
    assert_eq!(env.metric("tokengate_jwks_refresh_total.result.ok"), 1);
}

#[test]
fn no_keys_at_all_means_503_jwks_unavailable_never_a_pass() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &remote_config(json!({})));
    let t = token("orders/read");
    let id = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let call = one_callout(&mut vm);
    vm.fail(call).unwrap();
    let r = vm.response(id);
    assert_denied(&r, 503, "jwks_unavailable");
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
    assert_eq!(r.header("www-authenticate"), None);
    vm.tick().unwrap();
    assert_eq!(
        env.metric("tokengate_jwks_refresh_total.result.transport"),
        1
    );
    // During the backoff requests are answered at once.
    let r = vm.request(Request::get("/orders").bearer(&t)).unwrap();
    assert_denied(&r, 503, "jwks_unavailable");
    // After it, a retry; a bad answer (not a key set) is no better.
    vm.advance_ms(1_500).unwrap();
    let id = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let call = one_callout(&mut vm);
    vm.answer(call, 200, &[], b"<html>maintenance</html>")
        .unwrap();
    assert_denied(&vm.response(id), 503, "jwks_unavailable");
    vm.tick().unwrap();
    assert_eq!(
        env.metric("tokengate_jwks_refresh_total.result.invalid_jwks"),
        1
    );
    // And an HTTP error.
    vm.advance_ms(5_000).unwrap();
    let id = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let call = one_callout(&mut vm);
    vm.answer(call, 502, &[], b"").unwrap();
    assert_denied(&vm.response(id), 503, "jwks_unavailable");
    vm.tick().unwrap();
    assert_eq!(
        env.metric("tokengate_jwks_refresh_total.result.http_error"),
        1
    );
}

#[test]
fn a_pause_is_bounded_in_time() {
    let env = Env::at(NOW);
    let mut vm = start(
        &env,
        &remote_config(json!({"wait": {"timeout_ms": 500, "max_requests": 10}})),
    );
    let id = vm
        .send(Request::get("/orders").bearer(&token("orders/read")))
        .unwrap();
    vm.tick().unwrap();
    vm.advance_ms(400).unwrap();
    vm.tick().unwrap();
    assert_eq!(vm.response(id), Response::Paused);
    vm.advance_ms(100).unwrap();
    vm.tick().unwrap();
    assert_denied(&vm.response(id), 503, "jwks_unavailable");
}

#[test]
fn a_pause_is_bounded_in_count() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &remote_config(json!({"wait": {"max_requests": 2}})));
    let t = token("orders/read");
    let a = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let b = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let c = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    assert_eq!(vm.response(a), Response::Paused);
    assert_eq!(vm.response(b), Response::Paused);
    assert_denied(&vm.response(c), 503, "jwks_unavailable");
    // A waiting client that goes away frees its place and is never answered.
    vm.end(a).unwrap();
    let d = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    assert_eq!(vm.response(d), Response::Paused);
    let call = one_callout(&mut vm);
    vm.answer(call, 200, &[], &jwks_body(&[key_a()])).unwrap();
    assert!(matches!(vm.response(b), Response::Forwarded(_)));
    assert!(matches!(vm.response(d), Response::Forwarded(_)));
}

#[test]
fn refresh_failures_keep_the_last_good_keys_until_max_stale() {
    let env = Env::at(NOW);
    let mut cfg: serde_json::Value = serde_json::from_str(&remote_config(json!({}))).unwrap();
    cfg["providers"][0]["jwks"]["max_stale_s"] = json!(1200);
    let mut vm = start(&env, &cfg.to_string());
    let t = key_a().sign(&claims("orders/read", json!({"exp": NOW + 7200})));
    let id = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let call = one_callout(&mut vm);
    vm.answer(call, 200, &[], &jwks_body(&[key_a()])).unwrap();
    assert!(matches!(vm.response(id), Response::Forwarded(_)));
    // Refresh due at 900 s: it fails, the old keys still serve.
    vm.set_time(NOW + 901).unwrap();
    let call = one_callout(&mut vm);
    vm.answer(call, 500, &[], b"oops").unwrap();
    vm.tick().unwrap();
    assert_eq!(
        env.metric("tokengate_jwks_refresh_total.result.http_error"),
        1
    );
    let r = vm.request(Request::get("/orders").bearer(&t)).unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    // Past max_stale the keys are no longer used: fail closed.
    vm.set_time(NOW + 1201).unwrap();
    let id = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let r = vm.response(id);
    if r == Response::Paused {
        let call = one_callout(&mut vm);
        vm.fail(call).unwrap();
    }
    assert_denied(&vm.response(id), 503, "jwks_unavailable");
    // Recovery: the next good fetch serves again.
    vm.set_time(NOW + 1300).unwrap();
    let id = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let call = one_callout(&mut vm);
    vm.answer(call, 200, &[], &jwks_body(&[key_a()])).unwrap();
    assert!(matches!(vm.response(id), Response::Forwarded(_)));
}

#[test]
fn an_unknown_kid_triggers_one_refetch_then_verifies_with_the_rotated_key() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &remote_config(json!({})));
    let old = token("orders/read");
    let id = vm.send(Request::get("/orders").bearer(&old)).unwrap();
    let call = one_callout(&mut vm);
    vm.answer(call, 200, &[], &jwks_body(&[key_a()])).unwrap();
    vm.end(id).unwrap();
    // The issuer rotates: tokens signed with key b appear before our refresh is due.
    vm.advance_ms(10_000).unwrap();
    let rotated = key_b().sign(&claims("orders/read", json!({})));
    let id = vm.send(Request::get("/orders").bearer(&rotated)).unwrap();
    assert_eq!(vm.response(id), Response::Paused);
    let call = one_callout(&mut vm);
    vm.answer(call, 200, &[], &jwks_body(&[key_a(), key_b()]))
        .unwrap();
    assert!(
        matches!(vm.response(id), Response::Forwarded(_)),
        "{:?}",
        vm.response(id)
    );
    // Within the cooldown another unknown kid is refused at once, without a fetch.
    let mut forged = claims("orders/read", json!({}));
    forged["jti"] = json!("other");
    let unknown = tokengate_like_token_with_kid("never-published", &forged);
    let r = vm
        .request(Request::get("/orders").bearer(&unknown))
        .unwrap();
    assert_denied(&r, 401, "kid_unknown");
    vm.tick().unwrap();
    assert!(vm.callouts().is_empty());
    // The old key was withdrawn at the next refresh: its cached tokens are verified afresh
    // and refused.
    vm.advance_ms(900_000).unwrap();
    let call = one_callout(&mut vm);
    vm.answer(call, 200, &[], &jwks_body(&[key_b()])).unwrap();
    let id = vm.send(Request::get("/orders").bearer(&old)).unwrap();
    // The cooldown has passed, so the unknown kid earns one more refetch before the verdict.
    assert_eq!(vm.response(id), Response::Paused);
    let call = one_callout(&mut vm);
    vm.answer(call, 200, &[], &jwks_body(&[key_b()])).unwrap();
    assert_denied(&vm.response(id), 401, "kid_unknown");
}

/// A token whose header names `kid` (signed with key a; the kid decides before the signature).
fn tokengate_like_token_with_kid(kid: &str, claims: &serde_json::Value) -> String {
    let k = TestKey::load("rsa-a.pem", kid);
    k.sign(claims)
}

#[test]
fn inline_keys_serve_at_once_and_are_refreshed_remotely() {
    let env = Env::at(NOW);
    let mut cfg: serde_json::Value = serde_json::from_str(&remote_config(json!({}))).unwrap();
    cfg["providers"][0]["jwks"]["keys"] = jwks(&[key_a()])["keys"].clone();
    let mut vm = start(&env, &cfg.to_string());
    let r = vm
        .request(Request::get("/orders").bearer(&token("orders/read")))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    vm.tick().unwrap();
    assert!(vm.callouts().is_empty(), "seeded keys count as fresh");
    vm.advance_ms(900_000).unwrap();
    vm.tick().unwrap();
    assert_eq!(vm.callouts().len(), 1);
}
