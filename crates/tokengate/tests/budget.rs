//! The signature budget with its default: a flood of forged tokens that carry a published `kid`
//! costs at most `DEFAULT_SIGNATURE_CHECKS_PER_S` signature checks per second, tokens already
//! verified keep passing, and the next second starts again.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use tokengate::config::DEFAULT_SIGNATURE_CHECKS_PER_S;
use tokengate::{Clock, ErrorCode, Gate, Outcome, RequestFacts};

/// The catch-all configuration of the HTTP vectors (inline TEST keys, no budget set), a valid
/// token and the time it is valid at.
fn fixture() -> (Value, String, u64) {
    let (config, authorization, now) = common::catchall();
    assert!(config.get("signature_checks_per_s").is_none());
    (config, authorization, now)
}

/// The valid token with its payload changed (so a new cache key) and its signature kept: a
/// forgery with a published kid, which only a signature check can refuse.
fn forged(valid: &str, i: usize) -> String {
    let token = valid.strip_prefix("Bearer ").unwrap();
    let mut parts = token.split('.');
    let (header, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"] = Value::String(format!("forged-{i}"));
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("Bearer {header}.{payload}.{signature}")
}

fn code(gate: &mut Gate, authorization: &str, now: u64) -> Option<ErrorCode> {
    let values = [authorization.as_bytes()];
    let facts = RequestFacts {
        method: "GET",
        target: "/orders/7",
        authorization: &values,
        peer: None,
        client_cert: &[],
        scopes: None,
        clock: Clock::At(now),
        audit: false,
    };
    match gate.decide(&facts) {
        Outcome::Allow(_) => None,
        Outcome::Deny(d) => {
            if d.response.code == ErrorCode::SignatureBudgetExhausted {
                assert_eq!(d.response.status, 503);
                assert_eq!(d.response.header("retry-after"), Some("1"));
                assert_eq!(d.response.header("www-authenticate"), None);
            }
            Some(d.response.code)
        }
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[test]
fn the_default_budget_stops_a_forged_token_flood_and_spares_verified_tokens() {
    let (config, valid, now) = fixture();
    let mut gate = Gate::from_json(config.to_string().as_bytes(), now, 1).unwrap();
    // A verified token first: it is in the cache from now on.
    assert_eq!(code(&mut gate, &valid, now), None);
    let per_s = DEFAULT_SIGNATURE_CHECKS_PER_S as usize;
    for i in 0..per_s - 1 {
        assert_eq!(
            code(&mut gate, &forged(&valid, i), now),
            Some(ErrorCode::SignatureInvalid),
            "forgery {i} within the budget is checked and refused"
        );
    }
    for i in per_s..per_s + 50 {
        assert_eq!(
            code(&mut gate, &forged(&valid, i), now),
            Some(ErrorCode::SignatureBudgetExhausted),
            "forgery {i} past the budget is refused without a check"
        );
    }
    assert_eq!(
        code(&mut gate, &valid, now),
        None,
        "a verified token still passes"
    );
    assert_eq!(
        code(&mut gate, &forged(&valid, 0), now + 1),
        Some(ErrorCode::SignatureInvalid),
        "the next second has checks again"
    );
}

#[test]
fn unlimited_means_no_budget() {
    let (mut config, valid, now) = fixture();
    config["signature_checks_per_s"] = Value::String("unlimited".into());
    let mut gate = Gate::from_json(config.to_string().as_bytes(), now, 1).unwrap();
    for i in 0..DEFAULT_SIGNATURE_CHECKS_PER_S as usize + 10 {
        assert_eq!(
            code(&mut gate, &forged(&valid, i), now),
            Some(ErrorCode::SignatureInvalid)
        );
    }
}
