//! What a deployment requires of a token. Built and validated once; every weakening is explicit.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::ConfigError;
use crate::json::Value;
use crate::sorted::{SortedMap, SortedSet};

/// Default largest token accepted, in bytes. Cognito access tokens are about 1 KiB; an 8 KiB
/// token with many custom claims still fits.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Default smallest RSA modulus accepted (RFC 7518 §3.3: 2048 bits or larger).
pub const DEFAULT_MIN_RSA_BITS: usize = 2048;

/// A JWS algorithm tokengate can verify. Everything else is refused by construction.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 using SHA-256 (Cognito).
    Rs256,
    /// ECDSA using P-256 and SHA-256.
    Es256,
}

impl Algorithm {
    /// The JOSE name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }

    /// Exact, case-sensitive match of a JOSE `alg` name.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }
}

/// Cognito's `token_use` claim.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum TokenUse {
    /// Access tokens (what M2M clients present).
    Access,
    /// ID tokens.
    Id,
}

impl TokenUse {
    /// The claim value.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenUse::Access => "access",
            TokenUse::Id => "id",
        }
    }
}

/// Required scopes.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Scopes {
    /// Every listed scope must be granted.
    All(Vec<String>),
    /// At least one listed scope must be granted.
    Any(Vec<String>),
}

impl Scopes {
    /// Every scope in `scopes` required.
    pub fn all<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Scopes {
        Scopes::All(scopes.into_iter().map(Into::into).collect())
    }

    /// Any scope in `scopes` suffices.
    pub fn any<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Scopes {
        Scopes::Any(scopes.into_iter().map(Into::into).collect())
    }

    /// Whether `claims` grant this requirement (pipeline step 16).
    pub fn satisfied_by(&self, claims: &crate::claims::Claims) -> bool {
        match self {
            Scopes::All(list) => list.iter().all(|s| claims.has_scope(s)),
            Scopes::Any(list) => list.iter().any(|s| claims.has_scope(s)),
        }
    }

    /// The listed scopes (for the `scope="…"` challenge attribute).
    pub fn listed(&self) -> &[String] {
        match self {
            Scopes::All(s) | Scopes::Any(s) => s,
        }
    }

    /// Parse `{"all": [..]}` or `{"any": [..]}`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `field`.
    pub fn from_json(field: &str, value: &Value) -> Result<Scopes, ConfigError> {
        let obj = value.as_object().ok_or_else(|| {
            ConfigError::new(field, "must be {\"all\": [...]} or {\"any\": [...]}")
        })?;
        match (obj.get("all"), obj.get("any"), obj.len()) {
            (Some(v), None, 1) => Ok(Scopes::All(scope_list(&format!("{field}.all"), v)?)),
            (None, Some(v), 1) => Ok(Scopes::Any(scope_list(&format!("{field}.any"), v)?)),
            _ => Err(ConfigError::new(
                field,
                "must have exactly one of \"all\" or \"any\"",
            )),
        }
    }
}

/// A rule on a named claim (pipeline step 17).
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimRule {
    /// The claim equals this JSON value.
    Equals {
        /// Claim name, e.g. `custom:tenant`.
        claim: String,
        /// Required value.
        value: Value,
    },
    /// The claim equals one of these JSON values.
    OneOf {
        /// Claim name.
        claim: String,
        /// Accepted values.
        values: Vec<Value>,
    },
    /// The claim is an array holding this string, or a space-separated string containing it.
    Contains {
        /// Claim name.
        claim: String,
        /// Required element.
        value: String,
    },
}

impl ClaimRule {
    /// The claim this rule reads.
    pub fn claim(&self) -> &str {
        match self {
            ClaimRule::Equals { claim, .. }
            | ClaimRule::OneOf { claim, .. }
            | ClaimRule::Contains { claim, .. } => claim,
        }
    }

    /// Whether `value` satisfies the rule.
    pub fn accepts(&self, value: &Value) -> bool {
        match self {
            ClaimRule::Equals { value: want, .. } => value == want,
            ClaimRule::OneOf { values, .. } => values.iter().any(|v| v == value),
            ClaimRule::Contains { value: want, .. } => match value {
                Value::Array(items) => items.iter().any(|i| i.as_str() == Some(want)),
                Value::String(s) => s.split(' ').any(|e| e == want),
                _ => false,
            },
        }
    }

