//! RS256 signing keys and the per-pool key ring that rotates them.
//!
//! The ring is a pure function of time: which key signs and which keys are published are
//! computed from `now`, so rotation can be tested with a manual clock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::pkcs1v15;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

/// Modulus size of generated keys, as Cognito uses.
pub const RSA_BITS: usize = 2048;

/// An RS256 signing key and its Cognito-style key id.
pub struct IssuerKey {
    kid: String,
    signing: pkcs1v15::SigningKey<Sha256>,
    public: RsaPublicKey,
}

/// A key could not be generated, loaded or used.
#[derive(Debug)]
pub struct KeyError(String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

impl KeyError {
    pub(crate) fn from_message(message: String) -> KeyError {
        KeyError(message)
    }
}

impl IssuerKey {
    /// A fresh 2048-bit key. Its kid is the standard base64 of 32 random bytes, like Cognito's
    /// (so it contains `+`, `/` and `=`, which verifiers must compare byte for byte).
    ///
    /// # Errors
    /// When the RSA key generation fails.
    pub fn generate() -> Result<IssuerKey, KeyError> {
        let private = RsaPrivateKey::new(&mut OsRng, RSA_BITS)
            .map_err(|error| KeyError(format!("RSA key generation failed: {error}")))?;
        let mut kid_bytes = [0u8; 32];
        OsRng.fill_bytes(&mut kid_bytes);
        Ok(IssuerKey::from_parts(STANDARD.encode(kid_bytes), private))
    }

    /// A key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). The kid is the standard base64
    /// of the SHA-256 of the public key's DER, so it is the same on every start and a verifier's
    /// cached JWKS survives a restart.
    ///
    /// # Errors
    /// When the PEM is not an RSA PKCS#8 key of at least 2048 bits.
    pub fn from_pkcs8_pem(pem: &str) -> Result<IssuerKey, KeyError> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem)
            .map_err(|error| KeyError(format!("not an RSA PKCS#8 PEM private key: {error}")))?;
        let bits = private.size() * 8;
        if bits < RSA_BITS {
            return Err(KeyError(format!(
                "RSA key has {bits} bits; at least {RSA_BITS} are required"
            )));
        }
        let der = RsaPublicKey::from(&private)
            .to_public_key_der()
            .map_err(|error| KeyError(format!("cannot encode public key: {error}")))?;
        let kid = STANDARD.encode(Sha256::digest(der.as_bytes()));
        Ok(IssuerKey::from_parts(kid, private))
    }

    /// The `kid` header value and JWK `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, members in the order Cognito serves them.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "alg": "RS256",
            "e": URL_SAFE_NO_PAD.encode(self.public.e().to_bytes_be()),
            "kid": self.kid,
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(self.public.n().to_bytes_be()),
            "use": "sig",
        })
    }

    /// Whether `signature` is this key's RSASSA-PKCS1-v1_5 SHA-256 signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = pkcs1v15::Signature::try_from(signature) else {
            return false;
        };
        pkcs1v15::VerifyingKey::<Sha256>::new(self.public.clone())
            .verify(message, &signature)
            .is_ok()
    }

    /// The same key under another kid (a configured feed-signing kid).
    pub(crate) fn with_kid(mut self, kid: String) -> IssuerKey {
        self.kid = kid;
        self
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    ///
    /// # Errors
    /// When the RSA operation fails.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        // The randomized variant blinds the private-key operation against timing attacks.
        self.signing
            .try_sign_with_rng(&mut OsRng, message)
            .map(|signature| signature.to_vec())
            .map_err(|error| KeyError(format!("signing failed: {error}")))
    }

    fn from_parts(kid: String, private: RsaPrivateKey) -> IssuerKey {
        let public = RsaPublicKey::from(&private);
        IssuerKey {
            kid,
            signing: pkcs1v15::SigningKey::new(private),
            public,
        }
    }
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        f.debug_struct("IssuerKey").field("kid", &self.kid).finish()
    }
}

