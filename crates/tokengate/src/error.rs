//! Stable rejection codes and their single HTTP mapping (RFC 6750 §3).

use alloc::borrow::Cow;
use alloc::string::String;
use core::fmt;

use crate::claims::Claims;
use alloc::sync::Arc;

/// Why a token was refused. The `as_str()` strings are API shared by every host: they are never
/// renamed or reused, new codes are only added.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq, Ord, PartialOrd)]
pub enum ErrorCode {
    /// No token was presented (RFC 6750 §3.1: the challenge carries no `error`).
    TokenMissing,
    /// Not a compact JWS with strict base64url segments and JSON object header and payload.
    TokenMalformed,
    /// Longer than the configured limit; refused before any decoding.
    TokenTooLarge,
    /// Header `alg` is not in the exact allow-list (`none`, HS*, PS* … are never allowed).
    AlgNotAllowed,
    /// Header uses an extension the verifier does not implement (`crit`, `b64`).
    HeaderUnsupported,
    /// Header has no string `kid`.
    KidMissing,
    /// No key in the issuer's key set has this `kid`.
    KidUnknown,
    /// The selected key cannot verify this `alg` (type, JWK `alg`/`use`, weak or malformed key).
    KeyUnusable,
    /// The signature does not verify. Deliberately carries no detail.
    SignatureInvalid,
    /// `exp` has passed (RFC 7519 §4.1.4), or the token is older than the maximum age.
    TokenExpired,
    /// `nbf` is still in the future (RFC 7519 §4.1.5).
    TokenNotYetValid,
    /// `iat` is in the future (RFC 7519 §4.1.6).
    TokenIssuedInFuture,
    /// A claim the policy needs is absent.
    ClaimMissing,
    /// A claim has the wrong JSON type or fails a claim rule.
    ClaimInvalid,
    /// `iss` is not one of the configured issuers (byte comparison).
    IssuerMismatch,
    /// `token_use` differs from the configured one (Cognito `access` / `id`).
    TokenUseMismatch,
    /// `client_id` is not in the allow-list.
    ClientNotAllowed,
    /// `aud` contains none of the configured audiences.
    AudienceMismatch,
    /// The token, its client, or tokens issued before a cut-off were revoked.
    TokenRevoked,
    /// RFC 8705 certificate binding (`cnf.x5t#S256`) does not match the connection.
    BindingMismatch,
    /// The token is valid but lacks a scope the resource needs (HTTP 403).
    ScopeInsufficient,
    /// The client exceeded its request rate (HTTP 429).
    RateLimited,
    /// No usable key set could be had for the issuer: fail closed (HTTP 503).
    JwksUnavailable,
    /// The request itself is refused before any token is looked at (HTTP 400): a method or a
    /// request target that is not in the normal form rules are written for.
    RequestInvalid,
    /// The policy feed could not be had (not loaded yet, or stale past `max_stale_s`) and the
    /// configuration fails closed (HTTP 503).
    PolicyUnavailable,
    /// The client is pinned to certificates (`client_identities`) and the one presented is
    /// none of them (or, with `require_identity: "always"`, the client has no pins).
    IdentityMismatch,
    /// The client must present a certificate (its pins, or `require_identity: "always"`) and
    /// the request came without one.
    IdentityMissing,
    /// The token needs a signature check and this verifier (an Envoy worker, a JS verifier)
    /// already made its `signature_checks_per_s` this second: refused cheaply instead of an
    /// RSA/ECDSA operation (HTTP 503 with `Retry-After`). Tokens already verified (cached) are
    /// not affected. A flood of forged tokens meets it; ordinary traffic should not.
    SignatureBudgetExhausted,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::TokenMissing,
        ErrorCode::TokenMalformed,
        ErrorCode::TokenTooLarge,
        ErrorCode::AlgNotAllowed,
        ErrorCode::HeaderUnsupported,
        ErrorCode::KidMissing,
        ErrorCode::KidUnknown,
        ErrorCode::KeyUnusable,
        ErrorCode::SignatureInvalid,
        ErrorCode::TokenExpired,
        ErrorCode::TokenNotYetValid,
        ErrorCode::TokenIssuedInFuture,
        ErrorCode::ClaimMissing,
        ErrorCode::ClaimInvalid,
        ErrorCode::IssuerMismatch,
        ErrorCode::TokenUseMismatch,
        ErrorCode::ClientNotAllowed,
        ErrorCode::AudienceMismatch,
        ErrorCode::TokenRevoked,
        ErrorCode::BindingMismatch,
        ErrorCode::ScopeInsufficient,
        ErrorCode::RateLimited,
        ErrorCode::JwksUnavailable,
        ErrorCode::RequestInvalid,
        ErrorCode::PolicyUnavailable,
        ErrorCode::IdentityMismatch,
        ErrorCode::IdentityMissing,
        ErrorCode::SignatureBudgetExhausted,
    ];

    /// The stable machine-readable name, e.g. `"token_expired"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::TokenMissing => "token_missing",
            ErrorCode::TokenMalformed => "token_malformed",
            ErrorCode::TokenTooLarge => "token_too_large",
            ErrorCode::AlgNotAllowed => "alg_not_allowed",
            ErrorCode::HeaderUnsupported => "header_unsupported",
            ErrorCode::KidMissing => "kid_missing",
            ErrorCode::KidUnknown => "kid_unknown",
            ErrorCode::KeyUnusable => "key_unusable",
            ErrorCode::SignatureInvalid => "signature_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenNotYetValid => "token_not_yet_valid",
            ErrorCode::TokenIssuedInFuture => "token_issued_in_future",
            ErrorCode::ClaimMissing => "claim_missing",
            ErrorCode::ClaimInvalid => "claim_invalid",
            ErrorCode::IssuerMismatch => "issuer_mismatch",
            ErrorCode::TokenUseMismatch => "token_use_mismatch",
            ErrorCode::ClientNotAllowed => "client_not_allowed",
            ErrorCode::AudienceMismatch => "audience_mismatch",
            ErrorCode::TokenRevoked => "token_revoked",
            ErrorCode::BindingMismatch => "binding_mismatch",
            ErrorCode::ScopeInsufficient => "scope_insufficient",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::JwksUnavailable => "jwks_unavailable",
            ErrorCode::RequestInvalid => "request_invalid",
            ErrorCode::PolicyUnavailable => "policy_unavailable",
            ErrorCode::IdentityMismatch => "identity_mismatch",
            ErrorCode::IdentityMissing => "identity_missing",
            ErrorCode::SignatureBudgetExhausted => "signature_budget_exhausted",
        }
    }

    /// The code named by `s`, if any.
    pub fn from_name(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The HTTP status every host answers with.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::RequestInvalid => 400,
            ErrorCode::ScopeInsufficient => 403,
            ErrorCode::RateLimited => 429,
            ErrorCode::JwksUnavailable
            | ErrorCode::PolicyUnavailable
            | ErrorCode::SignatureBudgetExhausted => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 §3 `error` attribute, if the challenge carries one.
    pub const fn bearer_error(self) -> Option<&'static str> {
        match self {
            ErrorCode::TokenMissing
            | ErrorCode::RateLimited
            | ErrorCode::JwksUnavailable
            | ErrorCode::RequestInvalid
            | ErrorCode::PolicyUnavailable
            | ErrorCode::SignatureBudgetExhausted => None,
            ErrorCode::ScopeInsufficient => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// The `WWW-Authenticate` header value for this code, or `None` where the answer carries
    /// none (400 is not about credentials; 429 and 503 answer with `Retry-After` instead).
    ///
    /// `realm` may be empty (then it is left out). `required_scopes` is listed in `scope="…"`
    /// for `scope_insufficient` (RFC 6750 §3.1). Quotes and backslashes are escaped.
    pub fn www_authenticate(self, realm: &str, required_scopes: &[&str]) -> Option<String> {
        if matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::JwksUnavailable
                | ErrorCode::RequestInvalid
                | ErrorCode::PolicyUnavailable
                | ErrorCode::SignatureBudgetExhausted
        ) {
            return None;
        }
        let mut out = String::from("Bearer");
        let mut sep = " ";
        if !realm.is_empty() {
            out.push_str(" realm=\"");
            push_quoted(&mut out, realm);
            out.push('"');
            sep = ", ";
        }
        if let Some(error) = self.bearer_error() {
            out.push_str(sep);
            out.push_str("error=\"");
            out.push_str(error);
            out.push('"');
            if self == ErrorCode::ScopeInsufficient && !required_scopes.is_empty() {
                out.push_str(", scope=\"");
                for (i, s) in required_scopes.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    push_quoted(&mut out, s);
                }
                out.push('"');
            }
        }
        Some(out)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejection: the stable [`ErrorCode`], a human message that never contains the token or key
/// material, and — when the signature had been verified — the claims, for audit and debugging.
#[derive(Clone, Debug)]
pub struct Error {
    code: ErrorCode,
    message: Cow<'static, str>,
    claims: Option<Arc<Claims>>,
    fetch_pending: bool,
    clock_needed: bool,
}

impl Error {
    /// A rejection with a fixed message.
    pub fn new(code: ErrorCode, message: &'static str) -> Error {
        Error {
            code,
            message: Cow::Borrowed(message),
            claims: None,
            fetch_pending: false,
            clock_needed: false,
        }
    }

    /// A rejection with a composed message (it must not contain secrets or the token).
    pub fn with_message(code: ErrorCode, message: String) -> Error {
        Error {
            code,
            message: Cow::Owned(message),
            claims: None,
            fetch_pending: false,
            clock_needed: false,
        }
    }

    pub(crate) fn with_claims(mut self, claims: Arc<Claims>) -> Error {
        self.claims = Some(claims);
        self
    }

    /// The same error, marked as one a fetch under way may change (see
    /// [`Error::fetch_pending`]).
    pub fn pending_fetch(mut self) -> Error {
        self.fetch_pending = true;
        self
    }

    pub(crate) fn needing_clock(mut self) -> Error {
        self.clock_needed = true;
        self
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// What went wrong, for operators.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The token's claims when its signature was valid (policy rejections), else `None`.
    pub fn claims(&self) -> Option<&Claims> {
        self.claims.as_deref()
    }

    /// True when the verifier scheduled a JWKS fetch that may change this verdict: the host
    /// should run the fetch (see [`crate::Verifier::poll`]) and verify once more.
    pub fn fetch_pending(&self) -> bool {
        self.fetch_pending
    }

    /// True when the request was judged with an inexact clock ([`crate::Request::within`])
    /// and the verdict changes inside its window: the host must read the exact time and ask
    /// again. Its code is the verdict at the window's start when that is a refusal, else
    /// `token_expired`, so a host that ignores the flag fails closed.
    pub fn clock_needed(&self) -> bool {
        self.clock_needed
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// A configuration mistake, found when a policy or key set is built, never at verify time.
/// `field` names the offending setting (e.g. `client_ids[2]`).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ConfigError {
    /// Path of the setting at fault, as the user wrote it.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error on `field` (the setting as the user wrote it, e.g. `rules[2].match`).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

fn push_quoted(out: &mut String, s: &str) {
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::from_name("TokenExpired"), None);
    }

    #[test]
    fn statuses_follow_the_table() {
        assert_eq!(ErrorCode::TokenExpired.http_status(), 401);
        assert_eq!(ErrorCode::ScopeInsufficient.http_status(), 403);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
        assert_eq!(ErrorCode::JwksUnavailable.http_status(), 503);
    }

    #[test]
    fn missing_token_challenge_has_no_error_attribute() {
        assert_eq!(
            ErrorCode::TokenMissing
                .www_authenticate("api", &[])
                .as_deref(),
            Some("Bearer realm=\"api\"")
        );
        assert_eq!(
            ErrorCode::TokenMissing.www_authenticate("", &[]).as_deref(),
            Some("Bearer")
        );
    }

    #[test]
    fn insufficient_scope_challenge_lists_required_scopes() {
        assert_eq!(
            ErrorCode::ScopeInsufficient
                .www_authenticate("api", &["orders/read", "orders/write"])
                .as_deref(),
            Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"orders/read orders/write\"")
        );
        assert_eq!(
            ErrorCode::SignatureInvalid
                .www_authenticate("a\"b", &[])
                .as_deref(),
            Some("Bearer realm=\"a\\\"b\", error=\"invalid_token\"")
        );
        assert_eq!(
            ErrorCode::JwksUnavailable.www_authenticate("api", &[]),
            None
        );
    }
}
