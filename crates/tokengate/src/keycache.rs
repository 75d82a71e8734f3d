//! JWKS freshness, sans-I/O: the host asks [`KeyCache::poll`] whether to fetch, does the fetch
//! its own way (`fetch`, `dispatch_http_call`, a file) and feeds the outcome back. Time is always
//! an argument, so tests drive the machine through hours without sleeping.
//!
//! Rules: refresh every `refresh_s` or per `Cache-Control: max-age` clamped to
//! [`min_refresh_s`, `max_refresh_s`]; one fetch at a time; an unknown `kid` triggers at most one
//! refetch per `unknown_kid_cooldown_s`; failures back off exponentially with jitter; a bad
//! answer (non-200, not a key set, no usable key, too large) never replaces a good key set; the
//! last good set is used for up to `max_stale_s` after it was fetched.

use crate::jwks::{JwksError, KeySet, KeySetLimits};

/// Tunables of a [`KeyCache`]. All durations in seconds.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct KeyCacheConfig {
    /// Refresh interval when the response has no usable `max-age`.
    pub refresh_s: u64,
    /// Lower clamp for `max-age`.
    pub min_refresh_s: u64,
    /// Upper clamp for `max-age`.
    pub max_refresh_s: u64,
    /// Least time between two refetches caused by unknown kids.
    pub unknown_kid_cooldown_s: u64,
    /// First retry delay after a failure.
    pub backoff_initial_s: u64,
    /// Largest retry delay.
    pub backoff_max_s: u64,
    /// How long after its fetch a key set may still be used while refreshes fail.
    pub max_stale_s: u64,
    /// A fetch not answered within this is counted as failed.
    pub fetch_timeout_s: u64,
    /// Size limits for the JWKS body.
    pub limits: KeySetLimits,
    /// Seed for retry jitter (hosts pass a random value; tests a fixed one).
    pub jitter_seed: u64,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        KeyCacheConfig {
            refresh_s: 900,
            min_refresh_s: 60,
            max_refresh_s: 86_400,
            unknown_kid_cooldown_s: 30,
            backoff_initial_s: 1,
            backoff_max_s: 300,
            max_stale_s: 86_400,
            fetch_timeout_s: 10,
            limits: KeySetLimits::default(),
            jitter_seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

/// Why the host should fetch now.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FetchReason {
    /// No key set yet.
    Initial,
    /// The refresh interval has passed.
    Refresh,
    /// A token named a kid the set does not have.
    UnknownKid,
    /// The previous fetch failed and the backoff has passed.
    Retry,
}

/// A fetch the host should start now. Exactly one is outstanding at a time.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct FetchRequest {
    /// Why.
    pub reason: FetchReason,
}

/// Why a fetch outcome was not taken.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum RefreshError {
    /// The server answered with a status other than 200.
    Status(u16),
    /// The body was not a usable key set.
    Jwks(JwksError),
    /// The host reported a transport failure or timeout.
    Transport,
}

impl core::fmt::Display for RefreshError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RefreshError::Status(s) => write!(f, "JWKS endpoint answered HTTP {s}"),
            RefreshError::Jwks(e) => write!(f, "{e}"),
            RefreshError::Transport => f.write_str("JWKS fetch failed or timed out"),
        }
    }
}

/// What a kid lookup found.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The key set has an entry with this kid (it may still be unusable for the alg).
    Found(&'a KeySet),
    /// The set is fresh enough but has no such kid. `refetch` is true when a refetch was
    /// scheduled or is already under way, so the host may verify again after it.
    Unknown {
        /// Whether waiting for a fetch could change the answer.
        refetch: bool,
    },
    /// No key set, or the last good one is older than `max_stale_s`.
    Unavailable,
}

/// Per-issuer JWKS state machine.
#[derive(Clone, Debug)]
pub struct KeyCache {
    config: KeyCacheConfig,
    remote: bool,
    keys: Option<KeySet>,
    fetched_at: u64,
    next_refresh: u64,
    in_flight_since: Option<u64>,
    failures: u32,
    retry_at: u64,
    last_kid_refetch: Option<u64>,
    want_refetch: bool,
    rng: u64,
}

