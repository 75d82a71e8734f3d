//! The one gate configuration every host loads (the Envoy plugin configuration, the npm
//! package's `routes`/`fromConfig`, the CLI's policy file): providers, key cache, token cache,
//! routes, forwarded claims, answer settings. Parsed once, with every default and bound here;
//! a mistake is one [`ConfigError`] naming the field as the user wrote it. The format is
//! documented in the crate README ("Configuration").
//!
//! Hosts add only their own transport settings, which are parsed (and so validated) here too so
//! that one file serves every host: `jwks.cluster` / `path` / `authority` (Envoy), `jwks.uri`
//! (hosts with `fetch`), `wait` and `tick_ms` (Envoy).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::ConfigError;
use crate::feed::{FeedConfig, FeedTrust, StalePolicy};
use crate::json::{self, Object, Value};
use crate::jwks::{KeySet, KeySetLimits};
use crate::keycache::KeyCacheConfig;
use crate::policy::{Algorithm, CognitoPool, Identities, MtlsBinding, Policy, Scopes};
use crate::ratelimit::RateLimit;
use crate::route::{Access, DefaultAccess, MethodSet, PathMatch, Routes, Rule};
use crate::target;

/// Whether denials are enforced or only reported.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Mode {
    /// Denials are answered; the origin never sees the request.
    Enforce,
    /// Every decision is made, recorded and counted, but the request goes through.
    Report,
}

impl Mode {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Report => "report",
        }
    }
}

/// Where a host that records decisions itself (Envoy) puts the audit record of each one.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum AuditSink {
    /// Envoy filter state `wasm.tokengate`, the record as compact JSON: what an access log
    /// writes with `%FILTER_STATE(wasm.tokengate:PLAIN)%`, in the line it writes anyway.
    FilterState,
    /// The host's own log: one JSON line per decision at info level.
    Log,
}

/// Who checks token signatures (`"crypto"`).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Crypto {
    /// The host's own crypto where it has one (Envoy's `verify_signature` foreign function,
    /// `node:crypto`, WebCrypto), else the core's: the default.
    Native,
    /// Always the core's (RSA and P-256 compiled into the module).
    Wasm,
}

impl Crypto {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Crypto::Native => "native",
            Crypto::Wasm => "wasm",
        }
    }
}

impl AuditSink {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditSink::FilterState => "filter_state",
            AuditSink::Log => "log",
        }
    }
}

/// An Envoy cluster serving a JWKS.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Cluster {
    /// Cluster name.
    pub name: String,
    /// Request path, e.g. `/eu-west-1_AbCdEf123/.well-known/jwks.json`.
    pub path: String,
    /// `:authority` sent.
    pub authority: String,
}

/// Where a provider's JWKS (or the policy feed) is fetched from. Each host uses the form it
/// can fetch.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct RemoteSource {
    /// An `https://` URL (or `http://` on a loopback host), for hosts with `fetch`.
    pub uri: Option<String>,
    /// An Envoy cluster, for the proxy-wasm filter.
    pub cluster: Option<Cluster>,
    /// Per-fetch timeout.
    pub timeout_ms: u32,
}

/// One issuer (or one Cognito pool) as configured.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Free text for logs.
    pub name: Option<String>,
    /// The validated policy.
    pub policy: Policy,
    /// Keys given inline (`jwks.keys`).
    pub inline: Option<KeySet>,
    /// Remote source, if any.
    pub source: Option<RemoteSource>,
    /// Freshness rules and size limits of the key set.
    pub cache: KeyCacheConfig,
}

/// A claim copied into a request header for the origin.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Forward {
    /// Claim name.
    pub claim: String,
    /// Header name (lower case).
    pub header: String,
}

/// The policy feed: where it is fetched from, and how it is polled and trusted.
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// Where the document is fetched from.
    pub source: RemoteSource,
    /// The state machine's settings (its `jitter_seed` is set by the gate).
    pub feed: FeedConfig,
}

/// Where hosts take the client certificate from (`client_certificate.source`).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum CertificateSource {
    /// The host's own TLS facts; certificate headers are never trusted (and removed).
    Connection,
    /// RFC 9440 `Client-Cert` from a trusted TLS-terminating proxy.
    ClientCertHeader,
    /// AWS ALB mTLS verify mode: `X-Amzn-Mtls-Clientcert-Leaf`.
    Alb,
}

/// Headers that carry a client certificate from a proxy: removed from every request that goes
/// on unless the configuration trusts their source.
pub const CLIENT_CERT_HEADERS: &[&str] = &["client-cert", "client-cert-chain"];
/// AWS ALB's mTLS headers.
pub const ALB_CERT_HEADERS: &[&str] = &[
    "x-amzn-mtls-clientcert",
    "x-amzn-mtls-clientcert-leaf",
    "x-amzn-mtls-clientcert-serial-number",
    "x-amzn-mtls-clientcert-issuer",
    "x-amzn-mtls-clientcert-subject",
    "x-amzn-mtls-clientcert-validity",
];

impl CertificateSource {
    /// The header the certificate is read from, for header sources.
    pub fn header(self) -> Option<&'static str> {
        match self {
            CertificateSource::Connection => None,
            CertificateSource::ClientCertHeader => Some("client-cert"),
            CertificateSource::Alb => Some("x-amzn-mtls-clientcert-leaf"),
        }
    }

    /// Certificate headers not trusted with this source.
    pub fn untrusted_headers(self) -> impl Iterator<Item = &'static str> {
        let (cert, alb) = match self {
            CertificateSource::Connection => (true, true),
            CertificateSource::ClientCertHeader => (false, true),
            CertificateSource::Alb => (true, false),
        };
        CLIENT_CERT_HEADERS
            .iter()
            .filter(move |_| cert)
            .chain(ALB_CERT_HEADERS.iter().filter(move |_| alb))
            .copied()
    }
}

