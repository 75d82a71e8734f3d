//! Client secrets: argon2id hashing for the config, and verification with a memory cache.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Memory cost of [`hash_secret`] in KiB (19 MiB: the OWASP minimum for argon2id).
pub const HASH_MEMORY_KIB: u32 = 19_456;
/// Passes of [`hash_secret`].
pub const HASH_ITERATIONS: u32 = 2;
/// Lanes of [`hash_secret`].
pub const HASH_PARALLELISM: u32 = 1;

/// Hashing failed (bad parameters; not expected with the built-in ones).
#[derive(Debug)]
pub struct HashError(String);

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HashError {}

/// The argon2id PHC string of `secret` for `client_secret_hash`, with a random salt and the
/// modest parameters above (about 20–50 ms per verification on a laptop core): enough for a
/// development tool, and verifications are cached anyway.
///
/// # Errors
/// When argon2 rejects the parameters or the input.
pub fn hash_secret(secret: &str) -> Result<String, HashError> {
    let params = Params::new(HASH_MEMORY_KIB, HASH_ITERATIONS, HASH_PARALLELISM, None)
        .map_err(|error| HashError(error.to_string()))?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| HashError(error.to_string()))
}

/// Whether `phc` is an argon2id PHC string this crate can verify against.
pub(crate) fn check_phc(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|error| {
        format!("not a PHC hash string ({error}); make one with `tokengate-issuer hash-secret`")
    })?;
    if hash.algorithm != argon2::ARGON2ID_IDENT {
        return Err(format!(
            "must be an argon2id hash, not {}; make one with `tokengate-issuer hash-secret`",
            hash.algorithm
        ));
    }
    // Parameters out of argon2's range would only fail at the first request.
    Params::try_from(&hash).map_err(|error| format!("bad argon2 parameters: {error}"))?;
    if hash.hash.is_none() {
        return Err("the PHC string has no hash part".to_owned());
    }
    Ok(())
}

/// (pool index, client id, SHA-256 of the secret, SHA-256 of the PHC string it matched).
type VerifiedKey = (usize, String, [u8; 32], [u8; 32]);

/// Verifies secrets against their argon2id hashes, remembering successes.
pub(crate) struct SecretVerifier {
    /// Secrets known to match a hash. Only a correct secret gets in, so there is at most one
    /// entry per (client, hash), and [`SecretVerifier::forget`] drops a removed hash's entry.
    verified: Mutex<HashSet<VerifiedKey>>,
    /// Each argon2 run holds `HASH_MEMORY_KIB` of memory; a flood of wrong secrets must not
    /// turn into unbounded memory use.
    concurrent_hashes: Semaphore,
}

impl SecretVerifier {
    pub(crate) fn new() -> SecretVerifier {
        SecretVerifier {
            verified: Mutex::new(HashSet::new()),
            concurrent_hashes: Semaphore::new(4),
        }
    }

    /// Whether `secret` matches any of `phcs` (a client with two secrets during a rotation).
    /// Argon2 runs on the blocking pool, one hash after the other, and only until the secret
    /// has matched that hash once.
    pub(crate) async fn verify_any(
        &self,
        pool: usize,
        client_id: &str,
        secret: &str,
        phcs: &[String],
    ) -> bool {
        // A SHA-256 rather than the secret itself, so the secret is not kept in memory.
        let secret_digest = <[u8; 32]>::from(Sha256::digest(secret.as_bytes()));
        let keys: Vec<VerifiedKey> = phcs
            .iter()
            .map(|phc| {
                (
                    pool,
                    client_id.to_owned(),
                    secret_digest,
                    <[u8; 32]>::from(Sha256::digest(phc.as_bytes())),
                )
            })
            .collect();
        if keys.iter().any(|key| self.lock().contains(key)) {
            return true;
        }
        for (phc, key) in phcs.iter().zip(keys) {
            let Ok(_permit) = self.concurrent_hashes.acquire().await else {
                return false;
            };
            let (secret, phc) = (secret.to_owned(), phc.to_owned());
            let matched = tokio::task::spawn_blocking(move || verify_phc(&secret, &phc))
                .await
                .unwrap_or(false);
            if matched {
                self.lock().insert(key);
                return true;
            }
        }
        false
    }

    /// Forget every success against `phc` (the hash was removed from the client).
    pub(crate) fn forget(&self, pool: usize, client_id: &str, phc: &str) {
        let digest = <[u8; 32]>::from(Sha256::digest(phc.as_bytes()));
        self.lock()
            .retain(|(p, c, _, h)| !(*p == pool && c == client_id && *h == digest));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<VerifiedKey>> {
        // The set stays consistent even if a holder panicked: inserts are atomic.
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn verify_phc(secret: &str, phc: &str) -> bool {
    // Argon2's parameters come from the PHC string, not from `Argon2::default()`.
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_secret_makes_a_verifiable_argon2id_phc_string() {
        let phc = hash_secret("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        check_phc(&phc).unwrap();
        assert!(verify_phc("s3cret", &phc));
        assert!(!verify_phc("s3cret ", &phc));
    }

    #[test]
    fn check_phc_refuses_other_algorithms_and_garbage() {
        assert!(check_phc("plaintext").is_err());
        assert!(
            check_phc("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA").is_err()
        );
        assert!(
            check_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA").is_ok()
        );
    }
}
