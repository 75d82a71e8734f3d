//! `Peer::from_der` against the `der`-crate reading it replaced (the oracle below, copied from
//! `src/peer.rs` as it was): the same facts, or the same refusal, for the committed TEST
//! certificates, every truncation and single-byte change of them, random bytes, and random
//! certificate-shaped DER with hostile encodings (long-form lengths with leading zeros,
//! indefinite lengths, five length bytes, lengths past the end, unknown tags, trailing bytes).

use std::path::Path;

use proptest::prelude::*;
use tokengate::peer::Peer;

/// The `der` crate's reading of a certificate, as `src/peer.rs` did it before it had its own
/// DER reader. Kept verbatim (but for the SHA-256 and `Peer` paths) so that any difference is
/// the new reader's.
#[allow(clippy::all)]
mod oracle {
    use std::fmt::Write as _;

    use der::asn1::AnyRef;
    use der::{Reader, SliceReader, Tag, TagNumber, Tagged};
    use sha2::{Digest, Sha256};
    use tokengate::peer::Peer;

    fn sha256(der: &[u8]) -> [u8; 32] {
        Sha256::digest(der).into()
    }

    /// `Peer::from_pem` as it was.
    pub fn from_pem(pem: &[u8]) -> Result<Peer, &'static str> {
        let der = pem_certificate(pem).ok_or("not one PEM certificate")?;
        from_der(&der)
    }

    fn pem_certificate(pem: &[u8]) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let text = core::str::from_utf8(pem).ok()?.trim();
        let body = text
            .strip_prefix("-----BEGIN CERTIFICATE-----")?
            .strip_suffix("-----END CERTIFICATE-----")?;
        if body.contains("-----") {
            return None;
        }
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD.decode(b64).ok()
    }

    pub fn from_der(der: &[u8]) -> Result<Peer, &'static str> {
        let (subject, extensions) = certificate_parts(der).ok_or("not an X.509 certificate")?;
        let mut peer = Peer {
            subject: Some(rfc4514(subject).ok_or("the subject does not decode")?),
            sha256: Some(sha256(der)),
            ..Peer::default()
        };
        if let Some(san) = extensions
            .map(subject_alt_name)
            .transpose()
            .map_err(|_| "the extensions do not decode")?
            .flatten()
        {
            general_names(san, &mut peer).ok_or("the subjectAltName extension does not decode")?;
        }
        Ok(peer)
    }

    /// A strict DER reader over `bytes` (one call site per shape keeps the `der` generics few).
    struct Der<'a>(SliceReader<'a>);

    impl<'a> Der<'a> {
        /// The contents of `any`, which must carry `tag`.
        fn inside(any: AnyRef<'a>, tag: Tag) -> Option<Der<'a>> {
            (any.tag() == tag).then_some(())?;
            SliceReader::new(any.value()).ok().map(Der)
        }

        /// Exactly one element in `bytes`.
        fn only(bytes: &'a [u8]) -> Option<AnyRef<'a>> {
            let mut r = Der(SliceReader::new(bytes).ok()?);
            let one = r.next()?;
            r.done().then_some(one)
        }

        /// The next element.
        fn next(&mut self) -> Option<AnyRef<'a>> {
            self.0.decode::<AnyRef<'a>>().ok()
        }

        /// The next element, which must carry `tag`.
        fn next_of(&mut self, tag: Tag) -> Option<AnyRef<'a>> {
            self.next().filter(|a| a.tag() == tag)
        }

        fn peek(&self) -> Option<Tag> {
            self.0.peek_tag().ok()
        }

        fn done(&self) -> bool {
            self.0.is_finished()
        }
    }

    /// The subject `Name` and the `[3]` extensions of a DER certificate: exactly one
    /// `Certificate` (tbsCertificate, signatureAlgorithm, signature) with nothing after it. The
    /// signature is not checked: the TLS layer (or the trusted proxy) did that.
    fn certificate_parts(der: &[u8]) -> Option<(AnyRef<'_>, Option<AnyRef<'_>>)> {
        let mut cert = Der::inside(Der::only(der)?, Tag::Sequence)?;
        let mut tbs = Der::inside(cert.next()?, Tag::Sequence)?;
        cert.next_of(Tag::Sequence)?;
        cert.next_of(Tag::BitString)?;
        if !cert.done() {
            return None;
        }
        if tbs.peek()? == context(0, true) {
            tbs.next()?; // version
        }
        tbs.next_of(Tag::Integer)?; // serialNumber
        for _ in 0..3 {
            tbs.next_of(Tag::Sequence)?; // signature, issuer, validity
        }
        let subject = tbs.next_of(Tag::Sequence)?;
        tbs.next_of(Tag::Sequence)?; // subjectPublicKeyInfo
        let mut extensions = None;
        while !tbs.done() {
            // issuerUniqueID [1], subjectUniqueID [2], extensions [3]
            let field = tbs.next()?;
            if field.tag() == context(3, true) {
                extensions = Some(field);
            }
        }
        Some((subject, extensions))
    }

    /// A context-specific tag `[n]`.
    fn context(n: u8, constructed: bool) -> Tag {
        Tag::ContextSpecific {
            constructed,
            number: TagNumber::new(n),
        }
    }

    /// The DER of the subjectAltName extension's value (`GeneralNames`): `Ok(None)` when there is
    /// none, `Err` when the extensions do not decode.
    fn subject_alt_name(extensions: AnyRef<'_>) -> Result<Option<&[u8]>, ()> {
        // id-ce-subjectAltName, 2.5.29.17
        const SAN: &[u8] = &[0x55, 0x1d, 0x11];
        let list = Der::only(extensions.value()).ok_or(())?;
        let mut list = Der::inside(list, Tag::Sequence).ok_or(())?;
        let mut found = None;
        while !list.done() {
            let mut ext = list
                .next()
                .and_then(|e| Der::inside(e, Tag::Sequence))
                .ok_or(())?;
            let oid = ext.next_of(Tag::ObjectIdentifier).ok_or(())?;
            if ext.peek() == Some(Tag::Boolean) {
                ext.next(); // critical
            }
            let value = ext.next_of(Tag::OctetString).ok_or(())?;
            if !ext.done() {
                return Err(());
            }
            if oid.value() == SAN {
                found = Some(value.value());
            }
        }
        Ok(found)
    }

    /// The URI (`[6]`) and DNS (`[2]`) names of `GeneralNames`, in order; other kinds are skipped.
    fn general_names(der: &[u8], peer: &mut Peer) -> Option<()> {
        let mut names = Der::inside(Der::only(der)?, Tag::Sequence)?;
        while !names.done() {
            let name = names.next()?;
            let list = if name.tag() == context(6, false) {
                &mut peer.uri_sans
            } else if name.tag() == context(2, false) {
                &mut peer.dns_sans
            } else {
                continue;
            };
            // IA5String: ASCII only.
            let text = core::str::from_utf8(name.value())
                .ok()
                .filter(|t| t.is_ascii())?;
            list.push(String::from(text));
        }
        Some(())
    }

    /// The subject as RFC 4514: RDNs last to first, multi-valued ones joined with `+`, the usual
    /// short names, values escaped; attributes without a short name, or whose value is not a
    /// string, as `OID=#hex` of the value's DER. `None` when the `Name` does not decode.
    fn rfc4514(name: AnyRef<'_>) -> Option<String> {
        let mut rdns: Vec<Vec<(&[u8], AnyRef<'_>)>> = Vec::new();
        let mut seq = Der::inside(name, Tag::Sequence)?;
        while !seq.done() {
            let mut set = Der::inside(seq.next()?, Tag::Set)?;
            let mut atvs = Vec::new();
            while !set.done() {
                let mut atv = Der::inside(set.next()?, Tag::Sequence)?;
                let oid = atv.next_of(Tag::ObjectIdentifier)?;
                let value = atv.next()?;
                if !atv.done() {
                    return None;
                }
                atvs.push((oid.value(), value));
            }
            if atvs.is_empty() {
                return None;
            }
            rdns.push(atvs);
        }
        let mut out = String::new();
        for (i, rdn) in rdns.iter().rev().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, (oid, value)) in rdn.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                let text = match value.tag() {
                    Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {
                        core::str::from_utf8(value.value()).ok()
                    }
                    _ => None,
                };
                match (short_name(oid), text) {
                    (Some(short), Some(v)) => {
                        out.push_str(short);
                        out.push('=');
                        escape(&mut out, v);
                    }
                    _ => {
                        out.push_str(&dotted(oid)?);
                        out.push_str("=#");
                        // The value's DER: its tag, its length, its contents.
                        let _ = write!(out, "{:02x}", u8::from(value.tag()));
                        let len = value.value().len();
                        if len < 0x80 {
                            let _ = write!(out, "{len:02x}");
                        } else {
                            let bytes = (len as u32).to_be_bytes();
                            let skip = bytes.iter().take_while(|&&b| b == 0).count();
                            let _ = write!(out, "{:02x}", 0x80 | (4 - skip));
                            for b in bytes.iter().skip(skip) {
                                let _ = write!(out, "{b:02x}");
                            }
                        }
                        for b in value.value() {
                            let _ = write!(out, "{b:02x}");
                        }
                    }
                }
            }
        }
        Some(out)
    }

    /// An OID's content bytes in dotted form; `None` when they are not a valid encoding.
    fn dotted(oid: &[u8]) -> Option<String> {
        let mut arcs: Vec<u64> = Vec::new();
        let mut arc: u64 = 0;
        let mut fresh = true;
        for &b in oid {
            if fresh && b == 0x80 {
                return None; // non-minimal
            }
            arc = arc.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
            fresh = b & 0x80 == 0;
            if fresh {
                arcs.push(arc);
                arc = 0;
            }
        }
        let (&first, rest) = arcs.split_first().filter(|_| fresh)?;
        let (a, b) = match first {
            0..=39 => (0, first),
            40..=79 => (1, first - 40),
            _ => (2, first - 80),
        };
        let mut out = format!("{a}.{b}");
        for arc in rest {
            let _ = write!(out, ".{arc}");
        }
        Some(out)
    }

    /// The short names RFC 4514 and OpenSSL use, by the OID's content bytes.
    fn short_name(oid: &[u8]) -> Option<&'static str> {
        Some(match oid {
            [0x55, 0x04, 0x03] => "CN",
            [0x55, 0x04, 0x06] => "C",
            [0x55, 0x04, 0x07] => "L",
            [0x55, 0x04, 0x08] => "ST",
            [0x55, 0x04, 0x09] => "STREET",
            [0x55, 0x04, 0x0a] => "O",
            [0x55, 0x04, 0x0b] => "OU",
            [0x55, 0x04, 0x05] => "serialNumber",
            // 0.9.2342.19200300.100.1.25 / .1
            [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
            [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
            // 1.2.840.113549.1.9.1
            [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
            _ => return None,
        })
    }

    /// RFC 4514 §2.4 escaping.
    fn escape(out: &mut String, v: &str) {
        let last = v.chars().count().saturating_sub(1);
        for (i, c) in v.chars().enumerate() {
            match c {
                '#' if i == 0 => out.push_str("\\#"),
                ' ' if i == 0 || i == last => out.push_str("\\ "),
                '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                '\0'..='\x1f' | '\x7f' => {
                    let _ = write!(out, "\\{:02x}", c as u32);
                }
                _ => out.push(c),
            }
        }
    }
}

