//! The policy feed in the filter: the first load pauses requests, `If-None-Match` and `304`,
//! a new version applies to cached tokens at once, older versions and bad signatures are
//! refused, the stale policy when the feed server goes silent, one fetch shared by workers, and
//! a feed without a cluster refused at load.

mod common;

use common::*;
use serde_json::{json, Value};
use tokengate_proxy_host::{Callout, Env, Request, Response, Start, Vm};

const POLL_S: u64 = 5;
const MAX_STALE_S: u64 = 30;

/// The orders config with inline keys and a policy feed on cluster `policy`; `feed` members
/// replace the defaults (unsigned, poll 5 s, stale after 30 s, keep).
fn feed_config(feed: Value, patch: Value) -> String {
    let mut f = json!({
        "cluster": "policy", "path": "/edge-policy.json", "authority": "policy.test",
        "timeout_ms": 1000, "unsigned": true, "poll_s": POLL_S, "max_stale_s": MAX_STALE_S
    });
    if let (Some(m), Value::Object(p)) = (f.as_object_mut(), feed) {
        for (k, v) in p {
            if v.is_null() {
                m.remove(&k);
            } else {
                m.insert(k, v);
            }
        }
    }
    let mut c: Value = serde_json::from_str(&config(patch)).unwrap();
    c["feed"] = f;
    c.to_string()
}

fn doc(version: u64, provider: Value) -> Value {
    json!({"format": 1, "version": version, "issued_at": NOW, "providers": {ISS: provider}})
}

fn body(version: u64, provider: Value) -> Vec<u8> {
    doc(version, provider).to_string().into_bytes()
}

fn revoke_client() -> Value {
    json!({"revoke": {"client_ids": [CLIENT]}})
}

/// Tick; the VM must have started exactly one callout, to the feed. Returns it.
fn feed_call(vm: &mut Vm) -> Callout {
    vm.tick().unwrap();
    let calls = vm.callouts();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].cluster, "policy");
    calls[0].clone()
}

/// Start a VM and load version 1 (empty) with ETag `"v1"`.
fn loaded(env: &Env, config: &str) -> Vm {
    let mut vm = start(env, config);
    let call = feed_call(&mut vm);
    vm.answer(call.token, 200, &[("etag", "\"v1\"")], &body(1, json!({})))
        .unwrap();
    vm
}

fn get_orders(vm: &mut Vm, token: &str) -> Response {
    vm.request(Request::get("/orders").bearer(token)).unwrap()
}

fn log_lines(env: &Env, needle: &str) -> Vec<String> {
    env.logs()
        .into_iter()
        .map(|l| l.message)
        .filter(|m| m.contains(needle))
        .collect()
}

/// Advance the clock second by second for `seconds`, ticking, and fail (as Envoy reports a
/// timeout or a reset: no headers) every feed fetch started meanwhile. Returns how many.
fn silent_server(vm: &mut Vm, seconds: u64) -> usize {
    let mut failed = 0;
    for _ in 0..seconds {
        vm.advance_ms(1000).unwrap();
        for call in vm.callouts() {
            vm.fail(call.token).unwrap();
            failed += 1;
        }
    }
    failed
}

