//! The policy feed: a document every edge polls that changes, at runtime and everywhere at
//! once, what the configuration says about clients — the allow-list of each provider and its
//! revocations (token ids, whole clients, tokens issued before a cut-off) — each entry with an
//! optional `until` after which it drops out. Format `tokengate-feed` version 1, documented in
//! the crate README ("Policy feed").
//!
//! [`Feed`] is the sans-I/O state machine beside the key cache: the host asks [`Feed::poll`]
//! whether to fetch (single flight, `If-None-Match`), feeds back the answer, and the gate reads
//! [`Feed::status`] and the per-provider [`Overlay`]s. A document is optionally a JWS signed by
//! a key of a configured key set, verified with the same code as tokens, so that a cache or CDN
//! in between cannot un-revoke; an unsigned feed is an explicit configuration choice.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::claims::{Claims, Time};
use crate::json::{Object, Value};
use crate::jwks::KeySet;
use crate::keycache::max_age;
use crate::policy::{Algorithm, DEFAULT_MIN_RSA_BITS};
use crate::signature::{PureRust, SignatureBackend};
use crate::sorted::SortedMap;
use crate::token::{parse_object, Jws};

/// The `format` value of documents this version reads.
pub const FORMAT: u64 = 1;

/// What happens when the feed cannot be refreshed for longer than `max_stale_s`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum StalePolicy {
    /// Keep judging with the last good document (and the configuration); hosts count and log it.
    Keep,
    /// Refuse every request that needs a token with 503 `policy_unavailable`.
    FailClosed,
}

/// How documents are authenticated.
#[derive(Clone, Debug)]
pub enum FeedTrust {
    /// Documents are plain JSON and trusted as fetched (an explicit choice: anything between the
    /// feed and the edge can change them).
    Unsigned,
    /// Documents are compact JWS signed by one of these keys with one of these algorithms.
    Signed {
        /// The feed's verification keys (kid-selected, as for tokens).
        keys: KeySet,
        /// Accepted `alg` values.
        algorithms: Vec<Algorithm>,
    },
}

/// Tunables of a [`Feed`]. Durations in seconds.
#[derive(Clone, Debug)]
pub struct FeedConfig {
    /// Poll interval.
    pub poll_s: u64,
    /// A `Cache-Control: max-age` longer than `poll_s` delays the next poll up to this.
    pub max_poll_s: u64,
    /// After this long without a successful fetch (200 or 304) the feed is stale.
    pub max_stale_s: u64,
    /// What a stale (or never loaded) feed means.
    pub stale: StalePolicy,
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
    /// Most entries (allow-list and revocation entries together) accepted.
    pub max_entries: usize,
    /// A fetch not answered within this counts as failed.
    pub fetch_timeout_s: u64,
    /// How documents are authenticated.
    pub trust: FeedTrust,
    /// Seed for retry jitter.
    pub jitter_seed: u64,
}

/// One entry's validity: active while `now < until`, or always.
pub type Until = Option<f64>;

/// What the feed says about one provider.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overlay {
    /// When set, replaces the configured `client_ids` allow-list.
    pub client_ids: Option<SortedMap<Until>>,
    /// Revoked token ids.
    pub jti: SortedMap<Until>,
    /// Clients whose every token is revoked.
    pub revoked_clients: SortedMap<Until>,
    /// Per client: tokens issued before `at` are revoked (while the entry is active).
    pub issued_before: SortedMap<(f64, Until)>,
}

/// Why the feed's overlay ([`Overlay::allows_client`], [`Overlay::revoked`]) refuses a token.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum OverlayRefusal {
    /// The client is not on the feed's allow-list.
    ClientNotAllowed,
    /// The token, its client, or its client's older tokens are revoked.
    Revoked(&'static str),
}

impl Overlay {
    /// Whether the feed changes nothing for this provider.
    pub fn is_empty(&self) -> bool {
        self.client_ids.is_none()
            && self.jti.is_empty()
            && self.revoked_clients.is_empty()
            && self.issued_before.is_empty()
    }

    /// Whether the feed's allow-list replaces the configured one.
    pub fn has_client_ids(&self) -> bool {
        self.client_ids.is_some()
    }

    /// The allow-list check (pipeline step 13) when the feed sets one: `Some(true)` when
    /// `client` is on it at `now`.
    pub fn allows_client(&self, client: &str, now: f64) -> Option<bool> {
        let list = self.client_ids.as_ref()?;
        Some(list.get(client).is_some_and(|u| active(*u, now)))
    }