/// The DER of every committed TEST certificate, by file name.
fn committed() -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/keys/certs");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".pem") || name.ends_with("-key.pem") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        out.push((name, der));
    }
    out.sort();
    assert!(out.len() >= 10, "{} certificates", out.len());
    out
}

#[track_caller]
fn same(bytes: &[u8]) -> Result<Peer, &'static str> {
    let ours = Peer::from_der(bytes);
    assert_eq!(ours, oracle::from_der(bytes), "{}", hex::encode(bytes));
    ours
}

#[test]
fn the_committed_certificates_read_the_same() {
    for (name, der) in committed() {
        let peer = same(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(peer.subject.is_some(), "{name}");
    }
    let pem = include_bytes!("../../../tests/vectors/keys/certs/orders-writer.pem");
    let peer = Peer::from_pem(pem).unwrap();
    assert_eq!(peer.uri_sans, ["spiffe://prod/orders-writer"]);
    assert_eq!(peer.dns_sans, ["orders-writer.internal"]);
    assert_eq!(
        peer.subject.as_deref(),
        Some("CN=orders-writer,OU=payments,O=Example")
    );
}

#[test]
fn pem_variants_read_the_same() {
    use base64::Engine as _;
    let der = &committed()[0].1;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let (begin, end) = ("-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----");
    let mut ok = 0;
    for (before, sep, inside, after) in [
        ("", "\n", "", "\n"),
        ("", "\r\n", "", "\r\n"),
        ("\n\t ", "\n", "", " \n\n"),
        ("\u{2028}\u{a0}", "\n", "", "\u{85}\u{3000}"),
        ("", "\n", "\t \x0c", ""),
        ("", "", "", ""),
        ("", "\n", "-----", "\n"),
        ("", "\n", "----", "\n"),
        ("", "\n", "\u{a0}", "\n"),
        ("", "\n", "é", "\n"),
        ("x", "\n", "", "\n"),
        ("", "\n", "", "\nx"),
        ("", "\n", "=", "\n"),
        ("", "\n", "A", "\n"),
    ] {
        let pem = format!(
            "{before}{begin}{sep}{}{inside}{sep}{end}{after}",
            lines.join(sep)
        );
        let ours = Peer::from_pem(pem.as_bytes());
        assert_eq!(ours, oracle::from_pem(pem.as_bytes()), "{pem:?}");
        ok += usize::from(ours.is_ok());
    }
    assert_eq!(ok, 6);
    for bad in [
        &b"\xff"[..],
        b"-----BEGIN CERTIFICATE-----\xff-----END CERTIFICATE-----",
    ] {
        assert!(Peer::from_pem(bad).is_err() && oracle::from_pem(bad).is_err());
    }
}

#[test]
fn every_truncation_and_extension_reads_the_same() {
    for (_, der) in committed() {
        for n in 0..der.len() {
            assert!(same(&der[..n]).is_err());
        }
        for tail in [&[0u8][..], &[0x30, 0x00], &[0xff]] {
            let mut longer = der.clone();
            longer.extend_from_slice(tail);
            assert!(same(&longer).is_err());
        }
    }
}

#[test]
fn every_single_byte_change_reads_the_same() {
    let (mut ok, mut refused) = (0, 0);
    for (name, der) in committed() {
        if der.len() > 4096 {
            continue; // big.pem: its 700 SANs add time, not shapes
        }
        for i in 0..der.len() {
            let b = der[i];
            for v in [
                0x00,
                0x01,
                0x04,
                0x0c,
                0x13,
                0x16,
                0x1e,
                0x30,
                0x31,
                0x7f,
                0x80,
                0x81,
                0x82,
                0x84,
                0x85,
                0x9f,
                0xa0,
                0xff,
                b ^ 0x01,
                b ^ 0x20,
                b ^ 0x80,
                b.wrapping_add(1),
                b.wrapping_sub(1),
            ] {
                let mut changed = der.clone();
                changed[i] = v;
                match same(&changed) {
                    Ok(_) => ok += 1,
                    Err(_) => refused += 1,
                }
            }
            // A byte dropped or doubled (every length after it is then wrong).
            let mut shorter = der.clone();
            shorter.remove(i);
            same(&shorter).unwrap_err();
            let mut longer = der.clone();
            longer.insert(i, b);
            same(&longer).unwrap_err();
        }
        assert!(ok > 0 && refused > 0, "{name}");
    }
}

/// xorshift64*: reproducible random certificates from a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())].clone()
    }
}