    fn from_json(field: &str, value: &Value) -> Result<ClaimRule, ConfigError> {
        let obj = value
            .as_object()
            .ok_or_else(|| ConfigError::new(field, "must be an object"))?;
        let claim = match obj.get("claim") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(ConfigError::new(
                    format!("{field}.claim"),
                    "must be a non-empty string",
                ))
            }
        };
        if obj.len() != 2 {
            return Err(ConfigError::new(
                field,
                "must have \"claim\" and exactly one of \"equals\", \"one_of\", \"contains\"",
            ));
        }
        if let Some(v) = obj.get("equals") {
            Ok(ClaimRule::Equals {
                claim,
                value: v.clone(),
            })
        } else if let Some(v) = obj.get("one_of") {
            match v {
                Value::Array(values) if !values.is_empty() => Ok(ClaimRule::OneOf {
                    claim,
                    values: values.clone(),
                }),
                _ => Err(ConfigError::new(
                    format!("{field}.one_of"),
                    "must be a non-empty array",
                )),
            }
        } else if let Some(v) = obj.get("contains") {
            match v {
                Value::String(s) => Ok(ClaimRule::Contains {
                    claim,
                    value: s.clone(),
                }),
                _ => Err(ConfigError::new(
                    format!("{field}.contains"),
                    "must be a string",
                )),
            }
        } else {
            Err(ConfigError::new(
                field,
                "must have one of \"equals\", \"one_of\", \"contains\"",
            ))
        }
    }
}

/// RFC 8705 certificate-bound access tokens.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum MtlsBinding {
    /// `cnf` is not checked.
    #[default]
    Off,
    /// Tokens that carry `cnf.x5t#S256` must match the presented certificate.
    WhenPresent,
    /// Every token must carry `cnf.x5t#S256` matching the presented certificate.
    Required,
}

impl MtlsBinding {
    /// The configuration name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MtlsBinding::Off => "off",
            MtlsBinding::WhenPresent => "when_present",
            MtlsBinding::Required => "required",
        }
    }
}

/// Revocation lists. Replaceable at runtime ([`crate::Verifier::set_revocation`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Revocation {
    /// Revoked token ids.
    pub jti: SortedSet,
    /// Clients whose every token is revoked.
    pub client_ids: SortedSet,
    /// Per client: tokens issued before this time (seconds) are revoked — the answer to a leaked
    /// client secret once the secret has been rotated.
    pub issued_before: SortedMap<f64>,
}

impl Revocation {
    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.jti.is_empty() && self.client_ids.is_empty() && self.issued_before.is_empty()
    }

    /// Parse `{"jti": [..], "client_ids": [..], "issued_before": {"client": seconds}}`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `field`.
    pub fn from_json(field: &str, value: &Value) -> Result<Revocation, ConfigError> {
        let obj = value
            .as_object()
            .ok_or_else(|| ConfigError::new(field, "must be an object"))?;
        let mut out = Revocation::default();
        for (key, v) in obj {
            let sub = format!("{field}.{key}");
            match key.as_str() {
                "jti" => out.jti.extend(string_list(&sub, v)?),
                "client_ids" => out.client_ids.extend(string_list(&sub, v)?),
                "issued_before" => {
                    let map = v.as_object().ok_or_else(|| {
                        ConfigError::new(&sub, "must be an object of client_id → seconds")
                    })?;
                    for (client, t) in map {
                        let t = t.as_f64().ok_or_else(|| {
                            ConfigError::new(
                                format!("{sub}.{client}"),
                                "must be a number of seconds",
                            )
                        })?;
                        out.issued_before.insert(client.clone(), t);
                    }
                }
                _ => return Err(ConfigError::new(sub, "unknown field")),
            }
        }
        Ok(out)
    }
}