/// Bounds on requests that wait for keys (Envoy).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Wait {
    /// Most requests paused at once per worker; beyond it: 503 `jwks_unavailable`.
    pub max_requests: usize,
    /// Longest pause; then 503 `jwks_unavailable`.
    pub timeout_ms: u64,
}

/// Verified-token cache settings.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct TokenCacheConfig {
    /// Entries (0 disables the cache).
    pub capacity: usize,
    /// Longest an entry lives, whatever the token's `exp`.
    pub max_ttl_s: u64,
}

/// The whole gate configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Issuers, in order.
    pub providers: Vec<ProviderConfig>,
    /// Route rules and the default.
    pub routes: Routes,
    /// Claims forwarded as headers.
    pub forward: Vec<Forward>,
    /// Enforce or report.
    pub mode: Mode,
    /// `realm` of the `WWW-Authenticate` challenge.
    pub realm: String,
    /// Per-client rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Verified-token cache.
    pub token_cache: TokenCacheConfig,
    /// Where hosts that record decisions themselves (Envoy) put the record of each one.
    pub audit: AuditSink,
    /// Remove `Authorization` before the request goes to the origin.
    pub strip_authorization: bool,
    /// Pausing requests while keys load (Envoy).
    pub wait: Wait,
    /// Tick period of the Envoy root context (JWKS refresh, paused-request timeouts, clock).
    pub tick_ms: u32,
    /// The policy feed, if any.
    pub feed: Option<FeedSettings>,
    /// Where the client certificate comes from.
    pub certificate_source: CertificateSource,
    /// Most signature checks per second in one verifier (an Envoy worker, a JS verifier);
    /// `None`: unlimited. Cached tokens never count.
    pub signature_checks_per_s: Option<u32>,
    /// Who checks signatures.
    pub crypto: Crypto,
}

impl Config {
    /// Parse and validate configuration bytes (JSON).
    ///
    /// # Errors
    /// The first offending field.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let value = json::parse(bytes).map_err(|e| {
            err(
                "configuration",
                format!("is not valid JSON ({e}); expected an object"),
            )
        })?;
        Config::from_value(&value)
    }

    /// Parse and validate an already-parsed JSON value.
    ///
    /// # Errors
    /// The first offending field.
    pub fn from_value(value: &Value) -> Result<Config, ConfigError> {
        let obj = value
            .as_object()
            .ok_or_else(|| err("configuration", "must be a JSON object"))?;
        for key in obj.keys() {
            if !TOP_LEVEL.contains(&key.as_str()) {
                return Err(err(key.as_str(), "unknown field"));
            }
        }
        let shared_revocation = obj.get("revocation");
        let shared_binding = obj.get("mtls_binding");
        let providers = match obj.get("providers") {
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .enumerate()
                .map(|(i, p)| provider(i, p, shared_revocation, shared_binding))
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::Array(_)) => {
                return Err(err("providers", "must list at least one provider"))
            }
            Some(_) => return Err(err("providers", "must be an array of providers")),
            None => return Err(err("providers", "is required")),
        };
        let rules = match obj.get("rules") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, r)| rule(i, r))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(err("rules", "must be an array of rules")),
        };
        let default = match obj.get("default").map(Value::as_str) {
            None if rules.is_empty() => DefaultAccess::Authenticated,
            None | Some(Some("deny")) => DefaultAccess::Deny,
            Some(Some("authenticated")) => DefaultAccess::Authenticated,
            Some(_) => return Err(err("default", "must be \"deny\" or \"authenticated\"")),
        };
        let forward = match obj.get("forward") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => forward(v)?,
        };
        let mode = match obj.get("mode").map(Value::as_str) {
            None | Some(Some("enforce")) => Mode::Enforce,
            Some(Some("report")) => Mode::Report,
            Some(_) => return Err(err("mode", "must be \"enforce\" or \"report\"")),
        };
        let realm = match obj.get("realm") {
            None => String::from(DEFAULT_REALM),
            Some(Value::String(s)) if !s.is_empty() && s.chars().all(is_header_text) => s.clone(),
            Some(_) => {
                return Err(err(
                    "realm",
                    "must be a non-empty string of printable ASCII characters",
                ))
            }
        };
        let rate_limit = match obj.get("rate_limit") {
            None | Some(Value::Null) => None,
            Some(v) => Some(rate_limit(v)?),
        };
        let wait = match obj.get("wait") {
            None => Wait {
                max_requests: 1000,
                timeout_ms: 5000,
            },
            Some(v) => {
                let o = object("wait", v, &["max_requests", "timeout_ms"])?;
                Wait {
                    max_requests: int_or(o, "wait", "max_requests", 1000, 0, 1_000_000)? as usize,
                    timeout_ms: int_or(o, "wait", "timeout_ms", 5000, 1, 600_000)?,
                }
            }
        };
        let tick_ms = int_or(obj, "", "tick_ms", 100, 10, 60_000)? as u32;
        let token_cache = match obj.get("token_cache") {
            None => TokenCacheConfig {
                capacity: 4096,
                max_ttl_s: 600,
            },
            Some(v) => {
                let o = object("token_cache", v, &["capacity", "max_ttl_s"])?;
                TokenCacheConfig {
                    capacity: int_or(o, "token_cache", "capacity", 4096, 0, 1_000_000)? as usize,
                    max_ttl_s: int_or(o, "token_cache", "max_ttl_s", 600, 1, 86_400)?,
                }
            }
        };
        if obj.contains_key("audit_log") {
            return Err(err(
                "audit_log",
                "is replaced by \"audit\": \"filter_state\" (the default: the record goes to \
                 Envoy's access log) or \"log\" (one JSON line per decision)",
            ));
        }
        let audit = match obj.get("audit").map(Value::as_str) {
            None | Some(Some("filter_state")) => AuditSink::FilterState,
            Some(Some("log")) => AuditSink::Log,
            Some(_) => return Err(err("audit", "must be \"filter_state\" or \"log\"")),
        };
        let strip_authorization = bool_or(obj, "strip_authorization", false)?;
        let feed = match obj.get("feed") {
            None | Some(Value::Null) => None,
            Some(v) => Some(feed(v)?),
        };
        let certificate_source = match obj.get("client_certificate") {
            None | Some(Value::Null) => CertificateSource::Connection,
            Some(v) => {
                let o = object("client_certificate", v, &["source"])?;
                match o.get("source").map(Value::as_str) {
                    None | Some(Some("connection")) => CertificateSource::Connection,
                    Some(Some("client_cert_header")) => CertificateSource::ClientCertHeader,
                    Some(Some("alb")) => CertificateSource::Alb,
                    Some(_) => {
                        return Err(err(
                            "client_certificate.source",
                            "must be \"connection\", \"client_cert_header\" or \"alb\"",
                        ))
                    }
                }
            }
        };
        let signature_checks_per_s = match obj.get("signature_checks_per_s") {
            None => Some(DEFAULT_SIGNATURE_CHECKS_PER_S),
            Some(Value::String(s)) if s == "unlimited" => None,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=1_000_000).contains(&n) => Some(n as u32),
                _ => {
                    return Err(err(
                        "signature_checks_per_s",
                        "must be an integer between 1 and 1000000, or \"unlimited\"",
                    ))
                }
            },
        };
        let crypto = match obj.get("crypto").map(Value::as_str) {
            None | Some(Some("native")) => Crypto::Native,
            Some(Some("wasm")) => Crypto::Wasm,
            Some(_) => return Err(err("crypto", "must be \"native\" or \"wasm\"")),
        };
        Ok(Config {
            providers,
            routes: Routes { rules, default },
            forward,
            mode,
            realm,
            rate_limit,
            token_cache,
            audit,
            strip_authorization,
            wait,
            tick_ms,
            feed,
            certificate_source,
            signature_checks_per_s,
            crypto,
        })
    }

    /// Whether anything looks at the client certificate (a provider's RFC 8705 binding or
    /// pins, a rule's pins): hosts read their TLS facts only then.
    pub fn needs_peer_certificate(&self) -> bool {
        self.providers
            .iter()
            .any(|p| p.policy.mtls_binding() != MtlsBinding::Off || p.policy.identities().is_some())
            || self.routes.rules.iter().any(|r| r.identities.is_some())
    }
}