/// A DER element before encoding.
enum Node {
    Prim(u8, Vec<u8>),
    Cons(u8, Vec<Node>),
}

fn prim(tag: u8, v: &[u8]) -> Node {
    Node::Prim(tag, v.to_vec())
}

fn seq(kids: Vec<Node>) -> Node {
    Node::Cons(0x30, kids)
}

/// The encoding of `node`; with `hostile` > 0, each element's tag or length is broken that many
/// times in a thousand (in one of several ways).
fn encode(node: &Node, rng: &mut Rng, hostile: usize, out: &mut Vec<u8>) {
    let (mut tag, content) = match node {
        Node::Prim(tag, v) => (*tag, v.clone()),
        Node::Cons(tag, kids) => {
            let mut c = Vec::new();
            for k in kids {
                encode(k, rng, hostile, &mut c);
            }
            (*tag, c)
        }
    };
    let broken = hostile > 0 && rng.below(1000) < hostile;
    let how = if broken { rng.below(11) } else { 99 };
    if how == 0 {
        let any = rng.next() as u8;
        tag = rng.pick(&[
            0x00, 0x07, 0x10, 0x11, 0x1c, 0x1f, 0x24, 0x3f, 0x5f, 0x7f, 0x9f, 0xbf, 0xdf, 0xff, any,
        ]);
    }
    out.push(tag);
    let len = content.len();
    let be = (len as u32).to_be_bytes();
    let skip = be.iter().take_while(|&&b| b == 0).count();
    match how {
        // A leading zero length byte.
        1 => {
            out.push(0x80 | (4 - skip as u8 + 1));
            out.push(0);
            out.extend_from_slice(&be[skip..]);
        }
        // The long form for a length under 128 (or one byte too many of it).
        2 => {
            out.push(0x81);
            out.push(len as u8);
        }
        // Indefinite length, with its end-of-contents octets.
        3 => {
            out.push(0x80);
            out.extend_from_slice(&content);
            out.extend_from_slice(&[0, 0]);
            return;
        }
        // Five and more length bytes.
        4 => {
            out.push(0x85);
            out.push(rng.pick(&[0, 1, 0xff]));
            out.extend_from_slice(&be);
        }
        // The length one more, one less, or huge.
        5..=7 => {
            let wrong = match how {
                5 => len as u32 + 1,
                6 => (len as u32).wrapping_sub(1),
                _ => rng.pick(&[0x0fff_ffff, 0x1000_0000, 0xffff_ffff, 0x7fff_ffff]),
            };
            out.push(0x84);
            out.extend_from_slice(&wrong.to_be_bytes());
        }
        // The reserved length byte 0xff.
        8 => out.push(0xff),
        // A byte after the contents.
        9 => {
            push_len(out, len + 1);
            out.extend_from_slice(&content);
            out.push(rng.next() as u8);
            return;
        }
        // The contents cut short.
        10 => {
            push_len(out, len);
            out.extend_from_slice(&content[..len / 2]);
            return;
        }
        _ => push_len(out, len),
    }
    out.extend_from_slice(&content);
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = (len as u32).to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (4 - skip as u8));
        out.extend_from_slice(&be[skip..]);
    }
}

