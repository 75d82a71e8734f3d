//! The pool's edge policy feed (`tokengate-feed` format 1, see the core crate's README, "Policy
//! feed"): the allow-list and the revocations every edge polls, optionally signed.
//!
//! The state is a set of entries, each with an `until` (except allow-list entries added
//! without one); a change prunes the entries already past their `until`, applies itself, and
//! only when the result differs does it take a new version. The version is
//! `max(previous + 1, Unix time in milliseconds)`, so it never goes back, also across a restart:
//! a restarted issuer starts at the current time in milliseconds, and the server answers a
//! change only once the clock has passed its version (see [`settle`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::config::EdgePolicyConfig;
use crate::keys::{IssuerKey, KeyError};

/// The JWS `typ` of a signed feed document.
pub const EDGE_POLICY_JWS_TYPE: &str = "tokengate-feed+jwt";

/// One rendering of the feed, as `GET /{poolId}/edge-policy.json` serves it.
#[derive(Clone, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub struct EdgePolicyDocument {
    /// The document's `version` (also its `ETag`, in quotes).
    pub version: u64,
    /// The JSON document, or the compact JWS whose payload it is when the feed is signed.
    pub body: String,
    /// Whether `body` is a compact JWS.
    pub signed: bool,
}

impl EdgePolicyDocument {
    /// `application/jose` for a signed document, `application/json` otherwise.
    pub fn content_type(&self) -> &'static str {
        if self.signed {
            "application/jose"
        } else {
            "application/json"
        }
    }

    /// `"<version>"`.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// One entry of the feed's `client_ids` allow-list.
#[derive(Clone, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub struct EdgeClient {
    /// The admitted client.
    pub client_id: String,
    /// Admitted while now < `until`; for good when `None`.
    pub until: Option<u64>,
}

/// What a feed change did.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[non_exhaustive]
pub struct PolicyChange {
    /// The feed's version after the change (the previous one when nothing changed).
    pub version: u64,
    /// Whether the document changed (and so took a new version).
    pub changed: bool,
    /// The entry's `until`, where the change has one.
    pub until: Option<u64>,
    /// The cut-off of a "revoke tokens issued before" entry.
    pub at: Option<u64>,
}

/// The signing key of a pool's feed.
pub(crate) enum FeedSigner {
    Es256 {
        kid: String,
        key: p256::ecdsa::SigningKey,
    },
    Rs256(Box<IssuerKey>),
}

impl FeedSigner {
    /// The configured key: P-256 (ES256) or RSA ≥ 2048 bits (RS256), PKCS#8 PEM.
    pub(crate) fn load(config: &EdgePolicyConfig) -> Result<FeedSigner, String> {
        let path = &config.signing_key_pem;
        let pem = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let signer = match p256::SecretKey::from_pkcs8_pem(&pem) {
            Ok(secret) => {
                let der = secret
                    .public_key()
                    .to_public_key_der()
                    .map_err(|error| format!("cannot encode the public key: {error}"))?;
                FeedSigner::Es256 {
                    kid: STANDARD.encode(Sha256::digest(der.as_bytes())),
                    key: p256::ecdsa::SigningKey::from(secret),
                }
            }
            Err(ec_error) => match IssuerKey::from_pkcs8_pem(&pem) {
                Ok(key) => FeedSigner::Rs256(Box::new(key)),
                Err(rsa_error) => {
                    return Err(format!(
                        "{}: neither a P-256 nor an RSA PKCS#8 PEM private key (as P-256: \
                         {ec_error}; as RSA: {rsa_error})",
                        path.display()
                    ))
                }
            },
        };
        Ok(match (&config.kid, signer) {
            (None, signer) => signer,
            (Some(kid), FeedSigner::Es256 { key, .. }) => FeedSigner::Es256 {
                kid: kid.clone(),
                key,
            },
            (Some(kid), FeedSigner::Rs256(key)) => {
                FeedSigner::Rs256(Box::new(key.with_kid(kid.clone())))
            }
        })
    }

    fn kid(&self) -> &str {
        match self {
            FeedSigner::Es256 { kid, .. } => kid,
            FeedSigner::Rs256(key) => key.kid(),
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            FeedSigner::Es256 { .. } => "ES256",
            FeedSigner::Rs256(_) => "RS256",
        }
    }

    /// The public key as a JWK with `kid`, `alg` and `use: "sig"`.
    pub(crate) fn jwk(&self) -> Value {
        match self {
            FeedSigner::Es256 { kid, key } => {
                let point = key.verifying_key().to_encoded_point(false);
                let coordinate =
                    |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c));
                json!({
                    "alg": "ES256",
                    "crv": "P-256",
                    "kid": kid,
                    "kty": "EC",
                    "use": "sig",
                    "x": coordinate(point.x()),
                    "y": coordinate(point.y()),
                })
            }
            FeedSigner::Rs256(key) => key.jwk(),
        }
    }

    /// Compact JWS of `payload`, header `{"alg","kid","typ":"tokengate-feed+jwt"}`.
    fn sign(&self, payload: &[u8]) -> Result<String, KeyError> {
        let header = json!({ "alg": self.alg(), "kid": self.kid(), "typ": EDGE_POLICY_JWS_TYPE });
        let mut jws = URL_SAFE_NO_PAD.encode(header.to_string());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signature = match self {
            FeedSigner::Es256 { key, .. } => {
                // RFC 6979 deterministic: the same document always gets the same bytes.
                let signature: p256::ecdsa::Signature =
                    key.try_sign(jws.as_bytes()).map_err(|error| {
                        KeyError::from_message(format!("ES256 signing failed: {error}"))
                    })?;
                signature.to_bytes().to_vec()
            }
            FeedSigner::Rs256(key) => key.sign(jws.as_bytes())?,
        };
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jws)
    }
}

