//! RFC 8705 client authentication: the certificate a TLS-terminating proxy forwards in the one
//! header the config trusts, and what a client's registration requires of it.
//!
//! This server has no TLS of its own. The proxy in front of it (Envoy in the demo) verifies the
//! client's certificate during the handshake and passes it on in a header; the certificate is
//! read with the tokengate core (`Peer`) and matched with its pins, the same code every edge
//! runs. A header is believed only when `server.trusted_client_cert_header` names it.

use axum::http::HeaderMap;
use tokengate::peer::{digest, Peer, Pin, MAX_CERT_HEADER_BYTES};

use crate::config::{ClientCertHeader, ClientConfig, TokenEndpointAuthMethod};

/// Envoy sends one element of a few keys besides the URL-encoded PEM: a little room above the
/// core's limit on the certificate itself.
const MAX_XFCC_BYTES: usize = MAX_CERT_HEADER_BYTES + 4 * 1024;

/// What a certificate-authenticated client's certificate must show: one pin for
/// `tls_client_auth`, one per registered SHA-256 for `self_signed_tls_client_auth`.
#[derive(Clone, Debug)]
pub(crate) struct CertificateRegistration {
    pub method: TokenEndpointAuthMethod,
    pins: Vec<Pin>,
}

impl CertificateRegistration {
    /// The registration of `client`, `None` for a client that authenticates with a secret.
    /// The config has been validated, so every value parses.
    pub(crate) fn of(client: &ClientConfig) -> Option<CertificateRegistration> {
        let method = client.token_endpoint_auth_method;
        let pins = match method {
            TokenEndpointAuthMethod::ClientSecretBasic
            | TokenEndpointAuthMethod::ClientSecretPost => return None,
            TokenEndpointAuthMethod::TlsClientAuth => [
                (
                    "tls_client_auth_subject_dn",
                    &client.tls_client_auth_subject_dn,
                ),
                ("tls_client_auth_san_dns", &client.tls_client_auth_san_dns),
                ("tls_client_auth_san_uri", &client.tls_client_auth_san_uri),
            ]
            .into_iter()
            .filter_map(|(name, value)| registration_pin(name, value.as_deref()?).ok())
            .collect(),
            TokenEndpointAuthMethod::SelfSignedTlsClientAuth => client
                .tls_client_auth_sha256
                .iter()
                .filter_map(|value| digest(value).map(Pin::Sha256))
                .collect(),
        };
        Some(CertificateRegistration { method, pins })
    }

    /// Whether `peer` is a certificate this client is registered with. A registration whose
    /// values did not parse has no pins and matches nothing.
    pub(crate) fn accepts(&self, peer: &Peer) -> bool {
        self.pins.iter().any(|pin| pin.matches(peer))
    }
}

/// The pin of one `tls_client_auth_*` registration value (RFC 8705 §2.1.2): the subject RDN by
/// RDN, a DNS name ignoring ASCII case, a URI exactly (no prefix matching: the RFC compares
/// the whole value).
///
/// # Errors
/// Why `value` cannot be that kind of value.
pub(crate) fn registration_pin(name: &str, value: &str) -> Result<Pin, &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    match name {
        "tls_client_auth_subject_dn" => Pin::parse("subject", value),
        "tls_client_auth_san_dns" => Ok(Pin::DnsSan(value.to_owned())),
        "tls_client_auth_san_uri" => Ok(Pin::UriSan(value.to_owned())),
        _ => Err("unknown tls_client_auth_* parameter"),
    }
}

/// The client certificate the trusted proxy forwarded in `header`: `Ok(None)` when the request
/// has none.
///
/// # Errors
/// The header is repeated, too large or malformed, or does not hold one X.509 certificate.
pub(crate) fn forwarded_certificate(
    header: ClientCertHeader,
    headers: &HeaderMap,
) -> Result<Option<Peer>, &'static str> {
    let mut values = headers.get_all(header.name()).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("the client certificate header is repeated");
    }
    let value = value.as_bytes();
    match header {
        ClientCertHeader::ClientCert => Peer::from_client_cert_header(value).map(Some),
        ClientCertHeader::XForwardedClientCert => xfcc_certificate(value).map(Some),
    }
}

