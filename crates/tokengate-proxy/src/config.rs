//! The plugin configuration: parsed and validated once (`on_configure`); any mistake is one
//! [`ConfigError`] naming the field, and the filter then refuses to start.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use tokengate::{
    ConfigError, KeyCache, KeyCacheConfig, KeySet, KeySetLimits, MtlsBinding, Policy, Provider,
    Scopes, Verifier,
};

use crate::rules::{Access, MethodSet, PathMatch, Rule};

/// Whether denials are enforced or only reported.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Mode {
    /// Denials get a local reply; the origin never sees the request.
    Enforce,
    /// Every decision is made, logged and counted, but the request goes through.
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

/// What happens to a request that matches no rule.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Default {
    /// Refused: 401 without a valid token, 403 `scope_insufficient` with one.
    Deny,
    /// Any valid token passes.
    Authenticated,
}

/// Where a provider's JWKS is fetched from (an Envoy cluster).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct RemoteJwks {
    /// Envoy cluster name.
    pub cluster: String,
    /// Request path, e.g. `/eu-west-1_AbCdEf123/.well-known/jwks.json`.
    pub path: String,
    /// `:authority` sent (defaults to the cluster name).
    pub authority: String,
    /// Per-fetch timeout.
    pub timeout_ms: u32,
}

/// One issuer as configured.
#[derive(Clone, Debug)]
pub struct ProviderSpec {
    /// The validated core policy.
    pub policy: Policy,
    /// Keys given inline (`jwks.keys`).
    pub inline: Option<KeySet>,
    /// Remote source, if any.
    pub remote: Option<RemoteJwks>,
    /// Freshness rules for the remote source.
    pub cache: KeyCacheConfig,
}

/// Token bucket per `client_id`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per client.
    pub per_client_per_s: f64,
    /// Bucket size (requests allowed in a burst).
    pub burst: f64,
}

/// Bounds on requests that wait for keys.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Wait {
    /// Most requests paused at once per worker; beyond it: 503 `jwks_unavailable`.
    pub max_requests: usize,
    /// Longest pause; then 503 `jwks_unavailable`.
    pub timeout_ms: u64,
}

/// A claim copied into a request header.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Forward {
    /// Claim name.
    pub claim: String,
    /// Header name (lower case).
    pub header: String,
}

/// The whole plugin configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Issuers, in order.
    pub providers: Vec<ProviderSpec>,
    /// Route rules, first match wins.
    pub rules: Vec<Rule>,
    /// For requests no rule matches.
    pub default: Default,
    /// Claims forwarded as headers.
    pub forward: Vec<Forward>,
    /// Enforce or report.
    pub mode: Mode,
    /// `realm` of the `WWW-Authenticate` challenge.
    pub realm: String,
    /// Per-client rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Pausing requests while keys load.
    pub wait: Wait,
    /// Tick period of the root context (JWKS refresh, waiting-request timeouts).
    pub tick_ms: u32,
    /// Verified-token cache capacity per worker (0 disables it).
    pub token_cache_capacity: usize,
    /// Longest a verified token stays cached.
    pub token_cache_max_ttl_s: u64,
    /// One JSON line per decision.
    pub audit_log: bool,
    /// Remove `Authorization` before the request goes upstream.
    pub strip_authorization: bool,
    /// Whether any provider checks RFC 8705 binding (then the peer certificate is read).
    pub needs_peer_certificate: bool,
}

