//! One audit record per decision. It names who asked for what and why the answer was given,
//! and never holds the token: `jti` is logged as its SHA-256.

use alloc::string::{String, ToString};
use core::fmt::Write as _;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode};
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

    /// One JSON line.
    pub fn to_json(&self) -> String {
        self.to_json_with(Map::new())
    }

    /// One JSON line with host fields added after the standard ones.
    pub fn to_json_with(&self, extra: Map<String, Value>) -> String {
        let mut m = Map::new();
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
        Value::Object(m).to_string()
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
            jti_sha256: claims.and_then(|c| c.jti()).map(hex_sha256),
            route: None,
            cached: false,
            identity: None,
        }
    }
}

/// Lower-case hex SHA-256 of a string.
pub fn hex_sha256(s: &str) -> String {
    let mut out = String::with_capacity(64);
    for b in sha256(s.as_bytes()) {
        let _ = write!(out, "{b:02x}");
    }
    out
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
}
