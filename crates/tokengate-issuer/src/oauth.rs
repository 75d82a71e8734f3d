//! The OAuth 2.0 side of the token endpoint (RFC 6749): error codes, the form, client
//! authentication and scope selection. No I/O here.

use std::borrow::Cow;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use crate::config::is_scope_token_byte;

/// Token-endpoint error codes (RFC 6749 §5.2, plus `too_many_requests` for the rate limit).
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
#[non_exhaustive]
pub enum TokenError {
    /// Malformed request: missing `grant_type`, duplicated parameter, two client
    /// authentication methods, wrong content type.
    InvalidRequest,
    /// Unknown or disabled client, wrong secret, or no client authentication.
    InvalidClient,
    /// The client may not use `client_credentials` (it has no allowed scopes).
    UnauthorizedClient,
    /// A `grant_type` other than `client_credentials`.
    UnsupportedGrantType,
    /// A requested scope the client may not have, or a malformed scope.
    InvalidScope,
    /// The client (or, for failed authentications, the source IP) is over its rate limit.
    TooManyRequests,
    /// Signing failed.
    ServerError,
}

impl TokenError {
    /// Every code, for tests and docs.
    pub const ALL: &'static [TokenError] = &[
        TokenError::InvalidRequest,
        TokenError::InvalidClient,
        TokenError::UnauthorizedClient,
        TokenError::UnsupportedGrantType,
        TokenError::InvalidScope,
        TokenError::TooManyRequests,
        TokenError::ServerError,
    ];

    /// The `error` member of the JSON body.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenError::InvalidRequest => "invalid_request",
            TokenError::InvalidClient => "invalid_client",
            TokenError::UnauthorizedClient => "unauthorized_client",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::InvalidScope => "invalid_scope",
            TokenError::TooManyRequests => "too_many_requests",
            TokenError::ServerError => "server_error",
        }
    }

    /// HTTP status: 401 for `invalid_client` (RFC 6749 §5.2), 429 for the rate limit, 500 for
    /// `server_error`, 400 otherwise.
    pub fn http_status(self) -> u16 {
        match self {
            TokenError::InvalidClient => 401,
            TokenError::TooManyRequests => 429,
            TokenError::ServerError => 500,
            _ => 400,
        }
    }
}

/// A refused token request: the code the client sees and the reason the audit log gets.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) struct Rejection {
    pub error: TokenError,
    pub detail: &'static str,
    pub retry_after_s: Option<u64>,
}

impl Rejection {
    pub(crate) fn new(error: TokenError, detail: &'static str) -> Rejection {
        Rejection {
            error,
            detail,
            retry_after_s: None,
        }
    }

    pub(crate) fn rate_limited(detail: &'static str, retry_after_s: u64) -> Rejection {
        Rejection {
            error: TokenError::TooManyRequests,
            detail,
            retry_after_s: Some(retry_after_s),
        }
    }
}

/// The token request parameters this endpoint reads. Others are ignored (RFC 6749 §3.2).
#[derive(Debug, Default, Eq, PartialEq)]
pub(crate) struct TokenForm {
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl TokenForm {
    /// Parse an `application/x-www-form-urlencoded` body.
    pub(crate) fn parse(body: &[u8]) -> Result<TokenForm, Rejection> {
        let mut form = TokenForm::default();
        parse_form(body, &mut form, |form, name| match name {
            "grant_type" => Some(&mut form.grant_type),
            "scope" => Some(&mut form.scope),
            "client_id" => Some(&mut form.client_id),
            "client_secret" => Some(&mut form.client_secret),
            _ => None,
        })?;
        Ok(form)
    }
}

/// The RFC 7009 revocation request: the token, its optional type hint, and the client's
/// form credentials (in a [`TokenForm`] with only `client_id` and `client_secret`).
#[derive(Debug, Default, Eq, PartialEq)]
pub(crate) struct RevokeForm {
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    pub auth: TokenForm,
}

impl RevokeForm {
    /// Parse an `application/x-www-form-urlencoded` body.
    pub(crate) fn parse(body: &[u8]) -> Result<RevokeForm, Rejection> {
        let mut form = RevokeForm::default();
        parse_form(body, &mut form, |form, name| match name {
            "token" => Some(&mut form.token),
            "token_type_hint" => Some(&mut form.token_type_hint),
            "client_id" => Some(&mut form.auth.client_id),
            "client_secret" => Some(&mut form.auth.client_secret),
            _ => None,
        })?;
        Ok(form)
    }
}

/// Fill the slots of `form` that `slot_of` names; other parameters are ignored (RFC 6749 §3.2).
fn parse_form<F>(
    body: &[u8],
    form: &mut F,
    slot_of: for<'f> fn(&'f mut F, &str) -> Option<&'f mut Option<String>>,
) -> Result<(), Rejection> {
    if std::str::from_utf8(body).is_err() {
        return Err(Rejection::new(
            TokenError::InvalidRequest,
            "body is not UTF-8",
        ));
    }
    for (name, value) in form_urlencoded::parse(body) {
        let Some(slot) = slot_of(form, name.as_ref()) else {
            continue;
        };
        // RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
        if slot.is_some() {
            return Err(Rejection::new(
                TokenError::InvalidRequest,
                "a parameter is repeated",
            ));
        }
        // RFC 6749 §3.1: a parameter without a value is treated as omitted.
        if !value.is_empty() {
            *slot = Some(value.into_owned());
        }
    }
    Ok(())
}

