//! The DER reading [`Peer::from_der`](super::Peer::from_der) needs, and nothing more: one
//! element (tag, length, contents) at a time from a byte slice, strictly.
//!
//! - Tags are single identifier octets, and only those the certificate walk can meet: the
//!   universal types BOOLEAN, INTEGER, BIT STRING, OCTET STRING, NULL, OBJECT IDENTIFIER, REAL,
//!   ENUMERATED, the character strings (UTF8, Numeric, Printable, Teletex, Videotex, IA5, Visible,
//!   BMP), UTCTime, GeneralizedTime, and constructed SEQUENCE and SET; application,
//!   context-specific and private tags numbered 0 to 30. A high tag number (`0x1f`), any other
//!   universal tag, a constructed string or a primitive SEQUENCE or SET is refused.
//! - Lengths are definite and minimal: the short form below 128; the long form with one to four
//!   length octets, the first not zero, only for 128 and more; at most 256 MiB (`0x0fff_ffff`).
//!   The indefinite form (`0x80`), five or more length octets and the reserved `0xff` are
//!   refused.
//! - The contents must be there: a length past the end of the input (or of the enclosing
//!   element) is refused.
//!
//! These are the rules of the `der` crate (0.7) this module replaced, ~2.5 KB smaller in the
//! gzipped npm `.wasm`; `tests/peer_der.rs` reads certificates with both. Nothing here recurses:
//! the caller walks a fixed number of levels, so nesting is bounded by the code, not the input.

/// The largest length and the largest input read: 256 MiB.
const MAX_LEN: usize = 0x0fff_ffff;

pub(super) const BOOLEAN: u8 = 0x01;
pub(super) const INTEGER: u8 = 0x02;
pub(super) const BIT_STRING: u8 = 0x03;
pub(super) const OCTET_STRING: u8 = 0x04;
pub(super) const OBJECT_IDENTIFIER: u8 = 0x06;
pub(super) const UTF8_STRING: u8 = 0x0c;
pub(super) const PRINTABLE_STRING: u8 = 0x13;
pub(super) const IA5_STRING: u8 = 0x16;
pub(super) const SEQUENCE: u8 = 0x30;
pub(super) const SET: u8 = 0x31;

/// The context-specific tag `[n]`, primitive (`0x80 | n`) or constructed (`0xa0 | n`).
pub(super) const fn context(n: u8, constructed: bool) -> u8 {
    0x80 | if constructed { 0x20 } else { 0 } | n
}

/// Whether `tag` is an identifier octet this reader takes (see the module documentation).
fn known_tag(tag: u8) -> bool {
    match tag {
        0x01..=0x06 | 0x09 | 0x0a | 0x0c | 0x12..=0x18 | 0x1a | 0x1e | SEQUENCE | SET => true,
        // Application, context-specific, private: numbers 0 to 30 (31 is the high-tag form).
        0x40..=0xfe => tag & 0x1f != 0x1f,
        _ => false,
    }
}

/// One element.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) struct Tlv<'a> {
    /// The identifier octet.
    pub(super) tag: u8,
    /// The contents octets.
    pub(super) value: &'a [u8],
    /// The whole encoding: identifier, length and contents octets.
    pub(super) der: &'a [u8],
}

