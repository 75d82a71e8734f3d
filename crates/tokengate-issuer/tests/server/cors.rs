//! CORS: a browser page may fetch tokens, the JWKS and discovery, but never call admin routes.

use crate::support::{basic_header, request, sample_config, start, POOL};

#[tokio::test]
async fn token_endpoint_preflight_allows_basic_auth_and_form_posts_from_any_origin() {
    let server = start(sample_config()).await;
    for path in ["/oauth2/token".to_owned(), format!("/{POOL}/oauth2/token")] {
        let response = request(
            "OPTIONS",
            &server.url(&path),
            &[
                ("origin", "http://127.0.0.1:8080"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
            b"",
        )
        .await;
        assert_eq!(response.status, 204, "{path}");
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            response.header("access-control-allow-methods"),
            Some("POST, OPTIONS")
        );
        assert_eq!(
            response.header("access-control-allow-headers"),
            Some("authorization, content-type")
        );
    }
}

#[tokio::test]
async fn token_responses_and_errors_carry_allow_origin() {
    let server = start(sample_config()).await;
    let basic = basic_header("orders-reader", "orders-reader-secret");
    let ok = request(
        "POST",
        &server.url("/oauth2/token"),
        &[
            ("origin", "http://127.0.0.1:8080"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &basic),
        ],
        b"grant_type=client_credentials",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.header("access-control-allow-origin"), Some("*"));
    assert_eq!(ok.header("cache-control"), Some("no-store"));

    let refused = server
        .token(
            "grant_type=client_credentials",
            Some(("orders-reader", "wrong")),
        )
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        refused.header("access-control-expose-headers"),
        Some("retry-after, www-authenticate, etag")
    );
}

#[tokio::test]
async fn jwks_and_discovery_are_readable_cross_origin() {
    let server = start(sample_config()).await;
    for doc in ["jwks.json", "openid-configuration"] {
        let url = server.url(&format!("/{POOL}/.well-known/{doc}"));
        let get = request("GET", &url, &[("origin", "http://localhost:1")], b"").await;
        assert_eq!(get.status, 200, "{doc}");
        assert_eq!(
            get.header("access-control-allow-origin"),
            Some("*"),
            "{doc}"
        );
        let preflight = request(
            "OPTIONS",
            &url,
            &[
                ("origin", "http://localhost:1"),
                ("access-control-request-method", "GET"),
            ],
            b"",
        )
        .await;
        assert_eq!(preflight.status, 204, "{doc}");
        assert_eq!(
            preflight.header("access-control-allow-methods"),
            Some("GET, OPTIONS")
        );
    }
}

#[tokio::test]
async fn admin_routes_get_no_cors_headers() {
    let mut config = sample_config();
    config.server.admin_token = Some("an-admin-token-for-tests".to_owned());
    let server = start(config).await;
    for path in [
        format!("/admin/{POOL}/rotate"),
        format!("/admin/{POOL}/mint"),
    ] {
        let preflight = request(
            "OPTIONS",
            &server.url(&path),
            &[
                ("origin", "http://127.0.0.1:8080"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization"),
            ],
            b"",
        )
        .await;
        assert_ne!(preflight.status / 100, 2, "{path}");
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            None,
            "{path}"
        );
        let post = request(
            "POST",
            &server.url(&path),
            &[("authorization", "Bearer an-admin-token-for-tests")],
            br#"{"client_id":"x"}"#,
        )
        .await;
        assert_eq!(post.header("access-control-allow-origin"), None, "{path}");
    }
}