/// The presented client id, and the secret when one was presented. Without a secret, the
/// client can only authenticate with a certificate (RFC 8705 §2: `client_id` in the form).
#[derive(Debug, Eq, PartialEq)]
pub(crate) struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
}

/// Find the client's credentials in the `Authorization` header (`client_secret_basic`) or the
/// form (`client_secret_post`), not both (RFC 6749 §2.3.1); a form `client_id` alone is a
/// client that means to authenticate with its certificate (RFC 8705 §2).
///
/// On failure, returns the rejection and, when it can be told, the client id the caller
/// claimed (for the audit line).
pub(crate) fn client_credentials(
    authorization: Option<&[u8]>,
    form: &TokenForm,
) -> Result<ClientCredentials, (Rejection, Option<String>)> {
    let Some(authorization) = authorization else {
        return match &form.client_id {
            Some(client_id) => Ok(ClientCredentials {
                client_id: client_id.clone(),
                secret: form.client_secret.clone(),
            }),
            None => Err((
                Rejection::new(TokenError::InvalidClient, "no client credentials presented"),
                None,
            )),
        };
    };
    let (client_id, secret) = parse_basic(authorization).ok_or((
        Rejection::new(
            TokenError::InvalidClient,
            "Authorization header is not valid HTTP Basic",
        ),
        None,
    ))?;
    if form.client_secret.is_some() {
        return Err((
            Rejection::new(
                TokenError::InvalidRequest,
                "client authenticated with both HTTP Basic and client_secret",
            ),
            Some(client_id),
        ));
    }
    // Many clients repeat client_id in the form next to Basic; that is one method, unless the
    // two disagree.
    if form.client_id.as_ref().is_some_and(|id| *id != client_id) {
        return Err((
            Rejection::new(
                TokenError::InvalidRequest,
                "form client_id differs from the HTTP Basic one",
            ),
            Some(client_id),
        ));
    }
    Ok(ClientCredentials {
        client_id,
        secret: Some(secret),
    })
}

/// The scopes to grant: the requested ones if the client may have them all, otherwise
/// `invalid_scope`; all allowed scopes when none are requested (Cognito's behaviour).
pub(crate) fn grant_scopes(
    requested: Option<&str>,
    allowed: &[String],
) -> Result<Vec<String>, Rejection> {
    let Some(requested) = requested else {
        return Ok(allowed.to_vec());
    };
    let mut granted: Vec<String> = Vec::new();
    // Tolerates doubled spaces; RFC 6749 §3.3 only defines single ones, but nothing is gained by
    // refusing.
    for scope in requested.split(' ').filter(|scope| !scope.is_empty()) {
        if !scope.bytes().all(is_scope_token_byte) {
            return Err(Rejection::new(
                TokenError::InvalidScope,
                "scope has characters outside RFC 6749 §3.3",
            ));
        }
        if !allowed.iter().any(|allowed| allowed == scope) {
            return Err(Rejection::new(
                TokenError::InvalidScope,
                "a requested scope is not allowed for this client",
            ));
        }
        if !granted.iter().any(|granted| granted == scope) {
            granted.push(scope.to_owned());
        }
    }
    if granted.is_empty() {
        return Ok(allowed.to_vec());
    }
    Ok(granted)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, RFC 6749 §2.3.1.
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    // Some clients drop the padding; accepting it either way costs nothing.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let decoded = LENIENT.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (client_id, secret) = decoded.split_once(':')?;
    let client_id = form_decode(client_id)?;
    let secret = form_decode(secret)?;
    if client_id.is_empty() {
        return None;
    }
    Some((client_id, secret))
}

