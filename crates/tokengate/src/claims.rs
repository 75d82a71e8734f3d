//! A typed view of a verified payload (RFC 7519 §4, Cognito access-token claims). Unknown claims
//! are kept as raw JSON for hosts to forward or log.

use alloc::string::String;
use serde_json::Value;

use crate::token::JsonObject;

/// The claims of a token. Accessors return `None` when the claim is absent or has another JSON
/// type; the policy step decides whether that is `claim_missing` or `claim_invalid`.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    map: JsonObject,
}

/// A claim read as a time (NumericDate, RFC 7519 §2): JSON numbers only, possibly fractional.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Time {
    /// The claim is absent.
    Absent,
    /// The claim is a JSON number.
    At(f64),
    /// The claim is present with another type (strings are never parsed as times).
    NotNumber,
}

impl Claims {
    /// Wrap a payload object.
    pub fn new(map: JsonObject) -> Claims {
        Claims { map }
    }

    /// Any claim by name, as raw JSON (`custom:tenant`, `cnf`, …).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// The whole payload object.
    pub fn as_map(&self) -> &JsonObject {
        &self.map
    }

    /// Consume into the payload object.
    pub fn into_map(self) -> JsonObject {
        self.map
    }

    /// A string claim.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(Value::as_str)
    }

    /// `iss`.
    pub fn iss(&self) -> Option<&str> {
        self.str("iss")
    }

    /// `client_id` (Cognito access tokens carry it instead of `aud`).
    pub fn client_id(&self) -> Option<&str> {
        self.str("client_id")
    }

    /// `token_use` (`access` or `id` in Cognito tokens).
    pub fn token_use(&self) -> Option<&str> {
        self.str("token_use")
    }

    /// `jti`.
    pub fn jti(&self) -> Option<&str> {
        self.str("jti")
    }

    /// `sub`.
    pub fn sub(&self) -> Option<&str> {
        self.str("sub")
    }

    /// A time claim (`exp`, `nbf`, `iat`, `auth_time`).
    pub fn time(&self, name: &str) -> Time {
        match self.map.get(name) {
            None => Time::Absent,
            Some(Value::Number(n)) => n.as_f64().map_or(Time::NotNumber, Time::At),
            Some(_) => Time::NotNumber,
        }
    }

    /// The granted scopes: the `scope` string split on single spaces (RFC 6749 §3.3). A missing
    /// or non-string `scope` grants nothing; `scp` is not read.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.str("scope").into_iter().flat_map(|s| s.split(' '))
    }

    /// Whether the exact scope `wanted` was granted.
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scopes().any(|s| s == wanted)
    }

    /// The scope claim as given (for forwarding), empty when absent.
    pub fn scope_string(&self) -> String {
        String::from(self.str("scope").unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        match v {
            Value::Object(m) => Claims::new(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn scope_matches_whole_space_separated_elements_only() {
        let c = claims(json!({"scope": "orders/readwrite  orders/write"}));
        assert!(!c.has_scope("orders/read"));
        assert!(c.has_scope("orders/write"));
        assert!(c.has_scope(""), "double space yields an empty element");
        let c = claims(json!({"scope": ["orders/read"], "scp": "orders/read"}));
        assert!(!c.has_scope("orders/read"));
    }

    #[test]
    fn times_are_numbers_only() {
        let c = claims(json!({"exp": 1.5, "nbf": "10", "iat": null}));
        assert_eq!(c.time("exp"), Time::At(1.5));
        assert_eq!(c.time("nbf"), Time::NotNumber);
        assert_eq!(c.time("iat"), Time::NotNumber);
        assert_eq!(c.time("auth_time"), Time::Absent);
    }
}
