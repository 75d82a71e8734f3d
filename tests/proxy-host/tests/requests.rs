//! Request-path scenarios with inline keys: responses per code, headers, forwarding, metrics,
//! audit lines, hostile input, and configurations refused at load.

mod common;

use common::*;
use serde_json::{json, Value};
use tokengate_proxy_host::{Env, Request, Response, Start};

#[test]
fn valid_token_with_the_route_scope_is_forwarded_with_claims_and_without_spoofed_headers() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let r = vm
        .request(
            Request::get("/orders/7?expand=1")
                .bearer(&token("orders/read"))
                .header("x-tokengate-client-id", "spoofed")
                .header("X-Tokengate-Scope", "admin/all"),
        )
        .unwrap();
    let Response::Forwarded(headers) = &r else {
        panic!("{r:?}")
    };
    let values = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    };
    assert_eq!(values("x-tokengate-client-id"), vec![CLIENT]);
    assert_eq!(values("x-tokengate-scope"), vec!["orders/read"]);
    assert_eq!(
        values("authorization").len(),
        1,
        "kept unless strip_authorization"
    );
    vm.tick().unwrap();
    assert_eq!(
        env.metric("tokengate_allowed_total"),
        1,
        "counters reach the host on the tick"
    );
}

#[test]
fn spoofed_claim_headers_are_stripped_on_anonymous_and_denied_requests_too() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({"mode": "report"})));
    for req in [
        Request::get("/health").header("x-tokengate-client-id", "spoofed"),
        Request::get("/orders").header("x-tokengate-client-id", "spoofed"),
    ] {
        let r = vm.request(req).unwrap();
        assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
        assert_eq!(r.header("x-tokengate-client-id"), None);
    }
}

#[test]
fn anonymous_routes_need_no_token() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let r = vm.request(Request::get("/health")).unwrap();
    assert!(matches!(r, Response::Forwarded(_)));
    let r = vm
        .request(Request::get("/health/live").bearer("garbage"))
        .unwrap();
    assert!(
        matches!(r, Response::Forwarded(_)),
        "anonymous ignores the token"
    );
    // Segment boundary: /healthz is not /health.
    let r = vm.request(Request::get("/healthz")).unwrap();
    assert_denied(&r, 401, "token_missing");
}

#[test]
fn missing_token_gets_401_with_a_bare_bearer_challenge() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({"realm": "orders-api"})));
    let r = vm.request(Request::get("/orders")).unwrap();
    assert_denied(&r, 401, "token_missing");
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"orders-api\"")
    );
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let Response::Local { body, .. } = &r else {
        unreachable!()
    };
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "token_missing");
    assert!(body["message"].is_string());
    // Another scheme is no Bearer token either.
    let r = vm
        .request(Request::get("/orders").header("authorization", "Basic Zm9vOmJhcg=="))
        .unwrap();
    assert_denied(&r, 401, "token_missing");
}

#[test]
fn invalid_tokens_get_401_invalid_token() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let good = token("orders/read");
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    let expired = key_a().sign(&claims("orders/read", json!({"exp": NOW - 120})));
    let stranger = key_a().sign(&claims("orders/read", json!({"client_id": "client-z"})));
    for (tok, code) in [
        ("not-a-jwt".to_owned(), "token_malformed"),
        (tampered, "signature_invalid"),
        (expired, "token_expired"),
        (stranger, "client_not_allowed"),
        (
            key_b().sign(&claims("orders/read", json!({}))),
            "kid_unknown",
        ),
    ] {
        let r = vm.request(Request::get("/orders").bearer(&tok)).unwrap();
        assert_denied(&r, 401, code);
        assert_eq!(
            r.header("www-authenticate").as_deref(),
            Some("Bearer realm=\"tokengate\", error=\"invalid_token\""),
            "{code}"
        );
        let Response::Local { body, .. } = &r else {
            unreachable!()
        };
        assert!(!body.contains(&tok), "the body never echoes the token");
        vm.tick().unwrap();
        assert_eq!(
            env.metric(&format!("tokengate_denied_total.code.{code}")),
            1,
            "{code}"
        );
    }
}

