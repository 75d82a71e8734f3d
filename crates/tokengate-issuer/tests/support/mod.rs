//! Shared by the integration tests: a started issuer, a small HTTP client, and an RS256 check
//! written from the RFCs with the `rsa` crate (not with the code under test).
#![allow(dead_code)]

use std::path::PathBuf;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use serde_json::Value;
use sha2::Sha256;
use tokengate_issuer::{AuditBuffer, AuditSink, Config, Issuer, ManualClock, ServerHandle};

/// The sample config's pool.
pub const POOL: &str = "eu-west-1_LocalPool1";
/// 2026-01-01T12:00:00Z: tests never read the wall clock.
pub const NOW: u64 = 1_767_268_800;

pub fn key_file(n: usize) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/keys/test-key-{n}.pem"))
}

/// The built-in sample config with the committed test keys, so no key is generated.
pub fn sample_config() -> Config {
    let mut config = Config::sample().expect("sample config is valid");
    config.pools[0].keys.pem_files = vec![key_file(1), key_file(2), key_file(3)];
    config
}

pub struct TestServer {
    pub issuer: Issuer,
    pub handle: ServerHandle,
    pub clock: ManualClock,
    pub audit: AuditBuffer,
}

/// Start `config` on 127.0.0.1:0 with a manual clock at [`NOW`] and audit lines in memory.
pub async fn start(config: Config) -> TestServer {
    let clock = ManualClock::new(NOW);
    let audit = AuditBuffer::new();
    let issuer = Issuer::builder(config)
        .clock(clock.clone())
        .audit(AuditSink::Memory(audit.clone()))
        .build()
        .expect("issuer builds");
    let handle = issuer.serve_loopback().await.expect("server starts");
    TestServer {
        issuer,
        handle,
        clock,
        audit,
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.url())
    }

    /// `POST /oauth2/token` with a form body and optional HTTP Basic credentials (sent raw:
    /// the demo ids and secrets need no form-encoding).
    pub async fn token(&self, form: &str, basic: Option<(&str, &str)>) -> HttpResponse {
        let authorization = basic.map(|(id, secret)| basic_header(id, secret));
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(authorization) = &authorization {
            headers.push(("authorization", authorization));
        }
        request(
            "POST",
            &self.url("/oauth2/token"),
            &headers,
            form.as_bytes(),
        )
        .await
    }

    pub async fn jwks(&self) -> Value {
        let response = request(
            "GET",
            &self.url(&format!("/{POOL}/.well-known/jwks.json")),
            &[],
            b"",
        )
        .await;
        assert_eq!(response.status, 200);
        response.json()
    }

    /// A token for `orders-writer` through the token endpoint.
    pub async fn writer_token(&self) -> String {
        let response = self
            .token(
                "grant_type=client_credentials",
                Some(("orders-writer", "orders-writer-secret")),
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }
}

/// The admin token of [`admin_config`].
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// [`sample_config`] with the admin routes switched on.
pub fn admin_config() -> Config {
    let mut config = sample_config();
    config.server.admin_token = Some(ADMIN_TOKEN.to_owned());
    config
}

/// The committed P-256 test key for signing the edge policy feed.
pub fn feed_key_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/keys/test-feed-key-es256.pem")
}

impl TestServer {
    /// `GET /{POOL}/edge-policy.json`, with `If-None-Match` when given.
    pub async fn edge_policy(&self, if_none_match: Option<&str>) -> HttpResponse {
        let mut headers = Vec::new();
        if let Some(etag) = if_none_match {
            headers.push(("if-none-match", etag));
        }
        request(
            "GET",
            &self.url(&format!("/{POOL}/edge-policy.json")),
            &headers,
            b"",
        )
        .await
    }

    /// The feed's current version, read over HTTP (unsigned feeds only).
    pub async fn edge_policy_json(&self) -> Value {
        let response = self.edge_policy(None).await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    /// `POST /admin/{POOL}/{action}` with a JSON body and the admin token.
    pub async fn admin(&self, action: &str, body: &Value) -> HttpResponse {
        self.admin_with(action, body, Some(ADMIN_TOKEN)).await
    }

    /// `POST /admin/{POOL}/{action}` with `token` (or none) as the bearer.
    pub async fn admin_with(
        &self,
        action: &str,
        body: &Value,
        token: Option<&str>,
    ) -> HttpResponse {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(authorization) = &authorization {
            headers.push(("authorization", authorization));
        }
        request(
            "POST",
            &self.url(&format!("/admin/{POOL}/{action}")),
            &headers,
            body.to_string().as_bytes(),
        )
        .await
    }

    /// `POST /oauth2/revoke` with a form body and optional HTTP Basic credentials.
    pub async fn revoke(&self, form: &str, basic: Option<(&str, &str)>) -> HttpResponse {
        let authorization = basic.map(|(id, secret)| basic_header(id, secret));
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(authorization) = &authorization {
            headers.push(("authorization", authorization));
        }
        request(
            "POST",
            &self.url("/oauth2/revoke"),
            &headers,
            form.as_bytes(),
        )
        .await
    }

    /// A token for `client_id` with `secret` through the token endpoint.
    pub async fn token_for(&self, client_id: &str, secret: &str) -> String {
        let response = self
            .token("grant_type=client_credentials", Some((client_id, secret)))
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }
}

pub fn basic_header(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request builds");
    let response = client.request(request).await.expect("request succeeds");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body arrives").to_bytes();
    HttpResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.to_vec(),
    }
}

/// A decoded compact JWS: raw header and payload JSON text, header, claims.
pub struct DecodedToken {
    pub header_json: String,
    pub payload_json: String,
    pub header: Value,
    pub claims: Value,
}

pub fn decode(token: &str) -> DecodedToken {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS has 3 parts");
    let text = |part: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    let (header_json, payload_json) = (text(parts[0]), text(parts[1]));
    DecodedToken {
        header: serde_json::from_str(&header_json).unwrap(),
        claims: serde_json::from_str(&payload_json).unwrap(),
        header_json,
        payload_json,
    }
}

/// RS256 (RFC 7518 §3.3) with the JWK whose kid matches, or an error saying why not.
pub fn verify_rs256(token: &str, jwks: &Value) -> Result<DecodedToken, String> {
    let decoded = decode(token);
    let kid = decoded.header["kid"].as_str().ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|jwk| jwk["kid"] == kid)
        .ok_or_else(|| format!("kid {kid} not in JWKS"))?;
    let component = |name: &str| {
        BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap())
    };
    let public = RsaPublicKey::new(component("n"), component("e")).map_err(|e| e.to_string())?;
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature = Signature::try_from(URL_SAFE_NO_PAD.decode(signature).unwrap().as_slice())
        .map_err(|e| e.to_string())?;
    VerifyingKey::<Sha256>::new(public)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| "signature invalid".to_owned())?;
    Ok(decoded)
}
