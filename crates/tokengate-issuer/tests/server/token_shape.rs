//! Access tokens look like Cognito's M2M access tokens, and verify against the JWKS.

use serde_json::Value;
use tokengate_issuer::{AccessTokenClaims, Issuer};

use crate::support::{decode, sample_config, start, verify_rs256, DecodedToken, NOW, POOL};

const CLAIMS: [&str; 10] = [
    "sub",
    "token_use",
    "scope",
    "auth_time",
    "iss",
    "exp",
    "iat",
    "version",
    "jti",
    "client_id",
];

/// Exactly Cognito's claim names, in Cognito's order in the payload text.
fn assert_claim_names(decoded: &DecodedToken) {
    let mut names: Vec<&str> = decoded
        .claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = CLAIMS.to_vec();
    names.sort_unstable();
    expected.sort_unstable();
    assert_eq!(names, expected);
    let positions: Vec<usize> = CLAIMS
        .iter()
        .map(|name| decoded.payload_json.find(&format!("\"{name}\":")).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "{}",
        decoded.payload_json
    );
}

fn assert_uuid_v4(jti: &str) {
    let bytes = jti.as_bytes();
    assert_eq!(jti.len(), 36, "{jti}");
    for (index, byte) in bytes.iter().enumerate() {
        if [8, 13, 18, 23].contains(&index) {
            assert_eq!(*byte, b'-', "{jti}");
        } else {
            assert!(
                byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase(),
                "{jti}"
            );
        }
    }
    assert_eq!(bytes[14], b'4', "version nibble: {jti}");
    assert!(b"89ab".contains(&bytes[19]), "variant: {jti}");
}

#[tokio::test]
async fn header_is_exactly_kid_then_alg() {
    let server = start(sample_config()).await;
    let token = server.writer_token().await;
    let decoded = decode(&token);
    let kid = server.issuer.signing_kid(POOL).unwrap();
    assert_eq!(
        decoded.header_json,
        format!(r#"{{"kid":"{kid}","alg":"RS256"}}"#)
    );
}

#[tokio::test]
async fn claims_are_exactly_cognitos_m2m_set() {
    let server = start(sample_config()).await;
    let token = server.writer_token().await;
    let decoded = verify_rs256(&token, &server.jwks().await).unwrap();
    assert_claim_names(&decoded);
    let claims = decoded.claims.as_object().unwrap();
    assert_eq!(claims["sub"], "orders-writer");
    assert_eq!(claims["client_id"], "orders-writer");
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["scope"], "orders/read orders/write");
    assert_eq!(claims["version"], 2);
    assert_eq!(claims["iss"], format!("{}/{POOL}", server.handle.url()));
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["auth_time"], NOW);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );
    assert_uuid_v4(claims["jti"].as_str().unwrap());
    let typed: AccessTokenClaims = serde_json::from_value(Value::Object(claims.clone())).unwrap();
    assert_eq!(typed.client_id, "orders-writer");
}

#[tokio::test]
async fn every_token_has_a_fresh_jti() {
    let server = start(sample_config()).await;
    let first = decode(&server.writer_token().await).claims["jti"].clone();
    let second = decode(&server.writer_token().await).claims["jti"].clone();
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_changed_byte_breaks_the_signature() {
    let server = start(sample_config()).await;
    let token = server.writer_token().await;
    let jwks = server.jwks().await;
    let (head, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}.{flipped}{}", &signature[1..]);
    assert!(verify_rs256(&tampered, &jwks).is_err());
}

#[test]
fn issue_token_mints_the_same_shape_with_the_given_time_and_lifetime() {
    let issuer = Issuer::from_config(sample_config()).unwrap();
    let token = issuer
        .issue_token(POOL, "some-client", &["orders/read", "x/y"], 60, 1_000)
        .unwrap();
    let decoded = verify_rs256(&token, &issuer.jwks(POOL).unwrap()).unwrap();
    assert_claim_names(&decoded);
    let claims = decoded.claims.as_object().unwrap();
    assert_eq!(claims["iat"], 1_000);
    assert_eq!(claims["exp"], 1_060);
    assert_eq!(claims["scope"], "orders/read x/y");
    assert_eq!(claims["iss"], format!("http://127.0.0.1:9000/{POOL}"));
}

#[test]
fn sign_claims_signs_arbitrary_claim_sets() {
    let issuer = Issuer::from_config(sample_config()).unwrap();
    let claims = serde_json::json!({ "aud": "x", "token_use": "id" });
    let token = issuer.sign_claims(POOL, &claims).unwrap();
    let decoded = verify_rs256(&token, &issuer.jwks(POOL).unwrap()).unwrap();
    assert_eq!(decoded.claims, claims);
}

#[test]
fn unknown_pool_is_an_error() {
    let issuer = Issuer::from_config(sample_config()).unwrap();
    let error = issuer
        .issue_token("eu-west-1_NotAPool1", "c", &[], 300, 0)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "no user pool with id \"eu-west-1_NotAPool1\""
    );
}
