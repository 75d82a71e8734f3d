//! A typed view of a verified payload (RFC 7519 §4, Cognito access-token claims). Unknown claims
//! are kept as raw JSON for hosts to forward or log.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::json::Value;

use crate::signature::sha256;

use crate::token::JsonObject;

/// The claims of a token. Accessors return `None` when the claim is absent or has another JSON
/// type; the policy step decides whether that is `claim_missing` or `claim_invalid`.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    map: JsonObject,
    // `exp`, `nbf`, `iat`, read once: every verified-token cache hit checks them again.
    exp: Time,
    nbf: Time,
    iat: Time,
    // SHA-256 of `jti`, made on first use: audit records carry it, and a token the cache
    // answers is recorded on every request.
    jti_sha256: LazyDigest,
}

/// A claim read as a time (NumericDate, RFC 7519 §2): JSON numbers only, possibly fractional.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Time {
    /// The claim is absent.
    Absent,
    /// The claim is a JSON number.
    At(f64),
    /// The claim is present with another type (strings are never parsed as times).
    NotNumber,
}

impl Claims {
    /// Wrap a payload object.
    pub fn new(map: JsonObject) -> Claims {
        Claims {
            exp: time_of(&map, "exp"),
            nbf: time_of(&map, "nbf"),
            iat: time_of(&map, "iat"),
            jti_sha256: LazyDigest::default(),
            map,
        }
    }

    /// SHA-256 of `jti` (what audit records carry instead of the `jti`), computed once per
    /// claims and kept.
    pub fn jti_sha256(&self) -> Option<[u8; 32]> {
        let jti = self.jti()?;
        Some(self.jti_sha256.get_or(|| sha256(jti.as_bytes())))
    }

    /// Any claim by name, as raw JSON (`custom:tenant`, `cnf`, …).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// The whole payload object.
    pub fn as_map(&self) -> &JsonObject {
        &self.map
    }

    /// Consume into the payload object.
    pub fn into_map(self) -> JsonObject {
        self.map
    }

    /// A string claim.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(Value::as_str)
    }

    /// `iss`.
    pub fn iss(&self) -> Option<&str> {
        self.str("iss")
    }

    /// `client_id` (Cognito access tokens carry it instead of `aud`).
    pub fn client_id(&self) -> Option<&str> {
        self.str("client_id")
    }

    /// `token_use` (`access` or `id` in Cognito tokens).
    pub fn token_use(&self) -> Option<&str> {
        self.str("token_use")
    }

    /// `jti`.
    pub fn jti(&self) -> Option<&str> {
        self.str("jti")
    }

    /// `sub`.
    pub fn sub(&self) -> Option<&str> {
        self.str("sub")
    }

    /// A time claim (`exp`, `nbf`, `iat`, `auth_time`).
    pub fn time(&self, name: &str) -> Time {
        match name {
            "exp" => self.exp(),
            "nbf" => self.nbf(),
            "iat" => self.iat(),
            _ => time_of(&self.map, name),
        }
    }

    /// `exp` (RFC 7519 §4.1.4), read when the claims were built.
    pub fn exp(&self) -> Time {
        self.exp
    }

    /// `nbf` (RFC 7519 §4.1.5), read when the claims were built.
    pub fn nbf(&self) -> Time {
        self.nbf
    }

    /// `iat` (RFC 7519 §4.1.6), read when the claims were built.
    pub fn iat(&self) -> Time {
        self.iat
    }

    /// The granted scopes: the `scope` string split on single spaces (RFC 6749 §3.3). A missing
    /// or non-string `scope` grants nothing; `scp` is not read.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.str("scope").into_iter().flat_map(|s| s.split(' '))
    }

    /// Whether the exact scope `wanted` was granted.
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scopes().any(|s| s == wanted)
    }

    /// The scope claim as given (for forwarding), empty when absent.
    pub fn scope_string(&self) -> String {
        String::from(self.str("scope").unwrap_or(""))
    }
}

/// 32 bytes computed on first use and kept. Shared between threads without a lock or `unsafe`:
/// threads that race to fill it compute the same bytes, so any interleaving of their stores
/// leaves the right value, and `ready` is published after the words.
#[derive(Default)]
struct LazyDigest {
    ready: AtomicBool,
    words: [AtomicU64; 4],
}

impl LazyDigest {
    fn get_or(&self, compute: impl FnOnce() -> [u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        if self.ready.load(Ordering::Acquire) {
            for (bytes, word) in out.chunks_exact_mut(8).zip(&self.words) {
                bytes.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            return out;
        }
        out = compute();
        for (bytes, word) in out.chunks_exact(8).zip(&self.words) {
            let value = <[u8; 8]>::try_from(bytes).map_or(0, u64::from_le_bytes);
            word.store(value, Ordering::Relaxed);
        }
        self.ready.store(true, Ordering::Release);
        out
    }
}

impl Clone for LazyDigest {
    fn clone(&self) -> LazyDigest {
        let copy = LazyDigest::default();
        if self.ready.load(Ordering::Acquire) {
            for (to, from) in copy.words.iter().zip(&self.words) {
                to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            copy.ready.store(true, Ordering::Release);
        }
        copy
    }
}

impl PartialEq for LazyDigest {
    /// A cache of a function of the claims: it never makes two claims differ.
    fn eq(&self, _other: &LazyDigest) -> bool {
        true
    }
}

impl core::fmt::Debug for LazyDigest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LazyDigest")
    }
}

fn time_of(map: &JsonObject, name: &str) -> Time {
    match map.get(name) {
        None => Time::Absent,
        Some(Value::Number(n)) => n.as_f64().map_or(Time::NotNumber, Time::At),
        Some(_) => Time::NotNumber,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: Value) -> Claims {
        match v {
            Value::Object(m) => Claims::new(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn scope_matches_whole_space_separated_elements_only() {
        let c = claims(json!({"scope": "orders/readwrite  orders/write"}));
        assert!(!c.has_scope("orders/read"));
        assert!(c.has_scope("orders/write"));
        assert!(c.has_scope(""), "double space yields an empty element");
        let c = claims(json!({"scope": ["orders/read"], "scp": "orders/read"}));
        assert!(!c.has_scope("orders/read"));
    }

    #[test]
    fn the_jti_digest_is_made_once_and_survives_clones() {
        let c = claims(json!({"jti": "abc"}));
        let want = sha256(b"abc");
        assert_eq!(c.jti_sha256(), Some(want));
        let copy = c.clone();
        assert_eq!(copy.jti_sha256(), Some(want));
        assert_eq!(copy, c);
        assert_eq!(
            c.jti_sha256.get_or(|| [0; 32]),
            want,
            "kept, not computed again"
        );
        assert_eq!(claims(json!({"jti": 7})).jti_sha256(), None);
    }

    #[test]
    fn times_are_numbers_only() {
        let c = claims(json!({"exp": 1.5, "nbf": "10", "iat": null}));
        assert_eq!(c.time("exp"), Time::At(1.5));
        assert_eq!(c.time("nbf"), Time::NotNumber);
        assert_eq!(c.time("iat"), Time::NotNumber);
        assert_eq!(c.time("auth_time"), Time::Absent);
    }
}