const OIDS: &[&[u8]] = &[
    &[0x55, 0x04, 0x03],
    &[0x55, 0x04, 0x06],
    &[0x55, 0x04, 0x07],
    &[0x55, 0x04, 0x08],
    &[0x55, 0x04, 0x09],
    &[0x55, 0x04, 0x0a],
    &[0x55, 0x04, 0x0b],
    &[0x55, 0x04, 0x05],
    &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
    &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
    // givenName 2.5.4.42, 1.2.3.4, 2.999.1, 0.0, 1.39, 2.5.4 (a prefix of CN), 2.5.4.3.0
    &[0x55, 0x04, 0x2a],
    &[0x2a, 0x03, 0x04],
    &[0x88, 0x37, 0x01],
    &[0x00],
    &[0x4f],
    &[0x55, 0x04],
    &[0x55, 0x04, 0x03, 0x00],
    // an arc of 2^64 - 1 (fits), one of 2^64 (does not)
    &[
        0x55, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    &[
        0x55, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
    ],
    // not OIDs: empty, a non-minimal arc, an arc cut short
    &[],
    &[0x80, 0x01],
    &[0x55, 0x04, 0x83],
    &[0x55, 0x80, 0x03],
];

fn text(rng: &mut Rng) -> Vec<u8> {
    const PARTS: &[&[u8]] = &[
        b"a",
        b"Example",
        b" ",
        b"#",
        b",",
        b"+",
        b"\"",
        b"\\",
        b"<",
        b">",
        b";",
        b"=",
        b"\0",
        b"\x1f",
        b"\x7f",
        b"\n",
        "é".as_bytes(),
        "日本".as_bytes(),
        b"\xff",
        b"\xc3",
        b"\x80",
        b"spiffe://prod/x",
        b"*.internal",
    ];
    let mut v = Vec::new();
    let n = if rng.chance(5) {
        40 + rng.below(120)
    } else {
        rng.below(6)
    };
    for _ in 0..n {
        v.extend_from_slice(rng.pick(PARTS));
    }
    v
}

fn name(rng: &mut Rng, random: bool) -> Node {
    if !random {
        let cn = seq(vec![prim(0x06, &[0x55, 0x04, 0x03]), prim(0x13, b"issuer")]);
        return seq(vec![Node::Cons(0x31, vec![cn])]);
    }
    let mut rdns = Vec::new();
    for _ in 0..rng.below(5) {
        let mut atvs = Vec::new();
        let n = if rng.chance(3) {
            0
        } else {
            1 + rng.below(3) * usize::from(rng.chance(20))
        };
        for _ in 0..n {
            let oid = prim(0x06, rng.pick(OIDS));
            let tag = rng.pick(&[
                0x13, 0x0c, 0x16, 0x13, 0x0c, 0x16, 0x1e, 0x14, 0x12, 0x1a, 0x04, 0x02, 0x30, 0x31,
                0xa0, 0x80, 0x43,
            ]);
            let value = match tag {
                0x30 | 0x31 | 0xa0 => Node::Cons(tag, vec![prim(0x0c, &text(rng))]),
                _ => Node::Prim(tag, text(rng)),
            };
            let mut atv = vec![oid, value];
            if rng.chance(2) {
                atv.pop();
            } else if rng.chance(2) {
                atv.push(prim(0x05, &[]));
            } else if rng.chance(2) {
                atv.swap(0, 1);
            }
            atvs.push(seq(atv));
        }
        let tag = if rng.chance(2) { 0x30 } else { 0x31 };
        rdns.push(Node::Cons(tag, atvs));
    }
    let tag = if rng.chance(1) { 0x31 } else { 0x30 };
    Node::Cons(tag, rdns)
}

fn general_names(rng: &mut Rng) -> Node {
    let mut names = Vec::new();
    for _ in 0..rng.below(5) {
        let tag = rng.pick(&[
            0x86, 0x82, 0x86, 0x82, 0x81, 0x87, 0x88, 0xa0, 0xa2, 0xa4, 0xa6, 0x06,
        ]);
        let value = if rng.chance(70) {
            rng.pick(&[
                &b"spiffe://prod/orders-writer"[..],
                b"orders-writer.internal",
                b"Batch.Internal",
                b"",
                b"\x7f",
            ])
            .to_vec()
        } else {
            text(rng)
        };
        names.push(if tag & 0x20 != 0 {
            Node::Cons(tag, vec![prim(0x0c, &value)])
        } else {
            Node::Prim(tag, value)
        });
    }
    Node::Cons(if rng.chance(2) { 0x31 } else { 0x30 }, names)
}

fn extension(rng: &mut Rng) -> Node {
    const SAN: &[u8] = &[0x55, 0x1d, 0x11];
    let san = rng.chance(60);
    let oid = if san {
        SAN
    } else {
        rng.pick(&[
            &[0x55, 0x1d, 0x13][..],
            &[0x55, 0x1d, 0x0f],
            &[0x55, 0x1d],
            &[0x55, 0x1d, 0x11, 0x00],
        ])
    };
    let mut value = Vec::new();
    if san {
        encode(&general_names(rng), rng, 0, &mut value);
        if rng.chance(3) {
            value.push(0);
        }
    } else {
        value = text(rng);
    }
    let mut ext = vec![prim(0x06, oid)];
    if rng.chance(30) {
        ext.push(prim(0x01, rng.pick(&[&[0xff][..], &[0x00], &[], &[1, 2]])));
    }
    ext.push(prim(if rng.chance(2) { 0x03 } else { 0x04 }, &value));
    if rng.chance(2) {
        ext.push(prim(0x01, &[0xff]));
    }
    if rng.chance(2) {
        ext.swap(0, 1);
    }
    seq(ext)
}

/// A random certificate-shaped DER: mostly well formed, with a random subject and random
/// extensions, and with `hostile` per mille of its elements broken.
fn certificate(seed: u64, hostile: usize) -> Vec<u8> {
    let rng = &mut Rng::new(seed);
    let alg = || {
        seq(vec![prim(
            0x06,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        )])
    };
    let mut tbs = Vec::new();
    if rng.chance(80) {
        tbs.push(Node::Cons(0xa0, vec![prim(0x02, &[2])]));
    }
    tbs.push(prim(rng.pick(&[0x02, 0x02, 0x02, 0x04]), &[0x10]));
    tbs.push(alg());
    tbs.push(name(rng, false));
    tbs.push(seq(vec![
        prim(0x17, b"250101000000Z"),
        prim(0x18, b"20991231235959Z"),
    ]));
    tbs.push(name(rng, true));
    tbs.push(seq(vec![
        seq(vec![prim(
            0x06,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],
        )]),
        prim(0x03, &[0, 4, 1, 2, 3]),
    ]));
    if rng.chance(5) {
        tbs.push(prim(0x81, &[0, 1]));
    }
    if rng.chance(5) {
        tbs.push(prim(0x82, &[0, 2]));
    }
    for _ in 0..if rng.chance(5) {
        2
    } else {
        usize::from(rng.chance(85))
    } {
        let exts: Vec<Node> = (0..rng.below(4)).map(|_| extension(rng)).collect();
        let mut kids = vec![Node::Cons(if rng.chance(2) { 0x31 } else { 0x30 }, exts)];
        if rng.chance(2) {
            kids.push(prim(0x05, &[]));
        }
        tbs.push(Node::Cons(
            rng.pick(&[0xa3, 0xa3, 0xa3, 0xa3, 0x83, 0xa4]),
            kids,
        ));
    }
    if rng.chance(3) {
        let tag = rng.next() as u8;
        tbs.push(Node::Prim(tag, vec![1]));
    }
    let mut cert = vec![seq(tbs), alg(), prim(0x03, &[0, 0x30, 0x00])];
    if rng.chance(2) {
        cert.push(prim(0x05, &[]));
    }
    if rng.chance(1) {
        cert.pop();
    }
    let mut out = Vec::new();
    encode(&seq(cert), rng, hostile, &mut out);
    if rng.chance(1) {
        out.push(0);
    }
    out
}