/// The `realm` used when none is configured.
pub const DEFAULT_REALM: &str = "tokengate";

/// Signature checks per second per verifier when `signature_checks_per_s` is not configured:
/// a worker that verifies this many *new* tokens every second spends a fifth to a tenth of a
/// core on RSA, far beyond what token lifetimes and the verified-token cache produce in
/// ordinary traffic, while a flood of forged tokens cannot take the whole core.
pub const DEFAULT_SIGNATURE_CHECKS_PER_S: u32 = 1000;

const TOP_LEVEL: &[&str] = &[
    "providers",
    "rules",
    "default",
    "forward",
    "mode",
    "realm",
    "rate_limit",
    "revocation",
    "mtls_binding",
    "wait",
    "tick_ms",
    "token_cache",
    "audit",
    "audit_log",
    "strip_authorization",
    "feed",
    "client_certificate",
    "signature_checks_per_s",
    "crypto",
];

const FEED_FIELDS: &[&str] = &[
    "uri",
    "cluster",
    "path",
    "authority",
    "timeout_ms",
    "poll_s",
    "max_poll_s",
    "max_stale_s",
    "stale",
    "max_bytes",
    "max_entries",
    "keys",
    "algorithms",
    "unsigned",
];

fn feed(value: &Value) -> Result<FeedSettings, ConfigError> {
    let o = object("feed", value, FEED_FIELDS)?;
    let source = remote_source("feed", o, None)?
        .ok_or_else(|| err("feed", "needs \"uri\" and/or \"cluster\" + \"path\""))?;
    let poll_s = int_or(o, "feed", "poll_s", 10, 1, 3600)?;
    let max_poll_s = int_or(o, "feed", "max_poll_s", poll_s.max(60), poll_s, 86_400)?;
    let max_stale_s = int_or(
        o,
        "feed",
        "max_stale_s",
        600.max(poll_s),
        poll_s,
        30 * 86_400,
    )?;
    let stale = match o.get("stale").map(Value::as_str) {
        None | Some(Some("keep")) => StalePolicy::Keep,
        Some(Some("fail_closed")) => StalePolicy::FailClosed,
        Some(_) => return Err(err("feed.stale", "must be \"keep\" or \"fail_closed\"")),
    };
    let max_bytes = int_or(o, "feed", "max_bytes", 1 << 20, 1024, 16 << 20)? as usize;
    let max_entries = int_or(o, "feed", "max_entries", 100_000, 1, 1_000_000)? as usize;
    let unsigned = bool_or(o, "unsigned", false).map_err(|e| err("feed.unsigned", e.message))?;
    let trust = match (o.get("keys"), unsigned) {
        (Some(_), true) => {
            return Err(err(
                "feed.unsigned",
                "give either the feed's \"keys\" or \"unsigned\": true, not both",
            ))
        }
        (None, true) => {
            if o.contains_key("algorithms") {
                return Err(err("feed.algorithms", "only applies with \"keys\""));
            }
            FeedTrust::Unsigned
        }
        (None, false) => {
            return Err(err(
                "feed.keys",
                "is required: the keys that sign the feed, or \"unsigned\": true to trust \
                 documents as fetched",
            ))
        }
        (Some(keys), false) => {
            let mut doc = Object::new();
            doc.insert("keys".into(), keys.clone());
            let set = KeySet::from_value(&Value::Object(doc), KeySetLimits::default())
                .map_err(|e| err("feed.keys", e.to_string()))?;
            if set.usable_count(crate::policy::DEFAULT_MIN_RSA_BITS) == 0 {
                return Err(err("feed.keys", "holds no usable signing key"));
            }
            let algorithms = match o.get("algorithms") {
                None => alloc::vec![Algorithm::Rs256, Algorithm::Es256],
                Some(v) => {
                    let names = strings("feed.algorithms", v)?;
                    let mut algs = Vec::new();
                    for (i, n) in names.iter().enumerate() {
                        algs.push(Algorithm::from_name(n).ok_or_else(|| {
                            err(
                                format!("feed.algorithms[{i}]"),
                                "must be \"RS256\" or \"ES256\"",
                            )
                        })?);
                    }
                    if algs.is_empty() {
                        return Err(err("feed.algorithms", "must list at least one algorithm"));
                    }
                    algs
                }
            };
            FeedTrust::Signed {
                keys: set,
                algorithms,
            }
        }
    };
    Ok(FeedSettings {
        feed: FeedConfig {
            poll_s,
            max_poll_s,
            max_stale_s,
            stale,
            max_bytes,
            max_entries,
            fetch_timeout_s: u64::from(source.timeout_ms)
                .div_ceil(1000)
                .saturating_add(1),
            trust,
            jitter_seed: 0,
        },
        source,
    })
}