/// How a rotation brings in the new key.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Rotation {
    /// Publish the new key now; it signs after the pool's `prepublish_s`.
    Prepublish,
    /// The new key signs at once (tests). Keys still waiting to sign are dropped: nothing was
    /// signed with them.
    Immediate,
}

/// The outcome of a rotation.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct RotatedKey {
    /// The new key's id.
    pub kid: String,
    /// When it starts signing (seconds since the epoch).
    pub active_from: u64,
}

/// The keys of one pool over time.
pub(crate) struct KeyRing {
    /// Ordered by `active_from`; for equal times the later entry wins.
    entries: Vec<RingEntry>,
    /// Keys from `pem_files` that rotations use before generating new ones.
    spares: VecDeque<IssuerKey>,
    prepublish_s: u64,
    /// How long a key stays published after its successor starts signing: the longest token
    /// lifetime of the pool, so every token it signed can still be verified.
    retention_s: u64,
    rotate_every_s: Option<u64>,
    last_rotation: u64,
    /// Keys that left the JWKS, newest last, so that the revocation endpoint still recognises
    /// (long-lived, minted) tokens they signed. At most [`RETIRED_KEPT`].
    retired: VecDeque<Arc<IssuerKey>>,
}

/// How many keys that left the JWKS the revocation endpoint still checks tokens against.
const RETIRED_KEPT: usize = 8;

struct RingEntry {
    key: Arc<IssuerKey>,
    active_from: u64,
}

impl KeyRing {
    pub(crate) fn new(
        initial: IssuerKey,
        spares: VecDeque<IssuerKey>,
        prepublish_s: u64,
        retention_s: u64,
        rotate_every_s: Option<u64>,
        now: u64,
    ) -> KeyRing {
        KeyRing {
            // Active since forever, so a test that mints tokens with a "now" in the past still
            // finds a signer.
            entries: vec![RingEntry {
                key: Arc::new(initial),
                active_from: 0,
            }],
            spares,
            prepublish_s,
            retention_s,
            rotate_every_s,
            last_rotation: now,
            retired: VecDeque::new(),
        }
    }

    /// Every key that may have signed a token of this pool that has not expired: the
    /// published ones, then those that left the JWKS (newest first).
    pub(crate) fn verification_keys(&mut self, now: u64) -> Vec<Arc<IssuerKey>> {
        let mut keys = self.published(now);
        keys.extend(self.retired.iter().rev().cloned());
        keys
    }

    /// The key that signs at `now`.
    pub(crate) fn signer(&mut self, now: u64) -> Option<Arc<IssuerKey>> {
        self.prune(now);
        self.entries
            .iter()
            .rev()
            .find(|entry| entry.active_from <= now)
            // Only a clock set backwards gets here; the oldest key is the least surprising.
            .or_else(|| self.entries.first())
            .map(|entry| Arc::clone(&entry.key))
    }

    /// The keys in the JWKS at `now`: those waiting to sign, the signer, and retired keys whose
    /// tokens may still be unexpired.
    pub(crate) fn published(&mut self, now: u64) -> Vec<Arc<IssuerKey>> {
        self.prune(now);
        self.entries
            .iter()
            .map(|entry| Arc::clone(&entry.key))
            .collect()
    }

    /// The next key from `pem_files`, if any are left.
    pub(crate) fn take_spare(&mut self) -> Option<IssuerKey> {
        self.spares.pop_front()
    }

    pub(crate) fn add(&mut self, key: IssuerKey, rotation: Rotation, now: u64) -> RotatedKey {
        self.prune(now);
        let active_from = match rotation {
            Rotation::Immediate => {
                self.entries.retain(|entry| entry.active_from <= now);
                now
            }
            Rotation::Prepublish => {
                let latest = self.entries.last().map_or(0, |entry| entry.active_from);
                now.saturating_add(self.prepublish_s).max(latest)
            }
        };
        let kid = key.kid().to_owned();
        self.entries.push(RingEntry {
            key: Arc::new(key),
            active_from,
        });
        self.last_rotation = now;
        RotatedKey { kid, active_from }
    }