#[test]
fn two_authorization_headers_are_refused() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let t = token("orders/read");
    let r = vm
        .request(Request::get("/orders").bearer(&t).bearer(&t))
        .unwrap();
    assert_denied(&r, 401, "token_malformed");
}

#[test]
fn insufficient_scope_gets_403_listing_what_the_route_needs() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let r = vm
        .request(Request::new("POST", "/orders").bearer(&token("orders/read")))
        .unwrap();
    assert_denied(&r, 403, "scope_insufficient");
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"tokengate\", error=\"insufficient_scope\", scope=\"orders/write\"")
    );
    let r = vm
        .request(Request::new("POST", "/orders").bearer(&token("orders/read orders/write")))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)));
}

#[test]
fn routes_may_restrict_clients() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let a = token("admin/all");
    let r = vm.request(Request::get("/admin/users").bearer(&a)).unwrap();
    assert_denied(&r, 401, "client_not_allowed");
    // Client first, as in the core's pipeline: a foreign client lacking the scope is still 401.
    let r = vm
        .request(Request::get("/admin/users").bearer(&token("orders/read")))
        .unwrap();
    assert_denied(&r, 401, "client_not_allowed");
    let b = key_a().sign(&claims("admin/all", json!({"client_id": "client-b"})));
    let r = vm.request(Request::get("/admin/users").bearer(&b)).unwrap();
    assert!(matches!(r, Response::Forwarded(_)));
}

#[test]
fn unmatched_routes_follow_the_default() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let r = vm.request(Request::get("/other")).unwrap();
    assert_denied(&r, 401, "token_missing");
    let r = vm
        .request(Request::get("/other").bearer(&token("orders/read")))
        .unwrap();
    assert_denied(&r, 403, "scope_insufficient");
    // A path that only looks like an anonymous route is refused outright: it never reaches a
    // rule or the default (tests/vectors/http has the whole list).
    let r = vm.request(Request::get("/health/../orders")).unwrap();
    assert_denied(&r, 400, "request_invalid");
    let r = vm.request(Request::get("/health%2F..%2Forders")).unwrap();
    assert_denied(&r, 400, "request_invalid");

    let mut vm = start(&env, &config(json!({"default": "authenticated"})));
    let r = vm
        .request(Request::get("/other").bearer(&token("x")))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)));
}

#[test]
fn strip_authorization_removes_the_token_before_the_origin() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({"strip_authorization": true})));
    let r = vm
        .request(Request::get("/orders").bearer(&token("orders/read")))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)));
    assert_eq!(r.header("authorization"), None);
}

