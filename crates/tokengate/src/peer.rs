//! The client certificate of a request, as facts every host can hand in — URI and DNS
//! subjectAltNames, the subject as an RFC 4514 string, the SHA-256 of the DER — and the pins
//! that tie a `client_id` to the certificates its workloads hold (SPIFFE IDs, a Roles Anywhere
//! trust anchor's leaves, an ALB's verified clients).
//!
//! The core never sees a TLS handshake. Hosts with TLS facts (Envoy's connection properties,
//! Node's `getPeerCertificate()`, Workers' `cf.tlsClientAuth`) pass them as [`Peer`]; hosts
//! behind a TLS-terminating proxy pass the certificate itself from a trusted header (RFC 9440
//! `Client-Cert`, AWS ALB `X-Amzn-Mtls-Clientcert-Leaf`), which [`Peer::from_der`] reads.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use crate::audit::push_hex;
use crate::signature::sha256;

mod der;

use der::{
    context, Reader, Tlv, BIT_STRING, BOOLEAN, IA5_STRING, INTEGER, OBJECT_IDENTIFIER,
    OCTET_STRING, PRINTABLE_STRING, SEQUENCE, SET, UTF8_STRING,
};

/// RFC 8941 §3.3.5 byte sequences: standard base64, padding optional. Built at compile time
/// (at run time the table construction was 1.3 KB of code in the .wasm).
const PADDING_OPTIONAL: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Largest certificate header value read (RFC 9440 `Client-Cert`, ALB leaf).
pub const MAX_CERT_HEADER_BYTES: usize = 16 * 1024;

/// What is known about the client certificate of a connection.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct Peer {
    /// `uniformResourceIdentifier` subjectAltNames, in certificate order.
    pub uri_sans: Vec<String>,
    /// `dNSName` subjectAltNames, in certificate order.
    pub dns_sans: Vec<String>,
    /// The subject, RFC 4514 (`CN=…,O=…`: the last RDN first).
    pub subject: Option<String>,
    /// SHA-256 of the DER certificate.
    pub sha256: Option<[u8; 32]>,
}

impl Peer {
    /// The facts of a DER X.509 certificate.
    ///
    /// # Errors
    /// The bytes are not one certificate (with nothing after it), or its subjectAltName
    /// extension does not decode.
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

