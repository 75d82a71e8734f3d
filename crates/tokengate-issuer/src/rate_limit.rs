//! Token buckets keyed by client id or source IP.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Buckets past this count are swept of full ones, so keys that stopped calling do not pile up.
const SWEEP_ABOVE: usize = 4096;

/// One token bucket per key: `burst` requests at once, refilled at `per_s`.
pub(crate) struct RateLimiter<K> {
    per_s: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Eq + Hash> RateLimiter<K> {
    pub(crate) fn new(per_s: f64, burst: u32) -> RateLimiter<K> {
        RateLimiter {
            per_s,
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `key`, or say after how many whole seconds (≥ 1) one will be there,
    /// for `Retry-After`.
    pub(crate) fn acquire(&self, key: K, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > SWEEP_ABOVE {
            buckets.retain(|_, bucket| self.refilled(*bucket, now).tokens < self.burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        *bucket = self.refilled(*bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.retry_after(bucket.tokens))
        }
    }

    /// Like [`RateLimiter::acquire`] without taking a token: is the bucket empty?
    pub(crate) fn check(&self, key: &K, now: Instant) -> Result<(), u64> {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        match buckets.get(key).map(|bucket| self.refilled(*bucket, now)) {
            Some(bucket) if bucket.tokens < 1.0 => Err(self.retry_after(bucket.tokens)),
            _ => Ok(()),
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        Bucket {
            tokens: (bucket.tokens + elapsed * self.per_s).min(self.burst),
            updated: now,
        }
    }

    fn retry_after(&self, tokens: f64) -> u64 {
        let seconds = ((1.0 - tokens) / self.per_s).ceil();
        // `as` saturates for floats; the config guarantees per_s > 0, so this is finite.
        (seconds as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_at_rate() {
        let limiter = RateLimiter::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire("a", start).unwrap();
        }
        assert_eq!(limiter.acquire("a", start), Err(1));
        assert_eq!(limiter.check(&"a", start), Err(1));
        limiter.acquire("b", start).unwrap();
        limiter
            .acquire("a", start + Duration::from_millis(500))
            .unwrap();
        assert!(limiter
            .acquire("a", start + Duration::from_millis(500))
            .is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let limiter = RateLimiter::new(0.1, 1);
        let start = Instant::now();
        limiter.acquire((), start).unwrap();
        assert_eq!(limiter.acquire((), start), Err(10));
        assert_eq!(limiter.acquire((), start + Duration::from_secs(5)), Err(5));
    }
}