impl fmt::Debug for FeedSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        f.debug_struct("FeedSigner")
            .field("alg", &self.alg())
            .field("kid", &self.kid())
            .finish()
    }
}

/// The entries of a pool's feed, for its one issuer. Times in seconds since the epoch.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub(crate) struct Entries {
    /// `None`: no `client_ids` in the document (the edges' configured allow-list applies).
    pub client_ids: Option<BTreeMap<String, Option<u64>>>,
    pub jti: BTreeMap<String, u64>,
    pub revoked_clients: BTreeMap<String, u64>,
    /// client → (cut-off, until).
    pub issued_before: BTreeMap<String, (u64, u64)>,
}

impl Entries {
    /// Drop entries that stopped applying at `now` (active while `now < until`).
    fn prune(&mut self, now: u64) {
        if let Some(list) = &mut self.client_ids {
            list.retain(|_, until| until.is_none_or(|until| now < until));
        }
        self.jti.retain(|_, until| now < *until);
        self.revoked_clients.retain(|_, until| now < *until);
        self.issued_before.retain(|_, (_, until)| now < *until);
    }

    fn provider(&self) -> Value {
        let entry = |id: &String, until: Option<u64>| match until {
            None => json!(id),
            Some(until) => json!({ "id": id, "until": until }),
        };
        let mut provider = Map::new();
        if let Some(list) = &self.client_ids {
            let list: Vec<Value> = list.iter().map(|(id, until)| entry(id, *until)).collect();
            provider.insert("client_ids".into(), Value::Array(list));
        }
        let mut revoke = Map::new();
        if !self.jti.is_empty() {
            let list = self.jti.iter().map(|(id, u)| entry(id, Some(*u))).collect();
            revoke.insert("jti".into(), Value::Array(list));
        }
        if !self.revoked_clients.is_empty() {
            let list = self
                .revoked_clients
                .iter()
                .map(|(id, u)| entry(id, Some(*u)))
                .collect();
            revoke.insert("client_ids".into(), Value::Array(list));
        }
        if !self.issued_before.is_empty() {
            let map = self
                .issued_before
                .iter()
                .map(|(client, (at, until))| (client.clone(), json!({ "at": at, "until": until })))
                .collect();
            revoke.insert("issued_before".into(), Value::Object(map));
        }
        if !revoke.is_empty() {
            provider.insert("revoke".into(), Value::Object(revoke));
        }
        Value::Object(provider)
    }
}

/// A pool's feed: its entries, version and signing key.
pub(crate) struct EdgePolicy {
    state: Mutex<State>,
    signer: Option<FeedSigner>,
}

struct State {
    version: u64,
    issued_at: u64,
    entries: Entries,
    /// The last rendering, reused while the version and the issuer are the same (so the same
    /// version is always the same bytes, and the signature is computed once per version).
    rendered: Option<(String, EdgePolicyDocument)>,
}

impl EdgePolicy {
    pub(crate) fn new(
        signer: Option<FeedSigner>,
        client_ids: Option<&[String]>,
        now: u64,
    ) -> EdgePolicy {
        let entries = Entries {
            client_ids: client_ids.map(|ids| ids.iter().map(|id| (id.clone(), None)).collect()),
            ..Entries::default()
        };
        EdgePolicy {
            state: Mutex::new(State {
                version: unix_millis(),
                issued_at: now,
                entries,
                rendered: None,
            }),
            signer,
        }
    }

    pub(crate) fn signer(&self) -> Option<&FeedSigner> {
        self.signer.as_ref()
    }

    #[cfg(test)]
    fn version(&self) -> u64 {
        self.lock().version
    }

    /// Apply `change` at `now` to the entries with the expired ones pruned; a new version when
    /// that differs from the document in use, nothing at all otherwise.
    pub(crate) fn change(&self, now: u64, change: impl FnOnce(&mut Entries)) -> (u64, bool) {
        let mut state = self.lock();
        let mut pruned = state.entries.clone();
        pruned.prune(now);
        let mut next = pruned.clone();
        change(&mut next);
        if next == pruned {
            // Nothing new; at most expired entries would go, which edges ignore anyway: not
            // worth a version (the same version must keep the same content).
            return (state.version, false);
        }
        state.version = state.version.saturating_add(1).max(unix_millis());
        state.issued_at = now;
        state.entries = next;
        state.rendered = None;
        (state.version, true)
    }

