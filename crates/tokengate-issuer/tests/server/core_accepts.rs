//! The outside check in the other direction: tokens from this issuer, fetched over HTTP, pass
//! tokengate's own verifier (the core every host embeds) with a Cognito-style policy, and the
//! issuer's JWKS answer drives the core's key cache, through a key rotation.

use tokengate::{ErrorCode, KeyCache, KeyCacheConfig, Policy, Provider, Request, Scopes, Verifier};
use tokengate_issuer::Rotation;

use crate::support::{request, sample_config, start, NOW, POOL};

async fn fetch_jwks(server: &crate::support::TestServer) -> (u16, Option<String>, Vec<u8>) {
    let r = request(
        "GET",
        &server.url(&format!("/{POOL}/.well-known/jwks.json")),
        &[],
        b"",
    )
    .await;
    let cache_control = r.header("cache-control").map(str::to_owned);
    (r.status, cache_control, r.text().into_bytes())
}

#[tokio::test]
async fn issued_tokens_pass_the_core_verifier_across_a_rotation() {
    let server = start(sample_config()).await;
    let issuer = server.issuer.issuer_url(POOL).expect("issuer url");
    let policy = Policy::builder(issuer)
        .client_ids(["orders-reader", "orders-writer"])
        .require_scopes(Scopes::all(["orders/read"]))
        .build()
        .expect("policy");
    let mut verifier = Verifier::new(vec![Provider::new(
        policy,
        KeyCache::remote(KeyCacheConfig::default()),
    )])
    .expect("verifier");

    // The verifier has no keys yet: it fails closed and asks for a fetch.
    let first = server.writer_token().await;
    let err = verifier.verify(&first, &Request::at(NOW)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::JwksUnavailable);
    assert!(err.fetch_pending());
    let (index, _) = verifier.poll(NOW).expect("a fetch is due");
    let (status, cache_control, body) = fetch_jwks(&server).await;
    verifier
        .on_jwks_response(index, NOW, status, cache_control.as_deref(), &body)
        .expect("the issuer's JWKS is a usable key set");

    let ok = verifier
        .verify(&first, &Request::at(NOW))
        .expect("issued token verifies");
    assert_eq!(ok.claims.client_id(), Some("orders-writer"));
    assert_eq!(ok.claims.token_use(), Some("access"));

    // Rotate: the new key signs at once. Its kid is unknown to the verifier until it refetches.
    server
        .issuer
        .rotate(POOL, Rotation::Immediate)
        .expect("rotation");
    let second = server.writer_token().await;
    let err = verifier.verify(&second, &Request::at(NOW + 1)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::KidUnknown);
    assert!(err.fetch_pending(), "an unknown kid schedules a refetch");
    let (index, _) = verifier.poll(NOW + 1).expect("refetch for the unknown kid");
    let (status, cache_control, body) = fetch_jwks(&server).await;
    verifier
        .on_jwks_response(index, NOW + 1, status, cache_control.as_deref(), &body)
        .expect("rotated JWKS");
    assert!(verifier.verify(&second, &Request::at(NOW + 1)).is_ok());
    // The old key stays published until its tokens expire, so the first token still passes.
    assert!(verifier.verify(&first, &Request::at(NOW + 1)).is_ok());
}