#[test]
fn the_first_load_pauses_requests_then_lets_them_through() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &feed_config(json!({}), json!({})));
    let t = token("orders/read");
    let first = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    let second = vm.send(Request::get("/orders").bearer(&t)).unwrap();
    assert_eq!(vm.response(first), Response::Paused);
    assert!(
        matches!(
            vm.request(Request::get("/health")).unwrap(),
            Response::Forwarded(_)
        ),
        "anonymous routes never wait for the feed"
    );
    let call = feed_call(&mut vm);
    assert_eq!(call.header(":method"), Some("GET"));
    assert_eq!(call.header(":path"), Some("/edge-policy.json"));
    assert_eq!(call.header(":authority"), Some("policy.test"));
    assert_eq!(
        call.header("if-none-match"),
        None,
        "nothing to revalidate yet"
    );
    assert_eq!(call.timeout_ms, 1000);
    vm.tick().unwrap();
    assert_eq!(vm.callouts().len(), 1, "one fetch at a time");
    vm.advance_ms(30).unwrap();
    vm.answer(call.token, 200, &[("etag", "\"v1\"")], &body(1, json!({})))
        .unwrap();
    for id in [first, second] {
        let r = vm.response(id);
        assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
        assert_eq!(r.header("x-tokengate-client-id").as_deref(), Some(CLIENT));
        vm.end(id).unwrap();
    }
    vm.tick().unwrap();
    assert_eq!(env.metric("tokengate_feed_refresh_total.result.ok"), 1);
    assert_eq!(env.metric("tokengate_feed_version"), 1);
    assert_eq!(env.metric("tokengate_feed_stale"), 0);
    assert_eq!(
        log_lines(&env, "tokengate: policy feed loaded version 1").len(),
        1
    );
    assert_eq!(
        log_lines(&env, "policy feed from cluster \"policy\"").len(),
        1,
        "the configured line names the feed's cluster"
    );
    assert!(matches!(get_orders(&mut vm, &t), Response::Forwarded(_)));
}

#[test]
fn a_paused_request_gives_up_at_the_wait_deadline_when_the_feed_never_answers() {
    let env = Env::at(NOW);
    let mut vm = start(
        &env,
        &feed_config(
            json!({}),
            json!({"wait": {"timeout_ms": 500, "max_requests": 10}}),
        ),
    );
    let id = vm
        .send(Request::get("/orders").bearer(&token("orders/read")))
        .unwrap();
    let _hanging = feed_call(&mut vm);
    vm.advance_ms(400).unwrap();
    assert_eq!(vm.response(id), Response::Paused);
    vm.advance_ms(100).unwrap();
    let r = vm.response(id);
    assert_denied(&r, 503, "policy_unavailable");
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
}

#[test]
fn a_first_load_that_fails_follows_the_stale_policy() {
    for (stale, want) in [("keep", 200), ("fail_closed", 503)] {
        let env = Env::at(NOW);
        let mut vm = start(&env, &feed_config(json!({"stale": stale}), json!({})));
        let id = vm
            .send(Request::get("/orders").bearer(&token("orders/read")))
            .unwrap();
        let call = feed_call(&mut vm);
        vm.fail(call.token).unwrap();
        let r = vm.response(id);
        assert_eq!(r.status(), want, "{stale}: {r:?}");
        if want == 503 {
            assert_denied(&r, 503, "policy_unavailable");
        }
        vm.tick().unwrap();
        assert_eq!(
            env.metric("tokengate_feed_refresh_total.result.transport"),
            1
        );
        assert_eq!(env.metric("tokengate_feed_stale"), 1);
        let lines = log_lines(&env, "tokengate: policy feed stale since");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("never loaded"), "{}", lines[0]);
    }
}

#[test]
fn if_none_match_is_sent_and_a_304_keeps_the_version_and_the_freshness() {
    let env = Env::at(NOW);
    // Fail closed: had a 304 not counted as a refresh, requests would get 503 after 30 s.
    let mut vm = loaded(
        &env,
        &feed_config(json!({"stale": "fail_closed"}), json!({})),
    );
    let t = token("orders/read");
    let mut not_modified = 0;
    for _ in 0..(2 * MAX_STALE_S / POLL_S) {
        vm.advance_ms(POLL_S * 1000).unwrap();
        let calls = vm.callouts();
        assert_eq!(calls.len(), 1, "one poll per poll_s: {calls:?}");
        assert_eq!(calls[0].header("if-none-match"), Some("\"v1\""));
        vm.answer(calls[0].token, 304, &[("etag", "\"v1\"")], b"")
            .unwrap();
        not_modified += 1;
        let r = get_orders(&mut vm, &t);
        assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    }
    vm.tick().unwrap();
    assert_eq!(
        env.metric("tokengate_feed_refresh_total.result.not_modified"),
        not_modified
    );
    assert_eq!(env.metric("tokengate_feed_refresh_total.result.ok"), 1);
    assert_eq!(env.metric("tokengate_feed_version"), 1);
    assert_eq!(env.metric("tokengate_feed_stale"), 0);
    assert!(log_lines(&env, "stale since").is_empty());
    // A max-age longer than poll_s spaces the polls out (up to max_poll_s).
    vm.advance_ms(POLL_S * 1000).unwrap();
    let call = vm.callouts()[0].clone();
    vm.answer(call.token, 304, &[("cache-control", "max-age=20")], b"")
        .unwrap();
    vm.advance_ms(19_000).unwrap();
    assert!(vm.callouts().is_empty());
    vm.advance_ms(1_000).unwrap();
    assert_eq!(vm.callouts().len(), 1);
}