    /// The revocation check (pipeline step 14) at `now`.
    pub fn revoked(&self, claims: &Claims, now: f64) -> Option<&'static str> {
        if claims
            .jti()
            .and_then(|j| self.jti.get(j))
            .is_some_and(|u| active(*u, now))
        {
            return Some("the token (jti) was revoked by the policy feed");
        }
        let client = claims.client_id()?;
        if self
            .revoked_clients
            .get(client)
            .is_some_and(|u| active(*u, now))
        {
            return Some("the client's tokens were revoked by the policy feed");
        }
        if let Some((at, until)) = self.issued_before.get(client) {
            let before = match claims.time("iat") {
                Time::At(iat) => iat < *at,
                _ => true,
            };
            if before && active(*until, now) {
                return Some(
                    "the client's tokens issued before the cut-off were revoked by the policy feed",
                );
            }
        }
        None
    }

    /// Whether an entry that concerns this token starts or stops applying at a second in
    /// `(earliest, latest]` (a clock window, see [`crate::Request::within`]).
    pub fn changes_within(&self, claims: &Claims, earliest: u64, latest: u64) -> bool {
        let (e, l) = (earliest as f64, latest as f64);
        // Active while now < until: flips at ceil(until), inside the window when e < until <= l.
        let flips = |u: &Until| u.is_some_and(|u| e < u && u <= l);
        let client = claims.client_id();
        claims
            .jti()
            .and_then(|j| self.jti.get(j))
            .is_some_and(flips)
            || client
                .and_then(|c| self.revoked_clients.get(c))
                .is_some_and(flips)
            || client
                .and_then(|c| self.issued_before.get(c))
                .is_some_and(|(_, u)| flips(u))
            || match (&self.client_ids, client) {
                (Some(list), Some(c)) => list.get(c).is_some_and(flips),
                _ => false,
            }
    }
}

fn active(until: Until, now: f64) -> bool {
    until.is_none_or(|u| now < u)
}

/// A parsed, authenticated feed document.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedDocument {
    /// Increases with every change; a feed never goes back to a lower one.
    pub version: u64,
    /// When the producer made it (seconds).
    pub issued_at: f64,
    /// Per issuer (`iss` value, byte for byte).
    pub providers: SortedMap<Overlay>,
}

