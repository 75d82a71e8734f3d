//! One audit record per decision. It names who asked for what and why the answer was given,
//! and never holds the token: `jti` is logged as its SHA-256.

use alloc::string::String;

use crate::claims::Claims;
use crate::error::{Error, ErrorCode};
use crate::json::{self, Object, Value};
use crate::signature::sha256;
use crate::verify::Verified;

/// The verdict part of a [`Decision`].
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Verdict {
    /// The request may proceed.
    Allow,
    /// The request is refused (or, in report mode, would have been).
    Deny,
}

/// An audit record. Hosts add their own fields (route, mode, remote address) with
/// [`Decision::route`] and [`Decision::to_json_with`].
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Allow or deny.
    pub verdict: Verdict,
    /// The rejection code, for denials.
    pub code: Option<ErrorCode>,
    /// `iss`, when the claims were verified.
    pub iss: Option<String>,
    /// `client_id`, when the claims were verified.
    pub client_id: Option<String>,
    /// The granted `scope` string, when the claims were verified.
    pub scopes: Option<String>,
    /// The kid that verified the token.
    pub kid: Option<String>,
    /// Hex SHA-256 of `jti`.
    pub jti_sha256: Option<String>,
    /// The route or rule the host matched.
    pub route: Option<String>,
    /// Whether the verified-token cache answered.
    pub cached: bool,
    /// The client certificate pin that matched (never the certificate).
    pub identity: Option<String>,
}

impl Decision {
    /// The record for a verification result.
    pub fn from_result(result: &Result<Verified, Error>) -> Decision {
        match result {
            Ok(v) => {
                let mut d = Decision::from_claims(Verdict::Allow, None, Some(&v.claims));
                d.kid = Some(v.kid.clone());
                d.cached = v.cached;
                d.identity = v.identity.clone();
                d
            }
            Err(e) => Decision::from_claims(Verdict::Deny, Some(e.code()), e.claims()),
        }
    }

    /// An allow that involved no token (anonymous routes), or whose record is not wanted.
    pub fn allowed() -> Decision {
        Decision::from_claims(Verdict::Allow, None, None)
    }

    /// A denial decided before verification (no token, request refused, rate limit).
    pub fn denied(code: ErrorCode) -> Decision {
        Decision::from_claims(Verdict::Deny, Some(code), None)
    }

    /// Attach the matched route.
    pub fn route(mut self, route: impl Into<String>) -> Decision {
        self.route = Some(route.into());
        self
    }

    /// One JSON line: [`Decision::to_json_with`] without host fields, written straight into
    /// one buffer (the same bytes; hosts write one per decision).
    pub fn to_json(&self) -> String {
        self.to_json_with_strings(&[])
    }

    /// One JSON line with host fields added after the standard ones.
    pub fn to_json_with(&self, extra: Object) -> String {
        let mut m = Object::new();
        let verdict = match self.verdict {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        };
        m.insert("decision".into(), verdict.into());
        m.insert(
            "code".into(),
            opt(self.code.map(|c| String::from(c.as_str()))),
        );
        m.insert("iss".into(), opt(self.iss.clone()));
        m.insert("client_id".into(), opt(self.client_id.clone()));
        m.insert("scopes".into(), opt(self.scopes.clone()));
        m.insert("kid".into(), opt(self.kid.clone()));
        m.insert("jti_sha256".into(), opt(self.jti_sha256.clone()));
        m.insert("route".into(), opt(self.route.clone()));
        m.insert("cached".into(), self.cached.into());
        if let Some(identity) = &self.identity {
            m.insert("identity".into(), identity.clone().into());
        }
        for (k, v) in extra {
            m.insert(k, v);
        }
        json::object_to_json(&m)
    }