impl KeyCache {
    /// A cache that fetches its keys remotely; it starts empty.
    pub fn remote(config: KeyCacheConfig) -> KeyCache {
        KeyCache {
            config,
            remote: true,
            keys: None,
            fetched_at: 0,
            next_refresh: 0,
            in_flight_since: None,
            failures: 0,
            retry_at: 0,
            last_kid_refetch: None,
            want_refetch: false,
            rng: config.jitter_seed | 1,
        }
    }

    /// A cache holding fixed keys (inline configuration, tests). It never asks for a fetch and
    /// its keys never go stale.
    pub fn fixed(keys: KeySet) -> KeyCache {
        let mut cache = KeyCache::remote(KeyCacheConfig::default());
        cache.remote = false;
        cache.keys = Some(keys);
        cache
    }

    /// Seed a remote cache with keys known at start (e.g. inline `jwks` in a config) as if they
    /// had been fetched at `now`; they are refreshed remotely on schedule.
    pub fn seed(&mut self, keys: KeySet, now: u64) {
        self.keys = Some(keys);
        self.fetched_at = now;
        self.next_refresh = now.saturating_add(self.config.refresh_s);
    }

    /// The configuration.
    pub fn config(&self) -> &KeyCacheConfig {
        &self.config
    }

    /// Should the host start a fetch now? Marks the fetch as in flight when it says yes.
    pub fn poll(&mut self, now: u64) -> Option<FetchRequest> {
        if !self.remote {
            return None;
        }
        if let Some(since) = self.in_flight_since {
            if now < since.saturating_add(self.config.fetch_timeout_s) {
                return None;
            }
            self.on_failure(now);
        }
        if now < self.retry_at {
            return None;
        }
        let reason = if self.keys.is_none() {
            if self.failures > 0 {
                FetchReason::Retry
            } else {
                FetchReason::Initial
            }
        } else if self.want_refetch {
            FetchReason::UnknownKid
        } else if now >= self.next_refresh {
            if self.failures > 0 {
                FetchReason::Retry
            } else {
                FetchReason::Refresh
            }
        } else {
            return None;
        };
        if reason == FetchReason::UnknownKid {
            // The cooldown runs from when the refetch starts, so however late the host polls,
            // two unknown-kid fetches never start closer than the cooldown.
            self.last_kid_refetch = Some(now);
        }
        self.want_refetch = false;
        self.in_flight_since = Some(now);
        Some(FetchRequest { reason })
    }

    /// The host's fetch finished with an HTTP answer.
    ///
    /// # Errors
    /// [`RefreshError`] when the answer was not taken (the previous keys stay).
    pub fn on_response(
        &mut self,
        now: u64,
        status: u16,
        cache_control: Option<&str>,
        body: &[u8],
    ) -> Result<usize, RefreshError> {
        if status != 200 {
            self.on_failure(now);
            return Err(RefreshError::Status(status));
        }
        match KeySet::from_json(body, self.config.limits) {
            Ok(keys) => {
                let count = keys.kids().count();
                self.in_flight_since = None;
                self.keys = Some(keys);
                self.fetched_at = now;
                self.failures = 0;
                self.retry_at = 0;
                let ttl = cache_control
                    .and_then(max_age)
                    .map(|s| s.clamp(self.config.min_refresh_s, self.config.max_refresh_s))
                    .unwrap_or(self.config.refresh_s);
                self.next_refresh = now.saturating_add(ttl);
                Ok(count)
            }
            Err(e) => {
                self.on_failure(now);
                Err(RefreshError::Jwks(e))
            }
        }
    }

    /// The host's fetch failed (connection error, timeout, reset).
    pub fn on_failure(&mut self, now: u64) {
        self.in_flight_since = None;
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(30);
        let backoff = self
            .config
            .backoff_initial_s
            .saturating_mul(1u64 << exp)
            .min(self.config.backoff_max_s)
            .max(1);
        // Jitter in [backoff/2, backoff] spreads retries of many proxies after an outage.
        let half = backoff / 2;
        let jitter = if half > 0 {
            self.next_random() % (half + 1)
        } else {
            0
        };
        self.retry_at = now.saturating_add(backoff - half + jitter);
    }

