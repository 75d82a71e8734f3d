//! The config file: user pools, their app clients and keys, and server settings.
//!
//! TOML or JSON with the same shape. Everything is checked once, at start, and a bad value is
//! refused with the path of the field that holds it (`pools[0].clients[1].token_lifetime_s: …`).

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Shortest access-token lifetime Cognito accepts for an app client (5 minutes).
pub const MIN_TOKEN_LIFETIME_S: u64 = 300;
/// Longest access-token lifetime Cognito accepts for an app client (1 day).
pub const MAX_TOKEN_LIFETIME_S: u64 = 86_400;
/// Cognito's default access-token lifetime (1 hour).
pub const DEFAULT_TOKEN_LIFETIME_S: u64 = 3_600;

/// The commented example printed by `tokengate-issuer sample-config`.
///
/// Its demo secrets are written in its comments: it is for local demos and tests only.
pub const SAMPLE_CONFIG: &str = include_str!("sample_config.toml");

/// The whole config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address, URLs, admin access, rate limits, audit output.
    #[serde(default)]
    pub server: ServerConfig,
    /// User pools; the first one also answers `POST /oauth2/token`.
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
}

/// Settings shared by every pool.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on when the command line does not say (default `127.0.0.1:9000`).
    pub listen: Option<SocketAddr>,
    /// URL under which clients reach this server, e.g. `http://localhost:9000`. Issuers
    /// (`{base_url}/{poolId}`), `jwks_uri` and `token_endpoint` are built from it. Default:
    /// `http://` + the address actually bound.
    pub base_url: Option<String>,
    /// `Cache-Control: max-age` of the JWKS and discovery documents.
    pub jwks_max_age_s: u64,
    /// Bearer token for `POST /admin/{poolId}/rotate`; without one the admin routes do not exist.
    pub admin_token: Option<String>,
    /// Where the one-JSON-line-per-token-request audit log goes.
    pub audit: AuditTarget,
    /// Token-endpoint rate limits.
    pub rate_limit: RateLimitConfig,
    /// The request header in which the TLS-terminating proxy in front of this server passes
    /// the client's certificate (RFC 8705 client authentication). Absent: such headers are
    /// ignored, and clients that authenticate with a certificate cannot get tokens.
    pub trusted_client_cert_header: Option<ClientCertHeader>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: None,
            base_url: None,
            jwks_max_age_s: 300,
            admin_token: None,
            audit: AuditTarget::Stdout,
            rate_limit: RateLimitConfig::default(),
            trusted_client_cert_header: None,
        }
    }
}

/// A header in which a TLS-terminating proxy forwards the client certificate it verified.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq)]
pub enum ClientCertHeader {
    /// Envoy's `x-forwarded-client-cert`, with `forward_client_cert_details: SANITIZE_SET` and
    /// `set_current_client_cert_details: {cert: true}`: one element whose `Cert` is the
    /// URL-encoded PEM of the client's certificate.
    #[serde(rename = "x-forwarded-client-cert")]
    XForwardedClientCert,
    /// RFC 9440 `Client-Cert`: the DER certificate as a structured-field byte sequence
    /// (`:base64:`).
    #[serde(rename = "client-cert")]
    ClientCert,
}

impl ClientCertHeader {
    /// The header's name, lowercase.
    pub fn name(self) -> &'static str {
        match self {
            ClientCertHeader::XForwardedClientCert => "x-forwarded-client-cert",
            ClientCertHeader::ClientCert => "client-cert",
        }
    }
}

/// How a client authenticates to the token and revocation endpoints (RFC 7591 §2
/// `token_endpoint_auth_method`, RFC 8705 §2).
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// A secret in HTTP Basic (the default). The form (`client_secret_post`) works too: like
    /// Cognito, the two secret methods are accepted alike.
    #[default]
    ClientSecretBasic,
    /// A secret in the form; HTTP Basic works too.
    ClientSecretPost,
    /// RFC 8705 §2.1, PKI: the certificate was issued by a CA the proxy trusts, and shows the
    /// one `tls_client_auth_*` value the client is registered with.
    TlsClientAuth,
    /// RFC 8705 §2.2: the client's own certificate, known by its SHA-256
    /// (`tls_client_auth_sha256`).
    SelfSignedTlsClientAuth,
}