/// Why a feed answer was not taken (the last good document stays).
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum FeedError {
    /// The server answered with a status other than 200 or 304.
    Status(u16),
    /// Larger than `max_bytes`.
    TooLarge,
    /// More entries than `max_entries`.
    TooManyEntries,
    /// Not a document of this format; names the field.
    Invalid(String),
    /// A plain JSON document where a signed one is required.
    SignatureMissing,
    /// A signed document where the configuration trusts unsigned ones (no keys to check it).
    UnexpectedSignature,
    /// The signature, its `alg` or its `kid` does not check out.
    SignatureInvalid(&'static str),
    /// A `version` lower than the one in use.
    OlderVersion {
        /// The version in use.
        have: u64,
        /// The version offered.
        got: u64,
    },
    /// The host reported a transport failure or timeout.
    Transport,
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedError::Status(s) => write!(f, "policy feed answered HTTP {s}"),
            FeedError::TooLarge => f.write_str("policy feed document is larger than max_bytes"),
            FeedError::TooManyEntries => {
                f.write_str("policy feed document has more entries than max_entries")
            }
            FeedError::Invalid(why) => write!(f, "policy feed document is invalid: {why}"),
            FeedError::SignatureMissing => {
                f.write_str("policy feed document is not signed, and a signature is required")
            }
            FeedError::UnexpectedSignature => f.write_str(
                "policy feed document is signed, but no feed keys are configured (unsigned: true)",
            ),
            FeedError::SignatureInvalid(why) => {
                write!(f, "policy feed signature does not verify: {why}")
            }
            FeedError::OlderVersion { have, got } => write!(
                f,
                "policy feed offered version {got}, older than version {have} in use: ignored"
            ),
            FeedError::Transport => f.write_str("policy feed fetch failed or timed out"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FeedError {}

impl FeedDocument {
    /// Authenticate and parse a feed answer body.
    ///
    /// # Errors
    /// [`FeedError`] for anything but a well-formed document that `trust` accepts.
    pub fn from_body(
        body: &[u8],
        trust: &FeedTrust,
        max_bytes: usize,
        max_entries: usize,
    ) -> Result<FeedDocument, FeedError> {
        if body.len() > max_bytes {
            return Err(FeedError::TooLarge);
        }
        let text = core::str::from_utf8(body)
            .map_err(|_| FeedError::Invalid(String::from("not UTF-8")))?
            .trim_matches(|c: char| c.is_ascii_whitespace());
        let plain = text.starts_with('{');
        let payload: Vec<u8> = match (trust, plain) {
            (FeedTrust::Unsigned, true) => text.as_bytes().to_vec(),
            (FeedTrust::Unsigned, false) => return Err(FeedError::UnexpectedSignature),
            (FeedTrust::Signed { .. }, true) => return Err(FeedError::SignatureMissing),
            (FeedTrust::Signed { keys, algorithms }, false) => {
                verify_signed(text, keys, algorithms, max_bytes)?
            }
        };
        let obj = parse_object(&payload).map_err(|_| {
            FeedError::Invalid(String::from("not a JSON object (or a duplicate member)"))
        })?;
        parse_document(&obj, max_entries)
    }
}

fn verify_signed(
    text: &str,
    keys: &KeySet,
    algorithms: &[Algorithm],
    max_bytes: usize,
) -> Result<Vec<u8>, FeedError> {
    let jws = Jws::parse(text, max_bytes)
        .map_err(|_| FeedError::Invalid(String::from("neither a JSON object nor a compact JWS")))?;
    let alg = jws
        .header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .filter(|a| algorithms.contains(a))
        .ok_or(FeedError::SignatureInvalid("alg not allowed"))?;
    if jws.header.contains_key("crit") || jws.header.contains_key("b64") {
        return Err(FeedError::SignatureInvalid("crit or b64 in the header"));
    }
    let kid = jws
        .header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(FeedError::SignatureInvalid("no kid"))?;
    let key = keys
        .select(kid, alg, DEFAULT_MIN_RSA_BITS)
        .map_err(|_| FeedError::SignatureInvalid("no usable feed key has this kid"))?;
    if !PureRust.verify(key, alg, jws.signing_input.as_bytes(), &jws.signature) {
        return Err(FeedError::SignatureInvalid("bad signature"));
    }
    Ok(jws.payload)
}

fn parse_document(obj: &Object, max_entries: usize) -> Result<FeedDocument, FeedError> {
    let invalid = |field: &str, why: &str| FeedError::Invalid(format!("{field}: {why}"));
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "format" | "version" | "issued_at" | "providers"
        ) {
            return Err(invalid(key, "unknown field"));
        }
    }
    match obj.get("format").and_then(Value::as_u64) {
        Some(FORMAT) => {}
        Some(_) => return Err(invalid("format", "this verifier reads format 1")),
        None => return Err(invalid("format", "is required: 1")),
    }
    let version = obj
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("version", "is required: a non-negative integer"))?;
    let issued_at = obj
        .get("issued_at")
        .and_then(Value::as_f64)
        .ok_or_else(|| invalid("issued_at", "is required: seconds since the epoch"))?;
    let mut budget = max_entries;
    let mut providers = SortedMap::new();
    match obj.get("providers") {
        None => {}
        Some(Value::Object(map)) => {
            // In name order: each insert appends.
            for (issuer, v) in map {
                let at = format!("providers[{}]", crate::json::quote(issuer));
                providers.insert(issuer.clone(), overlay(&at, v, &mut budget)?);
            }
        }
        Some(_) => {
            return Err(invalid(
                "providers",
                "must be an object of issuer → entries",
            ))
        }
    }
    Ok(FeedDocument {
        version,
        issued_at,
        providers,
    })
}

