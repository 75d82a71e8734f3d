//! `Allowed::repeatable`: what a host may give again without asking the gate (the Envoy
//! filter's replay of identical requests within one tick). An allow marked repeatable must be
//! the gate's answer to the same request at every second of the clock interval it was judged
//! on; answers at an exact second, in report mode, with per-call scopes, under a rate limit or
//! without a verified-token cache are never marked.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{json, Value};
use tokengate::policy::Scopes;
use tokengate::{json as tjson, Allowed, Clock, Gate, Outcome, RequestFacts};

/// The catch-all configuration of the HTTP vectors (with `extra` members), its token, and the
/// token's `iat` and `exp`.
fn fixture(extra: Value) -> (String, String, u64, u64) {
    let (mut config, authorization, _) = common::catchall();
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let token = authorization.strip_prefix("Bearer ").unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (
        config.to_string(),
        authorization,
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    )
}

fn decide(
    gate: &mut Gate,
    method: &str,
    target: &str,
    authorization: &str,
    clock: Clock,
    scopes: Option<&Scopes>,
) -> Outcome {
    let values = [authorization.as_bytes()];
    gate.decide(&RequestFacts {
        method,
        target,
        authorization: if authorization.is_empty() {
            &[]
        } else {
            &values
        },
        peer: None,
        client_cert: &[],
        scopes,
        clock,
        audit: true,
    })
}

/// What a replay hands out: the headers, the `Authorization` removal and the record (whose
/// `cached` a replay sets).
fn answer(a: &Allowed) -> (Vec<(String, String)>, bool, String) {
    let mut record = a.record.clone();
    record.cached = true;
    (a.forward.clone(), a.strip_authorization, record.to_json())
}

fn allowed(outcome: Outcome) -> Allowed {
    match outcome {
        Outcome::Allow(a) => a,
        other => panic!("expected an allow, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn a_repeatable_allow_is_the_answer_at_every_second_of_its_interval(
        path in prop::sample::select(vec!["/", "/orders", "/orders/7", "/health", "/admin", "/x/../orders", "/orders;x"]),
        method in prop::sample::select(vec!["GET", "POST", "HEAD", "DELETE"]),
        with_token in any::<bool>(),
        near_exp in any::<bool>(),
        from in 0u64..200,
        width in 0u64..4,
    ) {
        let (config, auth, iat, exp) = fixture(json!({}));
        let auth = if with_token { auth } else { String::new() };
        // Intervals around `iat` and around `exp`, so some straddle a time boundary.
        let earliest = if near_exp { exp } else { iat } + from - 100;
        let clock = Clock::Within { earliest, latest: earliest + width };
        let mut gate = Gate::from_json(config.as_bytes(), earliest, 1).unwrap();
        if let Outcome::Allow(a) = decide(&mut gate, method, path, &auth, clock, None) {
            prop_assert!(a.repeatable, "an enforced allow on an interval, default configuration");
            for t in earliest..=earliest + width {
                let mut fresh = Gate::from_json(config.as_bytes(), t, 1).unwrap();
                match decide(&mut fresh, method, path, &auth, Clock::At(t), None) {
                    Outcome::Allow(b) => {
                        prop_assert!(!b.repeatable, "an exact second is never repeatable");
                        prop_assert_eq!(answer(&a), answer(&b), "at {}", t);
                    }
                    other => prop_assert!(false, "allowed on [{earliest}, {}] but at {t}: {other:?}", earliest + width),
                }
                // And again on the same gate (a verified-token cache hit).
                let again = allowed(decide(&mut gate, method, path, &auth, clock, None));
                prop_assert_eq!(answer(&a), answer(&again));
            }
        }
    }
}

/// Whether the gate marks its allow of `GET /orders` repeatable.
fn marked(gate: &mut Gate, auth: &str, clock: Clock, scopes: Option<&Scopes>) -> bool {
    allowed(decide(gate, "GET", "/orders", auth, clock, scopes)).repeatable
}

#[test]
fn only_enforced_allows_on_a_clock_interval_under_a_qualifying_configuration_are_marked() {
    let (config, auth, iat, _) = fixture(json!({}));
    let now = iat + 10;
    let within = Clock::Within {
        earliest: now,
        latest: now + 1,
    };
    let mut gate = Gate::from_json(config.as_bytes(), now, 1).unwrap();
    assert!(gate.allows_repeat_for_identical_requests());
    assert!(marked(&mut gate, &auth, within, None));
    assert!(!marked(&mut gate, &auth, Clock::At(now), None));
    // Per-call scopes are an input the request's bytes do not carry.
    let scope = tjson::parse(br#"{"all":["orders/read"]}"#).unwrap();
    let extra = Scopes::from_json("scope", &scope).unwrap();
    assert!(!marked(&mut gate, &auth, within, Some(&extra)));
    // Report mode: even a plain allow is not repeated (the filter records every decision).
    let (report, ..) = fixture(json!({"mode": "report"}));
    let mut gate = Gate::from_json(report.as_bytes(), now, 1).unwrap();
    assert!(!marked(&mut gate, &auth, within, None));
    assert!(!marked(&mut gate, "Bearer x", within, None));
    // A rate limit's buckets and a disabled cache's signature budget move with every request.
    for extra in [
        json!({"rate_limit": {"per_client_per_s": 100}}),
        json!({"token_cache": {"capacity": 0}}),
    ] {
        let (config, ..) = fixture(extra.clone());
        let mut gate = Gate::from_json(config.as_bytes(), now, 1).unwrap();
        assert!(!gate.allows_repeat_for_identical_requests(), "{extra}");
        assert!(!marked(&mut gate, &auth, within, None), "{extra}");
    }
}