impl TokenEndpointAuthMethod {
    /// The registered name, e.g. `tls_client_auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenEndpointAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenEndpointAuthMethod::ClientSecretPost => "client_secret_post",
            TokenEndpointAuthMethod::TlsClientAuth => "tls_client_auth",
            TokenEndpointAuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Whether the client authenticates with a certificate instead of a secret.
    pub fn uses_certificate(self) -> bool {
        matches!(
            self,
            TokenEndpointAuthMethod::TlsClientAuth
                | TokenEndpointAuthMethod::SelfSignedTlsClientAuth
        )
    }
}

/// Destination of audit lines.
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum AuditTarget {
    /// Standard output, next to the `listening on` line (the default).
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
    /// Nowhere.
    Off,
}

/// Token buckets on the token endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained token requests per second per authenticated `client_id`.
    pub per_s: f64,
    /// Requests a client may make at once before `per_s` applies.
    pub burst: u32,
    /// Sustained failed client authentications per second per source IP.
    pub ip_failures_per_s: f64,
    /// Failed authentications a source IP may make at once.
    pub ip_failures_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_s: 20.0,
            burst: 40,
            ip_failures_per_s: 1.0,
            ip_failures_burst: 20,
        }
    }
}

/// One user pool: its own issuer, keys and app clients.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Cognito user pool id, `{region}_{9 or more letters and digits}`, e.g. `eu-west-1_LocalPool1`.
    pub id: String,
    /// Replaces the `iss` claim and the discovery `issuer`, e.g. to mimic
    /// `https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_LocalPool1`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Token lifetime for clients that do not set their own.
    #[serde(default = "default_token_lifetime_s")]
    pub token_lifetime_s: u64,
    /// Signing keys and rotation.
    #[serde(default)]
    pub keys: KeysConfig,
    /// App clients allowed to use `client_credentials`.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Seeds the `client_ids` allow-list of the pool's edge policy feed (which then replaces
    /// the edges' own configured allow-list). Absent: the feed has no `client_ids` until
    /// `POST /admin/{poolId}/edge-clients` sets one. An empty list admits no client.
    #[serde(default)]
    pub edge_client_ids: Option<Vec<String>>,
    /// Signs the pool's edge policy feed. Absent: the feed is plain JSON.
    #[serde(default)]
    pub edge_policy: Option<EdgePolicyConfig>,
}

/// How the pool's edge policy feed (`GET /{poolId}/edge-policy.json`) is signed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgePolicyConfig {
    /// PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`): P-256 (the feed is signed
    /// ES256) or RSA of at least 2048 bits (RS256). Relative to the config file.
    pub signing_key_pem: PathBuf,
    /// The JWS `kid` and the JWK's `kid` in `edge-policy-keys.json`. Default: like the pool's
    /// PEM keys, the standard base64 of the SHA-256 of the public key's DER.
    #[serde(default)]
    pub kid: Option<String>,
}

impl PoolConfig {
    /// A pool with default lifetime, generated keys and no clients.
    pub fn new(id: impl Into<String>) -> Self {
        PoolConfig {
            id: id.into(),
            issuer: None,
            token_lifetime_s: DEFAULT_TOKEN_LIFETIME_S,
            keys: KeysConfig::default(),
            clients: Vec::new(),
            edge_client_ids: None,
            edge_policy: None,
        }
    }

    /// The longest lifetime any token of this pool can have: how long a retired key must stay
    /// published.
    pub fn max_token_lifetime_s(&self) -> u64 {
        self.clients
            .iter()
            .filter_map(|client| client.token_lifetime_s)
            .fold(self.token_lifetime_s, u64::max)
    }
}