fn overlay(at: &str, v: &Value, budget: &mut usize) -> Result<Overlay, FeedError> {
    let invalid = |field: String, why: &str| FeedError::Invalid(format!("{field}: {why}"));
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(String::from(at), "must be an object"))?;
    let mut out = Overlay::default();
    for (key, v) in obj {
        let field = format!("{at}.{key}");
        match key.as_str() {
            "client_ids" => out.client_ids = Some(entries(&field, v, budget)?),
            "revoke" => {
                let r = v
                    .as_object()
                    .ok_or_else(|| invalid(field.clone(), "must be an object"))?;
                for (rk, rv) in r {
                    let rfield = format!("{field}.{rk}");
                    match rk.as_str() {
                        "jti" => out.jti = entries(&rfield, rv, budget)?,
                        "client_ids" => out.revoked_clients = entries(&rfield, rv, budget)?,
                        "issued_before" => out.issued_before = cut_offs(&rfield, rv, budget)?,
                        _ => return Err(invalid(rfield, "unknown field")),
                    }
                }
            }
            _ => return Err(invalid(field, "unknown field")),
        }
    }
    Ok(out)
}

/// `["id", {"id": "id2", "until": seconds}]`.
fn entries(field: &str, v: &Value, budget: &mut usize) -> Result<SortedMap<Until>, FeedError> {
    let list = v.as_array().ok_or_else(|| {
        FeedError::Invalid(format!("{field}: must be an array of ids or {{id, until}}"))
    })?;
    take(budget, list.len())?;
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let (id, until) = match e {
            Value::String(s) => (s.clone(), None),
            Value::Object(o) => {
                for k in o.keys() {
                    if k != "id" && k != "until" {
                        return Err(FeedError::Invalid(format!(
                            "{field}[{i}].{k}: unknown field"
                        )));
                    }
                }
                let id = o.get("id").and_then(Value::as_str).ok_or_else(|| {
                    FeedError::Invalid(format!("{field}[{i}].id: is required: a string"))
                })?;
                (
                    String::from(id),
                    until_of(&format!("{field}[{i}]"), o.get("until"))?,
                )
            }
            _ => {
                return Err(FeedError::Invalid(format!(
                    "{field}[{i}]: must be a string or {{id, until}}"
                )))
            }
        };
        if id.is_empty() {
            return Err(FeedError::Invalid(format!(
                "{field}[{i}]: must not be empty"
            )));
        }
        out.push((id, until));
    }
    // The same id twice: the longest-lived entry wins (never the shorter one).
    Ok(SortedMap::from_entries(out, |kept, until| {
        *kept = later(*kept, until);
    }))
}

/// `{"client": seconds, "client2": {"at": seconds, "until": seconds}}`.
fn cut_offs(
    field: &str,
    v: &Value,
    budget: &mut usize,
) -> Result<SortedMap<(f64, Until)>, FeedError> {
    let map = v.as_object().ok_or_else(|| {
        FeedError::Invalid(format!(
            "{field}: must be an object of client_id → seconds or {{at, until}}"
        ))
    })?;
    take(budget, map.len())?;
    let mut out = SortedMap::new();
    // In name order: each insert appends.
    for (client, e) in map {
        let at_field = format!("{field}[{}]", crate::json::quote(client));
        let entry = match e {
            Value::Number(n) => (
                n.as_f64()
                    .ok_or_else(|| FeedError::Invalid(format!("{at_field}: must be seconds")))?,
                None,
            ),
            Value::Object(o) => {
                for k in o.keys() {
                    if k != "at" && k != "until" {
                        return Err(FeedError::Invalid(format!("{at_field}.{k}: unknown field")));
                    }
                }
                let at = o.get("at").and_then(Value::as_f64).ok_or_else(|| {
                    FeedError::Invalid(format!("{at_field}.at: is required: seconds"))
                })?;
                (at, until_of(&at_field, o.get("until"))?)
            }
            _ => {
                return Err(FeedError::Invalid(format!(
                    "{at_field}: must be seconds or {{at, until}}"
                )))
            }
        };
        if !entry.0.is_finite() {
            return Err(FeedError::Invalid(format!("{at_field}: must be finite")));
        }
        out.insert(client.clone(), entry);
    }
    Ok(out)
}

fn until_of(field: &str, v: Option<&Value>) -> Result<Until, FeedError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() => Ok(Some(t)),
            _ => Err(FeedError::Invalid(format!(
                "{field}.until: must be seconds since the epoch"
            ))),
        },
    }
}

fn later(a: Until, b: Until) -> Until {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(x), Some(y)) => Some(if x > y { x } else { y }),
    }
}

fn take(budget: &mut usize, n: usize) -> Result<(), FeedError> {
    *budget = budget.checked_sub(n).ok_or(FeedError::TooManyEntries)?;
    Ok(())
}