    /// The facts of the certificate in an RFC 9440 `Client-Cert` value (`:` base64 DER `:`).
    ///
    /// # Errors
    /// Too large, not a byte sequence, not standard base64, or not one certificate.
    pub fn from_client_cert_header(value: &[u8]) -> Result<Peer, &'static str> {
        if value.len() > MAX_CERT_HEADER_BYTES {
            return Err("the Client-Cert header is larger than 16384 bytes");
        }
        let inner = value
            .strip_prefix(b":")
            .and_then(|v| v.strip_suffix(b":"))
            .ok_or("the Client-Cert header is not a byte sequence (:base64:)")?;
        let der = PADDING_OPTIONAL
            .decode(inner)
            .map_err(|_| "the Client-Cert header is not base64")?;
        Peer::from_der(&der).map_err(|_| "the Client-Cert header is not one X.509 certificate")
    }

    /// The facts of the certificate in an AWS ALB `X-Amzn-Mtls-Clientcert-Leaf` value
    /// (URL-encoded PEM).
    ///
    /// # Errors
    /// Too large, bad percent-encoding, not one PEM certificate.
    pub fn from_alb_leaf(value: &[u8]) -> Result<Peer, &'static str> {
        if value.len() > MAX_CERT_HEADER_BYTES {
            return Err("the X-Amzn-Mtls-Clientcert-Leaf header is larger than 16384 bytes");
        }
        let pem = percent_decode(value)
            .ok_or("the X-Amzn-Mtls-Clientcert-Leaf header is not URL-encoded")?;
        let der = pem_certificate(&pem)
            .ok_or("the X-Amzn-Mtls-Clientcert-Leaf header is not one PEM certificate")?;
        Peer::from_der(&der)
            .map_err(|_| "the X-Amzn-Mtls-Clientcert-Leaf header is not one X.509 certificate")
    }

    /// The facts as hosts without the certificate itself hand them in:
    /// `{"uri_sans": [..], "dns_sans": [..], "subject": "CN=…" | null, "sha256": "<hex or
    /// base64url>" | null}` (every member optional, no others).
    ///
    /// # Errors
    /// Not such an object, a member of the wrong type, an unknown member, or a `sha256` that
    /// is not a SHA-256.
    pub fn from_json(bytes: &[u8]) -> Result<Peer, &'static str> {
        let value =
            crate::json::parse(bytes).map_err(|_| "the client certificate facts are not JSON")?;
        Peer::from_value(&value)
    }

    /// [`Peer::from_json`] from an already parsed value.
    ///
    /// # Errors
    /// As [`Peer::from_json`].
    pub fn from_value(value: &crate::json::Value) -> Result<Peer, &'static str> {
        let obj = value
            .as_object()
            .ok_or("the client certificate facts must be an object")?;
        let mut peer = Peer::default();
        for (k, v) in obj {
            match k.as_str() {
                "uri_sans" | "dns_sans" => {
                    let list = v
                        .as_array()
                        .and_then(|a| {
                            a.iter()
                                .map(|s| s.as_str().map(String::from))
                                .collect::<Option<Vec<String>>>()
                        })
                        .ok_or("uri_sans and dns_sans must be arrays of strings")?;
                    if k == "uri_sans" {
                        peer.uri_sans = list;
                    } else {
                        peer.dns_sans = list;
                    }
                }
                "subject" => {
                    peer.subject = match v {
                        crate::json::Value::Null => None,
                        crate::json::Value::String(s) => Some(s.clone()),
                        _ => return Err("subject must be a string or null"),
                    }
                }
                "sha256" => {
                    peer.sha256 = match v {
                        crate::json::Value::Null => None,
                        crate::json::Value::String(s) => Some(
                            digest(s).ok_or("sha256 must be 64 hex digits or 43 base64url characters")?,
                        ),
                        _ => return Err("sha256 must be a string or null"),
                    }
                }
                _ => return Err("unknown member in the client certificate facts (uri_sans, dns_sans, subject, sha256)"),
            }
        }
        Ok(peer)
    }

    /// The facts of one PEM certificate (`-----BEGIN CERTIFICATE-----`, nothing else).
    ///
    /// # Errors
    /// Not one PEM certificate, or not an X.509 certificate inside.
    pub fn from_pem(pem: &[u8]) -> Result<Peer, &'static str> {
        let der = pem_certificate(pem).ok_or("not one PEM certificate")?;
        Peer::from_der(&der)
    }

    /// The certificate facts a host passes in one field, told apart by their first byte: a DER
    /// certificate (`0x30` and a long-form length), a PEM certificate (`-`), [`Peer::from_json`] facts (`{`), or an
    /// RFC 8705 thumbprint (the SHA-256 as base64url or hex, when that is all the host knows).
    ///
    /// # Errors
    /// The bytes are none of these.
    pub fn from_host_bytes(bytes: &[u8]) -> Result<Peer, &'static str> {
        match bytes.first() {
            // A certificate is a SEQUENCE longer than 127 bytes (long-form length); text never
            // has a byte of 0x80 or more second.
            Some(0x30) if bytes.get(1).is_some_and(|&b| b >= 0x80) => Peer::from_der(bytes),
            Some(b'-') => Peer::from_pem(bytes),
            Some(b'{') => Peer::from_json(bytes),
            _ => core::str::from_utf8(bytes)
                .ok()
                .and_then(digest)
                .map(|d| Peer {
                    sha256: Some(d),
                    ..Peer::default()
                })
                .ok_or(
                    "the client certificate is neither DER, JSON facts nor a SHA-256 thumbprint",
                ),
        }
    }

    /// The RFC 8705 §3.1 thumbprint: base64url (no padding) of the SHA-256.
    pub fn thumbprint(&self) -> Option<String> {
        self.sha256.map(|d| URL_SAFE_NO_PAD.encode(d))
    }
}

/// Certificates already read, by their bytes as received. A workload presents the same
/// certificate on every request, and reading it (the DER walk, the SHA-256) costs several times
/// a cached-token decision; the bytes are compared whole, so a hit is the same certificate.
/// Bounded: emptied when full. Refused bytes are not remembered.
#[derive(Debug, Default)]
pub struct PeerCache {
    map: hashbrown::HashMap<Vec<u8>, Arc<Peer>>,
}

