//! The policy feed through the gate: the first load is waited for, a revocation or an
//! allow-list change applies at once (cached verified tokens included), entries expire at
//! `until`, and a stale feed keeps serving or fails closed as configured.

mod common;

use serde_json::{json, Value};
use tokengate::feed::{FeedStatus, FeedUpdate};
use tokengate::{Clock, Gate, Outcome, RequestFacts};

const CLIENT: &str = "3q9f1k7c2m8v4n6b0x5z1l2h7d";
const ISS: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST0pool";

struct Fixture {
    config: Value,
    authorization: String,
    now: u64,
}

fn fixture(feed: Value) -> Fixture {
    let (mut config, authorization, now) = common::catchall();
    config["feed"] = feed;
    Fixture {
        config,
        authorization,
        now,
    }
}

fn unsigned() -> Value {
    json!({"uri": "https://feed.example/edge-policy.json", "unsigned": true, "poll_s": 5,
           "max_stale_s": 60})
}

fn status(gate: &mut Gate, f: &Fixture, now: u64) -> (u16, Option<String>) {
    let values = [f.authorization.as_bytes()];
    let facts = RequestFacts {
        method: "GET",
        target: "/orders",
        authorization: &values,
        peer: None,
        client_cert: &[],
        scopes: None,
        clock: Clock::At(now),
        audit: false,
    };
    match gate.decide(&facts) {
        Outcome::Allow(_) => (200, None),
        Outcome::Deny(d) => (d.response.status, Some(d.response.code.as_str().to_owned())),
        Outcome::Wait(d) => (0, Some(d.response.code.as_str().to_owned())),
        Outcome::ReadClock => (1, None),
    }
}

fn document(version: u64, provider: Value) -> Vec<u8> {
    json!({"format": 1, "version": version, "issued_at": 0, "providers": {ISS: provider}})
        .to_string()
        .into_bytes()
}

#[test]
fn the_first_load_is_waited_for_then_revocations_apply_to_cached_tokens_at_once() {
    let f = fixture(unsigned());
    let mut gate = Gate::from_json(f.config.to_string().as_bytes(), f.now, 1).unwrap();
    let now = f.now;
    assert_eq!(
        status(&mut gate, &f, now),
        (0, Some("policy_unavailable".into()))
    );
    assert!(gate.poll_feed(now).is_some());
    assert_eq!(
        gate.on_feed_response(now, 200, Some("\"1\""), None, &document(1, json!({}))),
        Ok(FeedUpdate::Applied { version: 1 })
    );
    assert_eq!(status(&mut gate, &f, now), (200, None));
    assert_eq!(
        status(&mut gate, &f, now),
        (200, None),
        "now from the token cache"
    );
    // Breach: the client is revoked for half an hour (its tokens live an hour at most).
    assert!(gate.poll_feed(now + 5).is_some());
    let revoked = json!({"revoke": {"client_ids": [{"id": CLIENT, "until": now + 1800}]}});
    gate.on_feed_response(now + 5, 200, Some("\"2\""), None, &document(2, revoked))
        .unwrap();
    assert_eq!(
        status(&mut gate, &f, now + 5),
        (401, Some("token_revoked".into()))
    );
    assert_eq!(
        status(&mut gate, &f, now + 1799),
        (401, Some("token_revoked".into()))
    );
    // Past `until` the entry drops out (the token itself is still valid then).
    assert_eq!(status(&mut gate, &f, now + 1800), (200, None));
}

