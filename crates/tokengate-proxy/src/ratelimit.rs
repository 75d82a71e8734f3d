//! Token bucket per client, stored in proxy-wasm shared data so every worker draws from the
//! same bucket. This module is the arithmetic; the filter does the compare-and-swap.

use crate::config::RateLimit;

/// A bucket as stored: tokens left and when they were counted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Tokens left (fractional).
    pub tokens: f64,
    /// Milliseconds since the epoch of the last update.
    pub at_ms: u64,
}

impl Bucket {
    /// 16 bytes: tokens (f64 bits) then time, little endian.
    pub fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (a, b) = out.split_at_mut(8);
        a.copy_from_slice(&self.tokens.to_bits().to_le_bytes());
        b.copy_from_slice(&self.at_ms.to_le_bytes());
        out
    }

    /// The inverse of [`Bucket::encode`]; `None` for anything else (then a full bucket is used).
    pub fn decode(bytes: &[u8]) -> Option<Bucket> {
        let tokens: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
        let at: [u8; 8] = bytes.get(8..16)?.try_into().ok()?;
        let tokens = f64::from_bits(u64::from_le_bytes(tokens));
        if bytes.len() != 16 || !tokens.is_finite() {
            return None;
        }
        Some(Bucket {
            tokens,
            at_ms: u64::from_le_bytes(at),
        })
    }
}

/// Take one token at `now_ms`. Returns the new bucket and `Ok(())`, or `Err(retry_after_s)`
/// (whole seconds, at least 1) when the bucket is empty; an empty bucket is stored unchanged
/// apart from its refill.
pub fn take(prev: Option<Bucket>, now_ms: u64, limit: RateLimit) -> (Bucket, Result<(), u64>) {
    let refilled = match prev {
        None => limit.burst,
        Some(b) => {
            // A clock that steps back refills nothing rather than going negative.
            let elapsed_s = now_ms.saturating_sub(b.at_ms) as f64 / 1000.0;
            (b.tokens + elapsed_s * limit.per_client_per_s).min(limit.burst)
        }
    };
    if refilled >= 1.0 {
        (
            Bucket {
                tokens: refilled - 1.0,
                at_ms: now_ms,
            },
            Ok(()),
        )
    } else {
        let wait_s = ((1.0 - refilled) / limit.per_client_per_s).ceil().max(1.0);
        let wait_s = if wait_s.is_finite() && wait_s < 86_400.0 {
            wait_s as u64
        } else {
            86_400
        };
        (
            Bucket {
                tokens: refilled,
                at_ms: now_ms,
            },
            Err(wait_s),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_client_per_s: 2.0,
        burst: 3.0,
    };

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let mut b = None;
        for i in 0..3 {
            let (nb, r) = take(b, 1000, LIMIT);
            assert_eq!(r, Ok(()), "request {i}");
            b = Some(nb);
        }
        let (nb, r) = take(b, 1000, LIMIT);
        assert_eq!(r, Err(1));
        b = Some(nb);
        let (nb, r) = take(b, 1499, LIMIT);
        assert!(r.is_err());
        let (_, r) = take(Some(nb), 1500, LIMIT);
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn slow_rates_ask_for_longer_waits_and_encoding_round_trips() {
        let slow = RateLimit {
            per_client_per_s: 0.1,
            burst: 1.0,
        };
        let (b, _) = take(None, 0, slow);
        let (b, r) = take(Some(b), 0, slow);
        assert_eq!(r, Err(10));
        assert_eq!(Bucket::decode(&b.encode()), Some(b));
        assert_eq!(Bucket::decode(b"short"), None);
    }
}