/// Provider fields read here; every other field goes to the policy parser, which refuses
/// unknown ones.
const PROVIDER_OWN: &[&str] = &["issuer", "issuers", "cognito_user_pool_id", "jwks", "name"];

const JWKS_FIELDS: &[&str] = &[
    "keys",
    "uri",
    "cluster",
    "path",
    "authority",
    "timeout_ms",
    "refresh_s",
    "max_stale_s",
    "unknown_kid_cooldown_s",
    "max_bytes",
    "max_keys",
];

fn provider(
    index: usize,
    value: &Value,
    shared_revocation: Option<&Value>,
    shared_binding: Option<&Value>,
) -> Result<ProviderConfig, ConfigError> {
    let at = format!("providers[{index}]");
    let obj = value
        .as_object()
        .ok_or_else(|| err(&at, "must be an object"))?;
    let pool = match obj.get("cognito_user_pool_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(
            CognitoPool::parse(id)
                .map_err(|e| err(format!("{at}.cognito_user_pool_id"), e.message))?,
        ),
        Some(_) => {
            return Err(err(
                format!("{at}.cognito_user_pool_id"),
                "must be a string such as \"eu-west-1_AbCdEf123\"",
            ))
        }
    };
    let mut policy = Object::new();
    let issuers = match (obj.get("issuer"), obj.get("issuers"), &pool) {
        (Some(Value::String(s)), None, _) => Value::Array(alloc::vec![Value::String(s.clone())]),
        (None, Some(list @ Value::Array(_)), _) => list.clone(),
        (Some(_), None, _) => return Err(err(format!("{at}.issuer"), "must be a string")),
        (None, Some(_), _) => return Err(err(format!("{at}.issuers"), "must be an array")),
        (Some(_), Some(_), _) => {
            return Err(err(
                format!("{at}.issuer"),
                "give either \"issuer\" or \"issuers\", not both",
            ))
        }
        (None, None, Some(pool)) => Value::Array(alloc::vec![
            Value::String(pool.issuer()),
            Value::String(pool.alternate_issuer()),
        ]),
        (None, None, None) => {
            return Err(err(
                format!("{at}.issuer"),
                "is required (or \"cognito_user_pool_id\")",
            ))
        }
    };
    policy.insert("issuers".into(), issuers);
    for (key, v) in obj {
        if !PROVIDER_OWN.contains(&key.as_str()) {
            policy.insert(key.clone(), v.clone());
        }
    }
    if let (false, Some(r)) = (policy.contains_key("revocation"), shared_revocation) {
        policy.insert("revocation".into(), r.clone());
    }
    if let (false, Some(b)) = (policy.contains_key("mtls_binding"), shared_binding) {
        policy.insert("mtls_binding".into(), b.clone());
    }
    let policy = Policy::from_json(&Value::Object(policy)).map_err(|e| {
        // Shared settings are named as the user wrote them.
        let top = e.field.starts_with("revocation") && !obj.contains_key("revocation")
            || e.field.starts_with("mtls_binding") && !obj.contains_key("mtls_binding");
        let field = if top {
            e.field.clone()
        } else {
            format!("{at}.{}", e.field)
        };
        err(field, e.message)
    })?;
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(err(format!("{at}.name"), "must be a string")),
    };
    let jwks_at = format!("{at}.jwks");
    let empty = Value::Object(Object::new());
    let jwks = match (obj.get("jwks"), &pool) {
        (Some(v), _) => object(&jwks_at, v, JWKS_FIELDS)?,
        (None, Some(_)) => object(&jwks_at, &empty, JWKS_FIELDS)?,
        (None, None) => {
            return Err(err(
                &jwks_at,
                "is required (\"uri\", \"cluster\" + \"path\", and/or inline \"keys\")",
            ))
        }
    };
    let limits = KeySetLimits {
        max_bytes: int_or(jwks, &jwks_at, "max_bytes", 64 * 1024, 1024, 1 << 20)? as usize,
        max_keys: int_or(jwks, &jwks_at, "max_keys", 100, 1, 1000)? as usize,
    };
    let inline = match jwks.get("keys") {
        None => None,
        Some(keys) => {
            let mut doc = Object::new();
            doc.insert("keys".into(), keys.clone());
            let set = KeySet::from_value(&Value::Object(doc), limits)
                .map_err(|e| err(format!("{jwks_at}.keys"), e.to_string()))?;
            Some(set)
        }
    };
    let derived = pool.as_ref().map(|pool| Derived {
        uri: pool.jwks_url(),
        path: format!("/{}/.well-known/jwks.json", pool.pool_id()),
        authority: format!("cognito-idp.{}.{}", pool.region(), pool.dns_suffix()),
    });
    let source = remote_source(&jwks_at, jwks, derived.as_ref())?;
    let timeout_ms = source.as_ref().map_or(2000, |s| s.timeout_ms);
    if source.is_none() && inline.is_none() {
        return Err(err(
            &jwks_at,
            "needs \"uri\", \"cluster\" + \"path\", or inline \"keys\"",
        ));
    }
    let defaults = KeyCacheConfig::default();
    let cache = KeyCacheConfig {
        refresh_s: int_or(jwks, &jwks_at, "refresh_s", 900, 60, 86_400)?,
        max_stale_s: int_or(jwks, &jwks_at, "max_stale_s", 86_400, 0, 30 * 86_400)?,
        unknown_kid_cooldown_s: int_or(jwks, &jwks_at, "unknown_kid_cooldown_s", 30, 1, 3600)?,
        // The core counts an unanswered fetch as failed after this; the host's own timeout
        // fires first, so this is only a backstop.
        fetch_timeout_s: u64::from(timeout_ms).div_ceil(1000).saturating_add(1),
        limits,
        ..defaults
    };
    Ok(ProviderConfig {
        name,
        policy,
        inline,
        source,
        cache,
    })
}