    /// Look up `kid` at `now`; an unknown kid schedules one refetch per cooldown.
    pub fn lookup(&mut self, kid: &str, now: u64) -> Lookup<'_> {
        if !self.usable_at(now) {
            return Lookup::Unavailable;
        }
        let found = self.keys.as_ref().is_some_and(|k| k.contains(kid));
        if found {
            return match &self.keys {
                Some(keys) => Lookup::Found(keys),
                None => Lookup::Unavailable,
            };
        }
        let refetch = self.note_unknown_kid(now);
        Lookup::Unknown { refetch }
    }

    /// The key set, if one is usable at `now`.
    pub fn keys(&self, now: u64) -> Option<&KeySet> {
        if self.usable_at(now) {
            self.keys.as_ref()
        } else {
            None
        }
    }

    /// Whether a fetch is under way or would start at the next [`KeyCache::poll`]: a host
    /// waiting for keys may then retry after it.
    pub fn fetch_pending(&self, now: u64) -> bool {
        self.remote
            && (self.in_flight_since.is_some()
                || (now >= self.retry_at
                    && (self.keys.is_none() || self.want_refetch || now >= self.next_refresh)))
    }

    /// Whether a fetch is under way.
    pub fn fetch_in_flight(&self) -> bool {
        self.in_flight_since.is_some()
    }

    /// Consecutive failed fetches since the last good one.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When the current key set was fetched (0 for fixed keys).
    pub fn fetched_at(&self) -> u64 {
        self.fetched_at
    }

    /// Ask for a refetch because a token named an unknown kid. Returns whether a fetch is now
    /// scheduled or under way.
    pub fn note_unknown_kid(&mut self, now: u64) -> bool {
        if !self.remote {
            return false;
        }
        if self.in_flight_since.is_some() || self.want_refetch {
            return true;
        }
        if let Some(last) = self.last_kid_refetch {
            if now < last.saturating_add(self.config.unknown_kid_cooldown_s) {
                return false;
            }
        }
        self.want_refetch = true;
        true
    }

    fn usable_at(&self, now: u64) -> bool {
        self.keys.is_some()
            && (!self.remote || now <= self.fetched_at.saturating_add(self.config.max_stale_s))
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: jitter only needs to differ between proxies, not to be unpredictable.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// `max-age` from a `Cache-Control` value (RFC 9111 §5.2.2.1). `no-store`/`no-cache` and
/// malformed values give `None` (the default interval applies).
pub fn max_age(cache_control: &str) -> Option<u64> {
    let mut age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return None;
        }
        if name.eq_ignore_ascii_case("max-age") {
            age = value.and_then(|v| v.parse::<u64>().ok());
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwks() -> &'static [u8] {
        // One usable P-256 key (the generator point, which is on the curve).
        br#"{"keys":[{"kid":"k1","kty":"EC","crv":"P-256","x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY","y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}]}"#
    }

    fn cache() -> KeyCache {
        KeyCache::remote(KeyCacheConfig::default())
    }

    #[test]
    fn first_poll_asks_for_an_initial_fetch_and_only_one_at_a_time() {
        let mut c = cache();
        assert_eq!(
            c.poll(100),
            Some(FetchRequest {
                reason: FetchReason::Initial
            })
        );
        assert_eq!(c.poll(101), None, "single flight");
        assert!(matches!(c.lookup("k1", 101), Lookup::Unavailable));
        assert_eq!(c.on_response(102, 200, None, jwks()), Ok(1));
        assert!(matches!(c.lookup("k1", 102), Lookup::Found(_)));
    }

    #[test]
    fn refresh_follows_max_age_clamped() {
        let mut c = cache();
        c.poll(0);
        c.on_response(0, 200, Some("public, max-age=5"), jwks())
            .unwrap();
        assert_eq!(c.poll(59), None, "max-age below 60 s is clamped up");
        assert_eq!(c.poll(60).map(|r| r.reason), Some(FetchReason::Refresh));
        c.on_response(60, 200, Some("max-age=999999"), jwks())
            .unwrap();
        assert_eq!(c.poll(60 + 86_399), None);
        assert!(c.poll(60 + 86_400).is_some());
        c.on_response(60 + 86_400, 200, Some("no-store"), jwks())
            .unwrap();
        assert_eq!(c.poll(60 + 86_400 + 899), None);
        assert!(c.poll(60 + 86_400 + 900).is_some());
    }

    #[test]
    fn a_bad_refresh_never_replaces_good_keys() {
        let mut c = cache();
        c.poll(0);
        c.on_response(0, 200, None, jwks()).unwrap();
        c.poll(900).unwrap();
        assert_eq!(
            c.on_response(900, 500, None, b""),
            Err(RefreshError::Status(500))
        );
        assert!(matches!(c.lookup("k1", 901), Lookup::Found(_)));
        c.poll(5000).unwrap();
        assert_eq!(
            c.on_response(5000, 200, None, b"<html>oops</html>"),
            Err(RefreshError::Jwks(JwksError::NotAKeySet))
        );
        c.poll(9000).unwrap();
        assert_eq!(
            c.on_response(9000, 200, None, br#"{"keys":[]}"#),
            Err(RefreshError::Jwks(JwksError::NoUsableKeys))
        );
        assert!(matches!(c.lookup("k1", 9001), Lookup::Found(_)));
    }

    #[test]
    fn last_good_keys_expire_after_max_stale() {
        let mut c = cache();
        c.poll(0);
        c.on_response(0, 200, None, jwks()).unwrap();
        assert!(matches!(c.lookup("k1", 86_400), Lookup::Found(_)));
        assert!(matches!(c.lookup("k1", 86_401), Lookup::Unavailable));
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_up_to_the_cap() {
        let mut c = cache();
        let mut now = 0;
        let mut last_delay = 0;
        for attempt in 1..=12u32 {
            assert!(c.poll(now).is_some(), "attempt {attempt} at {now}");
            c.on_failure(now);
            let delay = c.retry_at - now;
            let nominal = (1u64 << (attempt - 1)).min(300);
            assert!(
                delay >= nominal - nominal / 2 && delay <= nominal,
                "{attempt}: {delay}"
            );
            assert_eq!(c.poll(now + delay - 1), None);
            last_delay = delay;
            now += delay;
        }
        assert!(last_delay >= 150);
        assert!(c.poll(now).is_some());
        c.on_response(now, 200, None, jwks()).unwrap();
        assert_eq!(c.failures(), 0);
    }

    #[test]
    fn an_unanswered_fetch_times_out_as_a_failure() {
        let mut c = cache();
        c.poll(0).unwrap();
        assert_eq!(c.poll(9), None);
        // At 10 s the fetch is declared failed; the 1 s backoff then applies.
        assert_eq!(c.poll(10), None);
        assert_eq!(c.failures(), 1);
        assert_eq!(c.poll(11).map(|r| r.reason), Some(FetchReason::Retry));
    }

    #[test]
    fn unknown_kids_refetch_once_per_cooldown() {
        let mut c = cache();
        c.poll(0);
        c.on_response(0, 200, None, jwks()).unwrap();
        assert!(matches!(
            c.lookup("new", 10),
            Lookup::Unknown { refetch: true }
        ));
        assert_eq!(c.poll(10).map(|r| r.reason), Some(FetchReason::UnknownKid));
        assert!(
            matches!(c.lookup("new", 11), Lookup::Unknown { refetch: true }),
            "in flight"
        );
        c.on_response(11, 200, None, jwks()).unwrap();
        assert!(matches!(
            c.lookup("new", 12),
            Lookup::Unknown { refetch: false }
        ));
        assert_eq!(c.poll(39), None);
        assert!(matches!(
            c.lookup("new", 40),
            Lookup::Unknown { refetch: true }
        ));
        assert!(c.poll(40).is_some());
    }

    #[test]
    fn fixed_keys_never_fetch_or_expire() {
        let keys = KeySet::from_json(jwks(), KeySetLimits::default()).unwrap();
        let mut c = KeyCache::fixed(keys);
        assert_eq!(c.poll(0), None);
        assert!(matches!(c.lookup("k1", u64::MAX), Lookup::Found(_)));
        assert!(matches!(
            c.lookup("zz", 5),
            Lookup::Unknown { refetch: false }
        ));
    }

    #[test]
    fn max_age_parsing() {
        assert_eq!(max_age("max-age=300"), Some(300));
        assert_eq!(max_age("public, MAX-AGE=\"60\", must-revalidate"), Some(60));
        assert_eq!(max_age("max-age=-1"), None);
        assert_eq!(max_age("no-cache, max-age=300"), None);
        assert_eq!(max_age(""), None);
    }
}