/// Signing keys of one pool.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// PKCS#8 PEM RSA private keys (≥ 2048 bits). The first signs from the start; each rotation
    /// takes the next one, and generates a fresh key once the list is used up. Relative paths are
    /// relative to the config file. Empty: a fresh key is generated at start.
    pub pem_files: Vec<PathBuf>,
    /// How long a new key sits in the JWKS before it signs, so verifiers that cache the JWKS for
    /// `jwks_max_age_s` already hold it when the first token with its `kid` arrives.
    pub prepublish_s: u64,
    /// Rotate on a schedule as well as on `POST /admin/{poolId}/rotate`.
    pub rotate_every_s: Option<u64>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            pem_files: Vec::new(),
            prepublish_s: 300,
            rotate_every_s: None,
        }
    }
}

/// One app client.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The client id: 1 to 128 of `A-Z a-z 0-9 . _ -`.
    pub client_id: String,
    /// argon2id PHC string of the secret, from `tokengate-issuer hash-secret`. May be left
    /// empty (absent in the file) when `client_secret_hashes` lists the secrets.
    #[serde(default)]
    pub client_secret_hash: String,
    /// More argon2id PHC strings: any listed secret authenticates the client, so a secret can
    /// be rotated without downtime (add the new one, move the callers, remove the old one).
    #[serde(default)]
    pub client_secret_hashes: Vec<String>,
    /// Scopes the client may receive, `resource-server/scope`. Empty: the client authenticates
    /// but may not use `client_credentials` (`unauthorized_client`), as in Cognito.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// Access-token lifetime; the pool's when absent.
    #[serde(default)]
    pub token_lifetime_s: Option<u64>,
    /// A disabled client is answered as if it did not exist (`invalid_client`).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// How the client authenticates; a secret by default.
    #[serde(default)]
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// `tls_client_auth`: the certificate's subject, RFC 4514 (`CN=…,O=…`), compared RDN by
    /// RDN (RFC 8705 §2.1.2).
    #[serde(default)]
    pub tls_client_auth_subject_dn: Option<String>,
    /// `tls_client_auth`: a `dNSName` subjectAltName the certificate must carry (ASCII case
    /// ignored).
    #[serde(default)]
    pub tls_client_auth_san_dns: Option<String>,
    /// `tls_client_auth`: a `uniformResourceIdentifier` subjectAltName the certificate must
    /// carry, exactly (a SPIFFE ID, for instance).
    #[serde(default)]
    pub tls_client_auth_san_uri: Option<String>,
    /// `self_signed_tls_client_auth`: SHA-256s of the DER certificates the client may present,
    /// 64 hex digits or 43 base64url characters (the RFC 8705 `x5t#S256` form). Several, so a
    /// certificate can be replaced without downtime.
    #[serde(default)]
    pub tls_client_auth_sha256: Vec<String>,
}

impl ClientConfig {
    /// An enabled client with the pool's token lifetime.
    pub fn new(
        client_id: impl Into<String>,
        client_secret_hash: impl Into<String>,
        allowed_scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ClientConfig {
            client_id: client_id.into(),
            client_secret_hash: client_secret_hash.into(),
            client_secret_hashes: Vec::new(),
            allowed_scopes: allowed_scopes.into_iter().map(Into::into).collect(),
            token_lifetime_s: None,
            enabled: true,
            token_endpoint_auth_method: TokenEndpointAuthMethod::default(),
            tls_client_auth_subject_dn: None,
            tls_client_auth_san_dns: None,
            tls_client_auth_san_uri: None,
            tls_client_auth_sha256: Vec::new(),
        }
    }

    /// A client that authenticates with `method` (`tls_client_auth` or
    /// `self_signed_tls_client_auth`) and no secret; set the matching `tls_client_auth_*`
    /// field before use.
    pub fn with_certificate(
        client_id: impl Into<String>,
        method: TokenEndpointAuthMethod,
        allowed_scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ClientConfig {
            token_endpoint_auth_method: method,
            ..ClientConfig::new(client_id, "", allowed_scopes)
        }
    }
}