#[test]
fn one_audit_record_per_decision_in_filter_state_by_default() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    env.clear_logs();
    env.clear_filter_states();
    let t = token("orders/read");
    let ids = [
        vm.send(Request::get("/orders?secret=1").bearer(&t))
            .unwrap(),
        vm.send(Request::new("DELETE", "/orders/1").bearer(&t))
            .unwrap(),
        vm.send(Request::get("/health")).unwrap(),
        vm.send(Request::get("/orders")).unwrap(),
    ];
    assert!(env.logs().is_empty(), "no log line: {:?}", env.logs());
    let states = env.filter_states();
    assert_eq!(states.len(), 4, "{states:?}");
    let records: Vec<Value> = states
        .iter()
        .zip(ids)
        .map(|(s, id)| {
            assert_eq!(s.key, "wasm.tokengate");
            assert_eq!(s.context_id, id, "set on the request's own stream");
            let text = String::from_utf8(s.value.clone()).unwrap();
            assert!(!text.contains(&t) && !text.contains("secret"));
            serde_json::from_str(&text).unwrap()
        })
        .collect();
    assert_eq!(
        records[0],
        json!({"decision": "allow", "status": 200, "route": "orders-read", "client_id": CLIENT,
               "scopes": "orders/read", "iss": ISS, "kid": "test-key-a",
               "jti_sha256": records[0]["jti_sha256"], "cached": false})
    );
    assert_eq!(records[0]["jti_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(records[1]["decision"], "deny");
    assert_eq!(records[1]["code"], "scope_insufficient");
    assert_eq!(records[1]["status"], 403);
    assert_eq!(
        records[2],
        json!({"decision": "allow", "status": 200, "route": "health", "cached": false})
    );
    assert_eq!(
        records[3],
        json!({"decision": "deny", "code": "token_missing", "status": 401,
               "route": "orders-read", "cached": false})
    );
}

#[test]
fn audit_log_writes_one_line_per_decision_without_the_token() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({"audit": "log"})));
    env.clear_logs();
    let t = token("orders/read");
    vm.request(Request::get("/orders?secret=1").bearer(&t))
        .unwrap();
    vm.request(Request::new("DELETE", "/orders/1").bearer(&t))
        .unwrap();
    vm.request(Request::get("/health")).unwrap();
    let logs = env.logs();
    assert_eq!(logs.len(), 3, "{logs:?}");
    for l in &logs {
        assert!(!l.message.contains(&t));
        assert!(
            !l.message.contains("secret"),
            "query strings are not logged"
        );
    }
    let first: Value = serde_json::from_str(&logs[0].message).unwrap();
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["client_id"], CLIENT);
    assert_eq!(first["route"], "orders-read");
    assert_eq!(first["mode"], "enforce");
    assert_eq!(first["status"], 200);
    assert_eq!(first["iss"], ISS);
    assert_eq!(first["kid"], "test-key-a");
    assert_eq!(first["jti_sha256"].as_str().map(str::len), Some(64));
    let second: Value = serde_json::from_str(&logs[1].message).unwrap();
    assert_eq!(second["decision"], "deny");
    assert_eq!(second["code"], "scope_insufficient");
    assert_eq!(second["status"], 403);
    let third: Value = serde_json::from_str(&logs[2].message).unwrap();
    assert_eq!(third["route"], "health");
    assert!(env.filter_states().is_empty());
}

#[test]
fn audit_log_formats_nothing_envoy_would_drop() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({"audit": "log"})));
    let t = token("orders/read");
    env.set_log_level(3); // warning: info lines are dropped
    vm.tick().unwrap();
    env.clear_logs();
    vm.reset_host_calls();
    assert_eq!(
        vm.request(Request::get("/orders").bearer(&t))
            .unwrap()
            .status(),
        200
    );
    assert!(env.logs().is_empty());
    assert_eq!(vm.host_calls().get("proxy_log"), None);
    env.set_log_level(2);
    vm.tick().unwrap();
    assert_eq!(
        vm.request(Request::get("/orders").bearer(&t))
            .unwrap()
            .status(),
        200
    );
    assert_eq!(env.logs().len(), 1);
}

#[test]
fn the_old_audit_log_field_is_refused_with_its_replacement() {
    let env = Env::at(NOW);
    let Err(tokengate_proxy_host::Start::Refused(logs)) =
        env.vm(filter(), &config(json!({"audit_log": true})))
    else {
        panic!("audit_log accepted")
    };
    assert!(
        logs.iter()
            .any(|l| l.contains("invalid configuration: audit_log: is replaced by \"audit\"")),
        "{logs:?}"
    );
}

#[test]
fn the_token_cache_answers_repeat_requests() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let t = token("orders/read");
    env.clear_filter_states();
    for _ in 0..3 {
        assert!(matches!(
            vm.request(Request::get("/orders").bearer(&t)).unwrap(),
            Response::Forwarded(_)
        ));
    }
    let cached: Vec<bool> = env
        .filter_states()
        .iter()
        .map(|s| serde_json::from_slice::<Value>(&s.value).unwrap()["cached"] == true)
        .collect();
    assert_eq!(cached, vec![false, true, true]);
    // Policy still runs on a hit: the cached token lacks orders/write.
    let r = vm
        .request(Request::new("PUT", "/orders/1").bearer(&t))
        .unwrap();
    assert_denied(&r, 403, "scope_insufficient");
    // And time does: past exp + leeway the hit is refused.
    vm.set_time(NOW + 3600 + 61).unwrap();
    let r = vm.request(Request::get("/orders").bearer(&t)).unwrap();
    assert_denied(&r, 401, "token_expired");
}