/// The elements of a byte slice, one after the other.
#[derive(Clone, Debug)]
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The elements of `bytes` (`None` when larger than 256 MiB).
    pub(super) fn new(bytes: &'a [u8]) -> Option<Reader<'a>> {
        (bytes.len() <= MAX_LEN).then_some(Reader { rest: bytes })
    }

    /// The one element of `bytes`, with nothing after it.
    pub(super) fn only(bytes: &'a [u8]) -> Option<Tlv<'a>> {
        let mut r = Reader::new(bytes)?;
        let one = r.next()?;
        r.done().then_some(one)
    }

    /// The elements inside `tlv`, which must carry `tag`.
    pub(super) fn inside(tlv: Tlv<'a>, tag: u8) -> Option<Reader<'a>> {
        (tlv.tag == tag).then_some(Reader { rest: tlv.value })
    }

    /// The next element; `None` when there is none or it is not strict DER (the reader is then
    /// left where it was).
    pub(super) fn next(&mut self) -> Option<Tlv<'a>> {
        let all = self.rest;
        let (&tag, rest) = all.split_first()?;
        if !known_tag(tag) {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            0x00..=0x7f => (usize::from(first), rest),
            0x81..=0x84 => {
                let (octets, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
                // At most four octets: no overflow.
                let len = octets.iter().fold(0u32, |len, &b| len << 8 | u32::from(b));
                let len = usize::try_from(len).ok()?;
                // Minimal: the long form only from 128 on, and no leading zero octet.
                if len < 0x80 || octets.first() == Some(&0) || len > MAX_LEN {
                    return None;
                }
                (len, rest)
            }
            // 0x80: indefinite; 0x85..: five or more length octets; 0xff: reserved.
            _ => return None,
        };
        let value = rest.get(..len)?;
        let after = rest.get(len..)?;
        let der = all.get(..all.len().checked_sub(after.len())?)?;
        self.rest = after;
        Some(Tlv { tag, value, der })
    }

    /// The next element, which must carry `tag`.
    pub(super) fn next_of(&mut self, tag: u8) -> Option<Tlv<'a>> {
        self.next().filter(|t| t.tag == tag)
    }

    /// The identifier octet of the next element, if any.
    pub(super) fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Whether every element has been read.
    pub(super) fn done(&self) -> bool {
        self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Every element of `bytes`, or `None` at the first that is not strict DER.
    fn all(bytes: &[u8]) -> Option<Vec<(u8, &[u8])>> {
        let mut r = Reader::new(bytes)?;
        let mut out = Vec::new();
        while !r.done() {
            let t = r.next()?;
            out.push((t.tag, t.value));
        }
        Some(out)
    }

    #[test]
    fn strict_elements_are_read() {
        assert_eq!(all(&[]), Some(vec![]));
        assert_eq!(all(&[0x05, 0x00]), Some(vec![(0x05, &[][..])]));
        assert_eq!(
            all(&[0x02, 0x01, 0x2a, 0x30, 0x03, 0x01, 0x01, 0xff]),
            Some(vec![(0x02, &[0x2a][..]), (0x30, &[0x01, 0x01, 0xff][..])])
        );
        // Every long form at its smallest.
        for (len, header) in [
            (0x80, &[0x81, 0x80][..]),
            (0xff, &[0x81, 0xff]),
            (0x100, &[0x82, 0x01, 0x00]),
            (0xffff, &[0x82, 0xff, 0xff]),
            (0x1_0000, &[0x83, 0x01, 0x00, 0x00]),
            (0x100_0000, &[0x84, 0x01, 0x00, 0x00, 0x00]),
        ] {
            let mut bytes = vec![0x04];
            bytes.extend_from_slice(header);
            bytes.resize(1 + header.len() + len, 0xab);
            let t = Reader::only(&bytes).unwrap();
            assert_eq!(
                (t.tag, t.value.len(), t.der.len()),
                (0x04, len, bytes.len())
            );
        }
        let bytes = [0x30, 0x03, 0x02, 0x01, 0x07, 0x05, 0x00];
        let mut r = Reader::new(&bytes).unwrap();
        assert_eq!(r.peek(), Some(0x30));
        let seq = r.next_of(SEQUENCE).unwrap();
        assert_eq!(seq.der, &bytes[..5]);
        let mut inner = Reader::inside(seq, SEQUENCE).unwrap();
        assert!(Reader::inside(seq, SET).is_none());
        assert_eq!(inner.next_of(INTEGER).unwrap().value, &[7]);
        assert!(inner.done() && inner.peek().is_none() && inner.next().is_none());
        assert!(r.next_of(SEQUENCE).is_none()); // NULL, not SEQUENCE
    }

    #[test]
    fn lengths_that_are_not_minimal_or_definite_are_refused() {
        for bad in [
            &[0x04, 0x80, 0x00, 0x00][..],                     // indefinite
            &[0x30, 0x80, 0x05, 0x00, 0x00, 0x00],             // indefinite, constructed
            &[0x04, 0x81, 0x05, 1, 2, 3, 4, 5],                // long form under 128
            &[0x04, 0x81, 0x7f],                               // long form under 128
            &[0x04, 0x81, 0x00],                               // long form of zero
            &[0x04, 0x82, 0x00, 0x80],                         // leading zero octet
            &[0x04, 0x82, 0x00, 0x05, 1, 2, 3, 4, 5],          // leading zero octet
            &[0x04, 0x83, 0x00, 0x01, 0x00],                   // leading zero octet
            &[0x04, 0x84, 0x00, 0x00, 0x01, 0x00],             // leading zero octets
            &[0x04, 0x85, 0x00, 0x00, 0x00, 0x00, 0x01],       // five length octets
            &[0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x01, 0xaa], // five length octets
            &[0x04, 0x88, 0, 0, 0, 0, 0, 0, 0, 1],             // eight length octets
            &[0x04, 0xff],                                     // reserved
            &[0x04, 0xfe, 0x01],                               // 126 length octets
        ] {
            assert_eq!(all(bad), None, "{bad:02x?}");
        }
        // Five length octets whose last four are a good length, its contents there.
        let mut five = vec![0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x80];
        five.resize(five.len() + 0x80, 0xab);
        assert_eq!(all(&five), None);
    }

    #[test]
    fn lengths_past_the_end_are_refused() {
        for bad in [
            &[0x04][..],                              // no length
            &[0x04, 0x01],                            // no contents
            &[0x04, 0x03, 1, 2],                      // one short
            &[0x04, 0x81],                            // length octets missing
            &[0x04, 0x82, 0x01],                      // length octets cut short
            &[0x04, 0x81, 0x80, 0],                   // 128 wanted, 1 there
            &[0x04, 0x84, 0x0f, 0xff, 0xff, 0xff, 0], // 256 MiB - 1 wanted
            &[0x04, 0x84, 0x10, 0x00, 0x00, 0x00, 0], // over 256 MiB
            &[0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0], // u32::MAX
            &[0x04, 0x84, 0x80, 0x00, 0x00, 0x00],    // 2 GiB
            &[0x30, 0x02, 0x04, 0x05, 1, 2, 3, 4, 5], // past its SEQUENCE
        ] {
            let mut r = Reader::new(bad).unwrap();
            let first = r.next();
            // The last one reads as a SEQUENCE of 2 then fails inside.
            match first {
                None => {}
                Some(seq) => {
                    let mut inner = Reader::inside(seq, SEQUENCE).unwrap();
                    assert!(inner.next().is_none(), "{bad:02x?}");
                }
            }
            assert!(Reader::only(bad).is_none(), "{bad:02x?}");
        }
        // The largest length read: its contents are simply not there.
        let huge = [0x04, 0x84, 0x0f, 0xff, 0xff, 0xff];
        assert!(Reader::new(&huge).unwrap().next().is_none());
    }

    #[test]
    fn unknown_tags_are_refused() {
        let mut known = Vec::new();
        for tag in 0..=0xffu8 {
            if Reader::only(&[tag, 0x00]).is_some() {
                known.push(tag);
            }
        }
        for tag in [
            0x00, 0x07, 0x08, 0x0b, 0x0d, 0x10, 0x11, 0x19, 0x1b, 0x1c, 0x1d, 0x1f, 0x20, 0x24,
            0x2c, 0x33, 0x3f, 0x5f, 0x7f, 0x9f, 0xbf, 0xdf, 0xff,
        ] {
            assert!(!known.contains(&tag), "{tag:02x}");
        }
        for tag in [
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x09, 0x0a, 0x0c, 0x12, 0x13, 0x16, 0x17, 0x18,
            0x1a, 0x1e, 0x30, 0x31, 0x40, 0x60, 0x80, 0x82, 0x86, 0x9e, 0xa0, 0xa3, 0xc0, 0xfe,
        ] {
            assert!(known.contains(&tag), "{tag:02x}");
        }
        // 20 universal, and 3 classes of 31 numbers, each primitive or constructed.
        assert_eq!(known.len(), 20 + 3 * 31 * 2);
    }

    #[test]
    fn trailing_bytes_and_wrong_tags_are_refused() {
        assert!(Reader::only(&[0x05, 0x00]).is_some());
        assert!(Reader::only(&[0x05, 0x00, 0x00]).is_none());
        assert!(Reader::only(&[0x05, 0x00, 0x05, 0x00]).is_none());
        assert!(Reader::only(&[]).is_none());
        let mut r = Reader::new(&[0x02, 0x01, 0x01]).unwrap();
        assert!(r.next_of(OCTET_STRING).is_none());
        // A refused element leaves the reader where it was.
        let mut r = Reader::new(&[0x04, 0x80, 0x00, 0x00]).unwrap();
        assert!(r.next().is_none());
        assert_eq!(r.peek(), Some(0x04));
        assert!(!r.done());
    }

    /// `inner` inside a SEQUENCE header.
    fn wrap(inner: &[u8]) -> Vec<u8> {
        let mut outer = vec![SEQUENCE];
        let len = inner.len();
        if len < 0x80 {
            outer.push(len as u8);
        } else {
            let be = (len as u32).to_be_bytes();
            let skip = be.iter().take_while(|&&b| b == 0).count();
            outer.push(0x80 | (4 - skip) as u8);
            outer.extend_from_slice(&be[skip..]);
        }
        outer.extend_from_slice(inner);
        outer
    }

    #[test]
    fn nesting_is_read_one_level_per_call() {
        // Nothing recurses: 5000 SEQUENCEs deep is read to the bottom by the caller's loop.
        let mut chain = vec![0x05, 0x00];
        for _ in 0..5000 {
            chain = wrap(&chain);
        }
        let mut t = Reader::only(&chain).unwrap();
        let mut levels = 0;
        while t.tag == SEQUENCE {
            t = Reader::only(t.value).unwrap();
            levels += 1;
        }
        assert_eq!((levels, t.tag), (5000, 0x05));
        // Indefinite nesting is refused at its first level.
        assert!(Reader::new(&[0x30, 0x80].repeat(50_000))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn context_tags() {
        assert_eq!(context(0, true), 0xa0);
        assert_eq!(context(3, true), 0xa3);
        assert_eq!(context(2, false), 0x82);
        assert_eq!(context(6, false), 0x86);
    }
}
