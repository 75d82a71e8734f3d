//! What workers share through proxy-wasm shared data: the last good JWKS of each provider and
//! the last good policy feed document (so one worker fetches and all use it), a lease per fetch
//! that makes it single-flight across workers, and a counter that gives each worker VM its own
//! id.

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
        let mut out = Vec::with_capacity(24 + self.body.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.fetched_at.to_le_bytes());
        put_text(&mut out, self.cache_control.as_deref());
        out.extend_from_slice(&self.body);
        out
    }

    /// The inverse of [`JwksRecord::encode`].
    pub fn decode(bytes: &[u8]) -> Option<JwksRecord> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let (seq, rest) = u64_at(rest)?;
        let (fetched_at, rest) = u64_at(rest)?;
        let (cache_control, body) = text_at(rest)?;
        Some(JwksRecord {
            seq,
            fetched_at,
            cache_control,
            body: body.to_vec(),
        })
    }
}

/// The policy feed document as one worker fetched it (a `200`), or confirmed it (a `304`: the
/// same body again with the time of the confirmation), for the others to load.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct FeedRecord {
    /// Increases with every publication.
    pub seq: u64,
    /// When it was fetched or confirmed (seconds): every worker counts freshness from here.
    pub fetched_at: u64,
    /// The document's `ETag`, if any (the next `If-None-Match`).
    pub etag: Option<String>,
    /// The answer's `Cache-Control`, if any.
    pub cache_control: Option<String>,
    /// The document, as served (JSON or compact JWS).
    pub body: Vec<u8>,
}

const FEED_MAGIC: &[u8; 4] = b"TGF1";

impl FeedRecord {
    /// Binary form: magic, seq, fetched_at, ETag and cache-control (each a u32 length,
    /// `u32::MAX` = none, then the text), body. Little endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.body.len() + 96);
        out.extend_from_slice(FEED_MAGIC);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.fetched_at.to_le_bytes());
        put_text(&mut out, self.etag.as_deref());
        put_text(&mut out, self.cache_control.as_deref());
        out.extend_from_slice(&self.body);
        out
    }

    /// The inverse of [`FeedRecord::encode`].
    pub fn decode(bytes: &[u8]) -> Option<FeedRecord> {
        let rest = bytes.strip_prefix(FEED_MAGIC)?;
        let (seq, rest) = u64_at(rest)?;
        let (fetched_at, rest) = u64_at(rest)?;
        let (etag, rest) = text_at(rest)?;
        let (cache_control, body) = text_at(rest)?;
        Some(FeedRecord {
            seq,
            fetched_at,
            etag,
            cache_control,
            body: body.to_vec(),
        })
    }
}

/// An optional header value: u32 length (`u32::MAX` = none), then the bytes.
fn put_text(out: &mut Vec<u8>, text: Option<&str>) {
    let len = match text {
        Some(t) => u32::try_from(t.len()).unwrap_or(0),
        None => u32::MAX,
    };
    out.extend_from_slice(&len.to_le_bytes());
    if let Some(t) = text.filter(|_| len != 0) {
        out.extend_from_slice(t.as_bytes());
    }
}

/// The inverse of [`put_text`], and what follows.
fn text_at(bytes: &[u8]) -> Option<(Option<String>, &[u8])> {
    let len: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let rest = bytes.get(4..)?;
    let len = u32::from_le_bytes(len);
    if len == u32::MAX {
        return Some((None, rest));
    }
    let len = usize::try_from(len).ok()?;
    let text = std::str::from_utf8(rest.get(..len)?).ok()?;
    Some((Some(text.to_owned()), rest.get(len..)?))
}

/// Who is fetching a provider's JWKS (or the policy feed), and until when the claim holds.
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

    /// The published policy feed record.
    pub fn feed(&self) -> String {
        format!("{}feed", self.prefix)
    }

    /// The sequence number of the policy feed record (small, read every tick).
    pub fn feed_seq(&self) -> String {
        format!("{}feed_seq", self.prefix)
    }

    /// The policy feed's fetch lease.
    pub fn feed_lease(&self) -> String {
        format!("{}lease:feed", self.prefix)
    }

    /// The policy feed's last failed refresh: when (seconds, 8 bytes LE) and why (text), so
    /// that whichever worker reports the feed stale names the fetching worker's error.
    pub fn feed_error(&self) -> String {
        format!("{}feed_error", self.prefix)
    }

    /// Whether the policy feed was last reported stale or fresh (so that only the first
    /// worker to see it turn logs it).
    pub fn feed_state(&self) -> String {
        format!("{}feed_state", self.prefix)
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
    fn feed_records_round_trip() {
        let texts = [None, Some(String::new()), Some("\"v7\"".to_owned())];
        for etag in &texts {
            for cc in &texts {
                let r = FeedRecord {
                    seq: 3,
                    fetched_at: 1_767_268_800,
                    etag: etag.clone(),
                    cache_control: cc.clone(),
                    body: br#"{"format":1}"#.to_vec(),
                };
                assert_eq!(FeedRecord::decode(&r.encode()), Some(r));
            }
        }
        let jwks = JwksRecord {
            seq: 1,
            fetched_at: 2,
            cache_control: None,
            body: Vec::new(),
        };
        assert_eq!(
            FeedRecord::decode(&jwks.encode()),
            None,
            "not mistaken for a JWKS"
        );
        assert_eq!(FeedRecord::decode(b"TGF1"), None);
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