impl Config {
    /// Parse and validate the plugin configuration bytes.
    ///
    /// # Errors
    /// The first offending field.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            err(
                "configuration",
                format!("is not valid JSON ({e}); expected an object"),
            )
        })?;
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
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, r)| rule(i, r))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(err("rules", "must be an array of rules")),
        };
        let default = match obj.get("default").map(Value::as_str) {
            None | Some(Some("deny")) => Default::Deny,
            Some(Some("authenticated")) => Default::Authenticated,
            Some(_) => return Err(err("default", "must be \"deny\" or \"authenticated\"")),
        };
        let forward = match obj.get("forward") {
            None => Vec::new(),
            Some(v) => forward(v)?,
        };
        let mode = match obj.get("mode").map(Value::as_str) {
            None | Some(Some("enforce")) => Mode::Enforce,
            Some(Some("report")) => Mode::Report,
            Some(_) => return Err(err("mode", "must be \"enforce\" or \"report\"")),
        };
        let realm = match obj.get("realm") {
            None => String::from("tokengate"),
            Some(Value::String(s)) if !s.is_empty() && s.chars().all(is_header_text) => s.clone(),
            Some(_) => {
                return Err(err(
                    "realm",
                    "must be a non-empty string of printable characters",
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
                    max_requests: int_or(
                        o,
                        "wait.max_requests",
                        "max_requests",
                        1000,
                        0,
                        1_000_000,
                    )? as usize,
                    timeout_ms: int_or(o, "wait.timeout_ms", "timeout_ms", 5000, 1, 600_000)?,
                }
            }
        };
        let tick_ms = int_or(obj, "tick_ms", "tick_ms", 100, 10, 60_000)? as u32;
        let (token_cache_capacity, token_cache_max_ttl_s) = match obj.get("token_cache") {
            None => (4096, 600),
            Some(v) => {
                let o = object("token_cache", v, &["capacity", "max_ttl_s"])?;
                (
                    int_or(o, "token_cache.capacity", "capacity", 4096, 0, 1_000_000)? as usize,
                    int_or(o, "token_cache.max_ttl_s", "max_ttl_s", 600, 1, 86_400)?,
                )
            }
        };
        let audit_log = bool_or(obj, "audit_log", true)?;
        let strip_authorization = bool_or(obj, "strip_authorization", false)?;
        let needs_peer_certificate = providers
            .iter()
            .any(|p| p.policy.mtls_binding() != MtlsBinding::Off);
        Ok(Config {
            providers,
            rules,
            default,
            forward,
            mode,
            realm,
            rate_limit,
            wait,
            tick_ms,
            token_cache_capacity,
            token_cache_max_ttl_s,
            audit_log,
            strip_authorization,
            needs_peer_certificate,
        })
    }

    /// A verifier for this configuration. Inline keys are in place at once; remote sources are
    /// fetched by the host. `jitter_seed` spreads retries of many workers.
    ///
    /// # Errors
    /// Only if the provider list were empty, which [`Config::parse`] already refuses.
    pub fn verifier(&self, now: u64, jitter_seed: u64) -> Result<Verifier, ConfigError> {
        let providers = self
            .providers
            .iter()
            .map(|spec| {
                let keys = match (&spec.remote, &spec.inline) {
                    (None, Some(keys)) => KeyCache::fixed(keys.clone()),
                    (None, None) => KeyCache::fixed(KeySet::default()),
                    (Some(_), inline) => {
                        let mut cache = KeyCache::remote(KeyCacheConfig {
                            jitter_seed,
                            ..spec.cache
                        });
                        if let Some(keys) = inline {
                            cache.seed(keys.clone(), now);
                        }
                        cache
                    }
                };
                Provider::new(spec.policy.clone(), keys)
            })
            .collect();
        Ok(Verifier::new(providers)?
            .with_token_cache(self.token_cache_capacity, self.token_cache_max_ttl_s))
    }
}

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
    "audit_log",
    "strip_authorization",
];

/// Provider fields the filter reads itself; every other field is handed to the core policy
/// parser (`tests/vectors/README.md` lists them), which refuses unknown ones.
const PROVIDER_OWN: &[&str] = &["issuer", "issuers", "jwks", "name"];