/// A fetch the host should start now (one at a time).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct FeedFetch {
    /// Send as `If-None-Match` (the `ETag` of the document in use).
    pub if_none_match: Option<String>,
}

/// What an answer changed.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FeedUpdate {
    /// A new version is in use: the overlays changed.
    Applied {
        /// Its version.
        version: u64,
    },
    /// `304 Not Modified`, or the same version again: nothing changed but the feed is fresh.
    Unchanged,
}

/// Where the feed stands at a given time.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum FeedStatus {
    /// No document yet and the first fetch is pending or under way.
    Loading,
    /// A document fetched (or confirmed by 304) within `max_stale_s`.
    Fresh,
    /// A document older than `max_stale_s`, or none after a failed fetch: the stale policy
    /// applies.
    Stale,
}

/// The feed state machine.
#[derive(Clone, Debug)]
pub struct Feed {
    config: FeedConfig,
    document: Option<FeedDocument>,
    etag: Option<String>,
    fresh_at: u64,
    next_poll: u64,
    in_flight_since: Option<u64>,
    failures: u32,
    last_error: Option<FeedError>,
    rng: u64,
}

impl Feed {
    /// A feed that has nothing yet and wants its first fetch at once.
    pub fn new(config: FeedConfig) -> Feed {
        let rng = config.jitter_seed | 1;
        Feed {
            config,
            document: None,
            etag: None,
            fresh_at: 0,
            next_poll: 0,
            in_flight_since: None,
            failures: 0,
            last_error: None,
            rng,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FeedConfig {
        &self.config
    }

    /// The document in use.
    pub fn document(&self) -> Option<&FeedDocument> {
        self.document.as_ref()
    }

    /// Its version.
    pub fn version(&self) -> Option<u64> {
        self.document.as_ref().map(|d| d.version)
    }

    /// Why the last answer was not taken, if it was not.
    pub fn last_error(&self) -> Option<&FeedError> {
        self.last_error.as_ref()
    }

    /// When the document in use was last fetched or confirmed (0: never).
    pub fn fresh_at(&self) -> u64 {
        self.fresh_at
    }

    /// Should the host fetch now? Marks the fetch in flight when it says yes.
    pub fn poll(&mut self, now: u64) -> Option<FeedFetch> {
        if let Some(since) = self.in_flight_since {
            if now < since.saturating_add(self.config.fetch_timeout_s) {
                return None;
            }
            self.on_failure(now);
        }
        if now < self.next_poll {
            return None;
        }
        self.in_flight_since = Some(now);
        Some(FeedFetch {
            if_none_match: self.document.as_ref().and(self.etag.clone()),
        })
    }

    /// Whether a fetch is under way or due at the next poll.
    pub fn fetch_pending(&self, now: u64) -> bool {
        self.in_flight_since.is_some() || now >= self.next_poll
    }

    /// The host's fetch finished with an HTTP answer.
    ///
    /// # Errors
    /// [`FeedError`] when the answer was not taken; the document in use stays.
    pub fn on_response(
        &mut self,
        now: u64,
        status: u16,
        etag: Option<&str>,
        cache_control: Option<&str>,
        body: &[u8],
    ) -> Result<FeedUpdate, FeedError> {
        let result = self.take(now, status, etag, body);
        match &result {
            Ok(_) => {
                self.in_flight_since = None;
                self.failures = 0;
                self.last_error = None;
                // Records shared between Envoy workers may arrive out of order: never backwards.
                self.fresh_at = self.fresh_at.max(now);
                let interval = cache_control
                    .and_then(max_age)
                    .map_or(self.config.poll_s, |a| {
                        a.clamp(
                            self.config.poll_s,
                            self.config.max_poll_s.max(self.config.poll_s),
                        )
                    });
                self.next_poll = now.saturating_add(interval);
            }
            Err(FeedError::OlderVersion { .. }) => {
                // The server is reachable but lagging (a cache behind the producer): the
                // document in use stays, nothing is confirmed, and polling goes on as usual.
                self.in_flight_since = None;
                self.next_poll = now.saturating_add(self.config.poll_s);
                self.last_error = result.clone().err();
            }
            Err(e) => {
                let e = e.clone();
                self.on_failure(now);
                self.last_error = Some(e);
            }
        }
        result
    }

    /// The host's fetch failed (connection error, timeout).
    pub fn on_failure(&mut self, now: u64) {
        self.in_flight_since = None;
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(FeedError::Transport);
        let cap = self.config.poll_s.max(30);
        let exp = self.failures.saturating_sub(1).min(30);
        let backoff = 1u64.saturating_mul(1u64 << exp).min(cap).max(1);
        let half = backoff / 2;
        let jitter = if half > 0 {
            self.next_random() % (half + 1)
        } else {
            0
        };
        self.next_poll = now.saturating_add(backoff - half + jitter);
    }

    /// Where the feed stands at `now`.
    pub fn status(&self, now: u64) -> FeedStatus {
        match &self.document {
            Some(_) if now <= self.fresh_at.saturating_add(self.config.max_stale_s) => {
                FeedStatus::Fresh
            }
            Some(_) => FeedStatus::Stale,
            None if self.failures == 0 => FeedStatus::Loading,
            None => FeedStatus::Stale,
        }
    }

    /// The overlay for a provider whose issuers are `issuers` (the first issuer listed in the
    /// document wins).
    pub fn overlay_for(&self, issuers: &[String]) -> Option<&Overlay> {
        let doc = self.document.as_ref()?;
        issuers.iter().find_map(|i| doc.providers.get(i))
    }

    fn take(
        &mut self,
        now: u64,
        status: u16,
        etag: Option<&str>,
        body: &[u8],
    ) -> Result<FeedUpdate, FeedError> {
        let _ = now;
        match status {
            304 if self.document.is_some() => return Ok(FeedUpdate::Unchanged),
            200 => {}
            other => return Err(FeedError::Status(other)),
        }
        let doc = FeedDocument::from_body(
            body,
            &self.config.trust,
            self.config.max_bytes,
            self.config.max_entries,
        )?;
        if let Some(have) = self.version() {
            if doc.version < have {
                return Err(FeedError::OlderVersion {
                    have,
                    got: doc.version,
                });
            }
            if doc.version == have {
                self.etag = etag.map(String::from);
                return Ok(FeedUpdate::Unchanged);
            }
        }
        let version = doc.version;
        self.document = Some(doc);
        self.etag = etag.map(String::from);
        Ok(FeedUpdate::Applied { version })
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

impl fmt::Display for FeedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeedStatus::Loading => "loading",
            FeedStatus::Fresh => "fresh",
            FeedStatus::Stale => "stale",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};

    fn config(trust: FeedTrust) -> FeedConfig {
        FeedConfig {
            poll_s: 10,
            max_poll_s: 60,
            max_stale_s: 600,
            stale: StalePolicy::Keep,
            max_bytes: 4096,
            max_entries: 20,
            fetch_timeout_s: 3,
            trust,
            jitter_seed: 7,
        }
    }

    fn doc(version: u64) -> Vec<u8> {
        json!({
            "format": 1, "version": version, "issued_at": 1_767_268_800,
            "providers": {"https://iss": {
                "client_ids": ["new-client", {"id": "old-client", "until": 1_767_269_000}],
                "revoke": {
                    "jti": ["j1", {"id": "j2", "until": 1_767_270_000}],
                    "client_ids": [{"id": "breached", "until": 1_767_300_000}],
                    "issued_before": {"rotated": 1_767_268_000, "other": {"at": 5, "until": 9}}
                }
            }}
        })
        .to_string()
        .into_bytes()
    }

    fn key() -> (SigningKey, serde_json::Value) {
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "feed-1", "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        });
        (sk, jwk)
    }

    fn signed_trust() -> FeedTrust {
        let (_, jwk) = key();
        FeedTrust::Signed {
            keys: KeySet::from_value(&json!({"keys": [jwk]}), Default::default()).unwrap(),
            algorithms: vec![Algorithm::Es256],
        }
    }

    fn sign(payload: &[u8], kid: &str) -> Vec<u8> {
        let (sk, _) = key();
        let h = URL_SAFE_NO_PAD
            .encode(json!({"alg": "ES256", "kid": kid, "typ": "tokengate-feed+jwt"}).to_string());
        let p = URL_SAFE_NO_PAD.encode(payload);
        let input = format!("{h}.{p}");
        let sig: Signature = sk.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes())).into_bytes()
    }