#[test]
fn generated_certificates_read_the_same() {
    let (mut ok, mut hex, mut escaped, mut multi, mut uris, mut dns) = (0, 0, 0, 0, 0, 0);
    let mut refused = std::collections::BTreeMap::<&str, usize>::new();
    for seed in 0..40_000u64 {
        let hostile = [0, 0, 5, 20][(seed % 4) as usize];
        match same(&certificate(seed, hostile)) {
            Ok(p) => {
                ok += 1;
                let s = p.subject.unwrap();
                hex += usize::from(s.contains("=#"));
                escaped += usize::from(s.contains('\\'));
                multi += usize::from(s.contains('+'));
                uris += usize::from(!p.uri_sans.is_empty());
                dns += usize::from(!p.dns_sans.is_empty());
            }
            Err(e) => *refused.entry(e).or_default() += 1,
        }
    }
    eprintln!("read {ok}, hex {hex}, escaped {escaped}, multi {multi}, uris {uris}, dns {dns}");
    eprintln!("refused {refused:?}");
    assert_eq!(refused.len(), 4, "{refused:?}");
    // Every path is taken, many times.
    for (what, n) in [
        ("read", ok),
        ("hex values", hex),
        ("escapes", escaped),
        ("multi-valued RDNs", multi),
        ("URI SANs", uris),
        ("DNS SANs", dns),
    ]
    .into_iter()
    .chain(refused.iter().map(|(e, n)| (*e, *n)))
    {
        assert!(n > 300, "{what}: {n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_read_the_same(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        same(&bytes).ok();
        // And behind a plausible outer header.
        let mut framed = vec![0x30, 0x82];
        framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        framed.extend_from_slice(&bytes);
        same(&framed).ok();
    }

    #[test]
    fn mutated_certificates_read_the_same(
        seed in any::<u64>(),
        hostile in 0usize..40,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut der = certificate(seed, hostile);
        for (at, b) in edits {
            if !der.is_empty() {
                let i = at.index(der.len());
                der[i] = b;
            }
        }
        same(&der).ok();
    }
}

/// A well-formed certificate with this subject `Name` and these extensions.
fn certificate_with(subject: Node, extensions: Vec<Node>) -> Vec<u8> {
    let alg = || {
        seq(vec![prim(
            0x06,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        )])
    };
    let issuer = seq(vec![Node::Cons(
        0x31,
        vec![seq(vec![
            prim(0x06, &[0x55, 0x04, 0x03]),
            prim(0x13, b"ca"),
        ])],
    )]);
    let mut tbs = vec![
        Node::Cons(0xa0, vec![prim(0x02, &[2])]),
        prim(0x02, &[0x10]),
        alg(),
        issuer,
        seq(vec![
            prim(0x17, b"250101000000Z"),
            prim(0x17, b"991231235959Z"),
        ]),
        subject,
        seq(vec![
            seq(vec![prim(
                0x06,
                &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],
            )]),
            prim(0x03, &[0, 4]),
        ]),
    ];
    if !extensions.is_empty() {
        tbs.push(Node::Cons(0xa3, vec![seq(extensions)]));
    }
    let mut out = Vec::new();
    encode(
        &seq(vec![seq(tbs), alg(), prim(0x03, &[0, 0x30, 0])]),
        &mut Rng::new(0),
        0,
        &mut out,
    );
    out
}

