//! RFC 7009 `POST /oauth2/revoke`: a client revokes its own access token, which then appears in
//! the edge policy feed until its `exp`, and the core verifier given that feed refuses it with
//! `token_revoked`.

use serde_json::{json, Value};
use tokengate::feed::{FeedDocument, FeedTrust};
use tokengate::{ErrorCode, KeyCache, KeySet, KeySetLimits, Policy, Provider, Request, Verifier};
use tokengate_issuer::Rotation;

use crate::support::{admin_config, decode, request, sample_config, start, TestServer, NOW, POOL};

fn form_for(token: &str) -> String {
    format!("token={token}")
}

async fn feed(server: &TestServer) -> FeedDocument {
    let response = server.edge_policy(None).await;
    FeedDocument::from_body(&response.body, &FeedTrust::Unsigned, 1 << 20, 100_000)
        .expect("the core reads the feed")
}

fn revoked_jtis(server: &TestServer, document: &FeedDocument) -> Vec<(String, Option<f64>)> {
    let issuer = server.issuer.issuer_url(POOL).unwrap();
    document
        .providers
        .get(&issuer)
        .unwrap()
        .jti
        .iter()
        .map(|(jti, until)| (jti.clone(), *until))
        .collect()
}

fn assert_error(response: &crate::support::HttpResponse, status: u16, error: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.json(), json!({ "error": error }));
}

/// The core verifier every edge embeds, with the issuer's keys and the given feed document.
fn edge_verifier(server: &TestServer, document: &FeedDocument) -> Verifier {
    let issuer = server.issuer.issuer_url(POOL).unwrap();
    let policy = Policy::builder(issuer.clone())
        .client_ids(["orders-reader", "orders-writer"])
        .build()
        .unwrap();
    let jwks = server.issuer.jwks(POOL).unwrap().to_string();
    let keys = KeySet::from_json(jwks.as_bytes(), KeySetLimits::default()).unwrap();
    let mut verifier = Verifier::new(vec![Provider::new(policy, KeyCache::fixed(keys))]).unwrap();
    verifier.set_overlay(0, document.providers.get(&issuer).cloned());
    verifier
}

#[tokio::test]
async fn a_client_revokes_its_own_token_and_the_core_then_refuses_it() {
    let server = start(sample_config()).await;
    let token = server.writer_token().await;
    let other = server.writer_token().await;
    let claims = decode(&token).claims;
    let (jti, exp) = (
        claims["jti"].as_str().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!(edge_verifier(&server, &feed(&server).await)
        .verify(&token, &Request::at(NOW))
        .is_ok());

    let before = feed(&server).await.version;
    let response = server
        .revoke(
            &form_for(&token),
            Some(("orders-writer", "orders-writer-secret")),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.body.is_empty());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));

    let document = feed(&server).await;
    assert!(document.version > before);
    assert_eq!(
        revoked_jtis(&server, &document),
        [(jti.to_owned(), Some(exp as f64))]
    );
    let mut verifier = edge_verifier(&server, &document);
    let refused = verifier.verify(&token, &Request::at(NOW)).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::TokenRevoked);
    // Only that token: the client's other token still passes.
    assert!(verifier.verify(&other, &Request::at(NOW)).is_ok());

    // Revoking it again changes nothing.
    let again = server
        .revoke(
            &form_for(&token),
            Some(("orders-writer", "orders-writer-secret")),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(feed(&server).await.version, document.version);

    // One audit line per revocation: the jti, never the token or the secret.
    let lines: Vec<Value> = server
        .audit
        .lines()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|line: &Value| line["event"] == "revoke")
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["result"], "revoked");
    assert_eq!(lines[0]["client_id"], "orders-writer");
    assert_eq!(lines[0]["jti"], jti);
    assert_eq!(lines[0]["until"], exp);
    assert_eq!(lines[0]["version"], document.version);
    assert_eq!(lines[1]["detail"], "already revoked");
    for line in server.audit.lines() {
        assert!(!line.contains(&token) && !line.contains("orders-writer-secret"));
    }
}