impl PeerCache {
    /// Entries kept before the cache is emptied.
    pub const CAPACITY: usize = 256;

    /// The facts of `bytes`, read with `read` unless these bytes were read before.
    ///
    /// # Errors
    /// What `read` says about bytes it refuses.
    pub fn get_or_read(
        &mut self,
        bytes: &[u8],
        read: impl FnOnce(&[u8]) -> Result<Peer, &'static str>,
    ) -> Result<Arc<Peer>, &'static str> {
        if let Some(p) = self.map.get(bytes) {
            return Ok(p.clone());
        }
        let peer = Arc::new(read(bytes)?);
        if self.map.len() >= Self::CAPACITY {
            self.map.clear();
        }
        self.map.insert(bytes.to_vec(), peer.clone());
        Ok(peer)
    }
}

/// One pin: what a client's certificate must show.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Pin {
    /// A URI subjectAltName, exactly.
    UriSan(String),
    /// A URI subjectAltName under this prefix (configured as `prefix*`, the prefix ending `/`).
    UriSanPrefix(String),
    /// A DNS subjectAltName, ASCII case-insensitively.
    DnsSan(String),
    /// The subject, RDN by RDN.
    Subject(Vec<(String, String)>),
    /// The SHA-256 of the certificate.
    Sha256([u8; 32]),
}

impl Pin {
    /// Whether `peer` shows this pin.
    pub fn matches(&self, peer: &Peer) -> bool {
        match self {
            Pin::UriSan(u) => peer.uri_sans.iter().any(|s| s == u),
            Pin::UriSanPrefix(p) => peer
                .uri_sans
                .iter()
                .any(|s| s.len() > p.len() && s.starts_with(p.as_str())),
            Pin::DnsSan(d) => peer.dns_sans.iter().any(|s| s.eq_ignore_ascii_case(d)),
            Pin::Subject(want) => peer
                .subject
                .as_deref()
                .and_then(rdns)
                .is_some_and(|got| same_rdns(&got, want)),
            Pin::Sha256(d) => peer.sha256.as_ref() == Some(d),
        }
    }

    /// How the pin is written in an audit record, e.g. `uri_san:spiffe://prod/orders`.
    pub fn describe(&self) -> String {
        match self {
            Pin::UriSan(u) => format!("uri_san:{u}"),
            Pin::UriSanPrefix(p) => format!("uri_san:{p}*"),
            Pin::DnsSan(d) => format!("dns_san:{d}"),
            Pin::Subject(rdns) => {
                let mut s = String::from("subject:");
                for (i, (t, v)) in rdns.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    let _ = write!(s, "{t}={v}");
                }
                s
            }
            Pin::Sha256(d) => {
                let mut s = String::from("sha256:");
                push_hex(&mut s, d);
                s
            }
        }
    }

    /// Parse one configured pin value of kind `kind` (`uri_san`, `dns_san`, `subject`,
    /// `sha256`).
    ///
    /// # Errors
    /// Why the value cannot be a pin of that kind.
    pub fn parse(kind: &str, value: &str) -> Result<Pin, &'static str> {
        if value.is_empty() {
            return Err("must not be empty");
        }
        match kind {
            "uri_san" => match value.strip_suffix('*') {
                Some(prefix) if prefix.ends_with('/') => {
                    Ok(Pin::UriSanPrefix(String::from(prefix)))
                }
                Some(_) => Err("a prefix pin ends with \"/*\""),
                None => Ok(Pin::UriSan(String::from(value))),
            },
            "dns_san" => Ok(Pin::DnsSan(String::from(value))),
            "subject" => rdns(value)
                .map(Pin::Subject)
                .ok_or("must be an RFC 4514 subject such as \"CN=name,O=Example\""),
            "sha256" => digest(value)
                .map(Pin::Sha256)
                .ok_or("must be 64 hex digits or 43 base64url characters"),
            _ => Err("unknown pin kind (uri_san, dns_san, subject or sha256)"),
        }
    }
}

/// A SHA-256 written as 64 hex digits (either case) or 43 base64url characters.
pub fn digest(s: &str) -> Option<[u8; 32]> {
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        s.as_bytes()
            .chunks(2)
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).ok()?, 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else if s.len() == 43 {
        URL_SAFE_NO_PAD.decode(s).ok()?
    } else {
        return None;
    };
    bytes.try_into().ok()
}

