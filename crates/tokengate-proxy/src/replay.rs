//! The gate's answers to identical requests, remembered between two ticks of one worker.
//!
//! A warm request through the gate is cheap in instructions, yet under Envoy's V8 its memory
//! traffic and calls cost several times what the host calls around it do. Within one tick the
//! gate is a pure function of the request: its keys, policy feed and clock reading change only
//! on the root context's tick and callouts, which clear this table. So the filter may replay
//! what the core answered for the same method, target and `Authorization` bytes, instead of
//! asking again.
//!
//! Only what cannot depend on anything else is kept, and the core says what that is
//! (`Allowed::repeatable`): an enforced allow, judged on the tick clock (never on an exact
//! clock read near a time boundary of the token), without client certificate inputs, in a
//! configuration with a verified-token cache and without a rate limit (its buckets change with
//! every request). The filter keys it by the request's method, target and `Authorization`
//! value, so it keeps only requests with at most one. Denials, report mode and paused requests
//! always go to the gate.
//!
//! The table is direct-mapped and bounded: a slot holds one request; a collision or a full
//! table only costs a decision by the gate. Keys are compared byte for byte.

use std::rc::Rc;

use tokengate::tokencache::token_hash;

/// Slots per worker.
pub const SLOTS: usize = 256;

/// Remembered answers, each for one exact request.
pub struct Replay<T> {
    slots: Vec<Option<Slot<T>>>,
    /// The clock reading (ms) the answers were given under; another reading empties the table.
    clock_ms: u64,
}

struct Slot<T> {
    hash: u64,
    /// The lengths of `method` and `target` at the front of `key`.
    split: (usize, usize),
    /// `method`, `target` and `authorization`, one after the other.
    key: Box<[u8]>,
    value: Rc<T>,
}

/// The parts of a request an answer depends on (the configuration vouches for the rest).
#[derive(Clone, Copy)]
pub struct Key<'a> {
    /// `:method` as received.
    pub method: &'a [u8],
    /// `:path` as received.
    pub target: &'a [u8],
    /// The one `Authorization` value, empty when none was sent.
    pub authorization: &'a [u8],
}

impl Key<'_> {
    fn hash(&self) -> u64 {
        let mut h = Hasher(0x243f_6a88_85a3_08d3);
        h.write(self.method);
        h.write(self.target);
        h.write_sampled(self.authorization);
        h.0
    }

    fn matches<T>(&self, slot: &Slot<T>) -> bool {
        let (m, t, a) = (self.method, self.target, self.authorization);
        slot.split == (m.len(), t.len())
            && slot.key.len() == m.len() + t.len() + a.len()
            && slot.key.get(..m.len()) == Some(m)
            && slot.key.get(m.len()..m.len() + t.len()) == Some(t)
            && slot.key.get(m.len() + t.len()..) == Some(a)
    }

    fn to_bytes(self) -> Box<[u8]> {
        [self.method, self.target, self.authorization]
            .concat()
            .into_boxed_slice()
    }
}

impl<T> Replay<T> {
    /// An empty table of [`SLOTS`] slots.
    pub fn new() -> Replay<T> {
        Replay {
            slots: (0..SLOTS).map(|_| None).collect(),
            clock_ms: 0,
        }
    }

    /// The answer remembered for `key` under the clock reading `clock_ms`.
    pub fn get(&self, key: &Key<'_>, clock_ms: u64) -> Option<Rc<T>> {
        if clock_ms != self.clock_ms {
            return None;
        }
        let hash = key.hash();
        match self.slots.get(slot_of(hash))? {
            Some(s) if s.hash == hash && key.matches(s) => Some(s.value.clone()),
            _ => None,
        }
    }

    /// Remember `value` as the answer to `key` under `clock_ms` (replacing whatever shared its
    /// slot, and everything remembered under another reading).
    pub fn insert(&mut self, key: &Key<'_>, clock_ms: u64, value: Rc<T>) {
        if clock_ms != self.clock_ms {
            self.clear();
            self.clock_ms = clock_ms;
        }
        let hash = key.hash();
        if let Some(place) = self.slots.get_mut(slot_of(hash)) {
            *place = Some(Slot {
                hash,
                split: (key.method.len(), key.target.len()),
                key: key.to_bytes(),
                value,
            });
        }
    }

    /// Forget everything: the gate's state may have changed.
    pub fn clear(&mut self) {
        for s in &mut self.slots {
            *s = None;
        }
    }
}

impl<T> Default for Replay<T> {
    fn default() -> Replay<T> {
        Replay::new()
    }
}

fn slot_of(hash: u64) -> usize {
    (hash >> 56) as usize % SLOTS
}