    fn parse(body: &[u8], trust: &FeedTrust) -> Result<FeedDocument, FeedError> {
        FeedDocument::from_body(body, trust, 4096, 20)
    }

    #[test]
    fn a_document_gives_each_issuer_its_overlay() {
        let d = parse(&doc(3), &FeedTrust::Unsigned).unwrap();
        assert_eq!(d.version, 3);
        let o = d.providers.get("https://iss").unwrap();
        assert_eq!(o.allows_client("new-client", 1.0e9), Some(true));
        assert_eq!(o.allows_client("old-client", 1_767_268_999.0), Some(true));
        assert_eq!(
            o.allows_client("old-client", 1_767_269_000.0),
            Some(false),
            "until is exclusive"
        );
        assert_eq!(o.allows_client("stranger", 1.0e9), Some(false));
        let claims = |v: Value| {
            let Value::Object(m) = v else { unreachable!() };
            Claims::new(m)
        };
        let now = 1_767_268_800.0;
        assert!(o.revoked(&claims(json!({"jti": "j1"})), now).is_some());
        assert!(o
            .revoked(&claims(json!({"jti": "j2"})), 1_767_270_000.0)
            .is_none());
        assert!(o
            .revoked(&claims(json!({"client_id": "breached"})), now)
            .is_some());
        assert!(o
            .revoked(
                &claims(json!({"client_id": "rotated", "iat": 1_767_267_999})),
                now
            )
            .is_some());
        assert!(o
            .revoked(
                &claims(json!({"client_id": "rotated", "iat": 1_767_268_000})),
                now
            )
            .is_none());
        assert!(
            o.revoked(&claims(json!({"client_id": "other", "iat": 1})), now)
                .is_none(),
            "expired cut-off"
        );
        assert!(o.changes_within(
            &claims(json!({"client_id": "old-client"})),
            1_767_268_990,
            1_767_269_010
        ));
        assert!(!o.changes_within(
            &claims(json!({"client_id": "old-client"})),
            1_767_269_000,
            1_767_269_010
        ));
    }

