//! JWK Set parsing (RFC 7517 §5) into ready-to-use verifying keys. Entries that cannot be used
//! are kept by `kid` only so that a token naming them gets `key_unusable`; they never verify.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::{Error, ErrorCode};
use crate::json::{self, Object, Value};
use crate::policy::{Algorithm, DEFAULT_MIN_RSA_BITS};
use crate::signature::{PublicKey, RsaVerifyingKey};

/// Largest JWKS body accepted by default.
pub const DEFAULT_MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most keys read from one JWKS by default.
pub const DEFAULT_MAX_KEYS: usize = 100;

/// Limits applied while parsing a JWK Set.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct KeySetLimits {
    /// Largest body in bytes.
    pub max_bytes: usize,
    /// Most entries read; the rest are ignored.
    pub max_keys: usize,
}

impl Default for KeySetLimits {
    fn default() -> Self {
        KeySetLimits {
            max_bytes: DEFAULT_MAX_JWKS_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// Why a JWKS document was not accepted as a whole.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum JwksError {
    /// Larger than the limit.
    TooLarge,
    /// Not a JSON object with a `keys` array.
    NotAKeySet,
    /// Parsed, but no entry is usable for signature verification.
    NoUsableKeys,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwksError::TooLarge => "JWKS body is larger than the limit",
            JwksError::NotAKeySet => "JWKS is not a JSON object with a \"keys\" array",
            JwksError::NoUsableKeys => "JWKS holds no usable signing key",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for JwksError {}

/// A parsed JWK Set.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    /// Unique to one parse in this process (0 for [`KeySet::default`]): two sets with the same
    /// serial are copies of one parse and hold the same keys ([`KeySet::serial`]).
    serial: u64,
}

/// The next [`KeySet::serial`]. 64 bits never wrap: even a set parsed every microsecond would
/// take half a million years.
fn next_serial() -> u64 {
    use core::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[derive(Clone, Debug)]
struct KeyEntry {
    kid: String,
    alg: Option<String>,
    usable_for_sig: bool,
    key: Option<PublicKey>,
    fingerprint: [u8; 32],
}

impl KeySet {
    /// Parse a JWKS body.
    ///
    /// # Errors
    /// [`JwksError`] when the body is too large, not a key set, or holds no usable key (at the
    /// default minimum RSA size). A key cache never replaces a good set with such a result.
    pub fn from_json(body: &[u8], limits: KeySetLimits) -> Result<KeySet, JwksError> {
        if body.len() > limits.max_bytes {
            return Err(JwksError::TooLarge);
        }
        let doc = json::parse(body).map_err(|_| JwksError::NotAKeySet)?;
        let set = KeySet::from_value(&doc, limits)?;
        if set.usable_count(DEFAULT_MIN_RSA_BITS) == 0 {
            return Err(JwksError::NoUsableKeys);
        }
        Ok(set)
    }

    /// Build from an already-parsed JWKS value (inline configuration). Unlike
    /// [`KeySet::from_json`] an empty result is not an error here.
    ///
    /// # Errors
    /// [`JwksError::NotAKeySet`].
    pub fn from_value(doc: &Value, limits: KeySetLimits) -> Result<KeySet, JwksError> {
        let keys = doc
            .as_object()
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
            .ok_or(JwksError::NotAKeySet)?;
        let entries = keys
            .iter()
            .take(limits.max_keys)
            .filter_map(parse_entry)
            .collect();
        Ok(KeySet {
            entries,
            serial: next_serial(),
        })
    }

    /// A number that only copies of this parse share (never 0 for a parsed set). The
    /// verified-token cache notes it with each entry: while the same set is in place, a hit
    /// needs no look at the key under its kid.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Number of entries that can verify something with RSA keys of at least `min_rsa_bits`.
    pub fn usable_count(&self, min_rsa_bits: usize) -> usize {
        self.entries
            .iter()
            .filter(|e| {
                e.usable_for_sig
                    && e.key
                        .as_ref()
                        .is_some_and(|k| strong_enough(k, min_rsa_bits))
            })
            .count()
    }

    /// Whether any entry has this `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.entries.iter().any(|e| e.kid == kid)
    }

    /// SHA-256 over what decides how the key under `kid` verifies (`kty`, `alg`, `use`, `n`,
    /// `e`, `crv`, `x`, `y`), or `None` when no entry or several entries have this kid. The
    /// verified-token cache binds its entries to this rather than to the kid string.
    pub fn fingerprint(&self, kid: &str) -> Option<[u8; 32]> {
        let mut matches = self.entries.iter().filter(|e| e.kid == kid);
        let first = matches.next()?;
        match matches.next() {
            None => Some(first.fingerprint),
            Some(_) => None,
        }
    }

    /// The kids in the set, in document order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.kid.as_str())
    }

    /// Select the key for `kid` and check it can verify `alg` (pipeline steps 6 and 7).
    ///
    /// # Errors
    /// `kid_unknown` when no entry has exactly this kid; `key_unusable` when the entry is
    /// malformed, weak, of the wrong type, restricted to another `alg` or `use`, or ambiguous.
    pub fn select(
        &self,
        kid: &str,
        alg: Algorithm,
        min_rsa_bits: usize,
    ) -> Result<&PublicKey, Error> {
        let mut matches = self.entries.iter().filter(|e| e.kid == kid);
        let entry = matches.next().ok_or_else(|| {
            Error::new(
                ErrorCode::KidUnknown,
                "no key in the issuer's key set has this kid",
            )
        })?;
        if matches.next().is_some() {
            return Err(Error::new(
                ErrorCode::KeyUnusable,
                "several keys share this kid",
            ));
        }
        let unusable = |why: &'static str| Error::new(ErrorCode::KeyUnusable, why);
        let key = entry.key.as_ref().ok_or_else(|| {
            unusable("the key with this kid is malformed or of an unsupported type")
        })?;
        if !entry.usable_for_sig {
            return Err(unusable(
                "the key with this kid is not for signatures (use)",
            ));
        }
        if entry.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
            return Err(unusable(
                "the key with this kid is restricted to another alg",
            ));
        }
        if !key.fits(alg) {
            return Err(unusable(
                "the key with this kid does not fit the token's alg",
            ));
        }
        if !strong_enough(key, min_rsa_bits) {
            return Err(unusable(
                "the RSA key with this kid is shorter than the minimum size",
            ));
        }
        Ok(key)
    }
}

