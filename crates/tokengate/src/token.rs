//! Compact JWS parsing (RFC 7515 §7.1): exactly three strict base64url segments, JSON object
//! header and payload. Nothing here looks at keys or claims.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode};

/// A JSON object whose top-level member names are unique (RFC 7515 §4 and RFC 8725 §3.1 ask a
/// verifier to reject or consistently handle duplicates; first-wins parsers have been exploited).
pub type JsonObject = Map<String, Value>;

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
        let header = decode_segment(h, "header")?;
        let payload = decode_segment(p, "payload")?;
        let signature = decode_segment(s, "signature")?;
        let header = parse_object(&header).map_err(|e| {
            Error::with_message(ErrorCode::TokenMalformed, alloc::format!("header: {e}"))
        })?;
        // `h.len() + 1 + p.len()` is within `token`, so the slice cannot fail; `get` keeps it total.
        let signing_input = token
            .get(..h.len() + 1 + p.len())
            .ok_or_else(|| malformed("segment bounds"))?;
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

/// Parse bytes as a strict UTF-8 JSON object whose top-level member names are unique.
pub fn parse_object(bytes: &[u8]) -> Result<JsonObject, JsonError> {
    match serde_json::from_slice::<UniqueObject>(bytes) {
        Ok(UniqueObject(map)) => Ok(map),
        Err(e) if e.is_data() && e.to_string().starts_with(DUPLICATE) => Err(JsonError::Duplicate),
        Err(e) if e.is_data() => Err(JsonError::NotObject),
        Err(_) => Err(JsonError::Syntax),
    }
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

const DUPLICATE: &str = "duplicate member name";

struct UniqueObject(JsonObject);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UniqueObjectVisitor)
    }
}

struct UniqueObjectVisitor;

impl<'de> Visitor<'de> for UniqueObjectVisitor {
    type Value = UniqueObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value: Value = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
        }
        Ok(UniqueObject(map))
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