    /// The record as one compact JSON object, for hosts that hand it to their own log pipeline
    /// (Envoy filter state, written by an access log): fields without a value are left out, and
    /// `status` is the HTTP status of the answer (in report mode the one a denial would have
    /// had, with `"mode":"report"`). Keys in a fixed order: `decision`, `code`, `status`, `mode`,
    /// `route`, `client_id`, `scopes`, `iss`, `kid`, `jti_sha256`, `identity`, `cached`.
    ///
    /// Written straight into one buffer (no JSON tree, no formatting machinery): hosts build
    /// one per request.
    pub fn to_record_json(&self, status: u16, report: bool) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"decision\":");
        json::write_str(&mut out, self.verdict_str());
        if let Some(code) = self.code {
            out.push_str(",\"code\":");
            json::write_str(&mut out, code.as_str());
        }
        out.push_str(",\"status\":");
        json::write_u64(&mut out, u64::from(status));
        if report {
            out.push_str(",\"mode\":\"report\"");
        }
        for (key, value) in [
            ("route", &self.route),
            ("client_id", &self.client_id),
            ("scopes", &self.scopes),
            ("iss", &self.iss),
            ("kid", &self.kid),
            ("jti_sha256", &self.jti_sha256),
            ("identity", &self.identity),
        ] {
            if let Some(v) = value {
                out.push_str(",\"");
                out.push_str(key);
                out.push_str("\":");
                json::write_str(&mut out, v);
            }
        }
        out.push_str(if self.cached {
            ",\"cached\":true}"
        } else {
            ",\"cached\":false}"
        });
        out
    }

    /// [`Decision::to_json_with`] with the string fields `extra` (sorted by key, none of them a
    /// standard key), written straight into one buffer: the same bytes, without the JSON tree.
    pub fn to_json_with_strings(&self, extra: &[(&str, JsonScalar<'_>)]) -> String {
        let code = self.code.map(ErrorCode::as_str);
        let standard: [(&str, JsonScalar<'_>); 10] = [
            ("cached", JsonScalar::Bool(self.cached)),
            ("client_id", JsonScalar::opt(self.client_id.as_deref())),
            ("code", JsonScalar::opt(code)),
            ("decision", JsonScalar::Str(self.verdict_str())),
            ("identity", JsonScalar::opt(self.identity.as_deref())),
            ("iss", JsonScalar::opt(self.iss.as_deref())),
            ("jti_sha256", JsonScalar::opt(self.jti_sha256.as_deref())),
            ("kid", JsonScalar::opt(self.kid.as_deref())),
            ("route", JsonScalar::opt(self.route.as_deref())),
            ("scopes", JsonScalar::opt(self.scopes.as_deref())),
        ];
        let mut out = String::with_capacity(384);
        out.push('{');
        let (mut a, mut b) = (standard.iter().peekable(), extra.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            let Some((key, value)) = next else { break };
            // identity is left out when there is none, as in `to_json_with`.
            if *key == "identity" && matches!(value, JsonScalar::Null) {
                continue;
            }
            if out.len() > 1 {
                out.push(',');
            }
            json::write_str(&mut out, key);
            out.push(':');
            match value {
                JsonScalar::Null => out.push_str("null"),
                JsonScalar::Bool(true) => out.push_str("true"),
                JsonScalar::Bool(false) => out.push_str("false"),
                JsonScalar::Int(n) => json::write_u64(&mut out, *n),
                JsonScalar::Str(s) => json::write_str(&mut out, s),
            }
        }
        out.push('}');
        out
    }

    fn verdict_str(&self) -> &'static str {
        match self.verdict {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }

    fn from_claims(
        verdict: Verdict,
        code: Option<ErrorCode>,
        claims: Option<&crate::Claims>,
    ) -> Decision {
        Decision {
            verdict,
            code,
            iss: claims.and_then(|c| c.iss()).map(String::from),
            client_id: claims.and_then(|c| c.client_id()).map(String::from),
            scopes: claims.and_then(|c| c.str("scope")).map(String::from),
            kid: None,
            jti_sha256: claims.and_then(Claims::jti_sha256).map(|d| hex(&d)),
            route: None,
            cached: false,
            identity: None,
        }
    }
}

/// A JSON value a host adds to a record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum JsonScalar<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A non-negative integer.
    Int(u64),
    /// A string (escaped on output).
    Str(&'a str),
}

impl<'a> JsonScalar<'a> {
    /// A string, or `null`.
    pub fn opt(s: Option<&'a str>) -> JsonScalar<'a> {
        s.map_or(JsonScalar::Null, JsonScalar::Str)
    }
}

/// Lower-case hex SHA-256 of a string.
pub fn hex_sha256(s: &str) -> String {
    hex(&sha256(s.as_bytes()))
}

fn hex(bytes: &[u8; 32]) -> String {
    let mut s = String::with_capacity(64);
    push_hex(&mut s, bytes);
    s
}

/// Append `bytes` in lower-case hex (digests here, certificate values in [`crate::peer`]).
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + (nibble - 10)
            }));
        }
    }
}

