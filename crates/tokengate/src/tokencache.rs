//! Bounded cache of tokens whose signature and time checks passed, keyed by the exact token
//! string. A hit skips parsing and the signature; every policy check still runs on each hit.
//!
//! Entries live in a ring of at most `capacity` slots with a CLOCK hand (second chance): an
//! insert into a full cache takes the first slot under the hand that is expired or was not hit
//! since the hand last passed, clearing hit marks on the way. Insertion is amortised O(1) (each
//! mark the hand clears was set by a hit) and never scans more than the ring once plus one;
//! a lookup hashes a fixed number of the token's bytes and compares the whole token once.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use hashbrown::HashTable;

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
    static_ok: bool,
    /// [`crate::KeySet::serial`] of the set the key came from (0: not recorded).
    key_set: u64,
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
            static_ok: false,
            key_set: 0,
        }
    }

    /// Record the serial of the key set that verified the token ([`crate::KeySet::serial`]).
    pub(crate) fn with_key_set(mut self, serial: u64) -> CachedToken {
        self.key_set = serial;
        self
    }

    /// Whether `keys` is the very set (or a copy of the parse) that verified the token.
    pub(crate) fn same_key_set(&self, keys: &crate::KeySet) -> bool {
        self.key_set != 0 && keys.serial() == self.key_set
    }

    /// Record whether the claims pass the checks that depend only on them and the provider's
    /// fixed policy (the verifier's `static_checks_pass`), so hits skip those.
    pub(crate) fn with_static_checks(mut self, passed: bool) -> CachedToken {
        self.static_ok = passed;
        self
    }

    /// Whether [`CachedToken::with_static_checks`] recorded a pass.
    pub(crate) fn static_checks_passed(&self) -> bool {
        self.static_ok
    }

    /// The first second at which the entry no longer answers (`min(exp, stored + max_ttl)`).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

#[derive(Debug)]
struct Slot {
    token: Box<str>,
    entry: CachedToken,
    /// Set by a hit, cleared by the CLOCK hand: the entry gets a second chance.
    hit: AtomicBool,
}

/// A bounded map from token string to verified claims, evicting with CLOCK (see the module
/// documentation). Expired entries are never returned and are the first the hand takes.
#[derive(Debug)]
pub struct TokenCache {
    /// The ring; `None` marks a slot emptied by [`TokenCache::remove`].
    slots: Vec<Option<Slot>>,
    /// Slot numbers, by the hash of their token.
    index: HashTable<u32>,
    /// Emptied slots, reused before the hand evicts anything.
    free: Vec<u32>,
    hand: usize,
    capacity: usize,
    max_ttl_s: u64,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens, each kept at most `max_ttl_s`. A capacity of 0
    /// disables caching. Slots are allocated as entries arrive, not up front.
    pub fn new(capacity: usize, max_ttl_s: u64) -> TokenCache {
        TokenCache {
            slots: Vec::new(),
            index: HashTable::new(),
            free: Vec::new(),
            hand: 0,
            // Slot numbers are u32; no host configures anywhere near that many.
            capacity: capacity.min(u32::MAX as usize),
            max_ttl_s,
        }
    }

    /// The cached entry for `token` if it is still live at `now`.
    pub fn get(&self, token: &str, now: u64) -> Option<&CachedToken> {
        self.get_bytes(token.as_bytes(), now)
    }

    /// [`TokenCache::get`] for a token still held as bytes (a host's input buffer): no UTF-8
    /// check is needed to find out that the token is not cached, or to answer when it is.
    pub fn get_bytes(&self, token: &[u8], now: u64) -> Option<&CachedToken> {
        if self.index.is_empty() {
            return None;
        }
        let slot = self.find(token)?;
        if now >= slot.entry.expires_at {
            return None;
        }
        // Relaxed: the mark is a hint for eviction order, nothing else reads it as a fence.
        slot.hit.store(true, Ordering::Relaxed);
        Some(&slot.entry)
    }