    #[test]
    fn bad_documents_are_refused_with_the_field_named() {
        let u = FeedTrust::Unsigned;
        let bad = |v: Value| parse(v.to_string().as_bytes(), &u).unwrap_err();
        assert_eq!(
            parse(b"{nope", &u).unwrap_err(),
            FeedError::Invalid("not a JSON object (or a duplicate member)".into())
        );
        assert!(
            matches!(bad(json!({"version": 1, "issued_at": 1})), FeedError::Invalid(w) if w.starts_with("format"))
        );
        assert!(
            matches!(bad(json!({"format": 2, "version": 1, "issued_at": 1})), FeedError::Invalid(w) if w.starts_with("format"))
        );
        assert!(
            matches!(bad(json!({"format": 1, "version": -1, "issued_at": 1})), FeedError::Invalid(w) if w.starts_with("version"))
        );
        assert!(
            matches!(bad(json!({"format": 1, "version": 1, "issued_at": 1, "extra": 1})), FeedError::Invalid(w) if w.starts_with("extra"))
        );
        assert!(matches!(
            bad(json!({"format": 1, "version": 1, "issued_at": 1, "providers": {"i": {"revoke": {"jti": [3]}}}})),
            FeedError::Invalid(w) if w.starts_with("providers[\"i\"].revoke.jti[0]")
        ));
        assert!(matches!(
            bad(json!({"format": 1, "version": 1, "issued_at": 1, "providers": {"i": {"client_ids": [{"id": "a", "until": "soon"}]}}})),
            FeedError::Invalid(w) if w.contains("until")
        ));
        let many: Vec<String> = (0..21).map(|i| format!("c{i}")).collect();
        assert_eq!(
            bad(
                json!({"format": 1, "version": 1, "issued_at": 1, "providers": {"i": {"client_ids": many}}})
            ),
            FeedError::TooManyEntries
        );
        assert_eq!(
            FeedDocument::from_body(&doc(1), &u, 10, 20).unwrap_err(),
            FeedError::TooLarge
        );
        assert_eq!(
            parse(b"{\"format\":1,\"format\":1}", &u).unwrap_err(),
            FeedError::Invalid("not a JSON object (or a duplicate member)".into())
        );
    }