impl ClientConfig {
    /// Every secret hash of the client: `client_secret_hash` (when not empty), then
    /// `client_secret_hashes`.
    pub fn secret_hashes(&self) -> Vec<String> {
        let mut hashes = Vec::new();
        if !self.client_secret_hash.is_empty() {
            hashes.push(self.client_secret_hash.clone());
        }
        for hash in &self.client_secret_hashes {
            if !hashes.contains(hash) {
                hashes.push(hash.clone());
            }
        }
        hashes
    }
}

/// Why a config was refused.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The text is not valid TOML/JSON or does not have the expected shape.
    Parse {
        /// `"TOML"` or `"JSON"`.
        format: &'static str,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range or malformed.
    Invalid {
        /// Path of the field, e.g. `pools[0].clients[1].token_lifetime_s`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    /// The offending field, for [`ConfigError::Invalid`].
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::Parse { format, message } => {
                write!(f, "invalid {format} config: {}", message.trim_end())
            }
            ConfigError::Invalid { field, message } => write!(f, "{field}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Config {
    /// Parse and validate TOML.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            format: "TOML",
            message: error.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Parse and validate JSON.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn from_json_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_json::from_str(text).map_err(|error| ConfigError::Parse {
            format: "JSON",
            message: error.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a file: JSON when it ends in `.json` or its text starts with
    /// `{`, TOML otherwise. Relative `pem_files` are made relative to the file's folder.
    ///
    /// # Errors
    /// Any [`ConfigError`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let is_json =
            path.extension().is_some_and(|ext| ext == "json") || text.trim_start().starts_with('{');
        let mut config = if is_json {
            Config::from_json_str(&text)?
        } else {
            Config::from_toml_str(&text)?
        };
        let base = path.parent().unwrap_or(Path::new(""));
        for pool in &mut config.pools {
            for file in &mut pool.keys.pem_files {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
            if let Some(edge_policy) = &mut pool.edge_policy {
                if edge_policy.signing_key_pem.is_relative() {
                    edge_policy.signing_key_pem = base.join(&edge_policy.signing_key_pem);
                }
            }
        }
        Ok(config)
    }

    /// The built-in example ([`SAMPLE_CONFIG`]), parsed.
    ///
    /// # Errors
    /// None in practice: a test keeps the sample valid.
    pub fn sample() -> Result<Config, ConfigError> {
        Config::from_toml_str(SAMPLE_CONFIG)
    }

    /// Check every rule that parsing alone does not.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        if self.pools.is_empty() {
            return Err(ConfigError::invalid(
                "pools",
                "at least one pool is required",
            ));
        }
        let mut pool_ids = HashSet::new();
        for (index, pool) in self.pools.iter().enumerate() {
            let field = format!("pools[{index}]");
            pool.validate(&field)?;
            if !pool_ids.insert(pool.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{field}.id"),
                    format!("duplicate pool id {:?}", pool.id),
                ));
            }
        }
        Ok(())
    }
}

impl ServerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(base_url) = &self.base_url {
            check_url("server.base_url", base_url)?;
        }
        if let Some(token) = &self.admin_token {
            // Short tokens get guessed; this one can mint new signing keys.
            if token.chars().count() < 16 {
                return Err(ConfigError::invalid(
                    "server.admin_token",
                    "must be at least 16 characters",
                ));
            }
        }
        let limits = &self.rate_limit;
        check_rate("server.rate_limit.per_s", limits.per_s)?;
        check_burst("server.rate_limit.burst", limits.burst)?;
        check_rate(
            "server.rate_limit.ip_failures_per_s",
            limits.ip_failures_per_s,
        )?;
        check_burst(
            "server.rate_limit.ip_failures_burst",
            limits.ip_failures_burst,
        )?;
        Ok(())
    }
}

