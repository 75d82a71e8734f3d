//! `POST /oauth2/token`: good and bad requests, error shapes, audit lines.

use serde_json::{json, Value};
use tokengate_issuer::{hash_secret, ClientConfig};

use crate::support::{basic_header, request, sample_config, start, HttpResponse, POOL};

const CC: &str = "grant_type=client_credentials";

fn assert_error(response: &HttpResponse, status: u16, error: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.json(), json!({ "error": error }));
    assert_eq!(response.header("cache-control"), Some("no-store"));
}

fn scope_of(response: &HttpResponse) -> String {
    let token = response.json()["access_token"].as_str().unwrap().to_owned();
    crate::support::decode(&token).claims["scope"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn basic_auth_gets_a_bearer_token_with_all_allowed_scopes_by_default() {
    let server = start(sample_config()).await;
    let response = server
        .token(CC, Some(("orders-writer", "orders-writer-secret")))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("pragma"), Some("no-cache"));
    assert!(response
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let body = response.json();
    let members: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(members, ["access_token", "expires_in", "token_type"]);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(scope_of(&response), "orders/read orders/write");
}

#[tokio::test]
async fn form_fields_authenticate_the_client() {
    let server = start(sample_config()).await;
    let response = server
        .token(
            "grant_type=client_credentials&client_id=orders-reader&client_secret=orders-reader-secret",
            None,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["expires_in"], 3600);
    assert_eq!(scope_of(&response), "orders/read");
}

#[tokio::test]
async fn requested_subset_of_scopes_is_granted() {
    let server = start(sample_config()).await;
    let response = server
        .token(
            "grant_type=client_credentials&scope=orders%2Fwrite",
            Some(("orders-writer", "orders-writer-secret")),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(scope_of(&response), "orders/write");
}

#[tokio::test]
async fn scope_the_client_may_not_have_is_invalid_scope() {
    let server = start(sample_config()).await;
    let response = server
        .token(
            "grant_type=client_credentials&scope=orders/read+orders/write",
            Some(("orders-reader", "orders-reader-secret")),
        )
        .await;
    assert_error(&response, 400, "invalid_scope");
}

#[tokio::test]
async fn wrong_secret_with_basic_is_401_invalid_client_with_a_basic_challenge() {
    let server = start(sample_config()).await;
    let response = server
        .token(CC, Some(("orders-reader", "orders-writer-secret")))
        .await;
    assert_error(&response, 401, "invalid_client");
    assert!(response
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
}

#[tokio::test]
async fn wrong_secret_in_the_form_is_401_invalid_client_without_a_challenge() {
    let server = start(sample_config()).await;
    let response = server
        .token(
            "grant_type=client_credentials&client_id=orders-reader&client_secret=nope",
            None,
        )
        .await;
    assert_error(&response, 401, "invalid_client");
    assert_eq!(response.header("www-authenticate"), None);
}

#[tokio::test]
async fn unknown_and_disabled_clients_are_invalid_client() {
    let server = start(sample_config()).await;
    let unknown = server.token(CC, Some(("nobody", "whatever"))).await;
    assert_error(&unknown, 401, "invalid_client");
    let disabled = server
        .token(CC, Some(("disabled-client", "disabled-secret")))
        .await;
    assert_error(&disabled, 401, "invalid_client");
}

#[tokio::test]
async fn no_client_authentication_is_invalid_client() {
    let server = start(sample_config()).await;
    let response = server.token(CC, None).await;
    assert_error(&response, 401, "invalid_client");
    let id_only = server
        .token(
            "grant_type=client_credentials&client_id=orders-reader",
            None,
        )
        .await;
    assert_error(&id_only, 401, "invalid_client");
}

#[tokio::test]
async fn client_without_allowed_scopes_is_unauthorized_client() {
    let mut config = sample_config();
    let reader_hash = config.pools[0].clients[0].client_secret_hash.clone();
    config.pools[0].clients.push(ClientConfig::new(
        "no-scopes",
        reader_hash,
        Vec::<String>::new(),
    ));
    let server = start(config).await;
    let response = server
        .token(CC, Some(("no-scopes", "orders-reader-secret")))
        .await;
    assert_error(&response, 400, "unauthorized_client");
}

#[tokio::test]
async fn other_grant_types_are_unsupported_grant_type() {
    let server = start(sample_config()).await;
    for grant in ["authorization_code", "password", "refresh_token"] {
        let response = server
            .token(
                &format!("grant_type={grant}"),
                Some(("orders-reader", "orders-reader-secret")),
            )
            .await;
        assert_error(&response, 400, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn missing_or_empty_grant_type_is_invalid_request() {
    let server = start(sample_config()).await;
    for form in ["", "scope=orders/read", "grant_type="] {
        let response = server
            .token(form, Some(("orders-reader", "orders-reader-secret")))
            .await;
        assert_error(&response, 400, "invalid_request");
    }
}

#[tokio::test]
async fn basic_and_client_secret_together_are_invalid_request() {
    let server = start(sample_config()).await;
    let response = server
        .token(
            "grant_type=client_credentials&client_id=orders-reader&client_secret=orders-reader-secret",
            Some(("orders-reader", "orders-reader-secret")),
        )
        .await;
    assert_error(&response, 400, "invalid_request");
}

#[tokio::test]
async fn basic_with_the_same_client_id_in_the_form_is_accepted() {
    let server = start(sample_config()).await;
    let response = server
        .token(
            "grant_type=client_credentials&client_id=orders-reader",
            Some(("orders-reader", "orders-reader-secret")),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
}

#[tokio::test]
async fn repeated_parameters_and_wrong_content_type_are_invalid_request() {
    let server = start(sample_config()).await;
    let repeated = server
        .token(
            "grant_type=client_credentials&grant_type=client_credentials",
            Some(("orders-reader", "orders-reader-secret")),
        )
        .await;
    assert_error(&repeated, 400, "invalid_request");

    let authorization = basic_header("orders-reader", "orders-reader-secret");
    let json_body = request(
        "POST",
        &server.url("/oauth2/token"),
        &[
            ("content-type", "application/json"),
            ("authorization", &authorization),
        ],
        br#"{"grant_type":"client_credentials"}"#,
    )
    .await;
    assert_error(&json_body, 400, "invalid_request");
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_before_base64() {
    let mut config = sample_config();
    let secret = "p@ss word+%/:";
    config.pools[0].clients.push(ClientConfig::new(
        "odd.secret_client",
        hash_secret(secret).unwrap(),
        ["orders/read"],
    ));
    let server = start(config).await;
    // RFC 6749 §2.3.1 / appendix B encoding of the secret.
    let encoded = "p%40ss+word%2B%25%2F%3A";
    let response = server.token(CC, Some(("odd.secret_client", encoded))).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let form = server
        .token(
            &format!("{CC}&client_id=odd.secret_client&client_secret={encoded}"),
            None,
        )
        .await;
    assert_eq!(form.status, 200, "{}", form.text());
}

#[tokio::test]
async fn pool_path_serves_the_same_endpoint_and_unknown_pools_are_404() {
    let server = start(sample_config()).await;
    let authorization = basic_header("orders-reader", "orders-reader-secret");
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", authorization.as_str()),
    ];
    let response = request(
        "POST",
        &server.url(&format!("/{POOL}/oauth2/token")),
        &headers,
        CC.as_bytes(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let unknown = request(
        "POST",
        &server.url("/eu-west-1_NoSuchPool/oauth2/token"),
        &headers,
        CC.as_bytes(),
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn hostile_requests_get_error_answers_not_a_dead_server() {
    let server = start(sample_config()).await;
    let long_body = vec![b'a'; 64 * 1024];
    let bodies: Vec<&[u8]> = vec![
        b"\xff\xfe\x00",
        b"%%%%&&&===",
        b"grant_type=client_credentials&scope=%FF",
        b"grant_type=client_credentials&scope=orders/\"read\"",
        &long_body,
    ];
    for body in bodies {
        for authorization in ["Basic", "Basic ====", "Bearer x", "Basic Og=="] {
            let response = request(
                "POST",
                &server.url("/oauth2/token"),
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", authorization),
                ],
                body,
            )
            .await;
            assert!(
                (400..500).contains(&response.status),
                "{} {}",
                response.status,
                response.text()
            );
            let _: Value = response.json();
        }
    }
    let still_up = server
        .token(CC, Some(("orders-reader", "orders-reader-secret")))
        .await;
    assert_eq!(still_up.status, 200);
}

#[tokio::test]
async fn one_audit_line_per_request_without_secret_or_token() {
    let server = start(sample_config()).await;
    let issued = server
        .token(CC, Some(("orders-reader", "orders-reader-secret")))
        .await;
    let token = issued.json()["access_token"].as_str().unwrap().to_owned();
    server
        .token(CC, Some(("orders-reader", "wrong-secret")))
        .await;

    let lines = server.audit.lines();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert!(!line.contains("orders-reader-secret") && !line.contains("wrong-secret"));
        assert!(!line.contains(&token[..40]), "{line}");
    }
    let ok: Value = serde_json::from_str(&lines[0]).unwrap();
    let names: Vec<&String> = ok.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "client_id",
            "pool",
            "remote",
            "result",
            "scopes_granted",
            "ts"
        ]
    );
    assert_eq!(ok["ts"], "2026-01-01T12:00:00Z");
    assert_eq!(ok["pool"], POOL);
    assert_eq!(ok["client_id"], "orders-reader");
    assert_eq!(ok["scopes_granted"], json!(["orders/read"]));
    assert_eq!(ok["result"], "issued");
    assert!(ok["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    let failed: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(failed["result"], "invalid_client");
    assert_eq!(failed["scopes_granted"], json!([]));
    assert_eq!(failed["detail"], "wrong client secret");
}
