//! Shared test helpers: the loaded filter, TEST keys, token signing, configs.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier as _};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokengate_proxy_host::{Env, Filter, Request, Response, Start, Vm};

pub const NOW: u64 = 1_767_268_800;
pub const ISS: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST0pool";
pub const CLIENT: &str = "client-a";
/// The proxy-wasm status `BadArgument`.
pub const BAD_ARGUMENT: i32 = 2;

/// The built filter, compiled once per test binary.
pub fn filter() -> &'static Filter {
    static FILTER: OnceLock<Filter> = OnceLock::new();
    FILTER.get_or_init(|| {
        let path = Filter::default_path();
        match Filter::load(&path) {
            Ok(f) => f,
            Err(e) => panic!(
                "cannot load {}: {e:#} (run scripts/build-proxy.sh first)",
                path.display()
            ),
        }
    })
}

pub fn vectors_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../vectors"))
}

/// A fixed TEST signing key with its kid.
pub struct TestKey {
    pub kid: String,
    key: SigningKey<Sha256>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl TestKey {
    pub fn load(file: &str, kid: &str) -> TestKey {
        let pem = std::fs::read_to_string(vectors_dir().join("keys").join(file)).unwrap();
        let key = RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        TestKey {
            kid: kid.into(),
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
            key: SigningKey::<Sha256>::new(key),
        }
    }

    pub fn jwk(&self) -> Value {
        json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
               "n": URL_SAFE_NO_PAD.encode(&self.n), "e": URL_SAFE_NO_PAD.encode(&self.e)})
    }

    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"kid": self.kid, "alg": "RS256"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.key.sign(input.as_bytes()).to_vec();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

pub fn key_a() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::load("rsa-a.pem", "test-key-a"))
}

pub fn key_b() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::load("rsa-b.pem", "test-key-b"))
}

pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

/// Cognito-like access-token claims; `extra` members replace or add.
pub fn claims(scope: &str, extra: Value) -> Value {
    let mut c = json!({
        "sub": CLIENT, "client_id": CLIENT, "token_use": "access", "scope": scope,
        "iss": ISS, "iat": NOW - 60, "exp": NOW + 3600, "jti": format!("jti-{scope}-{}", extra),
    });
    if let (Some(m), Value::Object(e)) = (c.as_object_mut(), extra) {
        m.extend(e);
    }
    c
}

pub fn token(scope: &str) -> String {
    key_a().sign(&claims(scope, json!({})))
}

/// The orders API config with inline keys; `patch` members replace top-level ones.
pub fn config(patch: Value) -> String {
    let mut c = json!({
        "providers": [{
            "issuer": ISS,
            "jwks": {"keys": jwks(&[key_a()])["keys"]},
            "client_ids": [CLIENT, "client-b"], "algorithms": ["RS256"], "leeway_s": 60
        }],
        "rules": [
            {"name": "health", "match": {"prefix": "/health"}, "allow": "anonymous"},
            {"name": "orders-read", "match": {"prefix": "/orders", "methods": ["GET", "HEAD"]}, "scopes": {"all": ["orders/read"]}},
            {"name": "orders-write", "match": {"prefix": "/orders"}, "scopes": {"all": ["orders/write"]}},
            {"name": "admin", "match": {"prefix": "/admin"}, "scopes": {"any": ["admin/all"]}, "client_ids": ["client-b"]}
        ],
        "default": "deny",
        "forward": {"client_id": "x-tokengate-client-id", "scope": "x-tokengate-scope"}
    });
    if let (Some(m), Value::Object(p)) = (c.as_object_mut(), patch) {
        m.extend(p);
    }
    c.to_string()
}

/// Config whose provider fetches its JWKS from cluster `idp`.
pub fn remote_config(patch: Value) -> String {
    let mut c: Value = serde_json::from_str(&config(patch)).unwrap();
    c["providers"][0]["jwks"] = json!({
        "cluster": "idp", "path": "/eu-west-1_TEST0pool/.well-known/jwks.json",
        "authority": "cognito-idp.test", "refresh_s": 900, "timeout_ms": 1000
    });
    c.to_string()
}

pub fn start(env: &Env, config: &str) -> Vm {
    match env.vm(filter(), config) {
        Ok(vm) => vm,
        Err(Start::Refused(logs)) => panic!("refused: {logs:?}"),
        Err(Start::Trap(e)) => panic!("trap: {e:#}"),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn sha256_b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
}

pub fn assert_denied(r: &Response, status: u32, code: &str) {
    assert_eq!(r.status(), status, "{r:?}");
    assert_eq!(r.error_code().as_deref(), Some(code), "{r:?}");
}

/// A request as Envoy hands it to the filter (pseudo-headers, then what a client and Envoy add).
pub fn envoy_request(method: &str, path: &str, token: Option<&str>) -> Request {
    let mut r = Request::new(method, path)
        .header(":scheme", "http")
        .header("user-agent", "curl/8.5.0")
        .header("accept", "*/*")
        .header("x-forwarded-proto", "http")
        .header("x-request-id", "7c4bb3b0-6d5a-4f5e-9c84-3f3d1c0a8e11");
    if let Some(t) = token {
        r = r.bearer(t);
    }
    r
}

/// The length-delimited fields of a protobuf message, by number (the arguments message has
/// nothing else).
fn fields(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        assert_eq!(tag & 7, 2, "only length-delimited fields are sent");
        let (mut len, mut shift, mut i) = (0usize, 0, 0);
        loop {
            let b = rest[i];
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        out.push((tag >> 3, rest[i..i + len].to_vec()));
        bytes = &rest[i + len..];
    }
    out
}

/// Envoy's `verify_signature` foreign function, served by the `rsa` and `p256` crates (independent of the
/// core's RSA): `VerifySignatureArguments` in, `VerifySignatureResult { result, error }` out.
pub fn envoy_verify_signature(args: &[u8]) -> Result<Vec<u8>, i32> {
    let f = fields(args);
    let get = |n: u8| f.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_slice());
    // No key (the filter's probe at start sends an empty message): Envoy's BadArgument.
    let key = get(2).ok_or(BAD_ARGUMENT)?;
    assert_eq!(get(1), Some(&b"sha256"[..]));
    let (sig, text) = (get(3).unwrap_or_default(), get(4).unwrap_or_default());
    let ok = if let Ok(rsa_key) = RsaPublicKey::from_public_key_der(key) {
        Signature::try_from(sig).is_ok_and(|sig| {
            VerifyingKey::<Sha256>::new(rsa_key)
                .verify(text, &sig)
                .is_ok()
        })
    } else {
        let ec_key =
            p256::ecdsa::VerifyingKey::from_public_key_der(key).map_err(|_| BAD_ARGUMENT)?;
        p256::ecdsa::Signature::from_der(sig).is_ok_and(|sig| ec_key.verify(text, &sig).is_ok())
    };
    Ok(if ok {
        vec![0x08, 0x01]
    } else {
        let mut no = vec![0x12, 14];
        no.extend_from_slice(b"does not match");
        no
    })
}