impl PoolConfig {
    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        if !is_pool_id(&self.id) {
            return Err(ConfigError::invalid(
                format!("{field}.id"),
                format!(
                    "{:?} is not a Cognito user pool id ({{region}}_{{9 or more letters and digits}}, e.g. \"eu-west-1_LocalPool1\")",
                    self.id
                ),
            ));
        }
        if let Some(issuer) = &self.issuer {
            check_url(&format!("{field}.issuer"), issuer)?;
        }
        check_lifetime(&format!("{field}.token_lifetime_s"), self.token_lifetime_s)?;
        self.keys.validate(&format!("{field}.keys"))?;
        let mut client_ids = HashSet::new();
        for (index, client) in self.clients.iter().enumerate() {
            let field = format!("{field}.clients[{index}]");
            client.validate(&field)?;
            if !client_ids.insert(client.client_id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{field}.client_id"),
                    format!("duplicate client id {:?} in this pool", client.client_id),
                ));
            }
        }
        if let Some(ids) = &self.edge_client_ids {
            let mut seen = HashSet::new();
            for (index, id) in ids.iter().enumerate() {
                let field = format!("{field}.edge_client_ids[{index}]");
                if !is_client_id(id) {
                    return Err(ConfigError::invalid(
                        field,
                        "must be 1 to 128 of A-Z a-z 0-9 . _ -",
                    ));
                }
                if !seen.insert(id.as_str()) {
                    return Err(ConfigError::invalid(
                        field,
                        format!("duplicate client id {id:?}"),
                    ));
                }
            }
        }
        if let Some(edge_policy) = &self.edge_policy {
            if let Some(kid) = &edge_policy.kid {
                if kid.is_empty() || kid.len() > 256 || kid.bytes().any(|b| b.is_ascii_control()) {
                    return Err(ConfigError::invalid(
                        format!("{field}.edge_policy.kid"),
                        "must be 1 to 256 printable characters",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl KeysConfig {
    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        if self.prepublish_s > MAX_TOKEN_LIFETIME_S {
            return Err(ConfigError::invalid(
                format!("{field}.prepublish_s"),
                format!("must be at most {MAX_TOKEN_LIFETIME_S}"),
            ));
        }
        if let Some(every) = self.rotate_every_s {
            // A schedule shorter than the prepublish delay would queue keys that never sign.
            let minimum = self.prepublish_s.max(60);
            if every < minimum {
                return Err(ConfigError::invalid(
                    format!("{field}.rotate_every_s"),
                    format!("must be at least {minimum} (60 and at least prepublish_s)"),
                ));
            }
        }
        Ok(())
    }
}

impl ClientConfig {
    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        if !is_client_id(&self.client_id) {
            return Err(ConfigError::invalid(
                format!("{field}.client_id"),
                "must be 1 to 128 of A-Z a-z 0-9 . _ -",
            ));
        }
        self.validate_authentication(field)?;
        if !self.client_secret_hash.is_empty() {
            if let Err(message) = crate::secret::check_phc(&self.client_secret_hash) {
                return Err(ConfigError::invalid(
                    format!("{field}.client_secret_hash"),
                    message,
                ));
            }
        }
        let mut hashes = HashSet::new();
        hashes.insert(self.client_secret_hash.as_str());
        for (index, hash) in self.client_secret_hashes.iter().enumerate() {
            let field = format!("{field}.client_secret_hashes[{index}]");
            if let Err(message) = crate::secret::check_phc(hash) {
                return Err(ConfigError::invalid(field, message));
            }
            if !hashes.insert(hash.as_str()) {
                return Err(ConfigError::invalid(field, "duplicate secret hash"));
            }
        }
        let mut seen = HashSet::new();
        for (index, scope) in self.allowed_scopes.iter().enumerate() {
            let field = format!("{field}.allowed_scopes[{index}]");
            if !is_custom_scope(scope) {
                return Err(ConfigError::invalid(
                    field,
                    format!("{scope:?} is not a custom scope of the form resource-server/scope"),
                ));
            }
            if !seen.insert(scope.as_str()) {
                return Err(ConfigError::invalid(
                    field,
                    format!("duplicate scope {scope:?}"),
                ));
            }
        }
        if let Some(lifetime) = self.token_lifetime_s {
            check_lifetime(&format!("{field}.token_lifetime_s"), lifetime)?;
        }
        Ok(())
    }
}

impl ClientConfig {
    /// The fields of the client's authentication method are set, and no other method's.
    fn validate_authentication(&self, field: &str) -> Result<(), ConfigError> {
        let method = self.token_endpoint_auth_method;
        let has_secret =
            !self.client_secret_hash.is_empty() || !self.client_secret_hashes.is_empty();
        let pki: Vec<(&str, &String)> = [
            (
                "tls_client_auth_subject_dn",
                &self.tls_client_auth_subject_dn,
            ),
            ("tls_client_auth_san_dns", &self.tls_client_auth_san_dns),
            ("tls_client_auth_san_uri", &self.tls_client_auth_san_uri),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|value| (name, value)))
        .collect();
        let only_for = |name: &str, wanted: &str| {
            ConfigError::invalid(
                format!("{field}.{name}"),
                format!(
                    "only for token_endpoint_auth_method = \"{wanted}\" (this client: \"{}\")",
                    method.as_str()
                ),
            )
        };
        if !method.uses_certificate() {
            if !has_secret {
                return Err(ConfigError::invalid(
                    format!("{field}.client_secret_hash"),
                    "is required (or client_secret_hashes); make one with `tokengate-issuer hash-secret`",
                ));
            }
            if let Some((name, _)) = pki.first() {
                return Err(only_for(name, "tls_client_auth"));
            }
            if !self.tls_client_auth_sha256.is_empty() {
                return Err(only_for(
                    "tls_client_auth_sha256",
                    "self_signed_tls_client_auth",
                ));
            }
            return Ok(());
        }
        // RFC 8705 §2: the certificate is the credential; a secret as well would be a second way
        // in that the registration does not show.
        if has_secret {
            let name = if self.client_secret_hash.is_empty() {
                "client_secret_hashes"
            } else {
                "client_secret_hash"
            };
            return Err(ConfigError::invalid(
                format!("{field}.{name}"),
                format!(
                    "a client with token_endpoint_auth_method = \"{}\" authenticates with its certificate, not a secret",
                    method.as_str()
                ),
            ));
        }
        if method == TokenEndpointAuthMethod::SelfSignedTlsClientAuth {
            if let Some((name, _)) = pki.first() {
                return Err(only_for(name, "tls_client_auth"));
            }
            if self.tls_client_auth_sha256.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{field}.tls_client_auth_sha256"),
                    "lists the SHA-256 of each certificate the client may present (at least one)",
                ));
            }
            let mut seen = HashSet::new();
            for (index, value) in self.tls_client_auth_sha256.iter().enumerate() {
                let field = format!("{field}.tls_client_auth_sha256[{index}]");
                let Some(digest) = tokengate::peer::digest(value) else {
                    return Err(ConfigError::invalid(
                        field,
                        "must be 64 hex digits or 43 base64url characters",
                    ));
                };
                if !seen.insert(digest) {
                    return Err(ConfigError::invalid(field, "duplicate certificate SHA-256"));
                }
            }
            return Ok(());
        }
        if !self.tls_client_auth_sha256.is_empty() {
            return Err(only_for(
                "tls_client_auth_sha256",
                "self_signed_tls_client_auth",
            ));
        }
        // RFC 8705 §2.1.2: exactly one of the tls_client_auth_* parameters.
        match pki.as_slice() {
            [] => Err(ConfigError::invalid(
                format!("{field}.token_endpoint_auth_method"),
                "tls_client_auth needs one of tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri",
            )),
            [(name, value)] => {
                if let Err(message) = crate::client_cert::registration_pin(name, value) {
                    return Err(ConfigError::invalid(format!("{field}.{name}"), message));
                }
                Ok(())
            }
            [_, (name, _), ..] => Err(ConfigError::invalid(
                format!("{field}.{name}"),
                "set only one of tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri (RFC 8705 §2.1.2)",
            )),
        }
    }
}

