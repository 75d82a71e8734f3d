//! A header map as a proxy-wasm host serialises it (ABI 0.2.1): the number of pairs (u32 LE), a
//! table of name and value lengths (two u32 LE per pair), then each name and each value
//! followed by a NUL. The filter reads the request headers this way in one host call and walks
//! them in place; each request walks every pair, so the walk is plain slice splitting.

/// The serialised pairs, owned (the host allocated them in this module's memory).
pub struct HeaderMap {
    bytes: Vec<u8>,
}

impl HeaderMap {
    /// The map in `bytes`, as the host wrote it.
    pub fn new(bytes: Vec<u8>) -> HeaderMap {
        HeaderMap { bytes }
    }

    /// Every `(name, value)` pair in order, borrowed. A map that does not parse ends early: a
    /// count beyond its table, a length beyond its data. A missing NUL after the last value is
    /// tolerated; one missing between two entries ends the walk.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let (count, rest) = match self.bytes.split_first_chunk::<4>() {
            Some((count, rest)) => (u32::from_le_bytes(*count) as usize, rest),
            None => (0, &[][..]),
        };
        // Each pair needs its 8 table bytes: a count beyond that is not a map.
        let (table, mut data) = rest
            .split_at_checked(count.min(rest.len() / 8) * 8)
            .unwrap_or_default();
        table.chunks_exact(8).map_while(move |entry| {
            let (name_len, value_len) = entry.split_first_chunk::<4>()?;
            let name_len = u32::from_le_bytes(*name_len) as usize;
            let value_len = u32::from_le_bytes(*value_len.first_chunk::<4>()?) as usize;
            let (name, rest) = data.split_at_checked(name_len)?;
            let (value, rest) = rest.get(1..)?.split_at_checked(value_len)?;
            data = rest.get(1..).unwrap_or_default();
            Some((name, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's serialisation of `pairs`.
    fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            out.extend((n.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            out.extend(n.as_bytes());
            out.push(0);
            out.extend(v.as_bytes());
            out.push(0);
        }
        out
    }

    fn walk(bytes: Vec<u8>) -> Vec<(String, String)> {
        HeaderMap::new(bytes)
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn walks_every_pair_in_order_with_empty_values_and_repeats() {
        let pairs = [
            (":method", "GET"),
            (":path", "/orders?x=1"),
            ("authorization", "Bearer a.b.c"),
            ("x-empty", ""),
            ("authorization", "Bearer d.e.f"),
        ];
        assert_eq!(walk(encode(&pairs)), owned(&pairs));
        assert_eq!(walk(encode(&[])), owned(&[]));
        assert_eq!(walk(Vec::new()), owned(&[]));
        assert_eq!(walk(vec![1, 0]), owned(&[]));
    }

    #[test]
    fn a_map_that_does_not_parse_ends_early_and_never_reads_past_its_bytes() {
        let pairs = [(":path", "/a"), ("authorization", "Bearer t")];
        let good = encode(&pairs);
        // A count beyond the table.
        let mut b = good.clone();
        b[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(walk(b).len() <= pairs.len());
        // A value length beyond the data: the walk stops at that pair.
        let mut b = good.clone();
        b[4 + 8 + 4..4 + 8 + 8].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(walk(b), owned(&pairs[..1]));
        // Every truncation: a prefix of the pairs, each pair whole or absent.
        for cut in 0..good.len() {
            let got = walk(good[..cut].to_vec());
            assert!(got.len() <= pairs.len());
            assert_eq!(got, owned(&pairs[..got.len()]), "cut at {cut}");
        }
        // Only the last NUL missing: still every pair.
        assert_eq!(walk(good[..good.len() - 1].to_vec()), owned(&pairs));
        // Random bytes never panic.
        let mut x = 0x9E37_79B9u32;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    if x.is_multiple_of(5) {
                        1
                    } else {
                        x as u8
                    }
                })
                .collect();
            let _ = walk(bytes);
        }
    }
}