/// When client certificate pins are checked.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RequireIdentity {
    /// Pins are not checked.
    Off,
    /// A client with pins must present a matching certificate; others pass.
    WhenListed,
    /// Every client must have pins and present a matching certificate.
    Always,
}

/// A rule's own `client_identities` and/or `require_identity`, each replacing the provider's
/// for the rule's route.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdentityOverride {
    /// Replaces the provider's pins when set.
    pub pins: Option<SortedMap<Vec<crate::peer::Pin>>>,
    /// Replaces the provider's mode when set.
    pub require: Option<RequireIdentity>,
}

/// Which certificates each client may present (`client_identities`, `require_identity`).
#[derive(Clone, Debug, PartialEq)]
pub struct Identities {
    /// `client_id` → the pins, any one of which must match.
    pub pins: SortedMap<Vec<crate::peer::Pin>>,
    /// When pins are checked.
    pub require: RequireIdentity,
}

impl Identities {
    /// Parse `client_identities` (`{client_id: [{uri_san | dns_san | subject | sha256}]}`) and
    /// `require_identity` (`"off" | "when_listed" | "always"`), either of which may be absent
    /// (then `None` when both are).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field under `at` (e.g. `rules[2].`).
    pub fn from_json(
        at: &str,
        identities: Option<&Value>,
        require: Option<&Value>,
    ) -> Result<Option<Identities>, ConfigError> {
        if identities.is_none() && require.is_none() {
            return Ok(None);
        }
        let require = match require.map(Value::as_str) {
            None | Some(Some("when_listed")) => RequireIdentity::WhenListed,
            Some(Some("off")) => RequireIdentity::Off,
            Some(Some("always")) => RequireIdentity::Always,
            Some(_) => {
                return Err(ConfigError::new(
                    format!("{at}require_identity"),
                    "must be \"off\", \"when_listed\" or \"always\"",
                ))
            }
        };
        let mut pins = SortedMap::new();
        if let Some(v) = identities {
            let field = format!("{at}client_identities");
            let map = v.as_object().ok_or_else(|| {
                ConfigError::new(&field, "must be an object of client_id → [pins]")
            })?;
            for (client, list) in map {
                let cfield = format!("{field}.{client}");
                let list = list.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
                    ConfigError::new(&cfield, "must be a non-empty array of pins")
                })?;
                let mut out = Vec::with_capacity(list.len());
                for (i, pin) in list.iter().enumerate() {
                    let pfield = format!("{cfield}[{i}]");
                    let obj = pin.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
                        ConfigError::new(
                            &pfield,
                            "must be one of {\"uri_san\"}, {\"dns_san\"}, {\"subject\"}, {\"sha256\"}",
                        )
                    })?;
                    let (kind, value) = obj
                        .iter()
                        .next()
                        .ok_or_else(|| ConfigError::new(&pfield, "must name one pin"))?;
                    let value = value.as_str().ok_or_else(|| {
                        ConfigError::new(format!("{pfield}.{kind}"), "must be a string")
                    })?;
                    out.push(
                        crate::peer::Pin::parse(kind, value)
                            .map_err(|why| ConfigError::new(format!("{pfield}.{kind}"), why))?,
                    );
                }
                pins.insert(client.clone(), out);
            }
        }
        Ok(Some(Identities { pins, require }))
    }

    /// The same two fields as a rule's override: only what is given replaces the provider's.
    ///
    /// # Errors
    /// As [`Identities::from_json`].
    pub fn override_from_json(
        at: &str,
        identities: Option<&Value>,
        require: Option<&Value>,
    ) -> Result<Option<IdentityOverride>, ConfigError> {
        let Some(parsed) = Identities::from_json(at, identities, require)? else {
            return Ok(None);
        };
        Ok(Some(IdentityOverride {
            pins: identities.map(|_| parsed.pins),
            require: require.map(|_| parsed.require),
        }))
    }
}

