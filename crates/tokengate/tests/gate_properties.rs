//! Properties of the request gate for every input: it never panics, a path it lets through is in
//! normal form whatever its spelling, and no spelling of a path reaches a more lenient rule than
//! its plain form.

mod common;

use proptest::prelude::*;
use tokengate::{target, Clock, Gate, Outcome, RequestFacts};

/// The catch-all configuration of the HTTP vectors and a token that has `orders/read` and
/// `orders/write` but not `admin`.
fn fixture() -> (String, String, u64) {
    let (config, authorization, now) = common::catchall();
    (config.to_string(), authorization, now)
}

/// Pieces attackers build paths from.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/", "//", ".", "..", ";", ";x=1", "%2e", "%2E", "%2f", "%5c", "\\", "%25", "%3b", "%00",
        "%61", "a", "admin", "ADMIN", "health", "orders", "%", "%4", "?", "#", " ", "\u{0}", "é",
        "%c3%a9", "*", "~", "%7e", "=", "@", ":", "+", "-", "_",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_gate_is_total_and_lets_through_only_normal_paths(
        parts in prop::collection::vec(piece(), 0..8),
        method in prop::sample::select(vec!["GET", "get", "HEAD", "POST", "OPTIONS", "G T", ""]),
        with_token in any::<bool>(),
    ) {
        let (config, auth, now) = fixture();
        let mut gate = Gate::from_json(config.as_bytes(), now, 1).unwrap();
        let target: String = parts.concat();
        let values = [auth.as_bytes()];
        let facts = RequestFacts {
            method,
            target: &target,
            authorization: if with_token { &values } else { &[] },
            peer: None,
        client_cert: &[],
            scopes: None,
            clock: Clock::At(now),
            audit: true,
        };
        let outcome = gate.decide(&facts);
        let normal = target::normal_path(method, &target);
        match outcome {
            Outcome::Allow(_) => {
                let normal = normal.expect("an allowed request has a normal path");
                prop_assert!(normal.split('/').all(|s| s != ".." && s != "."));
                prop_assert!(!normal.contains(';') && !normal.contains('\\') && !normal.contains("//"));
                prop_assert!(!normal.to_ascii_lowercase().contains("%2e"));
                // The token lacks `admin`: nothing under /admin may pass, however it was spelled.
                prop_assert!(!(normal == "/admin" || normal.starts_with("/admin/")), "{target:?} reached /admin");
            }
            Outcome::Deny(d) => {
                if normal.is_err() || target::check_method(method).is_err() {
                    prop_assert_eq!(d.response.status, 400);
                }
            }
            Outcome::Wait(_) | Outcome::ReadClock => prop_assert!(false, "inline keys, exact clock"),
        }
    }

    #[test]
    fn arbitrary_bytes_anywhere_end_in_an_answer(
        method in "\\PC{0,12}",
        target in "\\PC{0,64}",
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..3),
    ) {
        let (config, _, now) = fixture();
        let mut gate = Gate::from_json(config.as_bytes(), now, 1).unwrap();
        let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let facts = RequestFacts {
            method: &method,
            target: &target,
            authorization: &values,
            peer: None,
        client_cert: &[],
            scopes: None,
            clock: Clock::Within { earliest: now, latest: now + 100 },
            audit: true,
        };
        match gate.decide(&facts) {
            Outcome::Allow(a) => prop_assert!(a.claims.is_none(), "only anonymous routes pass without a valid token"),
            Outcome::Deny(d) | Outcome::Wait(d) => prop_assert!(d.response.status >= 400),
            Outcome::ReadClock => {}
        }
    }
}