#[test]
fn revocation_lists_from_the_config_apply() {
    let env = Env::at(NOW);
    let revoked = key_a().sign(&claims("orders/read", json!({"jti": "leaked-1"})));
    let mut vm = start(
        &env,
        &config(json!({"revocation": {"jti": ["leaked-1"], "issued_before": {"client-b": NOW}}})),
    );
    let r = vm
        .request(Request::get("/orders").bearer(&revoked))
        .unwrap();
    assert_denied(&r, 401, "token_revoked");
    let old_b = key_a().sign(&claims(
        "orders/read",
        json!({"client_id": "client-b", "iat": NOW - 10}),
    ));
    let r = vm.request(Request::get("/orders").bearer(&old_b)).unwrap();
    assert_denied(&r, 401, "token_revoked");
    let r = vm
        .request(Request::get("/orders").bearer(&token("orders/read")))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)));
}

#[test]
fn hostile_input_always_ends_in_a_verdict() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let good = token("orders/read");
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut values: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"Bearer".to_vec(),
        b"Bearer ".to_vec(),
        b"bEaReR x.y.z".to_vec(),
        b"Bearer \xff\xfe\x00".to_vec(),
        b"Bearer ....".to_vec(),
        format!("Bearer {}", "a".repeat(70_000)).into_bytes(),
        format!("Bearer {good}\n").into_bytes(),
        format!("Bearer {good} ").into_bytes(),
    ];
    for _ in 0..300 {
        // Mutate bytes of a valid header value.
        let mut v = format!("Bearer {good}").into_bytes();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() as usize) % v.len();
            v[i] = next() as u8;
        }
        values.push(v);
    }
    for v in values {
        let r = vm
            .request(Request::get("/orders").header("authorization", &v))
            .unwrap();
        match r {
            Response::Local { status, .. } => {
                assert_eq!(status, 401, "{:?}", String::from_utf8_lossy(&v))
            }
            Response::Forwarded(_) => {
                // Only changes outside the signed part (none) could pass: the token must be intact.
                assert!(
                    v.starts_with(format!("Bearer {good}").as_bytes())
                        || v.eq_ignore_ascii_case(format!("bearer {good}").as_bytes()),
                    "a mutated token passed: {:?}",
                    String::from_utf8_lossy(&v)
                );
            }
            Response::Paused => panic!("paused with inline keys"),
        }
    }
    // Odd paths and methods too: refused before the token is read.
    for path in ["", "*", "/%", "/\u{0}", "//", "/orders/\u{ff}", "/orders"] {
        for method in ["G\u{0}T", "get", ""] {
            let r = vm
                .request(Request::new(method, path).bearer(&good))
                .unwrap();
            assert_denied(&r, 400, "request_invalid");
        }
        let r = vm.request(Request::get(path).bearer(&good)).unwrap();
        assert!(r.status() == 400 || path == "/orders", "{path:?}: {r:?}");
    }
    assert_eq!(vm.stdout(), "", "the filter never prints (a panic would)");
}

