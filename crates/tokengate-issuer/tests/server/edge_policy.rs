//! The edge policy feed: `GET /{pool}/edge-policy.json` read by the core's own parser and
//! poller. Versions only grow (also across a restart), `ETag` / `If-None-Match` give `304`, and a
//! signed feed verifies with `edge-policy-keys.json` while a tampered one does not.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokengate::feed::{
    Feed, FeedConfig, FeedDocument, FeedError, FeedTrust, FeedUpdate, StalePolicy,
};
use tokengate::{Algorithm, KeySet, KeySetLimits};
use tokengate_issuer::{Config, EdgePolicyConfig, Issuer};

use crate::support::{
    admin_config, feed_key_file, key_file, request, sample_config, start, TestServer, NOW, POOL,
};

const MAX_BYTES: usize = 1 << 20;
const MAX_ENTRIES: usize = 100_000;

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn unsigned(body: &[u8]) -> Result<FeedDocument, FeedError> {
    FeedDocument::from_body(body, &FeedTrust::Unsigned, MAX_BYTES, MAX_ENTRIES)
}

fn version_of(response: &crate::support::HttpResponse) -> u64 {
    unsigned(&response.body)
        .expect("the core reads the feed")
        .version
}

fn signed_config(key: std::path::PathBuf, kid: Option<&str>) -> Config {
    let mut config = admin_config();
    config.pools[0].edge_policy = Some(EdgePolicyConfig {
        signing_key_pem: key,
        kid: kid.map(str::to_owned),
    });
    config
}

