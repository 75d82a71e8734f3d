//! The admin side of the edge policy feed: revoke a client, revoke a client's tokens issued
//! before a time, maintain the feed's allow-list; each answer carries the new version, each
//! change an audit line, and the core verifier given the resulting feed follows it.

use serde_json::{json, Value};
use tokengate::feed::{FeedDocument, FeedTrust};
use tokengate::{ErrorCode, KeyCache, KeySet, KeySetLimits, Policy, Provider, Request, Verifier};

use crate::support::{
    admin_config, request, sample_config, start, TestServer, ADMIN_TOKEN, NOW, POOL,
};

const ADMIN_ACTIONS: [&str; 4] = [
    "revoke-client",
    "revoke-issued-before",
    "edge-clients",
    "clients/orders-reader/secrets",
];

async fn provider(server: &TestServer) -> Value {
    let issuer = server.issuer.issuer_url(POOL).unwrap();
    server.edge_policy_json().await["providers"][&issuer].clone()
}

/// The core verifier with the issuer's keys, an allow-list of the two demo clients, and the
/// feed as served now.
async fn edge_verifier(server: &TestServer) -> Verifier {
    let issuer = server.issuer.issuer_url(POOL).unwrap();
    let policy = Policy::builder(issuer.clone())
        .client_ids(["orders-reader", "orders-writer"])
        .build()
        .unwrap();
    let jwks = server.issuer.jwks(POOL).unwrap().to_string();
    let keys = KeySet::from_json(jwks.as_bytes(), KeySetLimits::default()).unwrap();
    let mut verifier = Verifier::new(vec![Provider::new(policy, KeyCache::fixed(keys))]).unwrap();
    let body = server.edge_policy(None).await.body;
    let document = FeedDocument::from_body(&body, &FeedTrust::Unsigned, 1 << 20, 100_000).unwrap();
    verifier.set_overlay(0, document.providers.get(&issuer).cloned());
    verifier
}

async fn code(server: &TestServer, token: &str) -> Option<ErrorCode> {
    let now = server.clock.now();
    edge_verifier(server)
        .await
        .verify(token, &Request::at(now))
        .err()
        .map(|error| error.code())
}

#[tokio::test]
async fn revoke_client_defaults_to_the_clients_token_lifetime_and_the_core_refuses_its_tokens() {
    let server = start(admin_config()).await;
    let writer = server.writer_token().await;
    let reader = server
        .token_for("orders-reader", "orders-reader-secret")
        .await;
    let response = server
        .admin("revoke-client", &json!({ "client_id": "orders-writer" }))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    let version = body["version"].as_u64().unwrap();
    assert_eq!(
        body,
        json!({ "pool": POOL, "version": version, "changed": true,
                "client_id": "orders-writer", "until": NOW + 900 })
    );
    assert_eq!(
        provider(&server).await,
        json!({ "revoke": { "client_ids": [{ "id": "orders-writer", "until": NOW + 900 }] } })
    );
    assert_eq!(code(&server, &writer).await, Some(ErrorCode::TokenRevoked));
    assert_eq!(code(&server, &reader).await, None);

    // A client the pool does not know: the pool's longest lifetime.
    let unknown = server
        .admin("revoke-client", &json!({ "client_id": "minted-elsewhere" }))
        .await;
    assert_eq!(unknown.json()["until"], NOW + 3600);

    // An explicit until replaces the entry's; one not in the future lifts the revocation.
    let longer = server
        .admin(
            "revoke-client",
            &json!({ "client_id": "orders-writer", "until": NOW + 5000 }),
        )
        .await;
    assert_eq!(longer.json()["until"], NOW + 5000);
    let lifted = server
        .admin(
            "revoke-client",
            &json!({ "client_id": "orders-writer", "until": NOW }),
        )
        .await;
    assert_eq!(lifted.json()["until"], Value::Null);
    assert_eq!(lifted.json()["changed"], true);
    assert_eq!(code(&server, &writer).await, None);

    let line = server
        .audit
        .lines()
        .into_iter()
        .find(|line| line.contains("admin.revoke_client"))
        .unwrap();
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["client_id"], "orders-writer");
    assert_eq!(line["result"], "changed");
    assert_eq!(line["until"], NOW + 900);
    assert_eq!(line["version"], version);
}

#[tokio::test]
async fn revoke_issued_before_cuts_off_older_tokens_only() {
    let server = start(admin_config()).await;
    let old = server.writer_token().await;
    server.clock.advance(10);
    let response = server
        .admin(
            "revoke-issued-before",
            &json!({ "client_id": "orders-writer" }),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["at"], NOW + 10);
    assert_eq!(body["until"], NOW + 10 + 900);
    assert_eq!(body["changed"], true);
    assert_eq!(
        provider(&server).await,
        json!({ "revoke": { "issued_before": {
            "orders-writer": { "at": NOW + 10, "until": NOW + 910 } } } })
    );
    server.clock.advance(1);
    let new = server.writer_token().await;
    assert_eq!(code(&server, &old).await, Some(ErrorCode::TokenRevoked));
    assert_eq!(code(&server, &new).await, None);

    // An explicit, earlier cut-off merges: the later cut-off stays.
    let earlier = server
        .admin(
            "revoke-issued-before",
            &json!({ "client_id": "orders-writer", "before": NOW }),
        )
        .await;
    assert_eq!(earlier.json()["at"], NOW + 10);
    assert_eq!(earlier.json()["changed"], false);
    // So old that every token issued before it has expired: refused.
    let ancient = server
        .admin(
            "revoke-issued-before",
            &json!({ "client_id": "orders-writer", "before": NOW - 10_000 }),
        )
        .await;
    assert_eq!(ancient.status, 400);
    assert_eq!(ancient.json()["error"], "invalid_request");
}

