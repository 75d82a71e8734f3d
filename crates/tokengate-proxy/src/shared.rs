//! What workers share through proxy-wasm shared data: the last good JWKS of each provider (so
//! one worker fetches and all use it), a lease that makes that fetch single-flight across
//! workers, and a counter that gives each worker VM its own id.

/// A JWKS as one worker fetched it, for the others to load.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct JwksRecord {
    /// Increases with every publication.
    pub seq: u64,
    /// When it was fetched (seconds); freshness and staleness count from here on every worker.
    pub fetched_at: u64,
    /// The response's `Cache-Control`, if any.
    pub cache_control: Option<String>,
    /// The JWKS body.
    pub body: Vec<u8>,
}

const MAGIC: &[u8; 4] = b"TGJ1";

impl JwksRecord {
    /// Binary form: magic, seq, fetched_at, cache-control length (u32, `u32::MAX` = none),
    /// cache-control, body. Little endian.
    pub fn encode(&self) -> Vec<u8> {
        let cc = self.cache_control.as_deref().unwrap_or("");
        let mut out = Vec::with_capacity(24 + cc.len() + self.body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.fetched_at.to_le_bytes());
        let len = match &self.cache_control {
            Some(c) => u32::try_from(c.len()).unwrap_or(0),
            None => u32::MAX,
        };
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(cc.as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// The inverse of [`JwksRecord::encode`].
    pub fn decode(bytes: &[u8]) -> Option<JwksRecord> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let (seq, rest) = u64_at(rest)?;
        let (fetched_at, rest) = u64_at(rest)?;
        let len: [u8; 4] = rest.get(..4)?.try_into().ok()?;
        let rest = rest.get(4..)?;
        let len = u32::from_le_bytes(len);
        let (cache_control, body) = if len == u32::MAX {
            (None, rest)
        } else {
            let len = usize::try_from(len).ok()?;
            let cc = std::str::from_utf8(rest.get(..len)?).ok()?;
            (Some(cc.to_owned()), rest.get(len..)?)
        };
        Some(JwksRecord {
            seq,
            fetched_at,
            cache_control,
            body: body.to_vec(),
        })
    }
}

/// Who is fetching a provider's JWKS, and until when the claim holds.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Lease {
    /// Worker VM id.
    pub owner: u64,
    /// Milliseconds since the epoch after which the lease is void.
    pub until_ms: u64,
}

impl Lease {
    /// 16 bytes; an empty value means no lease.
    pub fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (a, b) = out.split_at_mut(8);
        a.copy_from_slice(&self.owner.to_le_bytes());
        b.copy_from_slice(&self.until_ms.to_le_bytes());
        out
    }

    /// The lease in `bytes`, if any.
    pub fn decode(bytes: &[u8]) -> Option<Lease> {
        if bytes.len() != 16 {
            return None;
        }
        let (owner, rest) = u64_at(bytes)?;
        let (until_ms, _) = u64_at(rest)?;
        Some(Lease { owner, until_ms })
    }

    /// Whether someone other than `me` holds it at `now_ms`.
    pub fn held_by_other(bytes: Option<&[u8]>, me: u64, now_ms: u64) -> bool {
        bytes
            .and_then(Lease::decode)
            .is_some_and(|l| l.owner != me && l.until_ms > now_ms)
    }
}

/// A u64 stored as 8 little-endian bytes (sequence numbers, counters).
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != 8 {
        return None;
    }
    u64_at(bytes).map(|(v, _)| v)
}

/// Shared-data key names under one configuration's namespace.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys for the configuration `config` (its bytes): workers with the same configuration
    /// share, different filter configurations in one VM do not collide.
    pub fn for_config(config: &[u8]) -> Keys {
        Keys {
            prefix: format!("tokengate:{:016x}:", fnv1a(config)),
        }
    }

    /// The published JWKS of provider `i`.
    pub fn jwks(&self, i: usize) -> String {
        format!("{}jwks:{i}", self.prefix)
    }

    /// The sequence number of provider `i`'s JWKS (small, read every tick).
    pub fn seq(&self, i: usize) -> String {
        format!("{}seq:{i}", self.prefix)
    }

    /// The fetch lease of provider `i`.
    pub fn lease(&self, i: usize) -> String {
        format!("{}lease:{i}", self.prefix)
    }

    /// The rate-limit bucket of a client.
    pub fn bucket(&self, client_id: &str) -> String {
        format!("{}rl:{client_id}", self.prefix)
    }
}

/// Key of the counter that numbers worker VMs.
pub const VM_COUNTER_KEY: &str = "tokengate:vm_counter";

fn u64_at(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_le_bytes(head), bytes.get(8..)?))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for cc in [None, Some(String::new()), Some("max-age=300".to_owned())] {
            let r = JwksRecord {
                seq: 7,
                fetched_at: 1_767_268_800,
                cache_control: cc,
                body: br#"{"keys":[]}"#.to_vec(),
            };
            assert_eq!(JwksRecord::decode(&r.encode()), Some(r));
        }
        assert_eq!(JwksRecord::decode(b"TGJ1short"), None);
        assert_eq!(JwksRecord::decode(b""), None);
    }

    #[test]
    fn leases_expire_and_belong_to_someone() {
        let l = Lease {
            owner: 1,
            until_ms: 100,
        }
        .encode();
        assert!(Lease::held_by_other(Some(&l), 2, 99));
        assert!(!Lease::held_by_other(Some(&l), 1, 99));
        assert!(!Lease::held_by_other(Some(&l), 2, 100));
        assert!(!Lease::held_by_other(Some(b""), 2, 0));
        assert!(!Lease::held_by_other(None, 2, 0));
    }
}