#[test]
fn bad_configurations_are_refused_with_one_line_naming_the_field() {
    let env = Env::at(NOW);
    let base: Value = serde_json::from_str(&config(json!({}))).unwrap();
    let with = |path: &[&str], v: Value| {
        let mut c = base.clone();
        let mut cur = &mut c;
        for p in &path[..path.len() - 1] {
            cur = if let Ok(i) = p.parse::<usize>() {
                &mut cur[i]
            } else {
                &mut cur[*p]
            };
        }
        cur[path[path.len() - 1]] = v;
        c.to_string()
    };
    let cases = [
        ("not json".to_owned(), "configuration"),
        ("{}".to_owned(), "providers"),
        (with(&["mode"], json!("audit")), "mode"),
        (with(&["surprise"], json!(1)), "surprise"),
        (
            with(&["providers", "0", "client_ids"], json!([])),
            "providers[0].client_ids",
        ),
        (
            with(&["providers", "0", "algorithms"], json!(["none"])),
            "providers[0].algorithms[0]",
        ),
        (
            with(&["providers", "0", "leeway_s"], json!(-1)),
            "providers[0].leeway_s",
        ),
        (
            with(&["providers", "0", "jwks"], json!({"cluster": "idp"})),
            "providers[0].jwks.path",
        ),
        (
            with(
                &["rules", "1", "scopes"],
                json!({"all": ["orders/read"], "any": ["x"]}),
            ),
            "rules[1].scopes",
        ),
        (
            with(&["rules", "0", "match"], json!({"prefix": "health"})),
            "rules[0].match.prefix",
        ),
        (
            with(&["forward"], json!({"sub": "authorization"})),
            "forward.sub",
        ),
        (
            with(&["rate_limit"], json!({"per_client_per_s": 0})),
            "rate_limit.per_client_per_s",
        ),
        (with(&["mtls_binding"], json!("yes")), "mtls_binding"),
        (
            with(&["revocation"], json!({"jtis": []})),
            "revocation.jtis",
        ),
        (
            with(&["wait"], json!({"max_requests": -1})),
            "wait.max_requests",
        ),
    ];
    for (cfg, field) in cases {
        match env.vm(filter(), &cfg) {
            Err(Start::Refused(logs)) => {
                let errors: Vec<&String> = logs
                    .iter()
                    .filter(|l| l.contains("invalid configuration"))
                    .collect();
                assert_eq!(errors.len(), 1, "{field}: {logs:?}");
                assert!(
                    errors[0].starts_with(&format!("tokengate: invalid configuration: {field}: ")),
                    "{field}: {}",
                    errors[0]
                );
            }
            Err(Start::Trap(e)) => panic!("{field}: trap {e:#}"),
            Ok(_) => panic!("{field}: accepted {cfg}"),
        }
    }
}

#[test]
fn requests_are_judged_at_the_exact_second_whatever_the_tick_clock_lags() {
    // The filter reads the clock on ticks, not per request. Near a time boundary of the token
    // it reads the exact time instead of guessing, so a token issued this very second is not
    // judged "issued in the future" and an expired one never gets through, at any lag.
    let env = Env::at(NOW);
    let mut vm = start(
        &env,
        &config(json!({"providers": [{
            "issuer": ISS,
            "jwks": {"keys": jwks(&[key_a()])["keys"]},
            "client_ids": [CLIENT], "algorithms": ["RS256"], "leeway_s": 0
        }]})),
    );
    let fresh = key_a().sign(&claims("orders/read", json!({"iat": NOW, "jti": "fresh"})));
    let expiring = key_a().sign(&claims(
        "orders/read",
        json!({"exp": NOW, "jti": "expiring"}),
    ));
    // Last tick at NOW-1 + 950 ms; the request comes 100 ms later, in second NOW.
    env.set_time(NOW - 1);
    env.advance_ms(950);
    vm.tick().unwrap();
    env.advance_ms(100);
    let r = vm.request(Request::get("/orders").bearer(&fresh)).unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    let r = vm
        .request(Request::get("/orders").bearer(&expiring))
        .unwrap();
    assert_denied(&r, 401, "token_expired");
    // Still in second NOW-1 (no lag): the fresh token is from the future, the other is valid.
    env.set_time(NOW - 1);
    env.advance_ms(950);
    vm.tick().unwrap();
    env.advance_ms(40);
    let r = vm
        .request(Request::get("/orders").bearer(&key_a().sign(&claims(
            "orders/read",
            json!({"iat": NOW, "jti": "fresh-2"}),
        ))))
        .unwrap();
    assert_denied(&r, 401, "token_issued_in_future");
    let r = vm
        .request(Request::get("/orders").bearer(&expiring))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
}