#[test]
fn a_new_version_revoking_the_client_denies_a_cached_token_at_once() {
    let env = Env::at(NOW);
    let mut vm = loaded(&env, &feed_config(json!({}), json!({})));
    let t = token("orders/read");
    assert!(matches!(get_orders(&mut vm, &t), Response::Forwarded(_)));
    assert!(
        matches!(get_orders(&mut vm, &t), Response::Forwarded(_)),
        "from the token cache"
    );
    vm.advance_ms(POLL_S * 1000).unwrap();
    let call = vm.callouts()[0].clone();
    vm.answer(
        call.token,
        200,
        &[("etag", "\"v2\"")],
        &body(2, revoke_client()),
    )
    .unwrap();
    let r = get_orders(&mut vm, &t);
    assert_denied(&r, 401, "token_revoked");
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"tokengate\", error=\"invalid_token\"")
    );
    vm.tick().unwrap();
    assert_eq!(env.metric("tokengate_feed_version"), 2);
    assert_eq!(env.metric("tokengate_feed_refresh_total.result.ok"), 2);
    assert_eq!(env.metric("tokengate_denied_total.code.token_revoked"), 1);
    assert_eq!(log_lines(&env, "policy feed loaded version 2").len(), 1);
    // The next poll revalidates version 2.
    vm.advance_ms(POLL_S * 1000).unwrap();
    assert_eq!(vm.callouts()[0].header("if-none-match"), Some("\"v2\""));
}

#[test]
fn an_older_version_is_ignored() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &feed_config(json!({}), json!({})));
    let call = feed_call(&mut vm);
    vm.answer(call.token, 200, &[], &body(2, json!({})))
        .unwrap();
    vm.advance_ms(POLL_S * 1000).unwrap();
    let call = vm.callouts()[0].clone();
    // A lagging cache serves version 1, which revoked the client.
    vm.answer(call.token, 200, &[], &body(1, revoke_client()))
        .unwrap();
    let r = get_orders(&mut vm, &token("orders/read"));
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    vm.tick().unwrap();
    assert_eq!(
        env.metric("tokengate_feed_refresh_total.result.older_version"),
        1
    );
    assert_eq!(env.metric("tokengate_feed_version"), 2);
    let lines = log_lines(&env, "tokengate: policy feed refresh failed: ");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("offered version 1, older than version 2 in use"),
        "{}",
        lines[0]
    );
    // Polling goes on at the usual pace.
    vm.advance_ms(POLL_S * 1000).unwrap();
    assert_eq!(vm.callouts().len(), 1);
}