/// `TYPE=value` pairs of an RFC 4514 string (no escaped commas), trimmed; `None` when a part
/// has no `=`.
fn rdns(s: &str) -> Option<Vec<(String, String)>> {
    s.split(',')
        .map(|part| {
            let (t, v) = part.split_once('=')?;
            let (t, v) = (t.trim(), v.trim());
            if t.is_empty() {
                return None;
            }
            Some((String::from(t), String::from(v)))
        })
        .collect()
}

fn same_rdns(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ta, va), (tb, vb))| ta.eq_ignore_ascii_case(tb) && va == vb)
}

/// The subject `Name` and the `[3]` extensions of a DER certificate: exactly one
/// `Certificate` (tbsCertificate, signatureAlgorithm, signature) with nothing after it. The
/// signature is not checked: the TLS layer (or the trusted proxy) did that.
fn certificate_parts(der: &[u8]) -> Option<(Tlv<'_>, Option<Tlv<'_>>)> {
    let mut cert = Reader::inside(Reader::only(der)?, SEQUENCE)?;
    let mut tbs = Reader::inside(cert.next()?, SEQUENCE)?;
    cert.next_of(SEQUENCE)?;
    cert.next_of(BIT_STRING)?;
    if !cert.done() {
        return None;
    }
    if tbs.peek()? == context(0, true) {
        tbs.next()?; // version
    }
    tbs.next_of(INTEGER)?; // serialNumber
    for _ in 0..3 {
        tbs.next_of(SEQUENCE)?; // signature, issuer, validity
    }
    let subject = tbs.next_of(SEQUENCE)?;
    tbs.next_of(SEQUENCE)?; // subjectPublicKeyInfo
    let mut extensions = None;
    while !tbs.done() {
        // issuerUniqueID [1], subjectUniqueID [2], extensions [3]
        let field = tbs.next()?;
        if field.tag == context(3, true) {
            extensions = Some(field);
        }
    }
    Some((subject, extensions))
}

/// The DER of the subjectAltName extension's value (`GeneralNames`): `Ok(None)` when there is
/// none, `Err` when the extensions do not decode.
fn subject_alt_name(extensions: Tlv<'_>) -> Result<Option<&[u8]>, ()> {
    // id-ce-subjectAltName, 2.5.29.17
    const SAN: &[u8] = &[0x55, 0x1d, 0x11];
    let list = Reader::only(extensions.value).ok_or(())?;
    let mut list = Reader::inside(list, SEQUENCE).ok_or(())?;
    let mut found = None;
    while !list.done() {
        let mut ext = list
            .next()
            .and_then(|e| Reader::inside(e, SEQUENCE))
            .ok_or(())?;
        let oid = ext.next_of(OBJECT_IDENTIFIER).ok_or(())?;
        if ext.peek() == Some(BOOLEAN) {
            ext.next().ok_or(())?; // critical
        }
        let value = ext.next_of(OCTET_STRING).ok_or(())?;
        if !ext.done() {
            return Err(());
        }
        if oid.value == SAN {
            found = Some(value.value);
        }
    }
    Ok(found)
}

/// The URI (`[6]`) and DNS (`[2]`) names of `GeneralNames`, in order; other kinds are skipped.
fn general_names(der: &[u8], peer: &mut Peer) -> Option<()> {
    let mut names = Reader::inside(Reader::only(der)?, SEQUENCE)?;
    while !names.done() {
        let name = names.next()?;
        let list = if name.tag == context(6, false) {
            &mut peer.uri_sans
        } else if name.tag == context(2, false) {
            &mut peer.dns_sans
        } else {
            continue;
        };
        // IA5String: ASCII only.
        let text = core::str::from_utf8(name.value)
            .ok()
            .filter(|t| t.is_ascii())?;
        list.push(String::from(text));
    }
    Some(())
}