#[tokio::test]
async fn edge_clients_maintain_the_feeds_allow_list() {
    let server = start(admin_config()).await;
    let writer = server.writer_token().await;
    let reader = server
        .token_for("orders-reader", "orders-reader-secret")
        .await;
    assert_eq!(provider(&server).await, json!({}));

    // Removing before the feed has a list would lock everybody out: refused.
    let premature = server
        .admin("edge-clients", &json!({ "remove": "orders-reader" }))
        .await;
    assert_eq!(premature.status, 400);

    let added = server
        .admin("edge-clients", &json!({ "add": "orders-writer" }))
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    let version = added.json()["version"].as_u64().unwrap();
    assert_eq!(
        added.json(),
        json!({ "pool": POOL, "version": version, "changed": true,
                "client_ids": ["orders-writer"] })
    );
    // The feed's list replaces the edge's own: the reader is out now.
    assert_eq!(code(&server, &writer).await, None);
    assert_eq!(
        code(&server, &reader).await,
        Some(ErrorCode::ClientNotAllowed)
    );

    let with_until = server
        .admin(
            "edge-clients",
            &json!({ "add": "orders-reader", "until": NOW + 60 }),
        )
        .await;
    assert_eq!(
        with_until.json()["client_ids"],
        json!([{ "id": "orders-reader", "until": NOW + 60 }, "orders-writer"])
    );
    assert_eq!(code(&server, &reader).await, None);

    server
        .admin("edge-clients", &json!({ "remove": "orders-reader" }))
        .await;
    let last = server
        .admin("edge-clients", &json!({ "remove": "orders-writer" }))
        .await;
    // The last one removed: an empty list, no client admitted.
    assert_eq!(last.json()["client_ids"], json!([]));
    assert_eq!(provider(&server).await, json!({ "client_ids": [] }));
    assert_eq!(
        code(&server, &writer).await,
        Some(ErrorCode::ClientNotAllowed)
    );
    let unchanged = server
        .admin("edge-clients", &json!({ "remove": "orders-writer" }))
        .await;
    assert_eq!(unchanged.json()["changed"], false);

    for bad in [
        json!({}),
        json!({ "add": "a", "remove": "b" }),
        json!({ "remove": "a", "until": NOW + 5 }),
        json!({ "add": "has space" }),
        json!({ "add": "a", "until": NOW }),
        json!({ "add": "a", "extra": 1 }),
    ] {
        let response = server.admin("edge-clients", &bad).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.text());
    }
    let audited = server
        .audit
        .lines()
        .iter()
        .filter(|line| line.contains("\"event\":\"admin.edge_clients\""))
        .count();
    assert!(audited >= 5);
}

#[tokio::test]
async fn the_config_can_seed_the_allow_list() {
    let mut config = admin_config();
    config.pools[0].edge_client_ids = Some(vec!["orders-reader".to_owned()]);
    let server = start(config).await;
    assert_eq!(
        provider(&server).await,
        json!({ "client_ids": ["orders-reader"] })
    );
    let removed = server
        .admin("edge-clients", &json!({ "remove": "orders-reader" }))
        .await;
    assert_eq!(removed.status, 200);
    assert_eq!(removed.json()["client_ids"], json!([]));
}

#[tokio::test]
async fn admin_feed_routes_need_the_admin_token() {
    let server = start(admin_config()).await;
    let before = server
        .edge_policy(None)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    for action in ADMIN_ACTIONS {
        let body = json!({ "client_id": "orders-writer", "add": "x", "add_hash": "y" });
        for token in [None, Some("not-the-admin-token-000")] {
            let response = server.admin_with(action, &body, token).await;
            assert_eq!(response.status, 401, "{action}");
            assert_eq!(response.json(), json!({ "error": "unauthorized" }));
            assert!(response
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer"));
            assert_eq!(response.header("access-control-allow-origin"), None);
        }
        let unknown_pool = request(
            "POST",
            &server.url(&format!("/admin/eu-west-1_NoSuchPool/{action}")),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            json!({ "client_id": "orders-writer", "add": "x" })
                .to_string()
                .as_bytes(),
        )
        .await;
        assert_eq!(unknown_pool.status, 404, "{action}");
    }
    assert_eq!(
        server.edge_policy(None).await.header("etag").unwrap(),
        before
    );

    // Without an admin token configured the routes do not exist.
    let plain = start(sample_config()).await;
    for action in ADMIN_ACTIONS {
        let response = plain
            .admin_with(action, &json!({}), Some(ADMIN_TOKEN))
            .await;
        assert_eq!(response.status, 404, "{action}");
    }
}