/// `{region}_{suffix}`: region like `eu-west-1` or `us-gov-west-1`, suffix of 9 or more
/// ASCII letters and digits (Cognito's own ids have exactly 9).
pub fn is_pool_id(id: &str) -> bool {
    let Some((region, suffix)) = id.split_once('_') else {
        return false;
    };
    suffix.len() >= 9 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) && is_region(region)
}

fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return false;
    };
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn is_client_id(id: &str) -> bool {
    // No ':' so that HTTP Basic credentials split unambiguously.
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `resource-server/scope` made of RFC 6749 §3.3 scope-token characters. The resource server
/// identifier may itself contain `/` (Cognito allows URLs there); the scope name may not.
pub(crate) fn is_custom_scope(scope: &str) -> bool {
    let Some((server, name)) = scope.rsplit_once('/') else {
        return false;
    };
    !server.is_empty()
        && !name.is_empty()
        && scope.len() <= 256
        && scope.bytes().all(is_scope_token_byte)
}

/// RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`.
pub(crate) fn is_scope_token_byte(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

fn check_lifetime(field: &str, lifetime: u64) -> Result<(), ConfigError> {
    if (MIN_TOKEN_LIFETIME_S..=MAX_TOKEN_LIFETIME_S).contains(&lifetime) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            format!("must be between {MIN_TOKEN_LIFETIME_S} and {MAX_TOKEN_LIFETIME_S}"),
        ))
    }
}