/// The certificate of an Envoy `x-forwarded-client-cert` value written with `SANITIZE_SET`:
/// exactly one element, with exactly one `Cert` (URL-encoded PEM); a `Hash`, when present,
/// must be the certificate's SHA-256.
fn xfcc_certificate(value: &[u8]) -> Result<Peer, &'static str> {
    if value.len() > MAX_XFCC_BYTES {
        return Err("the x-forwarded-client-cert header is too large");
    }
    let text =
        std::str::from_utf8(value).map_err(|_| "the x-forwarded-client-cert header is not text")?;
    let mut elements = xfcc_elements(text)?;
    let element = match (elements.pop(), elements.is_empty()) {
        (Some(element), true) => element,
        // Several elements means several proxies appended theirs (APPEND_FORWARD): which one
        // saw the client is a matter of topology this server cannot know.
        _ => return Err("the x-forwarded-client-cert header has more than one element"),
    };
    let mut certs = element
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case("Cert"));
    let (Some((_, cert)), None) = (certs.next(), certs.next()) else {
        return Err("the x-forwarded-client-cert element needs exactly one Cert");
    };
    // Envoy's Cert is URL-encoded PEM, as an AWS ALB's leaf header is: the core reads both.
    let peer = Peer::from_alb_leaf(cert.as_bytes())
        .map_err(|_| "the x-forwarded-client-cert Cert is not one URL-encoded PEM certificate")?;
    for (_, hash) in element
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case("Hash"))
    {
        if digest(hash).is_none() || digest(hash) != peer.sha256 {
            return Err("the x-forwarded-client-cert Hash is not the SHA-256 of its Cert");
        }
    }
    Ok(peer)
}

/// The elements of an XFCC value, each a list of `(key, value)` pairs: elements separated by
/// `,`, pairs by `;`, key and value by `=`; a value that holds any of `,;="` is double-quoted,
/// with `\"` and `\\` inside. Keys are letters only. No whitespace is allowed around
/// separators: Envoy writes none, and anything else is not what the trusted proxy sent.
fn xfcc_elements(text: &str) -> Result<Vec<Vec<(&str, String)>>, &'static str> {
    const MALFORMED: &str = "the x-forwarded-client-cert header is malformed";
    let mut elements = vec![Vec::new()];
    let mut rest = text;
    loop {
        let (key, after_key) = rest.split_once('=').ok_or(MALFORMED)?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(MALFORMED);
        }
        let (value, after_value) = match after_key.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next().ok_or(MALFORMED)? {
                        (i, '"') => break i + 1,
                        (_, '\\') => match chars.next().ok_or(MALFORMED)? {
                            (_, c @ ('"' | '\\')) => value.push(c),
                            _ => return Err(MALFORMED),
                        },
                        (_, c) => value.push(c),
                    }
                };
                (value, quoted.get(end..).ok_or(MALFORMED)?)
            }
            None => {
                let end = after_key.find([',', ';']).unwrap_or(after_key.len());
                let (value, after) = after_key.split_at(end);
                if value.contains(['"', '=', '\\']) {
                    return Err(MALFORMED);
                }
                (value.to_owned(), after)
            }
        };
        elements.last_mut().ok_or(MALFORMED)?.push((key, value));
        match after_value.chars().next() {
            None => return Ok(elements),
            Some(';') => {}
            Some(',') => elements.push(Vec::new()),
            Some(_) => return Err(MALFORMED),
        }
        rest = after_value.get(1..).ok_or(MALFORMED)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xfcc_splits_elements_pairs_and_quoted_values() {
        let elements =
            xfcc_elements(r#"By=spiffe://a;Hash=ab;Subject="CN=x,O=\"q\";y";URI=,DNS=z"#).unwrap();
        assert_eq!(
            elements,
            vec![
                vec![
                    ("By", "spiffe://a".to_owned()),
                    ("Hash", "ab".to_owned()),
                    ("Subject", r#"CN=x,O="q";y"#.to_owned()),
                    ("URI", String::new()),
                ],
                vec![("DNS", "z".to_owned())],
            ]
        );
    }

    #[test]
    fn xfcc_refuses_what_envoy_never_writes() {
        for bad in [
            "",
            "Cert",
            "=x",
            "Cert=a=b",
            "Cert=\"open",
            "Cert=\"a\"b",
            "Cert=\"a\\x\"",
            "Cert=a;",
            "Cert=a,",
            "Cert=a; By=b",
            " Cert=a",
            "Ce rt=a",
            "Cert=a\"",
            "Cert=a\\b",
        ] {
            assert!(xfcc_elements(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn xfcc_needs_one_element_with_one_certificate() {
        for bad in [
            "By=spiffe://a",
            "Cert=x",
            "Cert=\"x\";Cert=\"y\"",
            "Cert=\"x\",Cert=\"y\"",
        ] {
            assert!(xfcc_certificate(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(xfcc_certificate(&vec![b'a'; MAX_XFCC_BYTES + 1]).is_err());
    }

    #[test]
    fn registration_values_become_exact_pins() {
        assert_eq!(
            registration_pin("tls_client_auth_san_uri", "spiffe://demo/*").unwrap(),
            Pin::UriSan("spiffe://demo/*".to_owned())
        );
        assert!(registration_pin("tls_client_auth_subject_dn", "CN=a,O=b").is_ok());
        assert!(registration_pin("tls_client_auth_subject_dn", "no equals sign").is_err());
        assert!(registration_pin("tls_client_auth_san_dns", "").is_err());
    }
}