fn rule(index: usize, value: &Value) -> Result<Rule, ConfigError> {
    let at = format!("rules[{index}]");
    let obj = object(
        &at,
        value,
        &[
            "name",
            "match",
            "allow",
            "scopes",
            "client_ids",
            "client_identities",
            "require_identity",
        ],
    )?;
    let name = match obj.get("name") {
        None => at.clone(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(err(format!("{at}.name"), "must be a non-empty string")),
    };
    let m_at = format!("{at}.match");
    let m = obj.get("match").ok_or_else(|| err(&m_at, "is required"))?;
    let m = object(
        &m_at,
        m,
        &["prefix", "exact", "methods", "case_insensitive"],
    )?;
    let rule_path = |key: &str, v: &Value| -> Result<String, ConfigError> {
        match v {
            Value::String(p) if target::is_normal_rule_path(p) => Ok(p.clone()),
            Value::String(p) if p.starts_with('/') => Err(err(
                format!("{m_at}.{key}"),
                "must be a path in normal form (no query, dot or empty segments, ;, \\, or \
                 percent-encoded letters, digits, . / \\ ; %; escapes in upper case)",
            )),
            _ => Err(err(
                format!("{m_at}.{key}"),
                "must be a string starting with \"/\"",
            )),
        }
    };
    let path = match (m.get("prefix"), m.get("exact")) {
        (Some(p), None) => PathMatch::Prefix(rule_path("prefix", p)?),
        (None, Some(p)) => PathMatch::Exact(rule_path("exact", p)?),
        (Some(_), Some(_)) => {
            return Err(err(&m_at, "give either \"prefix\" or \"exact\", not both"))
        }
        (None, None) => return Err(err(&m_at, "needs \"prefix\" or \"exact\"")),
    };
    let case_insensitive = match m.get("case_insensitive") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(err(
                format!("{m_at}.case_insensitive"),
                "must be true or false",
            ))
        }
    };
    let methods = match m.get("methods") {
        None => MethodSet::Any,
        Some(v) => {
            let list = strings(&format!("{m_at}.methods"), v)?;
            if list.is_empty() {
                return Err(err(
                    format!("{m_at}.methods"),
                    "must list at least one method",
                ));
            }
            for (i, method) in list.iter().enumerate() {
                if target::check_method(method).is_err() {
                    return Err(err(
                        format!("{m_at}.methods[{i}]"),
                        "must be an HTTP method as sent, standard ones in upper case (\"GET\")",
                    ));
                }
            }
            MethodSet::Only(list)
        }
    };
    let access = match (obj.get("allow"), obj.get("scopes")) {
        (Some(Value::String(a)), None) if a == "anonymous" => Access::Anonymous,
        (Some(Value::String(a)), None) if a == "authenticated" => Access::Token(None),
        (Some(_), None) => {
            return Err(err(
                format!("{at}.allow"),
                "must be \"anonymous\" or \"authenticated\"",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(err(
                format!("{at}.allow"),
                "give either \"allow\" or \"scopes\", not both",
            ))
        }
        (None, None) => {
            return Err(err(
                &at,
                "needs \"allow\" (\"anonymous\" or \"authenticated\") or \"scopes\"",
            ))
        }
        (None, Some(s)) => {
            let scopes = Scopes::from_json(&format!("{at}.scopes"), s)?;
            let listed = scopes.listed();
            if listed.is_empty() {
                return Err(err(format!("{at}.scopes"), "must list at least one scope"));
            }
            if let Some(i) = listed.iter().position(|s| s.is_empty() || s.contains(' ')) {
                let key = match scopes {
                    Scopes::All(_) => "all",
                    Scopes::Any(_) => "any",
                };
                return Err(err(
                    format!("{at}.scopes.{key}[{i}]"),
                    "a scope is a non-empty string without spaces",
                ));
            }
            Access::Token(Some(scopes))
        }
    };
    let client_ids = match obj.get("client_ids") {
        None | Some(Value::Null) => None,
        Some(v) => {
            if access == Access::Anonymous {
                return Err(err(
                    format!("{at}.client_ids"),
                    "makes no sense on an anonymous rule",
                ));
            }
            let list = strings(&format!("{at}.client_ids"), v)?;
            if list.is_empty() {
                return Err(err(
                    format!("{at}.client_ids"),
                    "must list at least one client",
                ));
            }
            Some(list.into_iter().collect())
        }
    };
    let identities = Identities::override_from_json(
        &format!("{at}."),
        obj.get("client_identities"),
        obj.get("require_identity"),
    )?;
    if identities.is_some() && access == Access::Anonymous {
        return Err(err(
            format!("{at}.client_identities"),
            "makes no sense on an anonymous rule",
        ));
    }
    Ok(Rule {
        name,
        path,
        case_insensitive,
        methods,
        access,
        client_ids,
        identities,
    })
}

fn forward(value: &Value) -> Result<Vec<Forward>, ConfigError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err("forward", "must be an object of claim name → header name"))?;
    let mut out: Vec<Forward> = Vec::new();
    for (claim, header) in obj {
        let at = format!("forward.{claim}");
        let header = match header {
            Value::String(h) => h.to_ascii_lowercase(),
            _ => return Err(err(at, "must be a header name")),
        };
        if header.is_empty() || !header.bytes().all(target::is_tchar) {
            return Err(err(at, "must be a valid header name"));
        }
        if RESERVED_HEADERS.contains(&header.as_str()) || header.starts_with(':') {
            return Err(err(at, format!("may not overwrite \"{header}\"")));
        }
        if out.iter().any(|f| f.header == header) {
            return Err(err(at, "names a header already used by another claim"));
        }
        out.push(Forward {
            claim: claim.clone(),
            header,
        });
    }
    Ok(out)
}