fn check_url(field: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        None | Some("") => Err(ConfigError::invalid(
            field,
            "must be an http:// or https:// URL",
        )),
        Some(_) if url.ends_with('/') => Err(ConfigError::invalid(
            field,
            "must not end with '/' (tokens compare issuers byte for byte)",
        )),
        Some(rest)
            if rest
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) =>
        {
            Err(ConfigError::invalid(field, "must not contain spaces"))
        }
        Some(_) => Ok(()),
    }
}

fn check_rate(field: &str, per_s: f64) -> Result<(), ConfigError> {
    if per_s.is_finite() && per_s > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, "must be a number above 0"))
    }
}

fn check_burst(field: &str, burst: u32) -> Result<(), ConfigError> {
    if burst >= 1 {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, "must be at least 1"))
    }
}

fn default_token_lifetime_s() -> u64 {
    DEFAULT_TOKEN_LIFETIME_S
}

fn enabled_by_default() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_ids_follow_cognito_format() {
        for good in [
            "eu-west-1_LocalPool1",
            "us-east-1_AbCdEf123",
            "us-gov-west-1_abcdefghi",
            "ap-southeast-2_123456789",
        ] {
            assert!(is_pool_id(good), "{good}");
        }
        for bad in [
            "",
            "eu-west-1",
            "eu-west-1_short",
            "eu-west-1_AbCdEf12-",
            "EU-west-1_AbCdEf123",
            "eu_AbCdEf123",
            "eu-west_AbCdEf123",
            "eu--1_AbCdEf123",
            "eu-west-1_AbCd_Ef123",
            "eu-west-1_AbCdEf123/",
        ] {
            assert!(!is_pool_id(bad), "{bad}");
        }
    }

    #[test]
    fn custom_scopes_need_a_resource_server() {
        assert!(is_custom_scope("orders/read"));
        assert!(is_custom_scope("https://api.example.com/orders.read"));
        assert!(!is_custom_scope("openid"));
        assert!(!is_custom_scope("orders/"));
        assert!(!is_custom_scope("/read"));
        assert!(!is_custom_scope("orders/re ad"));
        assert!(!is_custom_scope("orders/\"read\""));
    }
}