/// The subject as RFC 4514: RDNs last to first, multi-valued ones joined with `+`, the usual
/// short names, values escaped; attributes without a short name, or whose value is not a
/// string, as `OID=#hex` of the value's DER. `None` when the `Name` does not decode.
fn rfc4514(name: Tlv<'_>) -> Option<String> {
    let mut rdns: Vec<Tlv<'_>> = Vec::new();
    let mut seq = Reader::inside(name, SEQUENCE)?;
    while !seq.done() {
        let set = seq.next()?;
        // Each RDN: a SET of at least one (type, value).
        let mut atvs = Reader::inside(set, SET)?;
        if atvs.done() {
            return None;
        }
        while !atvs.done() {
            let mut atv = Reader::inside(atvs.next()?, SEQUENCE)?;
            atv.next_of(OBJECT_IDENTIFIER)?;
            atv.next()?;
            if !atv.done() {
                return None;
            }
        }
        rdns.push(set);
    }
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut atvs = Reader::inside(*rdn, SET)?;
        let mut first = true;
        while let Some(atv) = atvs.next() {
            let mut atv = Reader::inside(atv, SEQUENCE)?;
            let oid = atv.next()?.value;
            let value = atv.next()?;
            if !first {
                out.push('+');
            }
            first = false;
            let text = match value.tag {
                PRINTABLE_STRING | UTF8_STRING | IA5_STRING => {
                    core::str::from_utf8(value.value).ok()
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
                    dotted(&mut out, oid)?;
                    // The value's DER: its tag, its (minimal) length, its contents.
                    out.push_str("=#");
                    push_hex(&mut out, value.der);
                }
            }
        }
    }
    Some(out)
}

/// An OID's content bytes in dotted form, written to `out`; `None` when they are not a valid
/// encoding (empty, an arc with a leading `0x80`, an arc past 64 bits, or cut short).
fn dotted(out: &mut String, oid: &[u8]) -> Option<()> {
    let mut arc: u64 = 0;
    let mut fresh = true;
    let mut first = true;
    for &b in oid {
        if fresh && b == 0x80 {
            return None; // non-minimal
        }
        arc = arc.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
        fresh = b & 0x80 == 0;
        if fresh {
            if first {
                let (x, y) = match arc {
                    0..=39 => (0, arc),
                    40..=79 => (1, arc - 40),
                    _ => (2, arc - 80),
                };
                let _ = write!(out, "{x}.{y}");
                first = false;
            } else {
                let _ = write!(out, ".{arc}");
            }
            arc = 0;
        }
    }
    (fresh && !first).then_some(())
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
    let mut chars = v.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        let last = chars.peek().is_none();
        match c {
            '#' if first => out.push_str("\\#"),
            ' ' if first || last => out.push_str("\\ "),
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\0'..='\x1f' | '\x7f' => {
                out.push('\\');
                push_hex(out, &[c as u8]);
            }
            _ => out.push(c),
        }
        first = false;
    }
}