    /// Whether the schedule (`rotate_every_s`) calls for a rotation at `now`.
    pub(crate) fn rotation_due(&self, now: u64) -> bool {
        self.rotate_every_s
            .is_some_and(|every| now >= self.last_rotation.saturating_add(every))
    }

    fn prune(&mut self, now: u64) {
        let retention_s = self.retention_s;
        let successors: Vec<u64> = self
            .entries
            .iter()
            .skip(1)
            .map(|entry| entry.active_from)
            .collect();
        let mut index = 0;
        let mut dropped = Vec::new();
        self.entries.retain(|entry| {
            // The last key has no successor and always stays.
            let keep = successors
                .get(index)
                .is_none_or(|&successor| successor.saturating_add(retention_s) > now);
            index += 1;
            if !keep {
                dropped.push(Arc::clone(&entry.key));
            }
            keep
        });
        for key in dropped {
            if self.retired.len() == RETIRED_KEPT {
                self.retired.pop_front();
            }
            self.retired.push_back(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key(n: usize) -> IssuerKey {
        let path = format!("{}/tests/keys/test-key-{n}.pem", env!("CARGO_MANIFEST_DIR"));
        let pem = std::fs::read_to_string(path).unwrap();
        IssuerKey::from_pkcs8_pem(&pem).unwrap()
    }

    fn kids(keys: &[Arc<IssuerKey>]) -> Vec<String> {
        keys.iter().map(|key| key.kid().to_owned()).collect()
    }

    #[test]
    fn kid_of_a_pem_key_is_base64_of_32_bytes() {
        let key = test_key(1);
        assert_eq!(key.kid().len(), 44);
        assert!(key.kid().ends_with('='));
        assert_eq!(key.kid(), test_key(1).kid());
        assert_ne!(key.kid(), test_key(2).kid());
    }

    #[test]
    fn prepublished_key_is_published_before_it_signs_and_old_key_stays_for_retention() {
        let (a, b) = (test_key(1), test_key(2));
        let (kid_a, kid_b) = (a.kid().to_owned(), b.kid().to_owned());
        let mut ring = KeyRing::new(a, VecDeque::new(), 300, 3600, None, 1000);
        let rotated = ring.add(b, Rotation::Prepublish, 1000);
        assert_eq!(rotated.active_from, 1300);

        assert_eq!(ring.signer(1299).unwrap().kid(), kid_a);
        assert_eq!(kids(&ring.published(1299)), [kid_a.clone(), kid_b.clone()]);
        assert_eq!(ring.signer(1300).unwrap().kid(), kid_b);
        assert_eq!(kids(&ring.published(1300 + 3599)), [kid_a, kid_b.clone()]);
        assert_eq!(kids(&ring.published(1300 + 3600)), [kid_b.as_str()]);
        assert_eq!(ring.signer(1300 + 3600).unwrap().kid(), kid_b);
    }

    #[test]
    fn immediate_rotation_signs_at_once_and_drops_keys_that_never_signed() {
        let (a, b, c) = (test_key(1), test_key(2), test_key(3));
        let (kid_a, kid_c) = (a.kid().to_owned(), c.kid().to_owned());
        let mut ring = KeyRing::new(a, VecDeque::new(), 300, 600, None, 1000);
        ring.add(b, Rotation::Prepublish, 1000);
        let rotated = ring.add(c, Rotation::Immediate, 1100);
        assert_eq!(rotated.active_from, 1100);
        assert_eq!(ring.signer(1100).unwrap().kid(), kid_c);
        assert_eq!(kids(&ring.published(1100)), [kid_a, kid_c.clone()]);
        assert_eq!(kids(&ring.published(1700)), [kid_c]);
    }

    #[test]
    fn schedule_is_due_after_rotate_every_s_since_the_last_rotation() {
        let mut ring = KeyRing::new(test_key(1), VecDeque::new(), 0, 300, Some(600), 1000);
        assert!(!ring.rotation_due(1599));
        assert!(ring.rotation_due(1600));
        ring.add(test_key(2), Rotation::Prepublish, 1600);
        assert!(!ring.rotation_due(1600));
        assert!(ring.rotation_due(2200));
    }
}
