//! A client with two secrets during a rotation: both authenticate at the token and revocation
//! endpoints; once one is removed (from the config, or at runtime by the admin API) only the
//! other does, at once, even though its earlier success was cached.

use serde_json::json;
use tokengate_issuer::{hash_secret, ClientConfig, Config};

use crate::support::{admin_config, start, TestServer, POOL};

const OLD: &str = "rotating-old-secret";
const NEW: &str = "rotating-new-secret";

fn with_rotating_client(config: Config, secrets: &[&str]) -> Config {
    let hashes = secrets.iter().map(|s| hash_secret(s).unwrap()).collect();
    with_hashes(config, hashes)
}

fn with_hashes(mut config: Config, hashes: Vec<String>) -> Config {
    let mut client = ClientConfig::new("rotating", "", ["orders/read"]);
    client.client_secret_hashes = hashes;
    config.pools[0].clients.push(client);
    config
}

async fn status_with(server: &TestServer, secret: &str) -> u16 {
    server
        .token("grant_type=client_credentials", Some(("rotating", secret)))
        .await
        .status
}

async fn secrets(
    server: &TestServer,
    client: &str,
    body: serde_json::Value,
) -> crate::support::HttpResponse {
    server
        .admin(&format!("clients/{client}/secrets"), &body)
        .await
}

#[tokio::test]
async fn both_listed_secrets_work_at_the_token_and_revocation_endpoints() {
    let server = start(with_rotating_client(admin_config(), &[OLD, NEW])).await;
    assert_eq!(status_with(&server, OLD).await, 200);
    assert_eq!(status_with(&server, NEW).await, 200);
    assert_eq!(status_with(&server, "neither").await, 401);
    let token = server.token_for("rotating", NEW).await;
    let revoked = server
        .revoke(&format!("token={token}"), Some(("rotating", OLD)))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
}

#[tokio::test]
async fn client_secret_hash_and_client_secret_hashes_combine() {
    let mut config = admin_config();
    let mut client = ClientConfig::new("rotating", hash_secret(OLD).unwrap(), ["orders/read"]);
    client.client_secret_hashes = vec![hash_secret(NEW).unwrap()];
    config.pools[0].clients.push(client);
    let server = start(config).await;
    assert_eq!(status_with(&server, OLD).await, 200);
    assert_eq!(status_with(&server, NEW).await, 200);
}

#[tokio::test]
async fn after_a_restart_without_the_old_secret_only_the_new_one_works() {
    let server = start(with_rotating_client(admin_config(), &[NEW])).await;
    assert_eq!(status_with(&server, NEW).await, 200);
    assert_eq!(status_with(&server, OLD).await, 401);
}

#[tokio::test]
async fn the_admin_api_adds_and_removes_secrets_at_runtime() {
    let old_hash = hash_secret(OLD).unwrap();
    let server = start(with_hashes(admin_config(), vec![old_hash.clone()])).await;
    let etag = server
        .edge_policy(None)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    // The old secret is verified (and cached) before the rotation starts.
    assert_eq!(status_with(&server, OLD).await, 200);
    assert_eq!(status_with(&server, NEW).await, 401);

    let new_hash = hash_secret(NEW).unwrap();
    let added = secrets(&server, "rotating", json!({ "add_hash": new_hash })).await;
    assert_eq!(added.status, 200, "{}", added.text());
    assert_eq!(
        added.json(),
        json!({ "pool": POOL, "client_id": "rotating", "secret_hashes": 2 })
    );
    assert_eq!(status_with(&server, NEW).await, 200);
    assert_eq!(status_with(&server, OLD).await, 200);

    let removed = secrets(&server, "rotating", json!({ "remove_hash": old_hash })).await;
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert_eq!(removed.json()["secret_hashes"], 1);
    assert_eq!(
        status_with(&server, OLD).await,
        401,
        "the cached success is forgotten"
    );
    assert_eq!(status_with(&server, NEW).await, 200);

    // The last secret stays; unknown hashes, clients and malformed hashes are refused.
    let last = secrets(&server, "rotating", json!({ "remove_hash": new_hash })).await;
    assert_eq!(last.status, 400);
    assert_eq!(status_with(&server, NEW).await, 200);
    let gone = secrets(&server, "rotating", json!({ "remove_hash": old_hash })).await;
    assert_eq!(gone.status, 400);
    let unknown = secrets(&server, "nobody", json!({ "add_hash": new_hash })).await;
    assert_eq!(unknown.status, 404);
    let plain = secrets(&server, "rotating", json!({ "add_hash": "plain-secret" })).await;
    assert_eq!(plain.status, 400);
    let both = secrets(
        &server,
        "rotating",
        json!({ "add_hash": new_hash, "remove_hash": new_hash }),
    )
    .await;
    assert_eq!(both.status, 400);

    // Audit lines say what happened, never which hash.
    let lines: Vec<String> = server
        .audit
        .lines()
        .into_iter()
        .filter(|line| line.contains("admin.client_secrets"))
        .collect();
    assert_eq!(lines.len(), 6);
    for line in &lines {
        assert!(!line.contains("$argon2id$"), "{line}");
    }
    // Not a feed change.
    assert_eq!(
        server.edge_policy(None).await.header("etag"),
        Some(etag.as_str())
    );
}
