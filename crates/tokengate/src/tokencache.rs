//! Bounded cache of tokens whose signature and time checks passed, keyed by the exact token
//! string. A hit skips parsing and the signature; every policy check still runs on each hit.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;

use hashbrown::HashMap;

use crate::claims::Claims;
use crate::policy::Algorithm;

/// Default number of cached tokens.
pub const DEFAULT_CAPACITY: usize = 4096;
/// Default longest time a token stays cached, whatever its `exp`.
pub const DEFAULT_MAX_TTL_S: u64 = 600;

/// What a hit returns.
#[derive(Clone, Debug)]
pub struct CachedToken {
    /// Index of the provider whose key verified the token.
    pub provider: usize,
    /// The kid that verified it.
    pub kid: String,
    /// SHA-256 over the key material behind `kid` when it verified the token
    /// ([`crate::KeySet::fingerprint`]); a hit needs the same material still published.
    pub key_fingerprint: [u8; 32],
    /// The algorithm.
    pub alg: Algorithm,
    /// The verified claims.
    pub claims: Arc<Claims>,
    expires_at: u64,
}

impl CachedToken {
    /// An entry for a token verified by `provider`'s key `kid` with the given fingerprint.
    pub fn new(
        provider: usize,
        kid: &str,
        key_fingerprint: [u8; 32],
        alg: Algorithm,
        claims: Arc<Claims>,
    ) -> CachedToken {
        CachedToken {
            provider,
            kid: String::from(kid),
            key_fingerprint,
            alg,
            claims,
            expires_at: 0,
        }
    }
}

/// A bounded map from token string to verified claims. When full, expired entries go first,
/// then the entry that would expire soonest: it is the one least worth keeping.
#[derive(Debug)]
pub struct TokenCache {
    map: HashMap<Box<str>, CachedToken>,
    capacity: usize,
    max_ttl_s: u64,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens, each kept at most `max_ttl_s`. A capacity of 0
    /// disables caching.
    pub fn new(capacity: usize, max_ttl_s: u64) -> TokenCache {
        TokenCache {
            map: HashMap::new(),
            capacity,
            max_ttl_s,
        }
    }

    /// The cached entry for `token` if it is still live at `now`.
    pub fn get(&self, token: &str, now: u64) -> Option<&CachedToken> {
        self.map.get(token).filter(|e| now < e.expires_at)
    }

    /// Remember a verified token until `min(exp, now + max_ttl)`.
    pub fn insert(&mut self, token: &str, mut entry: CachedToken, exp: f64, now: u64) {
        if self.capacity == 0 {
            return;
        }
        // exp is finite here (the time step refused anything else); `as` saturates.
        let until_exp = if exp > 0.0 { exp as u64 } else { 0 };
        let expires_at = until_exp.min(now.saturating_add(self.max_ttl_s));
        if expires_at <= now {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(token) {
            self.map.retain(|_, e| now < e.expires_at);
            if self.map.len() >= self.capacity {
                let soonest = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.expires_at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.map.remove(&k);
                }
            }
        }
        entry.expires_at = expires_at;
        self.map.insert(Box::from(token), entry);
    }

    /// Forget one token.
    pub fn remove(&mut self, token: &str) {
        self.map.remove(token);
    }

    /// Forget everything (after a policy or key change that must take effect at once).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Number of entries (live or not yet swept).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn entry() -> CachedToken {
        CachedToken::new(
            0,
            "k",
            [7; 32],
            Algorithm::Rs256,
            Arc::new(Claims::new(serde_json::Map::new())),
        )
    }

    #[test]
    fn entries_end_at_exp_or_max_ttl() {
        let mut c = TokenCache::new(10, 600);
        c.insert("a", entry(), 1100.0, 1000);
        assert!(c.get("a", 1099).is_some());
        assert!(c.get("a", 1100).is_none());
        c.insert("b", entry(), 1e12, 1000);
        assert!(c.get("b", 1599).is_some());
        assert!(c.get("b", 1600).is_none());
        c.insert("c", entry(), 900.5, 1000);
        assert!(
            c.get("c", 1000).is_none(),
            "already expired tokens are not stored"
        );
    }

    #[test]
    fn the_bound_holds_and_evicts_the_soonest_to_expire() {
        let mut c = TokenCache::new(3, 10_000);
        for i in 0..3u64 {
            c.insert(&format!("t{i}"), entry(), (2000 + i) as f64, 1000);
        }
        c.insert("new", entry(), 5000.0, 1000);
        assert_eq!(c.len(), 3);
        assert!(c.get("t0", 1000).is_none());
        assert!(c.get("t1", 1000).is_some());
        assert!(c.get("new", 1000).is_some());
        assert!(c.get("t1", 1000).is_some_and(|e| e.kid == "k"));
    }

    #[test]
    fn zero_capacity_disables_the_cache() {
        let mut c = TokenCache::new(0, 10);
        c.insert("a", entry(), 2000.0, 1000);
        assert!(c.is_empty());
    }
}
