//! Key rotation: prepublish, switch, retention until the old key's tokens have expired.

use serde_json::{json, Value};
use tokengate_issuer::{Config, Rotation};

use crate::support::{decode, request, sample_config, start, verify_rs256, TestServer, NOW, POOL};

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

fn admin_config() -> Config {
    let mut config = sample_config();
    config.server.admin_token = Some(ADMIN_TOKEN.to_owned());
    config
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|jwk| jwk["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn rotate(server: &TestServer, query: &str, token: &str) -> crate::support::HttpResponse {
    let authorization = format!("Bearer {token}");
    request(
        "POST",
        &server.url(&format!("/admin/{POOL}/rotate{query}")),
        &[("authorization", &authorization)],
        b"",
    )
    .await
}

async fn signing_kid_of_a_fresh_token(server: &TestServer) -> String {
    let token = server.writer_token().await;
    verify_rs256(&token, &server.jwks().await).expect("token verifies against the live JWKS");
    decode(&token).header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn new_key_is_published_before_it_signs_and_old_key_stays_until_its_tokens_expire() {
    let server = start(admin_config()).await;
    let old_kid = signing_kid_of_a_fresh_token(&server).await;
    assert_eq!(kids(&server.jwks().await), [old_kid.as_str()]);

    let response = rotate(&server, "", ADMIN_TOKEN).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    let new_kid = body["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        body,
        json!({ "pool": POOL, "kid": new_kid, "active_from": NOW + 300, "signing_kid": old_kid })
    );

    // Prepublished: in the JWKS, not yet signing.
    assert_eq!(
        kids(&server.jwks().await),
        [old_kid.clone(), new_kid.clone()]
    );
    assert_eq!(signing_kid_of_a_fresh_token(&server).await, old_kid);
    server.clock.advance(299);
    assert_eq!(signing_kid_of_a_fresh_token(&server).await, old_kid);
    let last_old_token = server.writer_token().await;

    // Switch.
    server.clock.advance(1);
    assert_eq!(signing_kid_of_a_fresh_token(&server).await, new_kid);

    // The sample's longest lifetime is 3600 s: the old key stays exactly that long.
    server.clock.advance(3599);
    let jwks = server.jwks().await;
    assert_eq!(kids(&jwks), [old_kid.clone(), new_kid.clone()]);
    verify_rs256(&last_old_token, &jwks).unwrap();
    server.clock.advance(1);
    assert_eq!(kids(&server.jwks().await), [new_kid]);
}

#[tokio::test]
async fn immediate_rotation_signs_with_the_new_key_at_once() {
    let server = start(admin_config()).await;
    let old_kid = server.issuer.signing_kid(POOL).unwrap();
    let response = rotate(&server, "?immediate=true", ADMIN_TOKEN).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let new_kid = response.json()["kid"].as_str().unwrap().to_owned();
    assert_eq!(response.json()["signing_kid"], new_kid);
    assert_eq!(response.json()["active_from"], NOW);
    assert_eq!(signing_kid_of_a_fresh_token(&server).await, new_kid);
    assert_eq!(kids(&server.jwks().await), [old_kid, new_kid]);
}

#[tokio::test]
async fn admin_rotation_needs_the_admin_bearer_token() {
    let server = start(admin_config()).await;
    let wrong = rotate(&server, "", "not-the-admin-token").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json(), json!({ "error": "unauthorized" }));
    assert!(wrong
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let missing = request(
        "POST",
        &server.url(&format!("/admin/{POOL}/rotate")),
        &[],
        b"",
    )
    .await;
    assert_eq!(missing.status, 401);
    let bad_flag = rotate(&server, "?immediate=maybe", ADMIN_TOKEN).await;
    assert_eq!(bad_flag.status, 400);
    let unknown_pool = request(
        "POST",
        &server.url("/admin/eu-west-1_NoSuchPool/rotate"),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        b"",
    )
    .await;
    assert_eq!(unknown_pool.status, 404);
    assert_eq!(kids(&server.jwks().await).len(), 1);
}

#[tokio::test]
async fn rotations_use_the_listed_pem_keys_then_generate_fresh_ones() {
    let server = start(sample_config()).await;
    let issuer = server.issuer.clone();
    let mut seen = vec![issuer.signing_kid(POOL).unwrap()];
    for _ in 0..3 {
        let rotating = issuer.clone();
        let rotated =
            tokio::task::spawn_blocking(move || rotating.rotate(POOL, Rotation::Immediate))
                .await
                .unwrap()
                .unwrap();
        assert!(!seen.contains(&rotated.kid));
        assert_eq!(issuer.signing_kid(POOL).unwrap(), rotated.kid);
        seen.push(rotated.kid);
    }
    // Keys 2 and 3 came from pem_files (stable kids); the last one was generated.
    let fixed = tokengate_issuer::IssuerKey::from_pkcs8_pem(
        &std::fs::read_to_string(crate::support::key_file(3)).unwrap(),
    )
    .unwrap();
    assert_eq!(seen[2], fixed.kid());
    assert_eq!(kids(&server.jwks().await), seen);
    verify_rs256(&server.writer_token().await, &server.jwks().await).unwrap();
}

#[tokio::test]
async fn scheduled_rotation_runs_once_rotate_every_s_has_passed() {
    let mut config = sample_config();
    config.pools[0].keys.rotate_every_s = Some(600);
    config.pools[0].keys.prepublish_s = 0;
    let server = start(config).await;
    let first = server.issuer.signing_kid(POOL).unwrap();
    server.clock.advance(600);
    // The schedule is checked once a second on real time; the manual clock says it is due.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.issuer.signing_kid(POOL).unwrap() == first {
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled rotation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(kids(&server.jwks().await).len(), 2);
    assert_eq!(
        signing_kid_of_a_fresh_token(&server).await,
        server.issuer.signing_kid(POOL).unwrap()
    );
}

#[tokio::test]
async fn admin_mint_signs_tokens_with_any_issue_time_and_needs_the_admin_token() {
    let server = start(admin_config()).await;
    let url = server.url(&format!("/admin/{POOL}/mint"));
    let body = json!({ "client_id": "orders-reader", "scope": "orders/read", "issued_at": NOW - 7200, "lifetime_s": 600 });
    let body = body.to_string();
    let denied = request(
        "POST",
        &url,
        &[("authorization", "Bearer wrong-token-000000000")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(denied.status, 401);
    let authorization = format!("Bearer {ADMIN_TOKEN}");
    let response = request(
        "POST",
        &url,
        &[("authorization", &authorization)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let token = response.json()["access_token"].as_str().unwrap().to_owned();
    let decoded = verify_rs256(&token, &server.jwks().await).expect("minted token verifies");
    assert_eq!(decoded.claims["iat"], NOW - 7200);
    assert_eq!(decoded.claims["exp"], NOW - 7200 + 600);
    assert_eq!(decoded.claims["client_id"], "orders-reader");
    let bad = request(
        "POST",
        &url,
        &[("authorization", &authorization)],
        b"{\"nope\":1}",
    )
    .await;
    assert_eq!(bad.status, 400);
}