fn percent_decode(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        if b == b'%' {
            let h = v.get(i + 1..i + 3)?;
            let s = core::str::from_utf8(h).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            // ALB leaves `+` (of the base64 body) as it is: not a space here.
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// The DER of the one `CERTIFICATE` block of a PEM text.
fn pem_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    let text = core::str::from_utf8(pem).ok()?.trim();
    let body = text
        .strip_prefix("-----BEGIN CERTIFICATE-----")?
        .strip_suffix("-----END CERTIFICATE-----")?;
    let body = body.as_bytes();
    if body.windows(5).any(|w| w == b"-----") {
        return None;
    }
    let b64: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bytes_are_told_apart_by_their_first_byte() {
        let pem = include_bytes!("../../../tests/vectors/keys/certs/orders-writer.pem");
        let from_pem = Peer::from_host_bytes(pem).unwrap();
        assert_eq!(from_pem.uri_sans, ["spiffe://prod/orders-writer"]);
        assert_eq!(from_pem.dns_sans, ["orders-writer.internal"]);
        assert_eq!(
            from_pem.subject.as_deref(),
            Some("CN=orders-writer,OU=payments,O=Example")
        );
        let der = pem_certificate(pem).unwrap();
        assert_eq!(Peer::from_host_bytes(&der).unwrap(), from_pem);
        let hex = "098deae548cb51c2c48bcdad71fb1dc65500caed601f2d3f866e0b78717e8cfc";
        assert_eq!(from_pem.sha256, digest(hex));
        assert_eq!(
            Peer::from_host_bytes(hex.as_bytes()).unwrap().sha256,
            digest(hex)
        );
        let thumb = Peer::from_host_bytes(b"CY3q5UjLUcLEi82tcfsdxlUAyu1gHy0_hm4LeHF-jPw").unwrap();
        assert_eq!(thumb.sha256, from_pem.sha256);
        assert!(thumb.subject.is_none() && thumb.uri_sans.is_empty());
        let json = br#"{"uri_sans": ["spiffe://a"], "subject": null, "sha256": null}"#;
        assert_eq!(
            Peer::from_host_bytes(json).unwrap().uri_sans,
            ["spiffe://a"]
        );
        for bad in [
            &b""[..],
            b"{\"uri_sans\": \"spiffe://a\"}",
            b"{\"sans\": []}",
            b"{\"sha256\": \"abc\"}",
            b"[]",
            b"0x30",
            b"\x30\x82\xff\xff",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        ] {
            assert!(Peer::from_host_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_cache_reads_each_certificate_once_and_forgets_refusals() {
        let pem = include_bytes!("../../../tests/vectors/keys/certs/orders-writer.pem");
        let mut cache = PeerCache::default();
        let mut reads = 0;
        for _ in 0..3 {
            let p = cache
                .get_or_read(pem, |b| {
                    reads += 1;
                    Peer::from_pem(b)
                })
                .unwrap();
            assert_eq!(p.uri_sans, ["spiffe://prod/orders-writer"]);
        }
        assert_eq!(reads, 1);
        assert!(cache.get_or_read(b"junk", Peer::from_pem).is_err());
        assert!(cache.get_or_read(b"junk", Peer::from_pem).is_err());
        assert_eq!(cache.map.len(), 1);
        for i in 0..PeerCache::CAPACITY + 1 {
            let key = alloc::format!("{i:064x}");
            cache
                .get_or_read(key.as_bytes(), Peer::from_host_bytes)
                .unwrap();
        }
        assert!(cache.map.len() <= PeerCache::CAPACITY);
    }

    #[test]
    fn pins_parse_and_match() {
        let peer = Peer {
            uri_sans: alloc::vec!["spiffe://prod/batch/7".into()],
            dns_sans: alloc::vec!["Batch.Internal".into()],
            subject: Some("CN=batch,OU=jobs,O=Example".into()),
            sha256: Some([0xab; 32]),
        };
        let yes = [
            ("uri_san", "spiffe://prod/batch/7"),
            ("uri_san", "spiffe://prod/batch/*"),
            ("uri_san", "spiffe://prod/*"),
            ("dns_san", "batch.internal"),
            ("subject", "cn=batch, OU = jobs,O=Example"),
            ("sha256", &"AB".repeat(32)),
            ("sha256", &URL_SAFE_NO_PAD.encode([0xab; 32])),
        ];
        for (k, v) in yes {
            assert!(Pin::parse(k, v).unwrap().matches(&peer), "{k} {v}");
        }
        let no = [
            ("uri_san", "spiffe://prod/batch"),
            ("uri_san", "spiffe://prod/batch/7/*"),
            ("subject", "O=Example,OU=jobs,CN=batch"),
            ("subject", "CN=batch,OU=jobs,O=example"),
            ("sha256", &"ab".repeat(31)),
        ];
        for (k, v) in no {
            assert!(
                Pin::parse(k, v).map_or(true, |p| !p.matches(&peer)),
                "{k} {v}"
            );
        }
        assert!(Pin::parse("uri_san", "spiffe://prod*").is_err());
        assert!(Pin::parse("sha256", "xyz").is_err());
        assert!(Pin::parse("subject", "no equals").is_err());
        assert!(!Pin::parse("dns_san", "x")
            .unwrap()
            .matches(&Peer::default()));
    }

    #[test]
    fn header_values_that_are_not_certificates_are_refused() {
        assert!(Peer::from_client_cert_header(b"MIIB").is_err());
        assert!(Peer::from_client_cert_header(b":not base64!:").is_err());
        assert!(Peer::from_client_cert_header(b":AAAA:").is_err());
        assert!(Peer::from_client_cert_header(&[b':'; 20_000]).is_err());
        assert!(Peer::from_alb_leaf(b"%zz").is_err());
        assert!(Peer::from_alb_leaf(
            b"-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----"
        )
        .is_err());
    }
}