/// Everything one issuer's tokens must satisfy. Build with [`Policy::builder`],
/// [`Policy::cognito`] or [`Policy::from_json`]; all three validate.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub(crate) issuers: Vec<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) token_use: Option<TokenUse>,
    pub(crate) client_ids: Option<Vec<String>>,
    pub(crate) scopes: Option<Scopes>,
    pub(crate) audience: Option<Vec<String>>,
    pub(crate) leeway_s: u64,
    pub(crate) max_token_age_s: Option<u64>,
    pub(crate) claim_rules: Vec<ClaimRule>,
    pub(crate) revocation: Revocation,
    pub(crate) mtls_binding: MtlsBinding,
    pub(crate) identities: Option<Identities>,
    pub(crate) min_rsa_bits: usize,
    pub(crate) max_token_bytes: usize,
}

impl Policy {
    /// Start a policy for tokens from `issuer` (exact `iss` value).
    pub fn builder(issuer: impl Into<String>) -> PolicyBuilder {
        PolicyBuilder {
            issuers: alloc::vec![issuer.into()],
            algorithms: alloc::vec![Algorithm::Rs256],
            token_use: Some(TokenUse::Access),
            client_ids: ClientIds::Unset,
            scopes: None,
            audience: None,
            leeway_s: 0,
            max_token_age_s: None,
            claim_rules: Vec::new(),
            revocation: Revocation::default(),
            mtls_binding: MtlsBinding::Off,
            identities: None,
            min_rsa_bits: DEFAULT_MIN_RSA_BITS,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Start a policy for an Amazon Cognito user pool: both issuer forms, RS256, access tokens.
    ///
    /// # Errors
    /// A [`ConfigError`] on `user_pool_id` when the id is malformed.
    pub fn cognito(user_pool_id: &str) -> Result<PolicyBuilder, ConfigError> {
        let pool = CognitoPool::parse(user_pool_id)?;
        let mut b = Policy::builder(pool.issuer());
        b.issuers.push(pool.alternate_issuer());
        Ok(b)
    }

    /// Parse the shared policy object (see `tests/vectors/README.md`).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first offending field.
    pub fn from_json(value: &Value) -> Result<Policy, ConfigError> {
        let obj = value
            .as_object()
            .ok_or_else(|| ConfigError::new("policy", "must be a JSON object"))?;
        let issuers = match obj.get("issuers") {
            Some(v) => string_list("issuers", v)?,
            None => return Err(ConfigError::new("issuers", "is required")),
        };
        let first = issuers
            .first()
            .cloned()
            .ok_or_else(|| ConfigError::new("issuers", "must list at least one issuer"))?;
        let mut b = Policy::builder(first);
        b.issuers = issuers;
        for (key, v) in obj {
            match key.as_str() {
                "issuers" => {}
                "algorithms" => {
                    let names = string_list("algorithms", v)?;
                    let mut algs = Vec::new();
                    for (i, name) in names.iter().enumerate() {
                        let alg = Algorithm::from_name(name).ok_or_else(|| {
                            ConfigError::new(
                                format!("algorithms[{i}]"),
                                format!(
                                    "{} is not supported (RS256 or ES256)",
                                    crate::json::quote(name)
                                ),
                            )
                        })?;
                        algs.push(alg);
                    }
                    b.algorithms = algs;
                }
                "token_use" => {
                    b.token_use = match v {
                        Value::Null => None,
                        Value::String(s) if s == "access" => Some(TokenUse::Access),
                        Value::String(s) if s == "id" => Some(TokenUse::Id),
                        _ => {
                            return Err(ConfigError::new(
                                "token_use",
                                "must be \"access\", \"id\" or null",
                            ))
                        }
                    }
                }
                "client_ids" => {
                    b.client_ids = match v {
                        Value::Null => ClientIds::Any,
                        v => ClientIds::List(string_list("client_ids", v)?),
                    }
                }
                "scopes" => {
                    b.scopes = match v {
                        Value::Null => None,
                        v => Some(Scopes::from_json("scopes", v)?),
                    }
                }
                "audience" => {
                    b.audience = match v {
                        Value::Null => None,
                        v => Some(string_list("audience", v)?),
                    }
                }
                "leeway_s" => b.leeway_s = seconds("leeway_s", v)?,
                "max_token_age_s" => {
                    b.max_token_age_s = match v {
                        Value::Null => None,
                        v => Some(seconds("max_token_age_s", v)?),
                    }
                }
                "claims" => {
                    let rules = v
                        .as_array()
                        .ok_or_else(|| ConfigError::new("claims", "must be an array of rules"))?;
                    for (i, r) in rules.iter().enumerate() {
                        b.claim_rules
                            .push(ClaimRule::from_json(&format!("claims[{i}]"), r)?);
                    }
                }
                "revocation" => b.revocation = Revocation::from_json("revocation", v)?,
                "mtls_binding" => {
                    b.mtls_binding = match v.as_str() {
                        Some("off") => MtlsBinding::Off,
                        Some("when_present") => MtlsBinding::WhenPresent,
                        Some("required") => MtlsBinding::Required,
                        _ => {
                            return Err(ConfigError::new(
                                "mtls_binding",
                                "must be \"off\", \"when_present\" or \"required\"",
                            ))
                        }
                    }
                }
                "client_identities" | "require_identity" => {}
                "min_rsa_bits" => b.min_rsa_bits = bounded("min_rsa_bits", v, 1024, 8192)?,
                "max_token_bytes" => {
                    b.max_token_bytes = bounded("max_token_bytes", v, 256, 1 << 20)?
                }
                other => return Err(ConfigError::new(other, "unknown field")),
            }
        }
        b.identities = Identities::from_json(
            "",
            obj.get("client_identities"),
            obj.get("require_identity"),
        )?;
        b.build()
    }

    /// The accepted `iss` values.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// The allowed algorithms.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Required scopes, if any.
    pub fn scopes(&self) -> Option<&Scopes> {
        self.scopes.as_ref()
    }

    /// The allowed clients, or `None` when any client is accepted.
    pub fn client_ids(&self) -> Option<&[String]> {
        self.client_ids.as_deref()
    }

    /// Clock skew tolerance in seconds.
    pub fn leeway_s(&self) -> u64 {
        self.leeway_s
    }

    /// Smallest RSA modulus accepted.
    pub fn min_rsa_bits(&self) -> usize {
        self.min_rsa_bits
    }

    /// Largest token accepted.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// The current revocation lists.
    pub fn revocation(&self) -> &Revocation {
        &self.revocation
    }

    /// mTLS binding mode.
    pub fn mtls_binding(&self) -> MtlsBinding {
        self.mtls_binding
    }

    /// The client certificate pins, if any.
    pub fn identities(&self) -> Option<&Identities> {
        self.identities.as_ref()
    }
}

#[derive(Clone, Debug)]
enum ClientIds {
    Unset,
    Any,
    List(Vec<String>),
}

/// Builder for [`Policy`]; [`PolicyBuilder::build`] validates.
#[derive(Clone, Debug)]
pub struct PolicyBuilder {
    issuers: Vec<String>,
    algorithms: Vec<Algorithm>,
    token_use: Option<TokenUse>,
    client_ids: ClientIds,
    scopes: Option<Scopes>,
    audience: Option<Vec<String>>,
    leeway_s: u64,
    max_token_age_s: Option<u64>,
    claim_rules: Vec<ClaimRule>,
    revocation: Revocation,
    mtls_binding: MtlsBinding,
    identities: Option<Identities>,
    min_rsa_bits: usize,
    max_token_bytes: usize,
}

impl PolicyBuilder {
    /// Also accept tokens whose `iss` is exactly `issuer`.
    pub fn also_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Exact algorithm allow-list (default `[RS256]`).
    pub fn algorithms<I: IntoIterator<Item = Algorithm>>(mut self, algs: I) -> Self {
        self.algorithms = algs.into_iter().collect();
        self
    }

    /// Required `token_use` (default `access`); `None` leaves the claim unchecked.
    pub fn token_use(mut self, token_use: Option<TokenUse>) -> Self {
        self.token_use = token_use;
        self
    }

    /// The `client_id` allow-list. Required unless [`Self::danger_accept_any_client_id`].
    pub fn client_ids<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.client_ids = ClientIds::List(ids.into_iter().map(Into::into).collect());
        self
    }

    /// Accept tokens of every client of the issuer. Every app client of the pool — including
    /// ones made for other services — then reaches this resource.
    pub fn danger_accept_any_client_id(mut self) -> Self {
        self.client_ids = ClientIds::Any;
        self
    }

    /// Scopes every request must carry (hosts may pass per-route scopes instead).
    pub fn require_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// Require `aud` to contain one of these (for issuers that set it; Cognito access tokens
    /// do not).
    pub fn audience<I: IntoIterator<Item = S>, S: Into<String>>(mut self, aud: I) -> Self {
        self.audience = Some(aud.into_iter().map(Into::into).collect());
        self
    }

    /// Clock skew tolerance for `exp`, `nbf`, `iat` (default 0).
    pub fn leeway_s(mut self, seconds: u64) -> Self {
        self.leeway_s = seconds;
        self
    }

    /// Refuse tokens whose `iat` is older than this.
    pub fn max_token_age_s(mut self, seconds: u64) -> Self {
        self.max_token_age_s = Some(seconds);
        self
    }

    /// Add a rule on a named claim.
    pub fn claim_rule(mut self, rule: ClaimRule) -> Self {
        self.claim_rules.push(rule);
        self
    }

    /// Initial revocation lists.
    pub fn revocation(mut self, revocation: Revocation) -> Self {
        self.revocation = revocation;
        self
    }

    /// RFC 8705 binding mode.
    pub fn mtls_binding(mut self, mode: MtlsBinding) -> Self {
        self.mtls_binding = mode;
        self
    }

    /// Pin clients to client certificates.
    pub fn identities(mut self, identities: Identities) -> Self {
        self.identities = Some(identities);
        self
    }

    /// Accept RSA keys down to `bits` (default 2048; below that is refused by `build`).
    pub fn min_rsa_bits(mut self, bits: usize) -> Self {
        self.min_rsa_bits = bits;
        self
    }

    /// Largest token accepted in bytes (default 16 KiB).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Validate and freeze.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the offending field.
    pub fn build(self) -> Result<Policy, ConfigError> {
        for (i, iss) in self.issuers.iter().enumerate() {
            if iss.is_empty() {
                return Err(ConfigError::new(
                    format!("issuers[{i}]"),
                    "must not be empty",
                ));
            }
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::new(
                "algorithms",
                "must list at least one algorithm",
            ));
        }
        let client_ids = match self.client_ids {
            ClientIds::Unset => {
                return Err(ConfigError::new(
                    "client_ids",
                    "is required: list the app clients allowed, or accept any client explicitly (null / danger_accept_any_client_id)",
                ))
            }
            ClientIds::Any => None,
            ClientIds::List(list) => {
                if list.is_empty() {
                    return Err(ConfigError::new(
                        "client_ids",
                        "is empty, so no token could pass; use null to accept any client",
                    ));
                }
                non_empty_items("client_ids", &list)?;
                Some(list)
            }
        };
        if let Some(aud) = &self.audience {
            if aud.is_empty() {
                return Err(ConfigError::new(
                    "audience",
                    "must list at least one audience, or be null",
                ));
            }
        }
        if let Some(scopes) = &self.scopes {
            non_empty_items("scopes", scopes.listed())?;
            if matches!(scopes, Scopes::Any(list) if list.is_empty()) {
                return Err(ConfigError::new(
                    "scopes.any",
                    "must list at least one scope",
                ));
            }
        }
        if !(1024..=8192).contains(&self.min_rsa_bits) {
            return Err(ConfigError::new(
                "min_rsa_bits",
                "must be between 1024 and 8192",
            ));
        }
        if self.leeway_s > 3600 {
            return Err(ConfigError::new("leeway_s", "must be at most 3600 seconds"));
        }
        Ok(Policy {
            issuers: self.issuers,
            algorithms: self.algorithms,
            token_use: self.token_use,
            client_ids,
            scopes: self.scopes,
            audience: self.audience,
            leeway_s: self.leeway_s,
            max_token_age_s: self.max_token_age_s,
            claim_rules: self.claim_rules,
            revocation: self.revocation,
            mtls_binding: self.mtls_binding,
            identities: self.identities,
            min_rsa_bits: self.min_rsa_bits,
            max_token_bytes: self.max_token_bytes,
        })
    }
}