#[test]
fn the_feeds_allow_list_replaces_the_configured_one_for_a_rotation() {
    let f = fixture(unsigned());
    let mut gate = Gate::from_json(f.config.to_string().as_bytes(), f.now, 1).unwrap();
    let now = f.now;
    gate.poll_feed(now);
    let only_new = json!({"client_ids": ["new-client"]});
    gate.on_feed_response(now, 200, None, None, &document(1, only_new))
        .unwrap();
    assert_eq!(
        status(&mut gate, &f, now),
        (401, Some("client_not_allowed".into()))
    );
    gate.poll_feed(now + 5);
    let both = json!({"client_ids": ["new-client", {"id": CLIENT, "until": now + 60}]});
    gate.on_feed_response(now + 5, 200, None, None, &document(2, both))
        .unwrap();
    assert_eq!(status(&mut gate, &f, now + 5), (200, None));
    assert_eq!(
        status(&mut gate, &f, now + 60),
        (401, Some("client_not_allowed".into()))
    );
    // An older document from a lagging cache changes nothing.
    gate.poll_feed(now + 10);
    assert!(gate
        .on_feed_response(now + 10, 200, None, None, &document(1, json!({})))
        .is_err());
    assert_eq!(status(&mut gate, &f, now + 10), (200, None));
}

#[test]
fn an_entry_ending_inside_a_clock_window_makes_the_host_read_the_clock() {
    let f = fixture(unsigned());
    let mut gate = Gate::from_json(f.config.to_string().as_bytes(), f.now, 1).unwrap();
    let now = f.now;
    gate.poll_feed(now);
    let revoked = json!({"revoke": {"client_ids": [{"id": CLIENT, "until": now + 30}]}});
    gate.on_feed_response(now, 200, None, None, &document(1, revoked))
        .unwrap();
    let values = [f.authorization.as_bytes()];
    let facts = RequestFacts {
        method: "GET",
        target: "/orders",
        authorization: &values,
        peer: None,
        client_cert: &[],
        scopes: None,
        clock: Clock::Within {
            earliest: now,
            latest: now + 60,
        },
        audit: false,
    };
    assert!(matches!(gate.decide(&facts), Outcome::ReadClock));
}

#[test]
fn a_stale_feed_keeps_serving_or_fails_closed_as_configured() {
    for (stale, want) in [("keep", 200), ("fail_closed", 503)] {
        let mut feed = unsigned();
        feed["stale"] = json!(stale);
        let f = fixture(feed);
        let mut gate = Gate::from_json(f.config.to_string().as_bytes(), f.now, 1).unwrap();
        let now = f.now;
        gate.poll_feed(now);
        gate.on_feed_response(now, 200, None, None, &document(1, json!({})))
            .unwrap();
        // The feed server goes away.
        let mut t = now;
        while t < now + 61 {
            t += 1;
            if gate.poll_feed(t).is_some() {
                gate.on_feed_failure(t);
            }
        }
        assert_eq!(gate.feed_status(t), Some(FeedStatus::Stale));
        let got = status(&mut gate, &f, t);
        assert_eq!(got.0, want, "{stale}: {got:?}");
        if want == 503 {
            assert_eq!(got.1.as_deref(), Some("policy_unavailable"));
        }
    }
}

#[test]
fn feed_configuration_mistakes_name_the_field() {
    let f = fixture(json!({"uri": "https://feed.example/p.json"}));
    let e = Gate::from_json(f.config.to_string().as_bytes(), f.now, 1).unwrap_err();
    assert_eq!(e.field, "feed.keys");
    let f = fixture(json!({"uri": "http://feed.example/p.json", "unsigned": true}));
    let e = Gate::from_json(f.config.to_string().as_bytes(), f.now, 1).unwrap_err();
    assert_eq!(e.field, "feed.uri");
    let f = fixture(json!({"uri": "https://x/p", "unsigned": true, "poll_s": 0}));
    let e = Gate::from_json(f.config.to_string().as_bytes(), f.now, 1).unwrap_err();
    assert_eq!(e.field, "feed.poll_s");
    let f = fixture(json!({"uri": "https://x/p", "unsigned": true, "stale": "open"}));
    let e = Gate::from_json(f.config.to_string().as_bytes(), f.now, 1).unwrap_err();
    assert_eq!(e.field, "feed.stale");
}