fn strong_enough(key: &PublicKey, min_rsa_bits: usize) -> bool {
    match key {
        PublicKey::Rsa(k) => k.bits() >= min_rsa_bits,
        PublicKey::Ec(_) => true,
    }
}

fn parse_entry(jwk: &Value) -> Option<KeyEntry> {
    let obj = jwk.as_object()?;
    let kid = obj.get("kid")?.as_str()?;
    let alg = match obj.get("alg") {
        None => None,
        Some(Value::String(a)) => Some(String::from(a.as_str())),
        // A non-string alg cannot equal any header alg.
        Some(_) => Some(String::new()),
    };
    let usable_for_sig = match obj.get("use") {
        None => true,
        Some(u) => u.as_str() == Some("sig"),
    };
    let key = match obj.get("kty").and_then(Value::as_str) {
        Some("RSA") => rsa_key(obj),
        Some("EC") => ec_key(obj),
        _ => None,
    };
    Some(KeyEntry {
        kid: String::from(kid),
        alg,
        usable_for_sig,
        key,
        fingerprint: fingerprint(obj),
    })
}

/// Members are hashed as (name, JSON text of the value) pairs, each length-prefixed, so that
/// no two different entries share a hash by moving bytes from one member to the next.
fn fingerprint(obj: &Object) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for name in ["kty", "alg", "use", "n", "e", "crv", "x", "y"] {
        let text = obj.get(name).map(Value::to_json).unwrap_or_default();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().into()
}

fn member_bytes(obj: &Object, name: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(obj.get(name)?.as_str()?).ok()
}

fn rsa_key(obj: &Object) -> Option<PublicKey> {
    let n = member_bytes(obj, "n")?;
    let e = member_bytes(obj, "e")?;
    RsaVerifyingKey::new(&n, &e).ok().map(PublicKey::Rsa)
}

fn ec_key(obj: &Object) -> Option<PublicKey> {
    if obj.get("crv").and_then(Value::as_str) != Some("P-256") {
        return None;
    }
    let x: [u8; 32] = member_bytes(obj, "x")?.try_into().ok()?;
    let y: [u8; 32] = member_bytes(obj, "y")?.try_into().ok()?;
    let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    p256::ecdsa::VerifyingKey::from_encoded_point(&point)
        .ok()
        .map(|key| PublicKey::Ec(key.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_that_are_not_key_sets_are_refused() {
        let l = KeySetLimits::default();
        assert_eq!(
            KeySet::from_json(b"<html>", l).unwrap_err(),
            JwksError::NotAKeySet
        );
        assert_eq!(
            KeySet::from_json(b"{\"keys\":{}}", l).unwrap_err(),
            JwksError::NotAKeySet
        );
        assert_eq!(
            KeySet::from_json(b"{\"keys\":[]}", l).unwrap_err(),
            JwksError::NoUsableKeys
        );
        assert_eq!(
            KeySet::from_json(
                b"{\"keys\":[{\"kid\":\"a\",\"kty\":\"oct\",\"k\":\"AA\"}]}",
                l
            )
            .unwrap_err(),
            JwksError::NoUsableKeys
        );
        let big = alloc::vec![b' '; l.max_bytes + 1];
        assert_eq!(KeySet::from_json(&big, l).unwrap_err(), JwksError::TooLarge);
    }

    #[test]
    fn unusable_entries_answer_key_unusable_and_unknown_kids_kid_unknown() {
        let doc = json!({"keys": [
            {"kid": "oct", "kty": "oct", "k": "AAAA"},
            {"kid": "e1", "kty": "RSA", "n": "xQ", "e": "AQ"},
            "not an object",
            {"kty": "RSA", "n": "xQ", "e": "AQAB"}
        ]});
        let set = KeySet::from_value(&doc, KeySetLimits::default()).unwrap();
        assert_eq!(set.kids().count(), 2);
        assert_eq!(
            set.select("oct", Algorithm::Rs256, 2048)
                .unwrap_err()
                .code(),
            ErrorCode::KeyUnusable
        );
        assert_eq!(
            set.select("e1", Algorithm::Rs256, 2048).unwrap_err().code(),
            ErrorCode::KeyUnusable
        );
        assert_eq!(
            set.select("OCT", Algorithm::Rs256, 2048)
                .unwrap_err()
                .code(),
            ErrorCode::KidUnknown
        );
    }
}
