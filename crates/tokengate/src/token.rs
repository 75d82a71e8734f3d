//! Compact JWS parsing (RFC 7515 §7.1): exactly three strict base64url segments, JSON object
//! header and payload. Nothing here looks at keys or claims.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::error::{Error, ErrorCode};
use crate::json::{self, ObjectError, Value};
use crate::policy::Algorithm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A JSON object whose top-level member names are unique (RFC 7515 §4 and RFC 8725 §3.1 ask a
/// verifier to reject or consistently handle duplicates; first-wins parsers have been exploited).
pub type JsonObject = json::Object;

/// A token split into its parts, header decoded; the payload stays undecoded JSON bytes until
/// the signature has been checked.
#[derive(Debug)]
pub struct Jws<'t> {
    /// `base64url(header) "." base64url(payload)`: the bytes the signature covers.
    pub signing_input: &'t str,
    /// The decoded header object.
    pub header: JsonObject,
    /// The decoded payload bytes (not yet parsed).
    pub payload: Vec<u8>,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
}

impl<'t> Jws<'t> {
    /// Split and decode `token`, enforcing `max_bytes` before any work.
    ///
    /// # Errors
    /// `token_missing` (empty), `token_too_large`, `token_malformed`.
    pub fn parse(token: &'t str, max_bytes: usize) -> Result<Jws<'t>, Error> {
        let [h, p, s] = segments(token, max_bytes)?;
        let header = decode_segment(h, "header")?;
        let (signing_input, payload, signature) = decode_rest(token, [h, p, s])?;
        let header = parse_object(&header).map_err(|e| {
            Error::with_message(ErrorCode::TokenMalformed, alloc::format!("header: {e}"))
        })?;
        Ok(Jws {
            signing_input,
            header,
            payload,
            signature,
        })
    }

    /// Parse the payload as a strict JSON object (pipeline step 9).
    ///
    /// # Errors
    /// `token_malformed`.
    pub fn payload_object(&self) -> Result<JsonObject, Error> {
        parse_payload(&self.payload)
    }
}

/// What the verifier reads from a JWS header (RFC 7515 §4.1).
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderFacts {
    /// `alg`: `None` when absent or not a string, `Some(None)` for a name this verifier does
    /// not know.
    pub alg: Option<Option<Algorithm>>,
    /// Whether the header uses `crit` (RFC 7515 §4.1.11) or `b64` (RFC 7797), which this
    /// verifier does not implement.
    pub unsupported: bool,
    /// `kid`, when it is a string.
    pub kid: Option<String>,
}

impl HeaderFacts {
    /// The facts of a decoded header.
    pub fn of(header: &JsonObject) -> HeaderFacts {
        HeaderFacts {
            alg: match header.get("alg") {
                Some(Value::String(name)) => Some(Algorithm::from_name(name)),
                _ => None,
            },
            unsupported: header.contains_key("crit") || header.contains_key("b64"),
            kid: match header.get("kid") {
                Some(Value::String(kid)) => Some(kid.clone()),
                _ => None,
            },
        }
    }
}

/// A token split and decoded, its header read as [`HeaderFacts`].
#[derive(Debug)]
pub struct Parsed<'t> {
    /// The header's facts.
    pub header: HeaderFacts,
    /// `base64url(header) "." base64url(payload)`: the bytes the signature covers.
    pub signing_input: &'t str,
    /// The decoded payload bytes (not yet parsed).
    pub payload: Vec<u8>,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
}

/// The facts of the last few distinct header segments that parsed. Tokens from one issuer
/// share one header per signing key, so most tokens skip decoding and parsing theirs: the
/// facts are a function of the segment's exact text, and a segment that decoded and parsed
/// once does so again, so the result (and the first error, if any) is what
/// [`Jws::parse`] gives.
#[derive(Debug, Default)]
pub struct HeaderMemo {
    entries: Vec<(Box<str>, HeaderFacts)>,
    next: usize,
}

impl HeaderMemo {
    /// Headers remembered; beyond it the oldest is replaced.
    const SIZE: usize = 4;