    /// The live entry for `token` (as bytes) when `keep` accepts it. An entry `keep` refuses
    /// (its key was withdrawn, say) is removed and `None` returned.
    pub fn get_or_remove(
        &mut self,
        token: &[u8],
        now: u64,
        keep: impl FnOnce(&CachedToken) -> bool,
    ) -> Option<&CachedToken> {
        if self.index.is_empty() {
            return None;
        }
        let hash = token_hash(token);
        let i = self.find_index(hash, token)?;
        let live = |s: &Slot| now < s.entry.expires_at;
        match self.slots.get(i as usize) {
            Some(Some(s)) if live(s) && keep(&s.entry) => {}
            Some(Some(s)) if live(s) => {
                self.remove_at(hash, i);
                return None;
            }
            _ => return None,
        }
        let slot = self.slots.get(i as usize)?.as_ref()?;
        slot.hit.store(true, Ordering::Relaxed);
        Some(&slot.entry)
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
        entry.expires_at = expires_at;
        let hash = token_hash(token.as_bytes());
        let slots = &mut self.slots;
        if let Some(&i) = self
            .index
            .find(hash, |&i| token_at(slots, i) == Some(token))
        {
            if let Some(Some(slot)) = slots.get_mut(i as usize) {
                slot.entry = entry;
            }
            return;
        }
        let i = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < self.capacity => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
            None => self.evict(now),
        };
        let Some(place) = self.slots.get_mut(i as usize) else {
            return;
        };
        *place = Some(Slot {
            token: Box::from(token),
            entry,
            hit: AtomicBool::new(false),
        });
        let slots = &self.slots;
        self.index.insert_unique(hash, i, |&j| {
            token_at(slots, j).map_or(0, |t| token_hash(t.as_bytes()))
        });
    }

    /// Forget one token.
    pub fn remove(&mut self, token: &str) {
        let hash = token_hash(token.as_bytes());
        if let Some(i) = self.find_index(hash, token.as_bytes()) {
            self.remove_at(hash, i);
        }
    }

    /// Forget everything (after a policy or key change that must take effect at once).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.free.clear();
        self.hand = 0;
    }

    /// The most entries the cache holds (0: caching is off).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of entries (live or not yet evicted).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn find(&self, token: &[u8]) -> Option<&Slot> {
        let i = self.find_index(token_hash(token), token)?;
        self.slots.get(i as usize)?.as_ref()
    }

    fn find_index(&self, hash: u64, token: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| {
                token_at(slots, i).is_some_and(|t| t.as_bytes() == token)
            })
            .copied()
    }

    /// Empty slot `i` (whose token hashes to `hash`) and keep it for the next insert.
    fn remove_at(&mut self, hash: u64, i: u32) {
        if let Ok(found) = self.index.find_entry(hash, |&j| j == i) {
            found.remove();
            if let Some(place) = self.slots.get_mut(i as usize) {
                *place = None;
                self.free.push(i);
            }
        }
    }

    /// Empty the slot the CLOCK hand picks in a full ring and return its number: the first
    /// expired or not-hit entry under the hand. After one turn every mark is cleared, so the
    /// hand stops within `len + 1` steps.
    fn evict(&mut self, now: u64) -> u32 {
        let n = self.slots.len();
        let mut victim = self.hand % n.max(1);
        for _ in 0..=n {
            let at = self.hand % n.max(1);
            self.hand = (at + 1) % n.max(1);
            victim = at;
            match self.slots.get(at) {
                Some(Some(s))
                    if now < s.entry.expires_at && s.hit.swap(false, Ordering::Relaxed) => {}
                _ => break,
            }
        }
        let victim = victim as u32;
        if let Some(Some(old)) = self.slots.get(victim as usize) {
            let hash = token_hash(old.token.as_bytes());
            if let Ok(found) = self.index.find_entry(hash, |&j| j == victim) {
                found.remove();
            }
        }
        if let Some(place) = self.slots.get_mut(victim as usize) {
            *place = None;
        }
        victim
    }
}