    #[test]
    fn signatures_are_checked_like_tokens() {
        let t = signed_trust();
        assert_eq!(parse(&sign(&doc(4), "feed-1"), &t).unwrap().version, 4);
        assert_eq!(parse(&doc(4), &t).unwrap_err(), FeedError::SignatureMissing);
        assert_eq!(
            parse(&sign(&doc(4), "feed-1"), &FeedTrust::Unsigned).unwrap_err(),
            FeedError::UnexpectedSignature
        );
        assert!(matches!(
            parse(&sign(&doc(4), "other"), &t).unwrap_err(),
            FeedError::SignatureInvalid(_)
        ));
        // A document from the cache with its payload swapped for an older or emptier one.
        let good = String::from_utf8(sign(&doc(4), "feed-1")).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(doc(5)),
            parts[2]
        );
        assert_eq!(
            parse(swapped.as_bytes(), &t).unwrap_err(),
            FeedError::SignatureInvalid("bad signature")
        );
        let es_only = FeedTrust::Signed {
            keys: match &t {
                FeedTrust::Signed { keys, .. } => keys.clone(),
                FeedTrust::Unsigned => unreachable!(),
            },
            algorithms: vec![Algorithm::Rs256],
        };
        assert_eq!(
            parse(good.as_bytes(), &es_only).unwrap_err(),
            FeedError::SignatureInvalid("alg not allowed")
        );
    }

    #[test]
    fn the_machine_polls_once_at_a_time_uses_etags_and_never_goes_back() {
        let mut f = Feed::new(config(FeedTrust::Unsigned));
        assert_eq!(f.status(100), FeedStatus::Loading);
        assert_eq!(
            f.poll(100),
            Some(FeedFetch {
                if_none_match: None
            })
        );
        assert_eq!(f.poll(100), None, "single flight");
        assert_eq!(
            f.on_response(101, 200, Some("\"v5\""), None, &doc(5)),
            Ok(FeedUpdate::Applied { version: 5 })
        );
        assert_eq!(f.status(101), FeedStatus::Fresh);
        assert_eq!(f.poll(105), None);
        assert_eq!(
            f.poll(111),
            Some(FeedFetch {
                if_none_match: Some("\"v5\"".into())
            })
        );
        assert_eq!(
            f.on_response(112, 304, Some("\"v5\""), None, b""),
            Ok(FeedUpdate::Unchanged)
        );
        assert_eq!(f.fresh_at(), 112);
        assert!(f.poll(122).is_some());
        assert_eq!(
            f.on_response(122, 200, None, None, &doc(4)),
            Err(FeedError::OlderVersion { have: 5, got: 4 })
        );
        assert_eq!(f.version(), Some(5));
        assert!(f.poll(132).is_some());
        assert_eq!(
            f.on_response(132, 200, None, Some("max-age=45"), &doc(6)),
            Ok(FeedUpdate::Applied { version: 6 })
        );
        assert_eq!(
            f.poll(170),
            None,
            "max-age 45 > poll_s delays the next poll"
        );
        assert!(f.poll(177).is_some());
        assert_eq!(
            f.on_response(177, 500, None, None, b""),
            Err(FeedError::Status(500))
        );
        assert_eq!(f.version(), Some(6), "a failed refresh keeps the document");
        assert_eq!(f.status(132 + 600), FeedStatus::Fresh);
        assert_eq!(f.status(132 + 601), FeedStatus::Stale);
    }

    #[test]
    fn a_first_load_that_fails_is_stale_not_loading_and_retries_with_backoff() {
        let mut f = Feed::new(config(FeedTrust::Unsigned));
        assert!(f.poll(0).is_some());
        f.on_failure(1);
        assert_eq!(f.status(1), FeedStatus::Stale);
        assert_eq!(f.poll(1), None);
        assert!(f.poll(3).is_some());
        assert_eq!(f.poll(3), None);
        // An unanswered fetch counts as failed after the timeout, then backs off again.
        assert_eq!(f.poll(20), None);
        assert_eq!(f.last_error(), Some(&FeedError::Transport));
        assert!(f.poll(25).is_some());
    }

    proptest::proptest! {
        #[test]
        fn answers_in_any_order_never_end_on_an_older_version(
            versions in proptest::collection::vec(0u64..20, 1..12),
        ) {
            let mut f = Feed::new(config(FeedTrust::Unsigned));
            let mut best: Option<u64> = None;
            let mut now = 0;
            for v in versions {
                now += 100;
                let _ = f.poll(now);
                let _ = f.on_response(now, 200, None, None, &doc(v));
                best = Some(best.map_or(v, |b| b.max(v)));
                proptest::prop_assert_eq!(f.version(), best);
            }
        }
    }
}
