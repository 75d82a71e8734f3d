//! Token bucket per client. This module is the arithmetic and the bucket key; where buckets
//! live is the host's business (proxy-wasm shared data with compare-and-swap in Envoy, a map in
//! a JS process).

use alloc::string::String;

use crate::claims::Claims;

/// Sustained rate and burst, per client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per client.
    pub per_client_per_s: f64,
    /// Bucket size (requests allowed in a burst).
    pub burst: f64,
}

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
        if bytes.len() != 16 {
            return None;
        }
        let tokens: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
        let at: [u8; 8] = bytes.get(8..16)?.try_into().ok()?;
        let tokens = f64::from_bits(u64::from_le_bytes(tokens));
        if !tokens.is_finite() {
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
            let t = b.tokens + elapsed_s * limit.per_client_per_s;
            if t < limit.burst {
                t
            } else {
                limit.burst
            }
        }
    };
    if refilled >= 1.0 {
        return (
            Bucket {
                tokens: refilled - 1.0,
                at_ms: now_ms,
            },
            Ok(()),
        );
    }
    let wait_s = (1.0 - refilled) / limit.per_client_per_s;
    // Round up to whole seconds without `f64::ceil` (not in `core`).
    let whole = if wait_s.is_finite() && wait_s < 86_400.0 {
        let t = wait_s as u64;
        if (t as f64) < wait_s {
            t + 1
        } else {
            t
        }
    } else {
        86_400
    };
    (
        Bucket {
            tokens: refilled,
            at_ms: now_ms,
        },
        Err(whole.max(1)),
    )
}

/// The bucket a verified token draws from: one per `(issuer, client_id)`; a token without
/// `client_id` draws from its issuer's bucket for its `sub`, and one with neither from one
/// shared bucket of its issuer. The parts are separated by a byte no claim text holds
/// unescaped (`\n`) and tagged, so a `client_id` never shares a bucket with an equal `sub`.
pub fn bucket_key(claims: &Claims) -> String {
    let mut key = String::from(claims.iss().unwrap_or(""));
    match (claims.client_id(), claims.sub()) {
        (Some(client), _) => {
            key.push_str("\nc:");
            key.push_str(client);
        }
        (None, Some(sub)) => {
            key.push_str("\ns:");
            key.push_str(sub);
        }
        (None, None) => key.push_str("\n-"),
    }
    key
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

    #[test]
    fn buckets_are_per_issuer_and_client_or_sub() {
        let key = |v: crate::json::Value| {
            let crate::json::Value::Object(m) = v else {
                unreachable!()
            };
            bucket_key(&Claims::new(m))
        };
        let a = key(json!({"iss": "https://a", "client_id": "x"}));
        let b = key(json!({"iss": "https://b", "client_id": "x"}));
        let s = key(json!({"iss": "https://a", "sub": "x"}));
        assert_ne!(a, b);
        assert_ne!(a, s);
        assert_eq!(key(json!({"iss": "https://a"})), "https://a\n-");
    }
}