#[tokio::test]
async fn form_credentials_the_pool_path_and_a_refresh_token_hint_work_too() {
    let server = start(sample_config()).await;
    let token = server.writer_token().await;
    let response = request(
        "POST",
        &server.url(&format!("/{POOL}/oauth2/revoke")),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!(
            "token={token}&token_type_hint=refresh_token&client_id=orders-writer&client_secret=orders-writer-secret"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(revoked_jtis(&server, &feed(&server).await).len(), 1);
}

#[tokio::test]
async fn a_token_of_another_client_is_refused_and_not_revoked() {
    let server = start(sample_config()).await;
    let writer_token = server.writer_token().await;
    let before = feed(&server).await.version;
    let response = server
        .revoke(
            &form_for(&writer_token),
            Some(("orders-reader", "orders-reader-secret")),
        )
        .await;
    assert_error(&response, 400, "unauthorized_client");
    let document = feed(&server).await;
    assert_eq!(document.version, before);
    assert!(revoked_jtis(&server, &document).is_empty());
    assert!(edge_verifier(&server, &document)
        .verify(&writer_token, &Request::at(NOW))
        .is_ok());
}

#[tokio::test]
async fn invalid_unknown_and_expired_tokens_get_200_and_change_nothing() {
    let server = start(sample_config()).await;
    let before = feed(&server).await.version;
    let expired = server
        .issuer
        .issue_token(POOL, "orders-writer", &["orders/read"], 600, NOW - 700)
        .unwrap();
    let valid = server.writer_token().await;
    let (head, signature) = valid.rsplit_once('.').unwrap();
    let flipped = format!(
        "{head}.{}{}",
        if signature.starts_with('A') { 'B' } else { 'A' },
        &signature[1..]
    );
    let other_issuer = {
        let mut claims = decode(&valid).claims;
        claims["iss"] = json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Elsewhere1");
        server.issuer.sign_claims(POOL, &claims).unwrap()
    };
    for token in [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        expired,
        flipped,
        other_issuer,
    ] {
        let response = server
            .revoke(
                &form_for(&token),
                Some(("orders-writer", "orders-writer-secret")),
            )
            .await;
        assert_eq!(response.status, 200, "{token}: {}", response.text());
    }
    let document = feed(&server).await;
    assert_eq!(document.version, before);
    assert!(revoked_jtis(&server, &document).is_empty());
    let not_revoked = server
        .audit
        .lines()
        .iter()
        .filter(|line| line.contains("\"result\":\"not_revoked\""))
        .count();
    assert_eq!(not_revoked, 5);
}

#[tokio::test]
async fn bad_client_authentication_is_401_invalid_client_like_the_token_endpoint() {
    let server = start(sample_config()).await;
    let token = server.writer_token().await;
    let wrong = server
        .revoke(&form_for(&token), Some(("orders-writer", "wrong")))
        .await;
    assert_error(&wrong, 401, "invalid_client");
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Basic realm=\"tokengate-issuer\"")
    );
    let unknown = server
        .revoke(&form_for(&token), Some(("nobody", "x")))
        .await;
    assert_error(&unknown, 401, "invalid_client");
    let disabled = server
        .revoke(
            &form_for(&token),
            Some(("disabled-client", "disabled-secret")),
        )
        .await;
    assert_error(&disabled, 401, "invalid_client");
    let none = server.revoke(&form_for(&token), None).await;
    assert_error(&none, 401, "invalid_client");
    assert_eq!(none.header("www-authenticate"), None);
    let no_token = server
        .revoke("", Some(("orders-writer", "orders-writer-secret")))
        .await;
    assert_error(&no_token, 400, "invalid_request");
    let json_body = request(
        "POST",
        &server.url("/oauth2/revoke"),
        &[("content-type", "application/json")],
        b"{}",
    )
    .await;
    assert_error(&json_body, 400, "invalid_request");
    assert!(revoked_jtis(&server, &feed(&server).await).is_empty());
}

#[tokio::test]
async fn failed_revocations_count_toward_the_source_ip_limit_of_the_token_endpoint() {
    let mut config = sample_config();
    config.server.rate_limit.ip_failures_burst = 2;
    config.server.rate_limit.ip_failures_per_s = 0.001;
    let server = start(config).await;
    for _ in 0..2 {
        let response = server
            .revoke("token=x", Some(("orders-writer", "guess")))
            .await;
        assert_error(&response, 401, "invalid_client");
    }
    let limited = server
        .revoke("token=x", Some(("orders-writer", "orders-writer-secret")))
        .await;
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    let token_request = server
        .token(
            "grant_type=client_credentials",
            Some(("orders-writer", "orders-writer-secret")),
        )
        .await;
    assert_eq!(token_request.status, 429);
}

#[tokio::test]
async fn a_long_lived_token_of_a_key_that_left_the_jwks_is_still_revocable() {
    let server = start(admin_config()).await;
    // Minted for a day; the key rotates out of the JWKS after the pool's longest lifetime.
    let token = server
        .issuer
        .issue_token(POOL, "orders-writer", &["orders/read"], 86_400, NOW)
        .unwrap();
    server.issuer.rotate(POOL, Rotation::Immediate).unwrap();
    server.clock.advance(3600);
    let kid = decode(&token).header["kid"].as_str().unwrap().to_owned();
    let jwks = server.jwks().await;
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|jwk| jwk["kid"] != kid.as_str()));
    let response = server
        .revoke(
            &form_for(&token),
            Some(("orders-writer", "orders-writer-secret")),
        )
        .await;
    assert_eq!(response.status, 200);
    let jti = decode(&token).claims["jti"].as_str().unwrap().to_owned();
    assert_eq!(
        revoked_jtis(&server, &feed(&server).await),
        [(jti, Some((NOW + 86_400) as f64))]
    );
}