    /// [`Jws::parse`], with the header read as [`HeaderFacts`].
    ///
    /// # Errors
    /// As [`Jws::parse`].
    pub fn parse<'t>(&mut self, token: &'t str, max_bytes: usize) -> Result<Parsed<'t>, Error> {
        let known = token.split('.').next().and_then(|h| {
            self.entries
                .iter()
                .find(|(seen, _)| **seen == *h)
                .map(|(_, facts)| facts.clone())
        });
        if let Some(header) = known {
            let parts = segments(token, max_bytes)?;
            let (signing_input, payload, signature) = decode_rest(token, parts)?;
            return Ok(Parsed {
                header,
                signing_input,
                payload,
                signature,
            });
        }
        let jws = Jws::parse(token, max_bytes)?;
        let header = HeaderFacts::of(&jws.header);
        let segment = token.split('.').next().unwrap_or("");
        let entry = (Box::from(segment), header.clone());
        match self.entries.get_mut(self.next) {
            Some(slot) => *slot = entry,
            None => self.entries.push(entry),
        }
        self.next = (self.next + 1) % Self::SIZE;
        Ok(Parsed {
            header,
            signing_input: jws.signing_input,
            payload: jws.payload,
            signature: jws.signature,
        })
    }
}

/// The three segments of a compact JWS, after the size limit.
fn segments(token: &str, max_bytes: usize) -> Result<[&str; 3], Error> {
    if token.is_empty() {
        return Err(Error::new(
            ErrorCode::TokenMissing,
            "no token was presented",
        ));
    }
    if token.len() > max_bytes {
        return Err(Error::new(
            ErrorCode::TokenTooLarge,
            "token is longer than the configured maximum",
        ));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a compact JWS has exactly three segments"));
    };
    if s.is_empty() {
        return Err(malformed("the signature segment is empty"));
    }
    Ok([h, p, s])
}

/// The signing input, the decoded payload and the decoded signature.
fn decode_rest<'t>(
    token: &'t str,
    [h, p, s]: [&str; 3],
) -> Result<(&'t str, Vec<u8>, Vec<u8>), Error> {
    let payload = decode_segment(p, "payload")?;
    let signature = decode_segment(s, "signature")?;
    // `h.len() + 1 + p.len()` is within `token`, so the slice cannot fail; `get` keeps it total.
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or_else(|| malformed("segment bounds"))?;
    Ok((signing_input, payload, signature))
}

/// Parse decoded payload bytes as a strict JSON object (pipeline step 9).
///
/// # Errors
/// `token_malformed`.
pub fn parse_payload(payload: &[u8]) -> Result<JsonObject, Error> {
    parse_object(payload)
        .map_err(|e| Error::with_message(ErrorCode::TokenMalformed, alloc::format!("payload: {e}")))
}

/// Decode one strict base64url segment: RFC 7515 §2 alphabet, no padding, no whitespace,
/// canonical (zero) trailing bits.
pub fn decode_segment(segment: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| {
        Error::with_message(
            ErrorCode::TokenMalformed,
            alloc::format!("{what} is not strict base64url"),
        )
    })
}

/// Parse bytes as a strict UTF-8 JSON object whose top-level member names are unique
/// ([`json::parse_unique_object`]).
pub fn parse_object(bytes: &[u8]) -> Result<JsonObject, JsonError> {
    json::parse_unique_object(bytes).map_err(|e| match e {
        ObjectError::Syntax(_) => JsonError::Syntax,
        ObjectError::NotObject => JsonError::NotObject,
        ObjectError::Duplicate => JsonError::Duplicate,
    })
}

/// Why bytes are not an acceptable JSON object.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum JsonError {
    /// Not UTF-8 or not JSON.
    Syntax,
    /// Valid JSON but not an object.
    NotObject,
    /// An object with a repeated top-level member name.
    Duplicate,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonError::Syntax => "not valid UTF-8 JSON",
            JsonError::NotObject => "not a JSON object",
            JsonError::Duplicate => "duplicate member name",
        })
    }
}

