//! Properties that must hold for every input, not only the listed vectors.

use std::path::Path;

use proptest::prelude::*;
use tokengate::json::{self, Value};
use tokengate::{
    FetchReason, KeyCache, KeyCacheConfig, KeySet, KeySetLimits, Lookup, Policy, Provider, Request,
    Verifier,
};

struct Accepted {
    token: String,
    jwks: Value,
    policy: Value,
    now: u64,
    exp: u64,
}

/// The plain Cognito accept vector, with its exp read from the payload.
fn accepted() -> Accepted {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/accept.json");
    let doc = json::parse(&std::fs::read(path).unwrap()).unwrap();
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "cognito_rs256_access_token_is_accepted")
        .unwrap()
        .clone();
    let token = case["token"].as_str().unwrap().to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims = json::parse(&b64_decode(payload)).unwrap();
    Accepted {
        exp: claims["exp"].as_u64().unwrap(),
        now: case["now"].as_u64().unwrap(),
        jwks: case["jwks"].clone(),
        policy: case["policy"].clone(),
        token,
    }
}

fn verifier(a: &Accepted) -> Verifier {
    let policy = Policy::from_json(&a.policy).unwrap();
    let keys = KeySet::from_value(&a.jwks, KeySetLimits::default()).unwrap();
    // No token cache: every call must run the whole pipeline.
    Verifier::new(vec![Provider::with_fixed_keys(policy, keys)])
        .unwrap()
        .with_token_cache(0, 0)
}

fn b64_decode(s: &str) -> Vec<u8> {
    tokengate::token::decode_segment(s, "test").unwrap()
}

fn b64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn verify_never_panics_on_arbitrary_strings(token in any::<String>()) {
        let a = accepted();
        let mut v = verifier(&a);
        prop_assert!(v.verify(&token, &Request::at(a.now)).is_err());
    }

    #[test]
    fn verify_never_panics_on_jws_shaped_input(
        h in "[A-Za-z0-9_-]{0,80}", p in "[A-Za-z0-9_-]{0,80}", s in "[A-Za-z0-9_=.+/ -]{0,400}"
    ) {
        let a = accepted();
        let mut v = verifier(&a);
        let token = format!("{h}.{p}.{s}");
        prop_assert!(v.verify(&token, &Request::at(a.now)).is_err());
    }

    #[test]
    fn jwks_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = KeySet::from_json(&body, KeySetLimits::default());
    }

    #[test]
    fn jwks_with_hostile_members_never_panics(
        kty in "(RSA|EC|oct|)", n in "[A-Za-z0-9_-]{0,400}", e in "[A-Za-z0-9_-]{0,12}",
        x in "[A-Za-z0-9_-]{0,50}", y in "[A-Za-z0-9_-]{0,50}", alg in "(RS256|ES256|none|)"
    ) {
        let doc = serde_json::json!({"keys": [{"kid": "k", "kty": kty, "n": n, "e": e, "crv": "P-256", "x": x, "y": y, "alg": alg}]});
        let doc = json::parse(doc.to_string().as_bytes()).unwrap();
        if let Ok(set) = KeySet::from_value(&doc, KeySetLimits::default()) {
            let _ = set.select("k", tokengate::Algorithm::Rs256, 2048);
            let _ = set.select("k", tokengate::Algorithm::Es256, 2048);
        }
    }

    #[test]
    fn changing_any_character_of_a_valid_token_is_rejected(index in 0usize..4096, c in "[A-Za-z0-9_.=+/-]") {
        let a = accepted();
        let mut v = verifier(&a);
        let index = index % a.token.len();
        let mut bytes = a.token.clone().into_bytes();
        let c = c.as_bytes()[0];
        prop_assume!(bytes[index] != c);
        bytes[index] = c;
        let token = String::from_utf8(bytes).unwrap();
        prop_assert!(v.verify(&token, &Request::at(a.now)).is_err(), "{token}");
    }

    #[test]
    fn changing_any_decoded_byte_and_re_encoding_is_rejected(segment in 0usize..3, index in 0usize..512, delta in 1u8..=255) {
        let a = accepted();
        let mut v = verifier(&a);
        let mut parts: Vec<Vec<u8>> = a.token.split('.').map(b64_decode).collect();
        let part = &mut parts[segment];
        let index = index % part.len();
        part[index] = part[index].wrapping_add(delta);
        let token = parts.iter().map(|p| b64_encode(p)).collect::<Vec<_>>().join(".");
        prop_assert!(v.verify(&token, &Request::at(a.now)).is_err());
    }

    #[test]
    fn a_valid_token_passes_throughout_its_window_and_fails_from_exp(offset in 0u64..3600) {
        let a = accepted();
        let mut v = verifier(&a);
        let iat = a.exp - 3660;
        let now = iat + offset;
        prop_assume!(now < a.exp);
        prop_assert!(v.verify(&a.token, &Request::at(now)).is_ok());
        prop_assert!(v.verify(&a.token, &Request::at(a.exp + offset)).is_err());
    }

    #[test]
    fn the_key_cache_never_refetches_for_unknown_kids_inside_its_cooldown(
        events in proptest::collection::vec((0u64..20, 0u8..5), 1..200)
    ) {
        let body = br#"{"keys":[{"kid":"k1","kty":"EC","crv":"P-256","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY","y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}]}"#;
        let config = KeyCacheConfig::default();
        let mut cache = KeyCache::remote(config);
        let mut now = 0u64;
        let mut unknown_kid_fetches: Vec<u64> = Vec::new();
        let mut in_flight = false;
        for (step, action) in events {
            now += step;
            match action {
                0 => { let _ = cache.lookup("unknown", now); }
                1 => {
                    if let Some(req) = cache.poll(now) {
                        prop_assert!(!in_flight, "two fetches in flight");
                        in_flight = true;
                        if req.reason == FetchReason::UnknownKid {
                            unknown_kid_fetches.push(now);
                        }
                    }
                }
                2 if in_flight => { in_flight = false; let _ = cache.on_response(now, 200, None, body); }
                3 if in_flight => { in_flight = false; cache.on_failure(now); }
                _ => { if let Lookup::Found(_) = cache.lookup("k1", now) { prop_assert!(cache.keys(now).is_some()); } }
            }
            if !cache.fetch_in_flight() { in_flight = false; }
        }
        for pair in unknown_kid_fetches.windows(2) {
            prop_assert!(pair[1] - pair[0] >= config.unknown_kid_cooldown_s, "{:?}", unknown_kid_fetches);
        }
    }
}