async fn keys_of(server: &TestServer) -> (Value, KeySet) {
    let response = request(
        "GET",
        &server.url(&format!("/{POOL}/edge-policy-keys.json")),
        &[],
        b"",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    let keys = KeySet::from_json(&response.body, KeySetLimits::default()).expect("a key set");
    (response.json(), keys)
}

#[tokio::test]
async fn the_unsigned_feed_is_a_format_1_document_the_core_reads() {
    let before = unix_millis();
    let server = start(admin_config()).await;
    let response = server.edge_policy(None).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("cache-control"), Some("no-cache"));
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    let document = unsigned(&response.body).expect("the core reads the feed");
    // Starts at the time in milliseconds.
    assert!(document.version >= before && document.version <= unix_millis());
    assert_eq!(
        response.header("etag"),
        Some(format!("\"{}\"", document.version).as_str())
    );
    let issuer = server.issuer.issuer_url(POOL).unwrap();
    assert_eq!(
        response.json(),
        json!({ "format": 1, "version": document.version, "issued_at": NOW,
                "providers": { issuer.clone(): {} } })
    );
    assert!(document.providers.get(&issuer).unwrap().is_empty());
    // The Rust API serves the same bytes.
    let same = server.issuer.edge_policy(POOL).unwrap();
    assert_eq!(same.body.as_bytes(), response.body.as_slice());
    assert!(!same.signed);
    // No signing key: no key set.
    let keys = request(
        "GET",
        &server.url(&format!("/{POOL}/edge-policy-keys.json")),
        &[],
        b"",
    )
    .await;
    assert_eq!(keys.status, 404);
    let unknown = request(
        "GET",
        &server.url("/eu-west-1_NoSuchPool/edge-policy.json"),
        &[],
        b"",
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn each_change_takes_a_higher_version_and_a_repeat_changes_nothing() {
    let server = start(admin_config()).await;
    let v0 = version_of(&server.edge_policy(None).await);
    let first = server
        .admin("revoke-client", &json!({ "client_id": "orders-writer" }))
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let v1 = first.json()["version"].as_u64().unwrap();
    assert!(v1 > v0);
    assert_eq!(first.json()["changed"], true);
    assert_eq!(version_of(&server.edge_policy(None).await), v1);

    let repeat = server
        .admin("revoke-client", &json!({ "client_id": "orders-writer" }))
        .await;
    assert_eq!(repeat.json()["version"], v1);
    assert_eq!(repeat.json()["changed"], false);

    let mut last = v1;
    for client in ["orders-reader", "not-allowed-client", "x"] {
        let response = server
            .admin("edge-clients", &json!({ "add": client }))
            .await;
        let version = response.json()["version"].as_u64().unwrap();
        assert!(version > last, "{version} after {last}");
        last = version;
    }
    assert_eq!(version_of(&server.edge_policy(None).await), last);
}

#[tokio::test]
async fn if_none_match_with_the_current_etag_is_304_without_a_body() {
    let server = start(admin_config()).await;
    let first = server.edge_policy(None).await;
    let etag = first.header("etag").unwrap().to_owned();
    let not_modified = server.edge_policy(Some(&etag)).await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert_eq!(not_modified.header("cache-control"), Some("no-cache"));
    assert!(not_modified.body.is_empty());
    assert_eq!(
        server.edge_policy(Some(&format!("W/{etag}"))).await.status,
        304
    );

    server
        .admin(
            "revoke-issued-before",
            &json!({ "client_id": "orders-reader" }),
        )
        .await;
    let changed = server.edge_policy(Some(&etag)).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
}

#[tokio::test]
async fn the_version_never_goes_back_across_a_restart() {
    let config = admin_config();
    let first = start(config.clone()).await;
    let mut last = version_of(&first.edge_policy(None).await);
    // Changes in quick succession, then a restart at once.
    for client in ["a", "b", "c", "d"] {
        let response = first.admin("edge-clients", &json!({ "add": client })).await;
        let version = response.json()["version"].as_u64().unwrap();
        assert!(version > last);
        last = version;
    }
    // Through the Rust API too: it also waits for the clock to pass the version.
    let change = first.issuer.add_edge_client(POOL, "e", None).unwrap();
    assert!(change.changed && change.version > last);
    last = change.version;
    first.handle.shutdown().await.unwrap();

    let second = start(config).await;
    let restarted = version_of(&second.edge_policy(None).await);
    assert!(restarted > last, "{restarted} after {last}");
}

#[tokio::test]
async fn the_core_feed_poller_revalidates_with_the_etag() {
    let server = start(admin_config()).await;
    let mut feed = Feed::new(FeedConfig {
        poll_s: 10,
        max_poll_s: 60,
        max_stale_s: 600,
        stale: StalePolicy::Keep,
        max_bytes: MAX_BYTES,
        max_entries: MAX_ENTRIES,
        fetch_timeout_s: 5,
        trust: FeedTrust::Unsigned,
        jitter_seed: 1,
    });
    fn poll(feed: &mut Feed, now: u64) -> tokengate::feed::FeedFetch {
        feed.poll(now).expect("a poll is due")
    }
    async fn fetch(
        server: &TestServer,
        feed: &mut Feed,
        now: u64,
        if_none_match: Option<String>,
    ) -> FeedUpdate {
        let response = server.edge_policy(if_none_match.as_deref()).await;
        feed.on_response(
            now,
            response.status,
            response.header("etag"),
            response.header("cache-control"),
            &response.body,
        )
        .expect("the feed answer is taken")
    }

    let first = poll(&mut feed, NOW);
    assert_eq!(first.if_none_match, None);
    let FeedUpdate::Applied { version } = fetch(&server, &mut feed, NOW, None).await else {
        panic!("first document not applied");
    };
    let again = poll(&mut feed, NOW + 10);
    assert_eq!(again.if_none_match, Some(format!("\"{version}\"")));
    assert_eq!(
        fetch(&server, &mut feed, NOW + 10, again.if_none_match).await,
        FeedUpdate::Unchanged
    );

    let change = server
        .admin("revoke-client", &json!({ "client_id": "orders-reader" }))
        .await;
    let new_version = change.json()["version"].as_u64().unwrap();
    let third = poll(&mut feed, NOW + 20);
    assert_eq!(
        fetch(&server, &mut feed, NOW + 20, third.if_none_match).await,
        FeedUpdate::Applied {
            version: new_version
        }
    );
    let overlay = feed
        .overlay_for(&[server.issuer.issuer_url(POOL).unwrap()])
        .unwrap();
    assert_eq!(
        overlay.revoked_clients.get("orders-reader"),
        Some(&Some((NOW + 3600) as f64))
    );
}

#[tokio::test]
async fn a_signed_feed_verifies_with_its_published_key_and_a_tampered_one_does_not() {
    let server = start(signed_config(feed_key_file(), None)).await;
    server
        .admin("revoke-client", &json!({ "client_id": "orders-writer" }))
        .await;
    let response = server.edge_policy(None).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/jose"));
    let (jwks, keys) = keys_of(&server).await;
    let jwk = &jwks["keys"][0];
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    // The default kid is Cognito-style: base64 of the SHA-256 of the public key's DER.
    let kid = jwk["kid"].as_str().unwrap();
    let pem = std::fs::read_to_string(feed_key_file()).unwrap();
    let der = p256::SecretKey::from_pkcs8_pem(&pem)
        .unwrap()
        .public_key()
        .to_public_key_der()
        .unwrap();
    assert_eq!(kid, STANDARD.encode(Sha256::digest(der.as_bytes())));

    let jws = response.text();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jws.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header,
        json!({ "alg": "ES256", "kid": kid, "typ": "tokengate-feed+jwt" })
    );
    let trust = FeedTrust::Signed {
        keys,
        algorithms: vec![Algorithm::Es256],
    };
    let document = FeedDocument::from_body(jws.as_bytes(), &trust, MAX_BYTES, MAX_ENTRIES)
        .expect("the signed feed verifies");
    assert_eq!(
        response.header("etag"),
        Some(format!("\"{}\"", document.version).as_str())
    );
    let issuer = server.issuer.issuer_url(POOL).unwrap();
    assert_eq!(
        document
            .providers
            .get(&issuer)
            .unwrap()
            .revoked_clients
            .get("orders-writer"),
        Some(&Some((NOW + 900) as f64))
    );
    // The same version is the same bytes (the signature is deterministic and cached).
    assert_eq!(server.edge_policy(None).await.body, response.body);

    // A cache in between drops the revocation and re-encodes the payload: refused.
    let parts: Vec<&str> = jws.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["providers"][&issuer] = json!({});
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    assert_eq!(
        FeedDocument::from_body(tampered.as_bytes(), &trust, MAX_BYTES, MAX_ENTRIES),
        Err(FeedError::SignatureInvalid("bad signature"))
    );
    // Served as plain JSON instead: refused where a signature is required.
    let plain = payload.to_string();
    assert_eq!(
        FeedDocument::from_body(plain.as_bytes(), &trust, MAX_BYTES, MAX_ENTRIES),
        Err(FeedError::SignatureMissing)
    );
    // An edge set up for an unsigned feed does not take a signed one either.
    assert_eq!(
        unsigned(jws.as_bytes()),
        Err(FeedError::UnexpectedSignature)
    );
}

#[tokio::test]
async fn an_rsa_feed_key_signs_rs256_under_the_configured_kid() {
    let server = start(signed_config(key_file(3), Some("feed-1"))).await;
    let (jwks, keys) = keys_of(&server).await;
    assert_eq!(jwks["keys"][0]["kid"], "feed-1");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    let body = server.edge_policy(None).await.body;
    let trust = FeedTrust::Signed {
        keys: keys.clone(),
        algorithms: vec![Algorithm::Rs256],
    };
    FeedDocument::from_body(&body, &trust, MAX_BYTES, MAX_ENTRIES).expect("RS256 feed verifies");
    // An edge that only accepts ES256 refuses it.
    let es256_only = FeedTrust::Signed {
        keys,
        algorithms: vec![Algorithm::Es256],
    };
    assert!(matches!(
        FeedDocument::from_body(&body, &es256_only, MAX_BYTES, MAX_ENTRIES),
        Err(FeedError::SignatureInvalid(_))
    ));
}

#[tokio::test]
async fn entries_carry_until_and_expired_ones_go_with_the_next_change_only() {
    let server = start(admin_config()).await;
    let issuer = server.issuer.issuer_url(POOL).unwrap();
    server
        .admin("revoke-client", &json!({ "client_id": "orders-writer" }))
        .await;
    let before = server.edge_policy_json().await;
    assert_eq!(
        before["providers"][&issuer]["revoke"]["client_ids"],
        json!([{ "id": "orders-writer", "until": NOW + 900 }])
    );
    // Time passes beyond until: same version, same content (edges ignore expired entries).
    server.clock.advance(901);
    assert_eq!(server.edge_policy_json().await, before);
    // The next change drops it.
    server
        .admin("revoke-client", &json!({ "client_id": "orders-reader" }))
        .await;
    let after = server.edge_policy_json().await;
    assert_eq!(
        after["providers"][&issuer]["revoke"]["client_ids"],
        json!([{ "id": "orders-reader", "until": NOW + 901 + 3600 }])
    );
    assert_eq!(after["issued_at"], NOW + 901);
}

#[tokio::test]
async fn the_feed_is_readable_cross_origin_with_if_none_match() {
    let server = start(sample_config()).await;
    let preflight = request(
        "OPTIONS",
        &server.url(&format!("/{POOL}/edge-policy.json")),
        &[
            ("origin", "http://127.0.0.1:8080"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "if-none-match"),
        ],
        b"",
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("if-none-match")
    );
    let get = server.edge_policy(None).await;
    assert!(get
        .header("access-control-expose-headers")
        .unwrap()
        .contains("etag"));
}

#[test]
fn a_configured_feed_key_that_is_not_a_key_names_the_field() {
    let mut config = sample_config();
    config.pools[0].edge_policy = Some(EdgePolicyConfig {
        signing_key_pem: "/nonexistent/feed-key.pem".into(),
        kid: None,
    });
    let Err(tokengate_issuer::Error::Config(error)) = Issuer::from_config(config.clone()) else {
        panic!("missing feed key accepted");
    };
    assert_eq!(error.field(), Some("pools[0].edge_policy.signing_key_pem"));
    // A key's SHA-256 kid is stable across starts.
    config.pools[0].edge_policy = Some(EdgePolicyConfig {
        signing_key_pem: feed_key_file(),
        kid: None,
    });
    let kid = |issuer: &Issuer| {
        issuer.edge_policy_keys(POOL).unwrap().unwrap()["keys"][0]["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let a = Issuer::from_config(config.clone()).unwrap();
    let b = Issuer::from_config(config).unwrap();
    assert_eq!(kid(&a), kid(&b));
}