/// Decode one `application/x-www-form-urlencoded` component: `+` is a space, then `%XX`.
fn form_decode(component: &str) -> Option<String> {
    let plus_decoded: Cow<'_, str> = if component.contains('+') {
        Cow::Owned(component.replace('+', " "))
    } else {
        Cow::Borrowed(component)
    };
    percent_encoding::percent_decode_str(&plus_decoded)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn basic(raw: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(raw)).into_bytes()
    }

    #[test]
    fn form_treats_empty_values_as_absent_and_refuses_repeats() {
        let form = TokenForm::parse(b"grant_type=client_credentials&scope=&x=1&x=2").unwrap();
        assert_eq!(form.grant_type.as_deref(), Some("client_credentials"));
        assert_eq!(form.scope, None);
        let repeated = TokenForm::parse(b"scope=a/b&scope=a/c").unwrap_err();
        assert_eq!(repeated.error, TokenError::InvalidRequest);
        assert!(TokenForm::parse(b"grant_type=\xff").is_err());
    }

    #[test]
    fn revoke_form_reads_token_hint_and_credentials() {
        let form =
            RevokeForm::parse(b"token=a.b.c&token_type_hint=access_token&client_id=x&scope=s")
                .unwrap();
        assert_eq!(form.token.as_deref(), Some("a.b.c"));
        assert_eq!(form.token_type_hint.as_deref(), Some("access_token"));
        assert_eq!(form.auth.client_id.as_deref(), Some("x"));
        assert_eq!(form.auth.scope, None);
        assert!(RevokeForm::parse(b"token=a&token=b").is_err());
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let form = TokenForm::default();
        let creds = client_credentials(Some(&basic("my%3Aclient:p%40ss+word")), &form).unwrap();
        assert_eq!(creds.client_id, "my:client");
        assert_eq!(creds.secret.as_deref(), Some("p@ss word"));
        let unpadded = b"basic b3JkZXJzOnM".to_vec(); // "orders:s" without '='
        assert_eq!(
            client_credentials(Some(&unpadded), &form).unwrap().secret,
            Some("s".to_owned())
        );
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        let form = TokenForm::default();
        for header in [
            b"Bearer abc".to_vec(),
            b"Basic !!!".to_vec(),
            basic("no-colon"),
            basic(":secret"),
            basic("id:%FF"),
        ] {
            let (rejection, _) = client_credentials(Some(&header), &form).unwrap_err();
            assert_eq!(rejection.error, TokenError::InvalidClient, "{header:?}");
        }
    }

    #[test]
    fn two_authentication_methods_are_invalid_request() {
        let form = TokenForm {
            client_id: Some("a".into()),
            client_secret: Some("s".into()),
            ..TokenForm::default()
        };
        let (rejection, client_id) = client_credentials(Some(&basic("a:s")), &form).unwrap_err();
        assert_eq!(rejection.error, TokenError::InvalidRequest);
        assert_eq!(client_id.as_deref(), Some("a"));

        let same_id = TokenForm {
            client_id: Some("a".into()),
            ..TokenForm::default()
        };
        assert!(client_credentials(Some(&basic("a:s")), &same_id).is_ok());
        let other_id = TokenForm {
            client_id: Some("b".into()),
            ..TokenForm::default()
        };
        assert!(client_credentials(Some(&basic("a:s")), &other_id).is_err());
    }

    #[test]
    fn scopes_default_to_all_allowed_and_refuse_extras() {
        let allowed = vec!["orders/read".to_owned(), "orders/write".to_owned()];
        assert_eq!(grant_scopes(None, &allowed).unwrap(), allowed);
        assert_eq!(
            grant_scopes(Some("orders/write  orders/write"), &allowed).unwrap(),
            ["orders/write"]
        );
        let refused = grant_scopes(Some("orders/read orders/delete"), &allowed).unwrap_err();
        assert_eq!(refused.error, TokenError::InvalidScope);
    }

    #[test]
    fn every_code_has_a_distinct_string() {
        let mut names: Vec<&str> = TokenError::ALL.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TokenError::ALL.len());
    }
}
