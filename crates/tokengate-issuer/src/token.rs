//! Cognito-shaped access tokens: compact JWS, RS256, header `{"kid","alg"}`.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::keys::{IssuerKey, KeyError};

/// The claims of a Cognito client-credentials access token, in Cognito's order. There is no
/// `aud` and no `username`: Cognito puts neither in M2M access tokens.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct AccessTokenClaims {
    /// The app client id (M2M tokens have no user).
    pub sub: String,
    /// Always `"access"`.
    pub token_use: String,
    /// Granted scopes, separated by single spaces.
    pub scope: String,
    /// Same as `iat` for client credentials.
    pub auth_time: u64,
    /// `{base_url}/{poolId}` or the pool's configured issuer.
    pub iss: String,
    /// `iat` + the client's token lifetime.
    pub exp: u64,
    /// Issue time, seconds since the epoch.
    pub iat: u64,
    /// Cognito's access-token format version, 2.
    pub version: u32,
    /// A random UUID v4.
    pub jti: String,
    /// The app client id.
    pub client_id: String,
    /// RFC 8705 §3.1: the certificate the client authenticated with, for tokens issued to
    /// `tls_client_auth` / `self_signed_tls_client_auth` clients. Absent otherwise (Cognito
    /// tokens never carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a certificate-bound token (RFC 7800 §3.1, RFC 8705 §3.1).
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Confirmation {
    /// base64url (no padding) of the SHA-256 of the client certificate's DER.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

impl AccessTokenClaims {
    /// Claims for `client_id` with `scopes`, issued at `now`, valid for `lifetime_s`.
    pub fn new(
        issuer: &str,
        client_id: &str,
        scopes: &[impl AsRef<str>],
        lifetime_s: u64,
        now: u64,
    ) -> AccessTokenClaims {
        let scope: Vec<&str> = scopes.iter().map(AsRef::as_ref).collect();
        AccessTokenClaims {
            sub: client_id.to_owned(),
            token_use: "access".to_owned(),
            scope: scope.join(" "),
            auth_time: now,
            iss: issuer.to_owned(),
            exp: now.saturating_add(lifetime_s),
            iat: now,
            version: 2,
            jti: uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string(),
            client_id: client_id.to_owned(),
            cnf: None,
        }
    }

    /// Bind the token to the client certificate with this RFC 8705 thumbprint.
    pub fn bound_to_certificate(mut self, x5t_s256: impl Into<String>) -> AccessTokenClaims {
        self.cnf = Some(Confirmation {
            x5t_s256: x5t_s256.into(),
        });
        self
    }
}

#[derive(Serialize)]
struct Header<'a> {
    kid: &'a str,
    alg: &'static str,
}

/// `base64url(header) . base64url(claims) . base64url(signature)` for any serializable claims.
pub(crate) fn sign_compact(key: &IssuerKey, claims: &impl Serialize) -> Result<String, KeyError> {
    let header = serde_json::to_vec(&Header {
        kid: key.kid(),
        alg: "RS256",
    })
    .map_err(|error| KeyError::from_message(format!("cannot encode header: {error}")))?;
    let payload = serde_json::to_vec(claims)
        .map_err(|error| KeyError::from_message(format!("cannot encode claims: {error}")))?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

/// The claims the revocation endpoint reads from a token; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RevocableClaims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub exp: Option<u64>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
}

/// The claims of `token` when it is an RS256 compact JWS signed by one of `keys` (selected by
/// `kid`); `None` for anything else. Only signature and shape: no time or issuer checks.
pub(crate) fn verify_compact(token: &str, keys: &[Arc<IssuerKey>]) -> Option<RevocableClaims> {
    #[derive(Deserialize)]
    struct JwsHeader {
        alg: String,
        kid: String,
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header: JwsHeader = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.alg != "RS256" {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let (signing_input, _) = token.rsplit_once('.')?;
    let signed = keys
        .iter()
        .filter(|key| key.kid() == header.kid)
        .any(|key| key.verifies(signing_input.as_bytes(), &signature));
    if !signed {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}