/// A multiply-rotate mix in the style of FxHash, eight bytes per step, with each part's length
/// folded in so that the three parts cannot slide into one another. Not a defence against
/// chosen collisions, and it needs none: a collision only costs a decision by the gate.
struct Hasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let word = <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes);
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        let mut last = [0u8; 8];
        for (to, from) in last.iter_mut().zip(words.remainder()) {
            *to = *from;
        }
        self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K);
        self.0 = (self.0.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(K);
    }

    /// The `Authorization` value by the verified-token cache's own index hash
    /// ([`tokengate::tokencache::token_hash`]: its length, last 16 bytes and 8 from its
    /// middle). Only allowed requests are remembered, and the end of their value is a token's
    /// signature, which nobody can choose: the slots stay spread however lookups are chosen,
    /// and a lookup costs the same for a 1 KiB token as for a short one. Equality still
    /// compares every byte.
    fn write_sampled(&mut self, bytes: &[u8]) {
        self.0 = (self.0.rotate_left(5) ^ token_hash(bytes)).wrapping_mul(K);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(m: &'a str, t: &'a str, a: &'a str) -> Key<'a> {
        Key {
            method: m.as_bytes(),
            target: t.as_bytes(),
            authorization: a.as_bytes(),
        }
    }

    #[test]
    fn an_answer_is_replayed_only_for_the_exact_request_and_clock_reading() {
        let mut r = Replay::new();
        r.insert(&key("GET", "/orders", "Bearer a.b.c"), 1000, Rc::new(1));
        assert_eq!(
            r.get(&key("GET", "/orders", "Bearer a.b.c"), 1000)
                .as_deref(),
            Some(&1)
        );
        for other in [
            key("GET", "/orders", "Bearer a.b.d"),
            key("GET", "/orders/", "Bearer a.b.c"),
            key("HEAD", "/orders", "Bearer a.b.c"),
            key("GET", "/ordersBearer a.b.c", ""),
            key("GET\0/orders", "", "Bearer a.b.c"),
            key("GE", "T/orders", "Bearer a.b.c"),
            key("GET", "/orders", ""),
        ] {
            assert!(r.get(&other, 1000).is_none());
        }
        assert!(r
            .get(&key("GET", "/orders", "Bearer a.b.c"), 1001)
            .is_none());
        r.insert(&key("GET", "/x", ""), 1001, Rc::new(2));
        assert!(
            r.get(&key("GET", "/orders", "Bearer a.b.c"), 1000)
                .is_none(),
            "a new reading forgets the old answers"
        );
        r.clear();
        assert!(r.get(&key("GET", "/x", ""), 1001).is_none());
    }

    #[test]
    fn values_that_share_their_sampled_bytes_are_still_told_apart() {
        // Same length, same middle and last 16 bytes: the same hash, different requests.
        let a = format!(
            "Bearer {}{}{}",
            "a".repeat(300),
            "m".repeat(40),
            "s".repeat(300)
        );
        let b = format!(
            "Bearer {}{}{}",
            "b".repeat(300),
            "m".repeat(40),
            "s".repeat(300)
        );
        assert_eq!(
            key("GET", "/orders", &a).hash(),
            key("GET", "/orders", &b).hash()
        );
        let mut r = Replay::new();
        r.insert(&key("GET", "/orders", &a), 7, Rc::new(1));
        assert!(r.get(&key("GET", "/orders", &b), 7).is_none());
        assert_eq!(r.get(&key("GET", "/orders", &a), 7).as_deref(), Some(&1));
        // Every byte of a short value counts, and so does the length of a long one.
        assert_ne!(
            key("GET", "/", "Bearer a.b.c").hash(),
            key("GET", "/", "Bearer x.b.c").hash()
        );
        assert_ne!(key("GET", "/", &a).hash(), key("GET", "/", &a[1..]).hash());
    }

    #[test]
    fn the_table_stays_bounded_and_collisions_only_miss() {
        let mut r = Replay::new();
        let tokens: Vec<String> = (0..10 * SLOTS)
            .map(|i| format!("Bearer token-{i}"))
            .collect();
        for (i, t) in tokens.iter().enumerate() {
            r.insert(&key("GET", "/orders", t), 7, Rc::new(i));
        }
        assert_eq!(r.slots.len(), SLOTS);
        let mut hits = 0;
        for (i, t) in tokens.iter().enumerate() {
            if let Some(v) = r.get(&key("GET", "/orders", t), 7) {
                assert_eq!(*v, i, "never another request's answer");
                hits += 1;
            }
        }
        assert!(hits <= SLOTS && hits > SLOTS / 2, "{hits}");
    }
}