#[test]
fn a_signed_feed_verifies_and_a_tampered_or_unsigned_one_is_refused() {
    let env = Env::at(NOW);
    let signer = key_b();
    let cfg = feed_config(
        json!({"unsigned": null, "keys": [signer.jwk()], "algorithms": ["RS256"]}),
        json!({}),
    );
    let mut vm = start(&env, &cfg);
    let id = vm
        .send(Request::get("/orders").bearer(&token("orders/read")))
        .unwrap();
    let call = feed_call(&mut vm);
    let v1 = signer.sign(&doc(1, json!({})));
    vm.answer(
        call.token,
        200,
        &[("content-type", "application/jwt")],
        v1.as_bytes(),
    )
    .unwrap();
    assert!(matches!(vm.response(id), Response::Forwarded(_)));
    vm.end(id).unwrap();
    // A cache in between swaps the payload for one that revokes the client.
    let v2 = signer.sign(&doc(2, json!({})));
    let parts: Vec<&str> = v2.split('.').collect();
    let forged = signer.sign(&doc(2, revoke_client()));
    let forged_payload = forged.split('.').nth(1).unwrap();
    let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    vm.advance_ms(POLL_S * 1000).unwrap();
    let call = vm.callouts()[0].clone();
    vm.answer(call.token, 200, &[], tampered.as_bytes())
        .unwrap();
    assert!(matches!(
        get_orders(&mut vm, &token("orders/read")),
        Response::Forwarded(_)
    ));
    let refused = log_lines(&env, "policy feed refresh failed");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains("signature does not verify"),
        "{}",
        refused[0]
    );
    // Plain JSON where a signature is required: refused too. (The failures back off: wait.)
    vm.advance_ms(POLL_S * 1000).unwrap();
    let call = vm.callouts()[0].clone();
    vm.answer(call.token, 200, &[], &body(3, revoke_client()))
        .unwrap();
    assert!(matches!(
        get_orders(&mut vm, &token("orders/read")),
        Response::Forwarded(_)
    ));
    vm.tick().unwrap();
    assert_eq!(env.metric("tokengate_feed_refresh_total.result.invalid"), 2);
    assert_eq!(env.metric("tokengate_feed_version"), 1);
    // A properly signed new version applies.
    vm.advance_ms(POLL_S * 1000).unwrap();
    let call = vm.callouts()[0].clone();
    vm.answer(call.token, 200, &[], forged.as_bytes()).unwrap();
    assert_denied(
        &get_orders(&mut vm, &token("orders/read")),
        401,
        "token_revoked",
    );
}

#[test]
fn a_silent_feed_server_with_stale_keep_keeps_allowing_and_says_so_once() {
    let env = Env::at(NOW);
    let mut vm = loaded(&env, &feed_config(json!({"stale": "keep"}), json!({})));
    let t = token("orders/read");
    let failed = silent_server(&mut vm, MAX_STALE_S + 10);
    assert!(failed >= 3, "{failed} fetches");
    assert!(
        failed <= 12,
        "failures back off rather than hammer: {failed} fetches in {} s",
        MAX_STALE_S + 10
    );
    let r = get_orders(&mut vm, &t);
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    vm.tick().unwrap();
    assert_eq!(env.metric("tokengate_feed_stale"), 1);
    assert_eq!(env.metric("tokengate_feed_version"), 1);
    assert_eq!(
        env.metric("tokengate_feed_refresh_total.result.transport"),
        failed as i64
    );
    let lines = log_lines(&env, "tokengate: policy feed stale since");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "tokengate: policy feed stale since 2026-01-01T12:00:30Z (max_stale_s 30, last \
             refreshed 2026-01-01T12:00:00Z, last error: policy feed fetch failed or timed out)"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(": keeping version 1"), "{}", lines[0]);
    // The server is back: fresh again, said once.
    silent_server(&mut vm, 0);
    let mut answered = false;
    for _ in 0..40 {
        vm.advance_ms(1000).unwrap();
        if let Some(call) = vm.callouts().first() {
            assert_eq!(call.header("if-none-match"), Some("\"v1\""));
            vm.answer(call.token, 304, &[], b"").unwrap();
            answered = true;
            break;
        }
    }
    assert!(answered, "the filter went on retrying");
    vm.tick().unwrap();
    vm.tick().unwrap();
    assert_eq!(env.metric("tokengate_feed_stale"), 0);
    assert_eq!(
        log_lines(&env, "tokengate: policy feed stale since").len(),
        1
    );
    assert_eq!(
        log_lines(&env, "tokengate: policy feed fresh again: version 1").len(),
        1
    );
}