    /// Read the entries (for answers that list them).
    pub(crate) fn with_entries<T>(&self, read: impl FnOnce(&Entries) -> T) -> T {
        read(&self.lock().entries)
    }

    /// The document for `issuer`, signed when a key is configured.
    pub(crate) fn render(&self, issuer: &str) -> Result<EdgePolicyDocument, KeyError> {
        let mut state = self.lock();
        if let Some((rendered_for, document)) = &state.rendered {
            if rendered_for == issuer && document.version == state.version {
                return Ok(document.clone());
            }
        }
        let mut providers = Map::new();
        providers.insert(issuer.to_owned(), state.entries.provider());
        let json = json!({
            "format": 1,
            "version": state.version,
            "issued_at": state.issued_at,
            "providers": providers,
        })
        .to_string();
        let document = match &self.signer {
            Some(signer) => EdgePolicyDocument {
                version: state.version,
                body: signer.sign(json.as_bytes())?,
                signed: true,
            },
            None => EdgePolicyDocument {
                version: state.version,
                body: json,
                signed: false,
            },
        };
        state.rendered = Some((issuer.to_owned(), document.clone()));
        Ok(document)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change replaces the state in one assignment block; a panic cannot tear it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Milliseconds since the Unix epoch, from the system clock (never the issuer's manual clock:
/// versions must keep growing across restarts, which happen in real time).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// How long a change waits at most for the clock to pass its version. A version further ahead
/// means the system clock was set back; waiting would not help.
const MAX_SETTLE: Duration = Duration::from_millis(50);

/// How long to wait until the system clock has passed `version` (`None`: no wait, or too far).
/// A server answers a change only after that, so an issuer started afterwards (whose first
/// version is the time in milliseconds) starts above every version it answered.
pub(crate) fn settle_delay(version: u64) -> Option<Duration> {
    let now = unix_millis();
    if now > version {
        return None;
    }
    let wait = Duration::from_millis(version - now + 1);
    (wait <= MAX_SETTLE).then_some(wait)
}

/// Block until the system clock has passed `version` (at most [`MAX_SETTLE`]), for the
/// synchronous API.
pub(crate) fn settle_blocking(version: u64) {
    while let Some(wait) = settle_delay(version) {
        std::thread::sleep(wait);
    }
}

/// Like [`settle_blocking`], for request handlers.
pub(crate) async fn settle(version: u64) {
    while let Some(wait) = settle_delay(version) {
        tokio::time::sleep(wait).await;
    }
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison, RFC 9110 §13.1.2).
pub(crate) fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let header = header.trim();
    if header == "*" {
        return true;
    }
    let bare = |tag: &str| {
        let tag = tag.trim();
        tag.strip_prefix("W/").unwrap_or(tag).to_owned()
    };
    let etag = bare(etag);
    header.split(',').any(|candidate| bare(candidate) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_takes_a_new_version_only_when_the_document_changes() {
        let policy = EdgePolicy::new(None, None, 1000);
        let v0 = policy.version();
        let (v1, changed) = policy.change(1000, |e| {
            e.jti.insert("a".into(), 2000);
        });
        assert!(changed && v1 > v0);
        let (same, changed) = policy.change(1001, |e| {
            e.jti.insert("a".into(), 2000);
        });
        assert_eq!((same, changed), (v1, false));
        // Time passing alone never bumps the version.
        let (same, changed) = policy.change(5000, |_| {});
        assert_eq!((same, changed), (v1, false));
        let (v2, changed) = policy.change(5000, |e| {
            e.jti.insert("b".into(), 9000);
        });
        assert!(changed && v2 > v1);
        // The change pruned the expired entry.
        policy.with_entries(|e| assert_eq!(e.jti.keys().collect::<Vec<_>>(), ["b"]));
    }

    #[test]
    fn the_same_version_renders_the_same_bytes() {
        let policy = EdgePolicy::new(None, Some(&["x".to_owned()]), 1000);
        let a = policy.render("https://i/p").unwrap();
        let b = policy.render("https://i/p").unwrap();
        assert_eq!(a, b);
        let doc: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(
            doc["providers"]["https://i/p"],
            json!({ "client_ids": ["x"] })
        );
        assert_eq!(doc["issued_at"], 1000);
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        assert!(if_none_match_matches("\"5\"", "\"5\""));
        assert!(if_none_match_matches("W/\"5\"", "\"5\""));
        assert!(if_none_match_matches("\"4\", \"5\"", "\"5\""));
        assert!(if_none_match_matches("*", "\"5\""));
        assert!(!if_none_match_matches("\"50\"", "\"5\""));
        assert!(!if_none_match_matches("5", "\"5\""));
    }

    #[test]
    fn settling_waits_only_for_versions_at_or_just_ahead_of_the_clock() {
        assert_eq!(settle_delay(0), None);
        assert_eq!(settle_delay(unix_millis() + 3_600_000), None);
        assert!(settle_delay(unix_millis() + 10).is_some());
    }
}
