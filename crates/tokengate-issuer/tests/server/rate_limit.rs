//! Token-endpoint rate limits: per client after the burst, per IP for failed authentications.

use serde_json::json;

use crate::support::{sample_config, start};

const CC: &str = "grant_type=client_credentials";

#[tokio::test]
async fn client_over_its_burst_gets_429_with_retry_after() {
    let mut config = sample_config();
    config.server.rate_limit.per_s = 0.1;
    config.server.rate_limit.burst = 3;
    let server = start(config).await;
    let reader = Some(("orders-reader", "orders-reader-secret"));
    for _ in 0..3 {
        assert_eq!(server.token(CC, reader).await.status, 200);
    }
    let limited = server.token(CC, reader).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json(), json!({ "error": "too_many_requests" }));
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry_after), "{retry_after}");

    // Buckets are per client.
    let writer = server
        .token(CC, Some(("orders-writer", "orders-writer-secret")))
        .await;
    assert_eq!(writer.status, 200);
    assert!(server.audit.lines()[3].contains(r#""result":"too_many_requests""#));
}

#[tokio::test]
async fn source_ip_with_too_many_failed_authentications_is_refused_before_checking_secrets() {
    let mut config = sample_config();
    config.server.rate_limit.ip_failures_per_s = 0.01;
    config.server.rate_limit.ip_failures_burst = 2;
    let server = start(config).await;
    for _ in 0..2 {
        let failed = server.token(CC, Some(("orders-reader", "wrong"))).await;
        assert_eq!(failed.status, 401);
    }
    let limited = server
        .token(CC, Some(("orders-reader", "orders-reader-secret")))
        .await;
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
}