#[test]
fn a_silent_feed_server_with_fail_closed_answers_503_policy_unavailable() {
    let env = Env::at(NOW);
    let mut vm = loaded(
        &env,
        &feed_config(json!({"stale": "fail_closed"}), json!({})),
    );
    let t = token("orders/read");
    assert!(matches!(get_orders(&mut vm, &t), Response::Forwarded(_)));
    silent_server(&mut vm, MAX_STALE_S - 1);
    assert!(
        matches!(get_orders(&mut vm, &t), Response::Forwarded(_)),
        "still within max_stale_s"
    );
    silent_server(&mut vm, 2);
    let r = get_orders(&mut vm, &t);
    assert_denied(&r, 503, "policy_unavailable");
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
    assert_eq!(r.header("www-authenticate"), None);
    assert!(
        matches!(
            vm.request(Request::get("/health")).unwrap(),
            Response::Forwarded(_)
        ),
        "anonymous routes need no policy"
    );
    vm.tick().unwrap();
    assert_eq!(env.metric("tokengate_feed_stale"), 1);
    assert_eq!(
        env.metric("tokengate_denied_total.code.policy_unavailable"),
        1
    );
    let lines = log_lines(&env, "tokengate: policy feed stale since");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with(": failing closed with 503 policy_unavailable"),
        "{}",
        lines[0]
    );
    // Recovery with a new document: allowed again.
    let mut answered = false;
    for _ in 0..40 {
        vm.advance_ms(1000).unwrap();
        if let Some(call) = vm.callouts().first() {
            vm.answer(call.token, 200, &[], &body(2, json!({})))
                .unwrap();
            answered = true;
            break;
        }
    }
    assert!(answered);
    assert!(matches!(get_orders(&mut vm, &t), Response::Forwarded(_)));
}

#[test]
fn two_workers_share_one_fetch_and_both_apply_it() {
    let env = Env::at(NOW);
    // Fail closed with a short max_stale_s: worker 2 never fetches, so it stays fresh only
    // through what worker 1 publishes, 304s included.
    let cfg = feed_config(
        json!({"stale": "fail_closed", "max_stale_s": 10}),
        json!({}),
    );
    let mut w1 = start(&env, &cfg);
    let mut w2 = start(&env, &cfg);
    let t = token("orders/read");
    let r1 = w1.send(Request::get("/orders").bearer(&t)).unwrap();
    let r2 = w2.send(Request::get("/orders").bearer(&t)).unwrap();
    let call = feed_call(&mut w1);
    w2.tick().unwrap();
    assert!(
        w2.callouts().is_empty(),
        "worker 2 waits on worker 1's lease"
    );
    w1.answer(call.token, 200, &[("etag", "\"v1\"")], &body(1, json!({})))
        .unwrap();
    assert!(matches!(w1.response(r1), Response::Forwarded(_)));
    assert_eq!(w2.response(r2), Response::Paused);
    w2.tick().unwrap();
    assert!(
        matches!(w2.response(r2), Response::Forwarded(_)),
        "loaded from shared data"
    );
    w1.end(r1).unwrap();
    w2.end(r2).unwrap();
    // Tokens cached on both workers; then the client is revoked.
    assert!(matches!(get_orders(&mut w2, &t), Response::Forwarded(_)));
    env.advance_ms(POLL_S * 1000);
    let call = feed_call(&mut w1);
    w2.tick().unwrap();
    assert!(w2.callouts().is_empty());
    w1.answer(
        call.token,
        200,
        &[("etag", "\"v2\"")],
        &body(2, revoke_client()),
    )
    .unwrap();
    assert_denied(&get_orders(&mut w1, &t), 401, "token_revoked");
    w2.tick().unwrap();
    assert_denied(&get_orders(&mut w2, &t), 401, "token_revoked");
    // 304s from worker 1's fetches keep worker 2 fresh, far past max_stale_s.
    for _ in 0..6 {
        env.advance_ms(POLL_S * 1000);
        let call = feed_call(&mut w1);
        assert_eq!(call.header("if-none-match"), Some("\"v2\""));
        w2.tick().unwrap();
        assert!(w2.callouts().is_empty());
        w1.answer(call.token, 304, &[], b"").unwrap();
        w2.tick().unwrap();
        assert_denied(&get_orders(&mut w2, &t), 401, "token_revoked");
    }
    // A failed fetch on worker 1: worker 2 backs off too instead of fetching at once.
    env.advance_ms(POLL_S * 1000);
    let call = feed_call(&mut w1);
    w2.tick().unwrap();
    w1.fail(call.token).unwrap();
    w2.tick().unwrap();
    assert!(w2.callouts().is_empty(), "worker 2 backs off");
    w1.tick().unwrap();
    w2.tick().unwrap();
    assert_eq!(env.metric("tokengate_feed_refresh_total.result.ok"), 2);
    assert_eq!(
        env.metric("tokengate_feed_refresh_total.result.not_modified"),
        6
    );
    assert_eq!(
        env.metric("tokengate_feed_refresh_total.result.transport"),
        1
    );
    assert_eq!(env.metric("tokengate_feed_version"), 2);
    assert_eq!(log_lines(&env, "policy feed loaded version 2").len(), 1);
}

