//! JWKS and OpenID discovery documents; several pools side by side.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use tokengate_issuer::{hash_secret, ClientConfig, PoolConfig};

use crate::support::{key_file, request, sample_config, start, verify_rs256, POOL};

#[tokio::test]
async fn jwks_lists_rs256_keys_with_cognito_style_kids_and_cache_control() {
    let server = start(sample_config()).await;
    let response = request(
        "GET",
        &server.url(&format!("/{POOL}/.well-known/jwks.json")),
        &[],
        b"",
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("cache-control"),
        Some("public, max-age=300")
    );
    let jwks = response.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let jwk = keys[0].as_object().unwrap();
    let members: Vec<&String> = jwk.keys().collect();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["e"], "AQAB");
    let kid = jwk["kid"].as_str().unwrap();
    assert_eq!(STANDARD.decode(kid).unwrap().len(), 32, "{kid}");
    assert_eq!(jwks, server.issuer.jwks(POOL).unwrap());
}

#[tokio::test]
async fn generated_keys_get_random_base64_kids() {
    let mut config = sample_config();
    config.pools[0].keys.pem_files.clear();
    let server = start(config).await;
    let kid = server.issuer.signing_kid(POOL).unwrap();
    assert_eq!(kid.len(), 44);
    assert_eq!(STANDARD.decode(&kid).unwrap().len(), 32);
    let token = server.writer_token().await;
    verify_rs256(&token, &server.jwks().await).unwrap();
}

#[tokio::test]
async fn jwks_max_age_is_configurable() {
    let mut config = sample_config();
    config.server.jwks_max_age_s = 60;
    let server = start(config).await;
    let response = request(
        "GET",
        &server.url(&format!("/{POOL}/.well-known/jwks.json")),
        &[],
        b"",
    )
    .await;
    assert_eq!(response.header("cache-control"), Some("public, max-age=60"));
}

#[tokio::test]
async fn openid_configuration_points_at_this_server() {
    let server = start(sample_config()).await;
    let base = server.handle.url();
    let response = request(
        "GET",
        &server.url(&format!("/{POOL}/.well-known/openid-configuration")),
        &[],
        b"",
    )
    .await;
    assert_eq!(response.status, 200);
    let document = response.json();
    assert_eq!(
        document,
        json!({
            "issuer": format!("{base}/{POOL}"),
            "jwks_uri": format!("{base}/{POOL}/.well-known/jwks.json"),
            "token_endpoint": format!("{base}/{POOL}/oauth2/token"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint": format!("{base}/{POOL}/oauth2/revoke"),
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["orders/read", "orders/write"],
        })
    );
    assert_eq!(
        server.issuer.issuer_url(POOL).unwrap(),
        format!("{base}/{POOL}")
    );
    assert_eq!(
        server.issuer.jwks_uri(POOL).unwrap(),
        document["jwks_uri"].as_str().unwrap()
    );
}

#[tokio::test]
async fn unknown_pool_and_unknown_path_are_404_json() {
    let server = start(sample_config()).await;
    for path in [
        "/eu-west-1_Unknown123/.well-known/jwks.json",
        "/eu-west-1_Unknown123/.well-known/openid-configuration",
        "/nothing/here",
        "/admin/eu-west-1_LocalPool1/rotate",
    ] {
        let method = if path.starts_with("/admin") {
            "POST"
        } else {
            "GET"
        };
        let response = request(method, &server.url(path), &[], b"").await;
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(response.json(), json!({ "error": "not_found" }));
    }
}

#[tokio::test]
async fn each_pool_has_its_own_keys_clients_and_issuer() {
    let mut config = sample_config();
    let mut second = PoolConfig::new("us-east-1_SecondPool");
    second.keys.pem_files = vec![key_file(3)];
    second.clients.push(ClientConfig::new(
        "inventory-reader",
        hash_secret("inventory-secret").unwrap(),
        ["inventory/read"],
    ));
    config.pools.push(second);
    let mut third = PoolConfig::new("ap-southeast-2_ThirdPool");
    third.issuer =
        Some("https://cognito-idp.ap-southeast-2.amazonaws.com/ap-southeast-2_ThirdPool".into());
    third.keys.pem_files = vec![key_file(2)];
    config.pools.push(third);
    config.pools[0].keys.pem_files = vec![key_file(1)];
    let server = start(config).await;

    let first_jwks = server.issuer.jwks(POOL).unwrap();
    let second_jwks = server.issuer.jwks("us-east-1_SecondPool").unwrap();
    assert_ne!(first_jwks, second_jwks);

    let authorization = crate::support::basic_header("inventory-reader", "inventory-secret");
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", authorization.as_str()),
    ];
    let response = request(
        "POST",
        &server.url("/us-east-1_SecondPool/oauth2/token"),
        &headers,
        b"grant_type=client_credentials",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let token = response.json()["access_token"].as_str().unwrap().to_owned();
    let decoded = verify_rs256(&token, &second_jwks).unwrap();
    assert!(verify_rs256(&token, &first_jwks).is_err());
    assert_eq!(
        decoded.claims["iss"],
        format!("{}/us-east-1_SecondPool", server.handle.url())
    );

    // The default endpoint belongs to the first pool, which does not know this client.
    let default = request(
        "POST",
        &server.url("/oauth2/token"),
        &headers,
        b"grant_type=client_credentials",
    )
    .await;
    assert_eq!(default.status, 401);

    let overridden = server
        .issuer
        .issue_token(
            "ap-southeast-2_ThirdPool",
            "any",
            &["x/y"],
            300,
            crate::support::NOW,
        )
        .unwrap();
    let decoded = verify_rs256(
        &overridden,
        &server.issuer.jwks("ap-southeast-2_ThirdPool").unwrap(),
    )
    .unwrap();
    assert_eq!(
        decoded.claims["iss"],
        "https://cognito-idp.ap-southeast-2.amazonaws.com/ap-southeast-2_ThirdPool"
    );
}