fn opt(v: Option<String>) -> Value {
    v.map_or(Value::Null, Value::String)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jti_is_hashed_and_the_record_is_one_json_line() {
        let d = Decision::denied(ErrorCode::TokenMissing).route("/orders");
        let line = d.to_json();
        assert!(!line.contains('\n'));
        assert!(line.contains("\"code\":\"token_missing\""));
        assert_eq!(
            hex_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn records() -> alloc::vec::Vec<Decision> {
        let odd = "tab\there \"quoted\" back\\slash \u{1} \u{1f} nl\n cr\r \u{8}\u{c} \u{7f} é ☃ 𝄞";
        let mut full = Decision::denied(ErrorCode::ScopeInsufficient).route("orders-write");
        full.iss = Some(String::from(
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_A",
        ));
        full.client_id = Some(String::from(odd));
        full.scopes = Some(String::from("orders/read orders/list"));
        full.kid = Some(String::from("abc+/=="));
        full.jti_sha256 = Some(hex_sha256("jti-1"));
        full.identity = Some(String::from("uri_san:spiffe://prod/orders"));
        full.cached = true;
        let mut allowed = Decision::allowed().route(odd);
        allowed.cached = true;
        alloc::vec![Decision::denied(ErrorCode::TokenMissing), allowed, full]
    }

    #[test]
    fn the_direct_writer_gives_the_same_line_as_the_json_tree() {
        for d in records() {
            let mut extra = Object::new();
            extra.insert("method".into(), "GET".into());
            extra.insert("mode".into(), "enforce".into());
            extra.insert("path".into(), "/orders\"x".into());
            extra.insert("status".into(), 403u16.into());
            let direct = d.to_json_with_strings(&[
                ("method", JsonScalar::Str("GET")),
                ("mode", JsonScalar::Str("enforce")),
                ("path", JsonScalar::Str("/orders\"x")),
                ("status", JsonScalar::Int(403)),
            ]);
            assert_eq!(direct, d.to_json_with(extra));
            assert_eq!(d.to_json_with_strings(&[]), d.to_json_with(Object::new()));
            assert_eq!(d.to_json(), d.to_json_with(Object::new()));
        }
    }

    #[test]
    fn the_compact_record_leaves_out_empty_fields_and_parses_back() {
        let [missing, allowed, full] = <[Decision; 3]>::try_from(records()).unwrap();
        assert_eq!(
            missing.to_record_json(401, false),
            r#"{"decision":"deny","code":"token_missing","status":401,"cached":false}"#
        );
        let v: serde_json::Value =
            serde_json::from_str(&allowed.to_record_json(200, false)).unwrap();
        assert_eq!(v["route"], allowed.route.clone().unwrap().as_str());
        assert_eq!(v.as_object().unwrap().len(), 4);
        let line = full.to_record_json(403, true);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(line.starts_with(r#"{"decision":"deny","code":"scope_insufficient","status":403,"mode":"report","route":"orders-write","#));
        assert_eq!(v["client_id"], full.client_id.clone().unwrap().as_str());
        assert_eq!(v["jti_sha256"], hex_sha256("jti-1").as_str());
        assert_eq!(v["identity"], "uri_san:spiffe://prod/orders");
        assert_eq!(v["cached"], true);
        assert_eq!(v.as_object().unwrap().len(), 12);
    }
}