fn rdn(atvs: &[(&[u8], u8, &[u8])]) -> Node {
    Node::Cons(
        0x31,
        atvs.iter()
            .map(|(oid, tag, v)| seq(vec![prim(0x06, oid), prim(*tag, v)]))
            .collect(),
    )
}

fn san(names: &[(u8, &[u8])], critical: bool) -> Node {
    let mut value = Vec::new();
    let names = names.iter().map(|(t, v)| prim(*t, v)).collect();
    encode(&seq(names), &mut Rng::new(0), 0, &mut value);
    let mut ext = vec![prim(0x06, &[0x55, 0x1d, 0x11])];
    if critical {
        ext.push(prim(0x01, &[0xff]));
    }
    ext.push(prim(0x04, &value));
    seq(ext)
}

#[test]
fn subject_and_san_strings_are_exact() {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const GIVEN_NAME: &[u8] = &[0x55, 0x04, 0x2a];
    let long = "x".repeat(200);
    let cases: Vec<(Vec<Node>, String)> = vec![
        // Last RDN first; multi-valued RDNs joined with `+`, in their DER order.
        (
            vec![
                rdn(&[(O, 0x13, b"Example")]),
                rdn(&[(OU, 0x0c, b"a"), (CN, 0x16, b"b")]),
            ],
            "OU=a+CN=b,O=Example".into(),
        ),
        // RFC 4514 escapes.
        (
            vec![rdn(&[(CN, 0x0c, b"#a, b+c;\"d\\<e>\x01\x7f ")])],
            "CN=\\#a\\, b\\+c\\;\\\"d\\\\\\<e\\>\\01\\7f\\ ".into(),
        ),
        (vec![rdn(&[(CN, 0x0c, b" x")])], "CN=\\ x".into()),
        (
            vec![rdn(&[(CN, 0x0c, "é日本".as_bytes())])],
            "CN=é日本".into(),
        ),
        // No short name, or not a string: the OID dotted and the value's DER in hex.
        (
            vec![rdn(&[(GIVEN_NAME, 0x0c, b"Ann")])],
            "2.5.4.42=#0c03416e6e".into(),
        ),
        (vec![rdn(&[(CN, 0x1e, b"\0A")])], "2.5.4.3=#1e020041".into()),
        (vec![rdn(&[(CN, 0x13, b"\xff")])], "2.5.4.3=#1301ff".into()),
        (
            vec![rdn(&[(CN, 0x0c, long.as_bytes())])],
            format!("CN={long}"),
        ),
        (
            vec![rdn(&[(GIVEN_NAME, 0x04, long.as_bytes())])],
            format!("2.5.4.42=#0481c8{}", "78".repeat(200)),
        ),
        (
            vec![rdn(&[(&[0x88, 0x37, 0x01], 0x05, b"")])],
            "2.999.1=#0500".into(),
        ),
        (vec![], String::new()),
    ];
    for (rdns, want) in cases {
        let der = certificate_with(seq(rdns), vec![]);
        let peer = same(&der).unwrap();
        assert_eq!(peer.subject.as_deref(), Some(want.as_str()));
        assert!(peer.uri_sans.is_empty() && peer.dns_sans.is_empty());
    }

    // Refused subjects: an empty RDN, an OID that does not decode where it is printed, a
    // trailing element in a (type, value), a RDN that is a SEQUENCE.
    for rdns in [
        vec![Node::Cons(0x31, vec![])],
        vec![rdn(&[(&[0x80, 0x01], 0x0c, b"x")])],
        vec![rdn(&[(&[], 0x0c, b"x")])],
        vec![Node::Cons(
            0x31,
            vec![seq(vec![prim(0x06, CN), prim(0x0c, b"x"), prim(0x05, &[])])],
        )],
        vec![Node::Cons(
            0x30,
            vec![seq(vec![prim(0x06, CN), prim(0x0c, b"x")])],
        )],
    ] {
        let der = certificate_with(seq(rdns), vec![]);
        assert_eq!(same(&der), Err("the subject does not decode"));
    }

    // URI [6] and DNS [2] names in order, other kinds skipped; the last subjectAltName
    // extension counts.
    let subject = || seq(vec![rdn(&[(CN, 0x0c, b"w")])]);
    let der = certificate_with(
        subject(),
        vec![
            san(&[(0x86, b"spiffe://old")], false),
            san(
                &[
                    (0x86, b"spiffe://prod/a"),
                    (0x81, b"a@example.com"),
                    (0x82, b"a.internal"),
                    (0x87, &[127, 0, 0, 1]),
                    (0x86, b"spiffe://prod/b"),
                    (0x82, b"B.internal"),
                ],
                true,
            ),
            seq(vec![
                prim(0x06, &[0x55, 0x1d, 0x13]),
                prim(0x01, &[0xff]),
                prim(0x04, &[0x30, 0x00]),
            ]),
        ],
    );
    let peer = same(&der).unwrap();
    assert_eq!(peer.uri_sans, ["spiffe://prod/a", "spiffe://prod/b"]);
    assert_eq!(peer.dns_sans, ["a.internal", "B.internal"]);

    // A URI or DNS name that is not ASCII refuses the extension; other kinds are not read.
    for (names, ok) in [
        (&[(0x86u8, "é".as_bytes())][..], false),
        (&[(0x82, b"\xff")], false),
        (&[(0x81, "é".as_bytes())], true),
        (&[(0x82, b"\x7f")], true),
    ] {
        let der = certificate_with(subject(), vec![san(names, false)]);
        assert_eq!(same(&der).is_ok(), ok, "{names:02x?}");
    }
}