const JWKS_FIELDS: &[&str] = &[
    "cluster",
    "path",
    "authority",
    "keys",
    "refresh_s",
    "timeout_ms",
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
) -> Result<ProviderSpec, ConfigError> {
    let at = format!("providers[{index}]");
    let obj = value
        .as_object()
        .ok_or_else(|| err(&at, "must be an object"))?;
    let mut policy = Map::new();
    let issuers = match (obj.get("issuer"), obj.get("issuers")) {
        (Some(Value::String(s)), None) => Value::Array(vec![Value::String(s.clone())]),
        (None, Some(list @ Value::Array(_))) => list.clone(),
        (Some(_), None) => return Err(err(format!("{at}.issuer"), "must be a string")),
        (None, Some(_)) => return Err(err(format!("{at}.issuers"), "must be an array")),
        (Some(_), Some(_)) => {
            return Err(err(
                format!("{at}.issuer"),
                "give either \"issuer\" or \"issuers\", not both",
            ))
        }
        (None, None) => return Err(err(format!("{at}.issuer"), "is required")),
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
    let jwks_at = format!("{at}.jwks");
    let jwks = obj
        .get("jwks")
        .ok_or_else(|| err(&jwks_at, "is required (cluster + path, and/or inline keys)"))?;
    let jwks = object(&jwks_at, jwks, JWKS_FIELDS)?;
    let limits = KeySetLimits {
        max_bytes: int_or(
            jwks,
            &format!("{jwks_at}.max_bytes"),
            "max_bytes",
            64 * 1024,
            1024,
            1 << 20,
        )? as usize,
        max_keys: int_or(
            jwks,
            &format!("{jwks_at}.max_keys"),
            "max_keys",
            100,
            1,
            1000,
        )? as usize,
    };
    let inline = match jwks.get("keys") {
        None => None,
        Some(keys) => {
            let mut doc = Map::new();
            doc.insert("keys".into(), keys.clone());
            let set = KeySet::from_value(&Value::Object(doc), limits)
                .map_err(|e| err(format!("{jwks_at}.keys"), e.to_string()))?;
            Some(set)
        }
    };
    let remote = match (jwks.get("cluster"), jwks.get("path")) {
        (None, None) => None,
        (Some(Value::String(cluster)), Some(Value::String(path))) => {
            if cluster.is_empty() || !cluster.chars().all(is_header_text) {
                return Err(err(format!("{jwks_at}.cluster"), "must be a cluster name"));
            }
            if !path.starts_with('/') || !path.chars().all(is_header_text) {
                return Err(err(format!("{jwks_at}.path"), "must start with \"/\""));
            }
            let authority = match jwks.get("authority") {
                None => cluster.clone(),
                Some(Value::String(a)) if !a.is_empty() && a.chars().all(is_header_text) => {
                    a.clone()
                }
                Some(_) => return Err(err(format!("{jwks_at}.authority"), "must be a host name")),
            };
            let timeout_ms = int_or(
                jwks,
                &format!("{jwks_at}.timeout_ms"),
                "timeout_ms",
                2000,
                10,
                60_000,
            )? as u32;
            Some(RemoteJwks {
                cluster: cluster.clone(),
                path: path.clone(),
                authority,
                timeout_ms,
            })
        }
        (Some(Value::String(_)), _) => {
            return Err(err(
                format!("{jwks_at}.path"),
                "is required with \"cluster\" (a string starting with \"/\")",
            ))
        }
        (Some(_), _) => return Err(err(format!("{jwks_at}.cluster"), "must be a string")),
        (None, Some(_)) => {
            return Err(err(
                format!("{jwks_at}.cluster"),
                "is required with \"path\"",
            ))
        }
    };
    if remote.is_none() && inline.is_none() {
        return Err(err(
            &jwks_at,
            "needs \"cluster\" and \"path\", or inline \"keys\"",
        ));
    }
    let defaults = KeyCacheConfig::default();
    let timeout_ms = remote.as_ref().map_or(2000, |r| r.timeout_ms);
    let cache = KeyCacheConfig {
        refresh_s: int_or(
            jwks,
            &format!("{jwks_at}.refresh_s"),
            "refresh_s",
            900,
            60,
            86_400,
        )?,
        max_stale_s: int_or(
            jwks,
            &format!("{jwks_at}.max_stale_s"),
            "max_stale_s",
            86_400,
            0,
            30 * 86_400,
        )?,
        unknown_kid_cooldown_s: int_or(
            jwks,
            &format!("{jwks_at}.unknown_kid_cooldown_s"),
            "unknown_kid_cooldown_s",
            30,
            1,
            3600,
        )?,
        // The core counts an unanswered fetch as failed after this; Envoy's own timeout fires
        // first, so this is only a backstop.
        fetch_timeout_s: u64::from(timeout_ms).div_ceil(1000).saturating_add(1),
        limits,
        ..defaults
    };
    Ok(ProviderSpec {
        policy,
        inline,
        remote,
        cache,
    })
}

fn rule(index: usize, value: &Value) -> Result<Rule, ConfigError> {
    let at = format!("rules[{index}]");
    let obj = object(
        &at,
        value,
        &["name", "match", "allow", "scopes", "client_ids"],
    )?;
    let name = match obj.get("name") {
        None => at.clone(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(err(format!("{at}.name"), "must be a non-empty string")),
    };
    let m_at = format!("{at}.match");
    let m = obj.get("match").ok_or_else(|| err(&m_at, "is required"))?;
    let m = object(&m_at, m, &["prefix", "exact", "methods"])?;
    let path = match (m.get("prefix"), m.get("exact")) {
        (Some(Value::String(p)), None) if p.starts_with('/') => PathMatch::Prefix(p.clone()),
        (None, Some(Value::String(p))) if p.starts_with('/') => PathMatch::Exact(p.clone()),
        (Some(_), Some(_)) => {
            return Err(err(&m_at, "give either \"prefix\" or \"exact\", not both"))
        }
        (Some(_), None) => {
            return Err(err(
                format!("{m_at}.prefix"),
                "must be a string starting with \"/\"",
            ))
        }
        (None, Some(_)) => {
            return Err(err(
                format!("{m_at}.exact"),
                "must be a string starting with \"/\"",
            ))
        }
        (None, None) => return Err(err(&m_at, "needs \"prefix\" or \"exact\"")),
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
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(err(
                        format!("{m_at}.methods[{i}]"),
                        "must be an upper-case HTTP method such as \"GET\"",
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
        (None, Some(Value::Null)) | (None, None) => Access::Token(None),
        (None, Some(s)) => {
            let scopes = Scopes::from_json(&format!("{at}.scopes"), s)
                .map_err(|e| err(e.field, e.message))?;
            let listed = scopes.listed();
            if listed.is_empty() {
                return Err(err(format!("{at}.scopes"), "must list at least one scope"));
            }
            if let Some(i) = listed.iter().position(|s| s.is_empty() || s.contains(' ')) {
                return Err(err(
                    format!("{at}.scopes[{i}]"),
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
            Some(list.into_iter().collect::<BTreeSet<_>>())
        }
    };
    Ok(Rule {
        name,
        path,
        methods,
        access,
        client_ids,
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
        let token_chars = !header.is_empty()
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b));
        if !token_chars {
            return Err(err(at, "must be a valid header name"));
        }
        if RESERVED_HEADERS.contains(&header.as_str()) {
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
];

fn rate_limit(value: &Value) -> Result<RateLimit, ConfigError> {
    let obj = object("rate_limit", value, &["per_client_per_s", "burst"])?;
    let rate = match obj.get("per_client_per_s").and_then(Value::as_f64) {
        Some(r) if r > 0.0 && r <= 1e6 => r,
        _ => {
            return Err(err(
                "rate_limit.per_client_per_s",
                "is required: a number of requests per second > 0",
            ))
        }
    };
    let burst = match obj.get("burst") {
        None => rate.max(1.0),
        Some(v) => match v.as_f64() {
            Some(b) if (1.0..=1e7).contains(&b) => b,
            _ => return Err(err("rate_limit.burst", "must be a number ≥ 1")),
        },
    };
    Ok(RateLimit {
        per_client_per_s: rate,
        burst,
    })
}

fn object<'a>(
    field: &str,
    value: &'a Value,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, ConfigError> {
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

fn int_or(
    obj: &Map<String, Value>,
    field: &str,
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
                field,
                format!("must be an integer between {min} and {max}"),
            )),
        },
    }
}

fn bool_or(obj: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ConfigError> {
    match obj.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(key, "must be true or false")),
    }
}

fn is_header_text(c: char) -> bool {
    (' '..='~').contains(&c)
}

pub(crate) fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s.as_bytes())
    }

    const OK: &str = r#"{
      "providers": [{
        "issuer": "https://issuer.example",
        "jwks": { "cluster": "idp", "path": "/jwks.json" },
        "client_ids": ["abc"], "algorithms": ["RS256", "ES256"], "leeway_s": 60
      }],
      "rules": [
        { "match": { "prefix": "/health" }, "allow": "anonymous" },
        { "match": { "prefix": "/orders", "methods": ["GET"] }, "scopes": { "all": ["orders/read"] } },
        { "match": { "prefix": "/orders" }, "scopes": { "any": ["orders/write"] }, "client_ids": ["abc"] }
      ],
      "forward": { "client_id": "x-tokengate-client-id", "scope": "X-Tokengate-Scope" },
      "mode": "report",
      "rate_limit": { "per_client_per_s": 10, "burst": 20 },
      "revocation": { "jti": ["j1"] },
      "mtls_binding": "when_present"
    }"#;

    #[test]
    fn the_architecture_sketch_parses() {
        let c = parse(OK).unwrap();
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.rules.len(), 3);
        assert_eq!(c.mode, Mode::Report);
        assert_eq!(c.forward[1].header, "x-tokengate-scope");
        assert!(c.needs_peer_certificate);
        assert_eq!(c.providers[0].policy.revocation().jti.len(), 1);
        let remote = c.providers[0].remote.as_ref().unwrap();
        assert_eq!(remote.authority, "idp");
        assert!(c.verifier(0, 1).is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("[]", "configuration"),
            ("{}", "providers"),
            (r#"{"providers": [], "x": 1}"#, "x"),
            (r#"{"providers": []}"#, "providers"),
            (
                r#"{"providers": [{"issuer": "i", "jwks": {"keys": []}}]}"#,
                "providers[0].client_ids",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {}}]}"#,
                "providers[0].jwks",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"cluster": "c"}}]}"#,
                "providers[0].jwks.path",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "algorithms": ["HS256"], "jwks": {"keys": []}}]}"#,
                "providers[0].algorithms[0]",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}], "mtls_binding": "on"}"#,
                "mtls_binding",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}], "rules": [{"match": {"prefix": "x"}}]}"#,
                "rules[0].match.prefix",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}], "rules": [{"match": {"prefix": "/x", "methods": ["get"]}}]}"#,
                "rules[0].match.methods[0]",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}], "rules": [{"match": {"prefix": "/x"}, "scopes": {"all": []}}]}"#,
                "rules[0].scopes",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}], "forward": {"sub": "authorization"}}"#,
                "forward.sub",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}], "rate_limit": {"burst": 3}}"#,
                "rate_limit.per_client_per_s",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}], "mode": "audit"}"#,
                "mode",
            ),
            (
                r#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}], "wait": {"timeout_ms": 0}}"#,
                "wait.timeout_ms",
            ),
        ];
        for (cfg, field) in cases {
            let e = parse(cfg).expect_err(cfg);
            assert_eq!(e.field, field, "{cfg}: {e}");
        }
    }
}