const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

fn rate_limit(value: &Value) -> Result<RateLimit, ConfigError> {
    let obj = object("rate_limit", value, &["per_client_per_s", "burst"])?;
    let rate = match obj.get("per_client_per_s").and_then(Value::as_f64) {
        Some(r) if r > 0.0 && r <= 1e6 => r,
        _ => {
            return Err(err(
                "rate_limit.per_client_per_s",
                "is required: a number of requests per second > 0 and ≤ 1000000",
            ))
        }
    };
    let burst = match obj.get("burst") {
        None => {
            if rate > 1.0 {
                rate
            } else {
                1.0
            }
        }
        Some(v) => match v.as_f64() {
            Some(b) if (1.0..=1e7).contains(&b) => b,
            _ => {
                return Err(err(
                    "rate_limit.burst",
                    "must be a number ≥ 1 and ≤ 10000000",
                ))
            }
        },
    };
    Ok(RateLimit {
        per_client_per_s: rate,
        burst,
    })
}

/// What a Cognito pool implies for its key source.
struct Derived {
    uri: String,
    path: String,
    authority: String,
}

/// `uri` and/or `cluster` + `path` (+ `authority`) and `timeout_ms` of `obj` (at `at`).
fn remote_source(
    at: &str,
    obj: &Object,
    derived: Option<&Derived>,
) -> Result<Option<RemoteSource>, ConfigError> {
    let uri = match (obj.get("uri"), derived) {
        (None, Some(d)) => Some(d.uri.clone()),
        (None, None) => None,
        (Some(Value::String(u)), _) => {
            check_uri(u).map_err(|why| err(format!("{at}.uri"), why))?;
            Some(u.clone())
        }
        (Some(_), _) => return Err(err(format!("{at}.uri"), "must be a URL string")),
    };
    let cluster = match (obj.get("cluster"), obj.get("path")) {
        (None, None) => None,
        (Some(Value::String(name)), path) => {
            if name.is_empty() || !name.chars().all(is_header_text) {
                return Err(err(format!("{at}.cluster"), "must be a cluster name"));
            }
            let path = match (path, derived) {
                (Some(Value::String(p)), _)
                    if p.starts_with('/') && p.chars().all(is_header_text) =>
                {
                    p.clone()
                }
                (Some(_), _) => {
                    return Err(err(
                        format!("{at}.path"),
                        "must be a string starting with \"/\"",
                    ))
                }
                (None, Some(d)) => d.path.clone(),
                (None, None) => {
                    return Err(err(
                        format!("{at}.path"),
                        "is required with \"cluster\" (a string starting with \"/\")",
                    ))
                }
            };
            let authority = match (obj.get("authority"), derived) {
                (Some(Value::String(a)), _) if !a.is_empty() && a.chars().all(is_header_text) => {
                    a.clone()
                }
                (Some(_), _) => return Err(err(format!("{at}.authority"), "must be a host name")),
                (None, Some(d)) => d.authority.clone(),
                (None, None) => name.clone(),
            };
            Some(Cluster {
                name: name.clone(),
                path,
                authority,
            })
        }
        (Some(_), _) => return Err(err(format!("{at}.cluster"), "must be a string")),
        (None, Some(_)) => return Err(err(format!("{at}.cluster"), "is required with \"path\"")),
    };
    if obj.contains_key("authority") && cluster.is_none() {
        return Err(err(
            format!("{at}.authority"),
            "only applies with \"cluster\"",
        ));
    }
    let timeout_ms = int_or(obj, at, "timeout_ms", 2000, 10, 60_000)? as u32;
    Ok(if uri.is_some() || cluster.is_some() {
        Some(RemoteSource {
            uri,
            cluster,
            timeout_ms,
        })
    } else {
        None
    })
}