/// An Amazon Cognito user pool id, split into region and pool.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct CognitoPool {
    region: String,
    pool_id: String,
}

impl CognitoPool {
    /// Parse `{region}_{id}`, e.g. `eu-west-1_AbCdEf123`, `us-gov-west-1_AbC`, `cn-north-1_AbC`.
    ///
    /// # Errors
    /// A [`ConfigError`] on `user_pool_id`.
    pub fn parse(user_pool_id: &str) -> Result<CognitoPool, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(
                "user_pool_id",
                format!(
                    "{} is not a Cognito user pool id ({{region}}_{{id}}, e.g. eu-west-1_AbCdEf123): {why}",
                    crate::json::quote(user_pool_id)
                ),
            )
        };
        let (region, id) = user_pool_id
            .split_once('_')
            .ok_or_else(|| bad("no underscore"))?;
        if id.is_empty() || id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad("the part after '_' must be letters and digits"));
        }
        let parts: Vec<&str> = region.split('-').collect();
        let well_formed = parts.len() >= 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
            && parts
                .last()
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
            && parts
                .first()
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_lowercase()));
        if !well_formed {
            return Err(bad("the region must look like eu-west-1"));
        }
        Ok(CognitoPool {
            region: region.to_string(),
            pool_id: user_pool_id.to_string(),
        })
    }

    /// The AWS region, e.g. `eu-west-1`.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The whole pool id.
    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    /// The DNS suffix of the region's partition: `amazonaws.com.cn` for China regions,
    /// `amazonaws.eu` for the European Sovereign Cloud, else `amazonaws.com` (GovCloud included).
    pub fn dns_suffix(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else if self.region.starts_with("eusc-") {
            "amazonaws.eu"
        } else {
            "amazonaws.com"
        }
    }

    /// `https://cognito-idp.{region}.{suffix}/{pool}`: the issuer Cognito puts in tokens.
    pub fn issuer(&self) -> String {
        format!(
            "https://cognito-idp.{}.{}/{}",
            self.region,
            self.dns_suffix(),
            self.pool_id
        )
    }

    /// `https://issuer-cognito-idp.{region}.{suffix}/{pool}`: the second issuer form.
    pub fn alternate_issuer(&self) -> String {
        format!(
            "https://issuer-cognito-idp.{}.{}/{}",
            self.region,
            self.dns_suffix(),
            self.pool_id
        )
    }

    /// Where the pool publishes its keys.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer())
    }
}