#[test]
fn two_workers_log_the_turn_to_stale_once_with_the_fetching_workers_error() {
    let env = Env::at(NOW);
    let cfg = feed_config(json!({}), json!({}));
    let mut w1 = start(&env, &cfg);
    let mut w2 = start(&env, &cfg);
    let call = feed_call(&mut w1);
    w1.answer(call.token, 200, &[], &body(1, json!({})))
        .unwrap();
    w2.tick().unwrap();
    // The server answers 503 from now on. Worker 1 fetches; worker 2 (busy elsewhere) does not
    // tick until the feed has turned stale, so its own gate knows of no error at all.
    let mut failed = 0;
    for _ in 0..MAX_STALE_S {
        w1.advance_ms(1000).unwrap();
        for call in w1.callouts() {
            w1.answer(call.token, 503, &[], b"").unwrap();
            failed += 1;
        }
    }
    assert!(failed >= 3, "{failed}");
    assert!(log_lines(&env, "stale since").is_empty(), "not stale yet");
    env.advance_ms(1000);
    w2.tick().unwrap();
    w1.tick().unwrap();
    let stale: Vec<_> = env
        .logs()
        .into_iter()
        .filter(|l| l.message.contains("tokengate: policy feed stale since"))
        .collect();
    assert_eq!(stale.len(), 1, "once for both workers: {stale:?}");
    assert_eq!(stale[0].vm, 2, "{stale:?}");
    assert!(
        stale[0]
            .message
            .contains("last error: policy feed answered HTTP 503)"),
        "worker 1's error: {}",
        stale[0].message
    );
    for call in w2.callouts() {
        w2.fail(call.token).unwrap();
    }
    let r = get_orders(&mut w2, &token("orders/read"));
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    w2.tick().unwrap();
    assert_eq!(log_lines(&env, "stale since").len(), 1);
}

#[test]
fn a_feed_uri_without_a_cluster_is_refused_naming_the_field() {
    let env = Env::at(NOW);
    let cfg = feed_config(
        json!({"cluster": null, "path": null, "authority": null,
               "uri": "https://policy.example/edge-policy.json"}),
        json!({}),
    );
    match env.vm(filter(), &cfg) {
        Err(Start::Refused(logs)) => {
            assert!(
                logs.iter().any(|l| l
                    .starts_with("tokengate: invalid configuration: feed.cluster: is required")),
                "{logs:?}"
            );
        }
        Err(Start::Trap(e)) => panic!("trap: {e:#}"),
        Ok(_) => panic!("accepted a feed the filter cannot fetch"),
    }
}