/// `https://`, or `http://` to a loopback host: keys fetched in clear from elsewhere could be
/// replaced on the way.
fn check_uri(uri: &str) -> Result<(), &'static str> {
    if !uri.chars().all(is_header_text) || uri.contains(' ') {
        return Err("must be a URL without spaces or control characters");
    }
    let lower = uri.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("https://") {
        return if rest.is_empty() || rest.starts_with('/') {
            Err("must name a host")
        } else {
            Ok(())
        };
    }
    let Some(rest) = lower.strip_prefix("http://") else {
        return Err("must be an https:// URL");
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let loopback = host == "localhost"
        || host == "::1"
        || host
            .strip_prefix("127.")
            .is_some_and(|r| r.split('.').count() == 3 && r.split('.').all(is_octet));
    if loopback {
        Ok(())
    } else {
        Err("must be an https:// URL (http:// only for a loopback host)")
    }
}

fn is_octet(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 3
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u16>().is_ok_and(|n| n <= 255)
}

fn object<'a>(field: &str, value: &'a Value, allowed: &[&str]) -> Result<&'a Object, ConfigError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err(field, "must be an object"))?;
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(err(format!("{field}.{key}"), "unknown field"));
        }
    }
    Ok(obj)
}

fn strings(field: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
    let list = value
        .as_array()
        .ok_or_else(|| err(field, "must be an array of strings"))?;
    list.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(err(format!("{field}[{i}]"), "must be a non-empty string")),
        })
        .collect()
}

/// An integer field `key` of `obj` (whose path is `parent`, empty at the top level).
fn int_or(
    obj: &Object,
    parent: &str,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match obj.get(key) {
        None => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(err(
                if parent.is_empty() {
                    String::from(key)
                } else {
                    format!("{parent}.{key}")
                },
                format!("must be an integer between {min} and {max}"),
            )),
        },
    }
}

fn bool_or(obj: &Object, key: &str, default: bool) -> Result<bool, ConfigError> {
    match obj.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(key, "must be true or false")),
    }
}