fn string_list(field: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    let items = v
        .as_array()
        .ok_or_else(|| ConfigError::new(field, "must be an array of strings"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .map(String::from)
                .ok_or_else(|| ConfigError::new(format!("{field}[{i}]"), "must be a string"))
        })
        .collect()
}

fn scope_list(field: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    let list = string_list(field, v)?;
    for (i, s) in list.iter().enumerate() {
        if s.is_empty() || s.contains(' ') {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                "a scope is one non-empty word without spaces",
            ));
        }
    }
    Ok(list)
}

fn non_empty_items(field: &str, items: &[String]) -> Result<(), ConfigError> {
    match items.iter().position(|s| s.is_empty()) {
        Some(i) => Err(ConfigError::new(
            format!("{field}[{i}]"),
            "must not be empty",
        )),
        None => Ok(()),
    }
}

fn seconds(field: &str, v: &Value) -> Result<u64, ConfigError> {
    v.as_u64()
        .ok_or_else(|| ConfigError::new(field, "must be a whole number of seconds ≥ 0"))
}

fn bounded(field: &str, v: &Value, min: u64, max: u64) -> Result<usize, ConfigError> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n as usize),
        _ => Err(ConfigError::new(
            field,
            format!("must be a whole number between {min} and {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cognito_pool_ids_give_both_issuer_forms_per_partition() {
        let p = CognitoPool::parse("eu-west-1_AbCdEf123").unwrap();
        assert_eq!(
            p.issuer(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
        );
        assert_eq!(
            p.alternate_issuer(),
            "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
        );
        assert_eq!(
            p.jwks_url(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/.well-known/jwks.json"
        );
        assert_eq!(
            CognitoPool::parse("cn-north-1_Abc").unwrap().issuer(),
            "https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_Abc"
        );
        assert_eq!(
            CognitoPool::parse("us-gov-west-1_Abc").unwrap().issuer(),
            "https://cognito-idp.us-gov-west-1.amazonaws.com/us-gov-west-1_Abc"
        );
        assert_eq!(
            CognitoPool::parse("eusc-de-east-1_Abc").unwrap().issuer(),
            "https://cognito-idp.eusc-de-east-1.amazonaws.eu/eusc-de-east-1_Abc"
        );
    }

    #[test]
    fn malformed_pool_ids_are_refused_naming_the_field() {
        for bad in [
            "",
            "eu-west-1",
            "eu-west-1_",
            "_Abc",
            "eu-west_Abc",
            "EU-west-1_Abc",
            "eu-west-1_Ab/c",
            "eu-west-1_Ab c",
            "eu-west-x_Abc",
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
        ] {
            let err = CognitoPool::parse(bad).unwrap_err();
            assert_eq!(err.field, "user_pool_id", "{bad:?}");
        }
    }

    #[test]
    fn client_ids_must_be_listed_or_explicitly_waived() {
        let err = Policy::builder("https://i").build().unwrap_err();
        assert_eq!(err.field, "client_ids");
        let err = Policy::builder("https://i")
            .client_ids(Vec::<String>::new())
            .build()
            .unwrap_err();
        assert_eq!(err.field, "client_ids");
        assert!(Policy::builder("https://i")
            .danger_accept_any_client_id()
            .build()
            .unwrap()
            .client_ids()
            .is_none());
    }

    #[test]
    fn json_policy_errors_name_the_field() {
        let cases = [
            (json!({"client_ids": ["a"]}), "issuers"),
            (json!({"issuers": [], "client_ids": ["a"]}), "issuers"),
            (
                json!({"issuers": ["i"], "client_ids": ["a"], "algorithms": ["HS256"]}),
                "algorithms[0]",
            ),
            (
                json!({"issuers": ["i"], "client_ids": ["a", 3]}),
                "client_ids[1]",
            ),
            (
                json!({"issuers": ["i"], "client_ids": ["a"], "scopes": {"all": ["a b"]}}),
                "scopes.all[0]",
            ),
            (
                json!({"issuers": ["i"], "client_ids": ["a"], "scopes": {"all": [], "any": []}}),
                "scopes",
            ),
            (
                json!({"issuers": ["i"], "client_ids": ["a"], "leeway_s": -1}),
                "leeway_s",
            ),
            (
                json!({"issuers": ["i"], "client_ids": ["a"], "claims": [{"claim": "x"}]}),
                "claims[0]",
            ),
            (
                json!({"issuers": ["i"], "client_ids": ["a"], "revocation": {"jti": "x"}}),
                "revocation.jti",
            ),
            (
                json!({"issuers": ["i"], "client_ids": ["a"], "mtls_binding": "on"}),
                "mtls_binding",
            ),
            (
                json!({"issuers": ["i"], "client_ids": ["a"], "clientIds": ["a"]}),
                "clientIds",
            ),
        ];
        for (policy, field) in cases {
            let err = Policy::from_json(&policy).unwrap_err();
            assert_eq!(err.field, field, "{policy}");
        }
    }

    #[test]
    fn contains_rule_matches_array_elements_and_words() {
        let rule = ClaimRule::Contains {
            claim: "groups".into(),
            value: "ops".into(),
        };
        assert!(rule.accepts(&json!(["dev", "ops"])));
        assert!(rule.accepts(&json!("dev ops")));
        assert!(!rule.accepts(&json!("devops")));
        assert!(!rule.accepts(&json!(["devops"])));
        assert!(!rule.accepts(&json!(7)));
    }
}