fn malformed(message: &'static str) -> Error {
    Error::new(ErrorCode::TokenMalformed, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_top_level_member_is_rejected() {
        assert_eq!(parse_object(br#"{"a":1,"a":2}"#), Err(JsonError::Duplicate));
        assert!(parse_object(br#"{"a":{"b":1},"c":2}"#).is_ok());
    }

    #[test]
    fn non_objects_and_garbage_are_rejected() {
        assert_eq!(parse_object(b"[1]"), Err(JsonError::NotObject));
        assert_eq!(parse_object(b"\"x\""), Err(JsonError::NotObject));
        assert_eq!(parse_object(b"{"), Err(JsonError::Syntax));
        assert_eq!(parse_object(b"\xef\xbb\xbf{}"), Err(JsonError::Syntax));
        assert_eq!(parse_object(b"{} x"), Err(JsonError::Syntax));
        assert_eq!(parse_object(b"{\"a\":\"\xff\"}"), Err(JsonError::Syntax));
    }

    #[test]
    fn base64url_is_strict() {
        assert!(decode_segment("YQ", "x").is_ok());
        assert!(decode_segment("YQ==", "x").is_err());
        assert!(
            decode_segment("YR", "x").is_err(),
            "non-canonical trailing bits"
        );
        assert!(decode_segment("Y Q", "x").is_err());
        assert!(decode_segment("Y+", "x").is_err());
        assert!(decode_segment("Y", "x").is_err());
    }

    type Read<'t> = Result<(HeaderFacts, &'t str, Vec<u8>, Vec<u8>), Error>;

    /// What the memo answers, compared with [`Jws::parse`] read the same way.
    fn both(memo: &mut HeaderMemo, token: &str) -> (String, String) {
        let show = |r: Read<'_>| match r {
            Ok(v) => alloc::format!("{v:?}"),
            Err(e) => alloc::format!("{:?} {}", e.code(), e.message()),
        };
        let direct = Jws::parse(token, 64).map(|j| {
            (
                HeaderFacts::of(&j.header),
                j.signing_input,
                j.payload,
                j.signature,
            )
        });
        let memo = memo
            .parse(token, 64)
            .map(|p| (p.header, p.signing_input, p.payload, p.signature));
        (show(direct), show(memo))
    }

    #[test]
    fn the_header_memo_answers_as_a_full_parse_does() {
        let b = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let h = b(r#"{"alg":"RS256","kid":"k1"}"#);
        let h2 = b(r#"{"alg":"none","crit":["x"]}"#);
        let p = b(r#"{"iss":"i"}"#);
        let tokens = [
            alloc::format!("{h}.{p}.YQ"),
            alloc::format!("{h}.{p}.YQ"),
            alloc::format!("{h}.{}.YQ", b("{}")),
            alloc::format!("{h}.{p}.Y"),
            alloc::format!("{h}.@@.YQ"),
            alloc::format!("{h}.{p}."),
            alloc::format!("{h}.{p}"),
            alloc::format!("{h}.{p}.YQ.YQ"),
            alloc::format!("{h}.{p}.{}", "Y".repeat(80)),
            alloc::format!("{h2}.{p}.YQ"),
            alloc::format!("{h2}.{p}.YQ"),
            alloc::format!("{}.{p}.YQ", b(r#"{"alg":1}"#)),
            alloc::format!("{}.{p}.YQ", b("[1]")),
            alloc::format!("{}.{p}.YQ", b(r#"{"a":1,"a":2}"#)),
            alloc::format!("{}.{p}.YQ", b(r#"{"a":1,"a":2}"#)),
            String::from(""),
            String::from("..."),
            alloc::format!("{h}.{p}.YQ"),
        ];
        let mut memo = HeaderMemo::default();
        for t in &tokens {
            let (direct, memo) = both(&mut memo, t);
            assert_eq!(direct, memo, "{t}");
        }
        // More distinct headers than the memo holds: still the same answers.
        for i in 0..10 {
            let hi = b(&alloc::format!(r#"{{"alg":"ES256","kid":"k{i}"}}"#));
            let t = alloc::format!("{hi}.{p}.YQ");
            let (direct, memo) = both(&mut memo, &t);
            assert_eq!(direct, memo);
        }
        assert!(memo.entries.len() <= HeaderMemo::SIZE);
    }

    #[test]
    fn segment_count_and_size_are_enforced() {
        assert_eq!(
            Jws::parse("", 100).unwrap_err().code(),
            ErrorCode::TokenMissing
        );
        assert_eq!(
            Jws::parse("e30.e30.YQ.", 100).unwrap_err().code(),
            ErrorCode::TokenMalformed
        );
        assert_eq!(
            Jws::parse("e30.e30", 100).unwrap_err().code(),
            ErrorCode::TokenMalformed
        );
        assert_eq!(
            Jws::parse("e30.e30.", 100).unwrap_err().code(),
            ErrorCode::TokenMalformed
        );
        assert_eq!(
            Jws::parse("e30.e30.YQ", 5).unwrap_err().code(),
            ErrorCode::TokenTooLarge
        );
        let jws = Jws::parse("e30.e30.YQ", 100).unwrap();
        assert_eq!(jws.signing_input, "e30.e30");
        assert_eq!(jws.signature, b"a");
    }
}