fn is_header_text(c: char) -> bool {
    (' '..='~').contains(&c)
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::from_json(s.as_bytes())
    }

    const OK: &str = r#"{
      "providers": [{
        "issuer": "https://issuer.example",
        "jwks": { "cluster": "idp", "path": "/jwks.json", "uri": "https://issuer.example/jwks" },
        "client_ids": ["abc"], "algorithms": ["RS256", "ES256"], "leeway_s": 60
      }],
      "rules": [
        { "match": { "prefix": "/health" }, "allow": "anonymous" },
        { "match": { "prefix": "/orders", "methods": ["GET"] }, "scopes": { "all": ["orders/read"] } },
        { "match": { "exact": "/reports", "case_insensitive": true }, "scopes": { "any": ["orders/write"] }, "client_ids": ["abc"] }
      ],
      "forward": { "client_id": "x-tokengate-client-id", "scope": "X-Tokengate-Scope" },
      "mode": "report",
      "rate_limit": { "per_client_per_s": 10, "burst": 20 },
      "revocation": { "jti": ["j1"] },
      "mtls_binding": "when_present"
    }"#;

    #[test]
    fn a_full_configuration_parses() {
        let c = parse(OK).unwrap();
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.routes.rules.len(), 3);
        assert_eq!(c.routes.default, DefaultAccess::Deny);
        assert!(c.routes.rules[2].case_insensitive);
        assert_eq!(c.mode, Mode::Report);
        assert_eq!(c.forward[1].header, "x-tokengate-scope");
        assert!(c.needs_peer_certificate());
        assert_eq!(c.providers[0].policy.revocation().jti.len(), 1);
        let source = c.providers[0].source.as_ref().unwrap();
        assert_eq!(source.cluster.as_ref().unwrap().authority, "idp");
        assert_eq!(source.timeout_ms, 2000);
        assert_eq!(c.providers[0].cache.fetch_timeout_s, 3);
        assert_eq!(c.realm, "tokengate");
    }

    #[test]
    fn the_signature_budget_defaults_to_a_thousand_per_second() {
        let p = r#""providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}]"#;
        let at = |extra: &str| {
            parse(&format!("{{{p}{extra}}}"))
                .unwrap()
                .signature_checks_per_s
        };
        assert_eq!(at(""), Some(DEFAULT_SIGNATURE_CHECKS_PER_S));
        assert_eq!(DEFAULT_SIGNATURE_CHECKS_PER_S, 1000);
        assert_eq!(at(r#", "signature_checks_per_s": 1"#), Some(1));
        assert_eq!(
            at(r#", "signature_checks_per_s": 1000000"#),
            Some(1_000_000)
        );
        assert_eq!(at(r#", "signature_checks_per_s": "unlimited""#), None);
    }

    #[test]
    fn signatures_are_checked_by_the_hosts_crypto_unless_told_otherwise() {
        let p = r#""providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}]"#;
        let at = |extra: &str| parse(&format!("{{{p}{extra}}}")).unwrap().crypto;
        assert_eq!(at(""), Crypto::Native);
        assert_eq!(at(r#", "crypto": "native""#), Crypto::Native);
        assert_eq!(at(r#", "crypto": "wasm""#), Crypto::Wasm);
        assert_eq!(Crypto::Wasm.as_str(), "wasm");
    }

    #[test]
    fn without_rules_any_valid_token_passes_by_default() {
        let c =
            parse(r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}]}"#)
                .unwrap();
        assert_eq!(c.routes.default, DefaultAccess::Authenticated);
    }

    #[test]
    fn a_cognito_pool_derives_issuers_uri_path_and_authority() {
        let c = parse(
            r#"{"providers": [{"cognito_user_pool_id": "eu-west-1_AbC123", "client_ids": ["a"],
                "jwks": {"cluster": "cognito"}}]}"#,
        )
        .unwrap();
        let p = &c.providers[0];
        assert_eq!(p.policy.issuers().len(), 2);
        let s = p.source.as_ref().unwrap();
        assert_eq!(
            s.uri.as_deref(),
            Some("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123/.well-known/jwks.json")
        );
        let cl = s.cluster.as_ref().unwrap();
        assert_eq!(cl.path, "/eu-west-1_AbC123/.well-known/jwks.json");
        assert_eq!(cl.authority, "cognito-idp.eu-west-1.amazonaws.com");
    }

    #[test]
    fn errors_name_the_field() {
        let p = r#""providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}]"#;
        let cases = [
            ("[]".into(), "configuration"),
            ("{}".into(), "providers"),
            (r#"{"providers": [], "x": 1}"#.into(), "x"),
            (r#"{"providers": []}"#.into(), "providers"),
            (
                r#"{"providers": [{"issuer": "i", "jwks": {"keys": []}}]}"#.into(),
                "providers[0].client_ids",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {}}]}"#.into(),
                "providers[0].jwks",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"cluster": "c"}}]}"#.into(),
                "providers[0].jwks.path",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"uri": "http://example.com/jwks"}}]}"#.into(),
                "providers[0].jwks.uri",
            ),
            (
                r#"{"providers": [{"cognito_user_pool_id": "nope", "client_ids": ["a"]}]}"#.into(),
                "providers[0].cognito_user_pool_id",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "algorithms": ["HS256"], "jwks": {"keys": []}}]}"#.into(),
                "providers[0].algorithms[0]",
            ),
            (format!(r#"{{{p}, "mtls_binding": "on"}}"#), "mtls_binding"),
            (format!(r#"{{{p}, "rules": [{{"match": {{"prefix": "x"}}, "allow": "authenticated"}}]}}"#), "rules[0].match.prefix"),
            (format!(r#"{{{p}, "rules": [{{"match": {{"prefix": "/a/../b"}}, "allow": "authenticated"}}]}}"#), "rules[0].match.prefix"),
            (format!(r#"{{{p}, "rules": [{{"match": {{"exact": "/%61"}}, "allow": "authenticated"}}]}}"#), "rules[0].match.exact"),
            (format!(r#"{{{p}, "rules": [{{"match": {{"prefix": "/x", "methods": ["get"]}}, "allow": "authenticated"}}]}}"#), "rules[0].match.methods[0]"),
            (format!(r#"{{{p}, "rules": [{{"match": {{"prefix": "/x", "case_insensitive": 1}}, "allow": "authenticated"}}]}}"#), "rules[0].match.case_insensitive"),
            (format!(r#"{{{p}, "rules": [{{"match": {{"prefix": "/x"}}}}]}}"#), "rules[0]"),
            (format!(r#"{{{p}, "rules": [{{"match": {{"prefix": "/x"}}, "scopes": {{"all": []}}}}]}}"#), "rules[0].scopes"),
            (format!(r#"{{{p}, "rules": [{{"match": {{"prefix": "/x"}}, "scopes": {{"any": ["a b"]}}}}]}}"#), "rules[0].scopes.any[0]"),
            (format!(r#"{{{p}, "forward": {{"sub": "authorization"}}}}"#), "forward.sub"),
            (format!(r#"{{{p}, "rate_limit": {{"burst": 3}}}}"#), "rate_limit.per_client_per_s"),
            (format!(r#"{{{p}, "mode": "audit"}}"#), "mode"),
            (format!(r#"{{{p}, "audit": "access_log"}}"#), "audit"),
            (format!(r#"{{{p}, "audit_log": true}}"#), "audit_log"),
            (format!(r#"{{{p}, "crypto": "host"}}"#), "crypto"),
            (format!(r#"{{{p}, "crypto": null}}"#), "crypto"),
            (format!(r#"{{{p}, "crypto": false}}"#), "crypto"),
            (format!(r#"{{{p}, "wait": {{"timeout_ms": 0}}}}"#), "wait.timeout_ms"),
            (format!(r#"{{{p}, "tick_ms": 1}}"#), "tick_ms"),
            (format!(r#"{{{p}, "token_cache": {{"capacity": -1}}}}"#), "token_cache.capacity"),
            (format!(r#"{{{p}, "realm": ""}}"#), "realm"),
            (format!(r#"{{{p}, "signature_checks_per_s": 0}}"#), "signature_checks_per_s"),
            (format!(r#"{{{p}, "signature_checks_per_s": 2.5}}"#), "signature_checks_per_s"),
            (format!(r#"{{{p}, "signature_checks_per_s": "none"}}"#), "signature_checks_per_s"),
            (format!(r#"{{{p}, "signature_checks_per_s": null}}"#), "signature_checks_per_s"),
        ];
        for (cfg, field) in cases {
            let e = parse(&cfg).expect_err(&cfg);
            assert_eq!(e.field, field, "{cfg}: {e}");
        }
    }

    #[test]
    fn loopback_http_is_the_only_clear_text_jwks_uri() {
        for ok in [
            "https://cognito-idp.eu-west-1.amazonaws.com/p/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9/jwks",
        ] {
            assert_eq!(check_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://example.com/jwks",
            "http://127.0.0.1.evil.com/jwks",
            "ftp://x/jwks",
            "https://",
            "jwks.json",
        ] {
            assert!(check_uri(bad).is_err(), "{bad}");
        }
    }
}