fn token_at(slots: &[Option<Slot>], i: u32) -> Option<&str> {
    slots.get(i as usize)?.as_ref().map(|s| &*s.token)
}

/// The hash of a token for the index: its length, its last 16 bytes and 8 from its middle
/// (all of a token shorter than 16 bytes). Hosts that keep their own tables of verified
/// requests (the Envoy filter's replay) index the `Authorization` value by it too.
/// The end of a compact JWS is its signature, which nobody can choose for a token that
/// verified, and only verified tokens are stored; so the slots are spread evenly however
/// lookups are chosen, and a lookup costs the same for a 1 KiB token as for a short one
/// (hashing all of a Cognito token was a tenth of a hit in wasm). Equality still compares
/// the whole token.
pub fn token_hash(t: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let n = t.len();
    let mut h = (n as u64).wrapping_mul(K);
    let mut mix = |w: u64| {
        h = (h ^ w).wrapping_mul(K);
        h ^= h >> 32;
    };
    if n < 16 {
        t.iter().for_each(|&b| mix(u64::from(b)));
    } else {
        for at in [n - 16, n - 8, n / 2 - 8] {
            let w = t.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok());
            mix(w.map_or(0, u64::from_le_bytes));
        }
    }
    h.wrapping_mul(K)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    fn entry() -> CachedToken {
        CachedToken::new(
            0,
            "k",
            [7; 32],
            Algorithm::Rs256,
            Arc::new(Claims::new(crate::json::Object::new())),
        )
    }

    fn entry_kid(kid: &str) -> CachedToken {
        CachedToken::new(
            0,
            kid,
            [7; 32],
            Algorithm::Rs256,
            Arc::new(Claims::new(crate::json::Object::new())),
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
    fn the_bound_holds_and_evicts_the_oldest_entry_not_hit() {
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

    #[test]
    fn eviction_follows_the_clock_hand_and_a_hit_buys_a_second_chance() {
        let mut c = TokenCache::new(3, 10_000);
        for t in ["a", "b", "c"] {
            c.insert(t, entry(), 5000.0, 1000);
        }
        assert!(c.get("a", 1000).is_some(), "a is hit");
        // The hand starts at a: hit, so it is spared (mark cleared); b goes.
        c.insert("d", entry(), 5000.0, 1000);
        let live = |c: &TokenCache| -> Vec<bool> {
            ["a", "b", "c", "d", "e", "f"]
                .iter()
                .map(|t| c.find(t.as_bytes()).is_some())
                .collect()
        };
        assert_eq!(live(&c), vec![true, false, true, true, false, false]);
        // Next under the hand: c (never hit).
        c.insert("e", entry(), 5000.0, 1000);
        assert_eq!(live(&c), vec![true, false, false, true, true, false]);
        // Then a again, whose second chance was used up.
        c.insert("f", entry(), 5000.0, 1000);
        assert_eq!(live(&c), vec![false, false, false, true, true, true]);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn expired_entries_are_taken_even_when_they_were_hit() {
        let mut c = TokenCache::new(2, 10_000);
        c.insert("old", entry(), 1500.0, 1000);
        c.insert("young", entry(), 9000.0, 1000);
        assert!(c.get("old", 1400).is_some());
        assert!(c.get("young", 1400).is_some());
        c.insert("next", entry(), 9000.0, 1600);
        assert!(c.find(b"old").is_none());
        assert!(c.get("young", 1600).is_some());
        assert!(c.get("next", 1600).is_some());
    }

    #[test]
    fn a_hot_token_survives_any_number_of_inserts_and_the_bound_holds() {
        let mut c = TokenCache::new(64, 10_000);
        c.insert("hot", entry(), 9000.0, 1000);
        for i in 0..10_000u32 {
            assert!(c.get("hot", 1000).is_some(), "evicted after {i} inserts");
            c.insert(&format!("cold-{i}"), entry(), 9000.0, 1000);
            assert!(c.len() <= 64);
            assert!(c.find(format!("cold-{i}").as_bytes()).is_some());
        }
        assert_eq!(c.len(), 64);
    }

    #[test]
    fn tokens_that_share_their_hashed_bytes_are_still_told_apart() {
        // Same length, same last 16 bytes, same middle: same hash, different tokens.
        let mut c = TokenCache::new(8, 10_000);
        let a = "aaaa.MMMMMMMM.0123456789abcdef";
        let b = "bbbb.MMMMMMMM.0123456789abcdef";
        assert_eq!(token_hash(a.as_bytes()), token_hash(b.as_bytes()));
        c.insert(a, entry_kid("ka"), 9000.0, 1000);
        assert!(c.get(b, 1000).is_none());
        c.insert(b, entry_kid("kb"), 9000.0, 1000);
        assert_eq!(c.get(a, 1000).map(|e| e.kid.as_str()), Some("ka"));
        assert_eq!(c.get(b, 1000).map(|e| e.kid.as_str()), Some("kb"));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn removed_slots_are_reused_and_reinserting_replaces() {
        let mut c = TokenCache::new(2, 10_000);
        c.insert("a", entry_kid("1"), 9000.0, 1000);
        c.insert("b", entry_kid("1"), 9000.0, 1000);
        c.remove("a");
        c.remove("nope");
        assert_eq!(c.len(), 1);
        c.insert("c", entry_kid("1"), 9000.0, 1000);
        assert!(
            c.get("b", 1000).is_some(),
            "the freed slot was used, nothing evicted"
        );
        c.insert("c", entry_kid("2"), 9000.0, 1000);
        assert_eq!(c.get("c", 1000).map(|e| e.kid.as_str()), Some("2"));
        assert_eq!(c.len(), 2);
        c.clear();
        assert!(c.is_empty() && c.get("b", 1000).is_none());
        c.insert("d", entry(), 9000.0, 1000);
        assert!(c.get("d", 1000).is_some());
    }

    proptest::proptest! {
        /// Against a model (a plain map of what was inserted and not removed): the bound always
        /// holds, an entry is never returned past its end or for another token, and what was
        /// just inserted is found.
        #[test]
        fn the_cache_agrees_with_a_model(
            ops in proptest::collection::vec((0u8..3, 0usize..24, 0u64..40, 0u64..60), 1..300),
            capacity in 1usize..9,
        ) {
            let mut c = TokenCache::new(capacity, 30);
            let mut model: alloc::collections::BTreeMap<usize, (String, u64)> = Default::default();
            for (n, (op, t, now, exp)) in ops.into_iter().enumerate() {
                // Tokens that collide in the sampled bytes half of the time.
                let token = format!("{t:02}{}.tail-sixteen-by", "x".repeat(t % 3));
                match op {
                    0 => {
                        let kid = format!("{n}");
                        c.insert(&token, entry_kid(&kid), exp as f64, now);
                        let end = exp.min(now + 30);
                        if end > now {
                            model.insert(t, (kid, end));
                            proptest::prop_assert!(c.get(&token, now).is_some_and(|e| e.kid == model[&t].0));
                        }
                    }
                    1 => {
                        c.remove(&token);
                        model.remove(&t);
                    }
                    _ => {
                        if let Some(e) = c.get(&token, now) {
                            let (kid, end) = &model[&t];
                            proptest::prop_assert_eq!(&e.kid, kid);
                            proptest::prop_assert!(now < *end);
                            proptest::prop_assert_eq!(e.expires_at(), *end);
                        }
                    }
                }
                proptest::prop_assert!(c.len() <= capacity);
                proptest::prop_assert_eq!(c.len() + c.free.len(), c.slots.len());
            }
        }
    }
}
