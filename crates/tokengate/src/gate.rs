//! The request gate: the whole decision about one HTTP request, without I/O. A host hands in
//! what it received (method, request target, every `Authorization` value, the client
//! certificate's digest, the time) and copies out what comes back: allow with the headers to
//! set, or the full answer to send (status, headers, body). Method and path rules, bearer
//! parsing, route choice, the clock rule and the challenge text all live here, so every host
//! answers the same request the same way (`tests/vectors/http`).

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::audit::{Decision, JsonScalar, Verdict};
use crate::bearer::bearer;
use crate::claims::Claims;
use crate::config::{CertificateSource, Config, Crypto, Mode};
use crate::error::{ConfigError, Error, ErrorCode};
use crate::feed::{
    Feed, FeedConfig, FeedError, FeedFetch, FeedStatus, FeedUpdate, Overlay, StalePolicy,
};
use crate::json::{self, Value};
use crate::keycache::KeyCache;
use crate::peer::{Peer, PeerCache};
use crate::policy::Scopes;
use crate::ratelimit::bucket_key;
use crate::route::{Access, DefaultAccess, Rule};
use crate::signature::{PureRust, SignatureBackend};
use crate::target;
use crate::verify::{PendingSignature, Provider, Request, Step, Verified, Verifier};

/// Seconds a client is asked to wait after a 503 `jwks_unavailable` or `policy_unavailable`.
pub const JWKS_RETRY_AFTER_S: u64 = 5;

/// The time a request is judged at. The core's clock rule: a request is judged at the current
/// whole second, `floor(unix time)`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Clock {
    /// The exact current second.
    At(u64),
    /// The current second is somewhere in `[earliest, latest]` (a host that reads its clock on
    /// a timer). When that uncertainty could change the verdict, the gate answers
    /// [`Outcome::ReadClock`] instead of guessing.
    Within {
        /// A second the request is certainly not earlier than.
        earliest: u64,
        /// A second the request is certainly not later than.
        latest: u64,
    },
}

impl Clock {
    /// The second of a Unix time in milliseconds.
    pub fn from_unix_ms(ms: u64) -> Clock {
        Clock::At(ms / 1000)
    }

    /// The second of a Unix time in (fractional) seconds, as JavaScript hosts have it;
    /// negative or non-finite values are 0.
    pub fn from_unix_seconds(seconds: f64) -> Clock {
        Clock::At(if seconds.is_finite() && seconds > 0.0 {
            seconds as u64
        } else {
            0
        })
    }

    /// A clock last read at `read_ms` that is read again at most `uncertainty_ms` later.
    pub fn since_read(read_ms: u64, uncertainty_ms: u64) -> Clock {
        Clock::Within {
            earliest: read_ms / 1000,
            latest: read_ms.saturating_add(uncertainty_ms) / 1000,
        }
    }

    /// The second everything but the time checks is judged at.
    pub fn earliest(self) -> u64 {
        match self {
            Clock::At(s) => s,
            Clock::Within { earliest, .. } => earliest,
        }
    }

    fn request<'a>(self) -> Request<'a> {
        match self {
            Clock::At(s) => Request::at(s),
            Clock::Within { earliest, latest } => Request::within(earliest, latest),
        }
    }
}

/// What a host knows about a request when it asks.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    /// The method as received, any case.
    pub method: &'a str,
    /// The request target (`:path`) as received, query included.
    pub target: &'a str,
    /// Every `Authorization` field value, in order; empty when none was sent.
    pub authorization: &'a [&'a [u8]],
    /// The client certificate of the connection, as the host's TLS stack reports it (used with
    /// `client_certificate.source: "connection"`, the default).
    pub peer: Option<&'a Peer>,
    /// Every value of the header [`Gate::certificate_header`] names, when the configuration
    /// takes the certificate from a trusted proxy's header (empty otherwise).
    pub client_cert: &'a [&'a [u8]],
    /// Scopes the host's own routing requires on top of the matched rule's (a Node handler
    /// that calls `authorize(req, {scope})`); `None` for hosts that route only by the rules.
    pub scopes: Option<&'a Scopes>,
    /// The time.
    pub clock: Clock,
    /// Build the full audit record (claims, hashed `jti`); without it the record holds only
    /// the verdict, the code and the route.
    pub audit: bool,
}

/// The local answer to a refused request, rendered once here for every host.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The stable code.
    pub code: ErrorCode,
    /// Header names (lower case) and values: `content-type`, `cache-control`, then
    /// `www-authenticate` and `retry-after` where the code has them.
    pub headers: Vec<(&'static str, String)>,
    /// `{"error": "<code>", "message": "<text>"}`.
    pub body: String,
}

impl Response {
    /// The value of a header of the answer.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request let through.
#[derive(Debug)]
pub struct Allowed {
    /// Headers to set on the request to the origin (after removing every name in
    /// [`Gate::remove_headers`], which hosts do on every request).
    pub forward: Vec<(String, String)>,
    /// Remove `Authorization` before the request goes on.
    pub strip_authorization: bool,
    /// When a rate limit is configured: the bucket this request draws from. The host takes a
    /// token (see [`crate::ratelimit::take`]) and, when none is left, answers
    /// [`Gate::rate_limited`].
    pub rate_key: Option<String>,
    /// The verified claims (`None` on anonymous routes).
    pub claims: Option<Arc<Claims>>,
    /// The audit record.
    pub record: Decision,
    /// In report mode, the answer the request would have had: the request still goes on.
    pub would_deny: Option<Response>,
    /// Whether a host may give this same allow again, without asking the gate, to requests
    /// with the same method, target and `Authorization` values for as long as its clock
    /// reading, keys and policy feed stay as they were: an enforced allow, judged on a clock
    /// interval ([`Clock::Within`]: an answer at an exact second holds for that second only),
    /// without per-call scopes, under a configuration where nothing else moves the answer
    /// ([`Gate::allows_repeat_for_identical_requests`]).
    pub repeatable: bool,
}

/// A request refused.
#[derive(Clone, Debug)]
pub struct Denied {
    /// The answer to send.
    pub response: Response,
    /// What went wrong, for operators (never the token).
    pub message: String,
    /// The claims, when the signature had been verified (policy refusals).
    pub claims: Option<Arc<Claims>>,
    /// The audit record.
    pub record: Decision,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Let it through.
    Allow(Allowed),
    /// Answer with `Denied::response`.
    Deny(Denied),
    /// A JWKS fetch may change the verdict: run the fetches [`Verifier::poll`] asks for, then
    /// decide again. The denial is the answer if the wait ends without new keys
    /// ([`Gate::give_up`]).
    Wait(Denied),
    /// The clock's uncertainty straddles a time boundary of this token: read the exact time and
    /// decide again with [`Clock::At`].
    ReadClock,
}

/// [`Gate::begin`]'s answer for hosts that check signatures with their own crypto.
#[derive(Debug)]
pub enum Begin {
    /// Decided without a signature check.
    Done(Outcome),
    /// Check `pending.signature()`, then call [`Gate::finish`].
    Signature(PendingRequest),
}

/// A signature check for a host's own crypto ([`Gate::host_check`]): SHA-256 over
/// `PendingSignature::signing_input`, with these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCheck {
    /// The key, a DER `SubjectPublicKeyInfo`.
    pub key: Vec<u8>,
    /// The signature: PKCS#1 v1.5 octets (RS256) or a DER `ECDSA-Sig-Value` (ES256).
    pub signature: Vec<u8>,
}

/// A request waiting for its token's signature check.
#[derive(Debug)]
pub struct PendingRequest {
    signature: PendingSignature,
    rule: Option<usize>,
    extra: Option<Scopes>,
    peer: Option<Peer>,
    clock: Clock,
    audit: bool,
}

impl PendingRequest {
    /// What must be checked.
    pub fn signature(&self) -> &PendingSignature {
        &self.signature
    }
}

/// A configured gate: the verifier and the rules around it.
#[derive(Debug)]
pub struct Gate<B = PureRust> {
    config: Config,
    verifier: Verifier<B>,
    remove_headers: Vec<String>,
    needs_peer: bool,
    feed: Option<Feed>,
    /// Certificates read from trusted headers.
    peers: PeerCache,
}

impl Gate<PureRust> {
    /// A gate for a validated configuration, with the pure-Rust signature backend. Inline keys
    /// serve at once; remote sources wait for the host's fetches. `now` dates inline keys that
    /// are also refreshed remotely; `jitter_seed` spreads the retries of many instances.
    ///
    /// # Errors
    /// A [`ConfigError`] on `providers` when there are none (which [`Config::from_json`]
    /// already refuses).
    pub fn new(config: Config, now: u64, jitter_seed: u64) -> Result<Gate<PureRust>, ConfigError> {
        Gate::with_backend(config, now, jitter_seed, PureRust)
    }

    /// Parse a configuration and build its gate.
    ///
    /// # Errors
    /// The first configuration mistake, naming its field.
    pub fn from_json(bytes: &[u8], now: u64, jitter_seed: u64) -> Result<Gate, ConfigError> {
        Gate::new(Config::from_json(bytes)?, now, jitter_seed)
    }
}

impl<B: SignatureBackend> Gate<B> {
    /// [`Gate::new`] with a custom signature backend.
    ///
    /// # Errors
    /// As [`Gate::new`].
    pub fn with_backend(
        config: Config,
        now: u64,
        jitter_seed: u64,
        backend: B,
    ) -> Result<Gate<B>, ConfigError> {
        let providers: Vec<Provider> = config
            .providers
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let keys = match (&spec.source, &spec.inline) {
                    (None, Some(keys)) => KeyCache::fixed(keys.clone()),
                    (None, None) => KeyCache::fixed(crate::jwks::KeySet::default()),
                    (Some(_), inline) => {
                        let mut cache = KeyCache::remote(crate::keycache::KeyCacheConfig {
                            jitter_seed: jitter_seed
                                .wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
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
        let verifier = Verifier::with_backend(providers, backend)?
            .with_token_cache(config.token_cache.capacity, config.token_cache.max_ttl_s)
            .with_signature_budget(config.signature_checks_per_s);
        let remove_headers = config
            .forward
            .iter()
            .map(|f| f.header.clone())
            .chain(
                config
                    .certificate_source
                    .untrusted_headers()
                    .map(String::from),
            )
            .collect();
        let needs_peer = config.needs_peer_certificate();
        let feed = config.feed.as_ref().map(|f| {
            Feed::new(FeedConfig {
                jitter_seed: jitter_seed.rotate_left(17) ^ 0x5EED_F00D,
                ..f.feed.clone()
            })
        });
        Ok(Gate {
            config,
            verifier,
            remove_headers,
            needs_peer,
            peers: PeerCache::default(),
            feed,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The verifier (to drive key caches, verify bare tokens, replace revocations).
    pub fn verifier(&self) -> &Verifier<B> {
        &self.verifier
    }

    /// The verifier, mutable.
    pub fn verifier_mut(&mut self) -> &mut Verifier<B> {
        &mut self.verifier
    }

    /// The policy feed, when one is configured.
    pub fn feed(&self) -> Option<&Feed> {
        self.feed.as_ref()
    }

    /// Where the policy feed stands at `now` (`None`: no feed configured).
    pub fn feed_status(&self, now: u64) -> Option<FeedStatus> {
        self.feed.as_ref().map(|f| f.status(now))
    }

    /// Should the host fetch the policy feed now (single flight)? Where from is
    /// `config().feed.source`.
    pub fn poll_feed(&mut self, now: u64) -> Option<FeedFetch> {
        self.feed.as_mut()?.poll(now)
    }

    /// Feed the policy feed's HTTP answer back. A new version applies to the next request,
    /// cached verified tokens included.
    ///
    /// # Errors
    /// [`FeedError`] when the answer was not taken (the document in use stays).
    pub fn on_feed_response(
        &mut self,
        now: u64,
        status: u16,
        etag: Option<&str>,
        cache_control: Option<&str>,
        body: &[u8],
    ) -> Result<FeedUpdate, FeedError> {
        let Some(feed) = self.feed.as_mut() else {
            return Err(FeedError::Transport);
        };
        let update = feed.on_response(now, status, etag, cache_control, body)?;
        if let FeedUpdate::Applied { .. } = update {
            self.apply_feed();
        }
        Ok(update)
    }

    /// The host's feed fetch failed (connection error, timeout).
    pub fn on_feed_failure(&mut self, now: u64) {
        if let Some(feed) = self.feed.as_mut() {
            feed.on_failure(now);
        }
    }

    fn apply_feed(&mut self) {
        let Some(feed) = self.feed.as_ref() else {
            return;
        };
        let overlays: Vec<Option<Overlay>> = self
            .verifier
            .providers()
            .iter()
            .map(|p| feed.overlay_for(p.policy().issuers()).cloned())
            .collect();
        for (i, overlay) in overlays.into_iter().enumerate() {
            self.verifier.set_overlay(i, overlay);
        }
    }

    /// Header names hosts remove from every request that goes on, whatever the verdict: those
    /// the gate sets from claims, and client certificate headers the configuration does not
    /// trust. A client never sets what the origin trusts.
    pub fn remove_headers(&self) -> &[String] {
        &self.remove_headers
    }

    /// The header a trusted proxy puts the client certificate in (`client-cert`,
    /// `x-amzn-mtls-clientcert-leaf`), whose values hosts pass as [`RequestFacts::client_cert`];
    /// `None` when the certificate comes from the connection, or nothing looks at it.
    pub fn certificate_header(&self) -> Option<&'static str> {
        if self.needs_peer {
            self.config.certificate_source.header()
        } else {
            None
        }
    }

    /// Whether hosts should read their TLS facts (`RequestFacts::peer`): something looks at the
    /// client certificate and it comes from the connection.
    pub fn needs_connection_certificate(&self) -> bool {
        self.needs_peer && self.config.certificate_source == CertificateSource::Connection
    }

    /// Whether an enforced allow this gate gives depends only on the request's method, target
    /// and `Authorization` bytes and on state that changes between requests only through the
    /// host (keys, the policy feed, the clock reading): no rate limit (its buckets move with
    /// every request), a verified-token cache (so a repeat is a cache hit and spends no
    /// signature budget) and no client certificate input. A host may then give the same allow
    /// again for an identical request until one of those changes.
    pub fn allows_repeat_for_identical_requests(&self) -> bool {
        self.config.rate_limit.is_none() && self.config.token_cache.capacity > 0 && !self.needs_peer
    }

    /// Decide on one request, checking signatures with this gate's backend.
    pub fn decide(&mut self, req: &RequestFacts<'_>) -> Outcome {
        match self.begin(req) {
            Begin::Done(outcome) => outcome,
            Begin::Signature(pending) => {
                let valid = self.check_signature(&pending);
                self.finish(pending, valid)
            }
        }
    }

    /// Everything up to the signature check.
    pub fn begin(&mut self, req: &RequestFacts<'_>) -> Begin {
        if let Err(why) = target::check_method(req.method) {
            return Begin::Done(self.refuse(ErrorCode::RequestInvalid, why));
        }
        let path = match target::normal_path(req.method, req.target) {
            Ok(p) => p,
            Err(why) => return Begin::Done(self.refuse(ErrorCode::RequestInvalid, why)),
        };
        let rule = self.config.routes.select(req.method, &path);
        if let Some(Access::Anonymous) = self.rule(rule).map(|r| &r.access) {
            let record = Decision::allowed().route(self.route_name(rule));
            return Begin::Done(Outcome::Allow(Allowed {
                forward: Vec::new(),
                strip_authorization: self.config.strip_authorization,
                rate_key: None,
                claims: None,
                record,
                would_deny: None,
                repeatable: self.repeatable(req.clock, req.scopes),
            }));
        }
        let token = match bearer(req.authorization, self.verifier.max_token_bytes()) {
            Ok(t) => t,
            Err(e) => return Begin::Done(self.refuse_error(rule, e, req.audit)),
        };
        if let Some(outcome) = self.feed_gate(rule, req.clock.earliest()) {
            return Begin::Done(outcome);
        }
        let from_header;
        let peer = match self.peer_of(req) {
            Ok(Some(PeerFacts::Borrowed(p))) => Some(p),
            Ok(Some(PeerFacts::Parsed(p))) => {
                from_header = p;
                Some(&*from_header)
            }
            Ok(None) => None,
            Err(why) => return Begin::Done(self.refuse(ErrorCode::RequestInvalid, why)),
        };
        let mut request = req.clock.request();
        let scopes = rule
            .and_then(|i| self.config.routes.rules.get(i))
            .and_then(Rule::scopes);
        if let Some(s) = scopes {
            request = request.scopes(s);
        }
        if let Some(s) = req.scopes {
            request = request.also_scopes(s);
        }
        if let Some(p) = peer {
            request = request.peer(p);
        }
        if let Some(o) = rule
            .and_then(|i| self.config.routes.rules.get(i))
            .and_then(|r| r.identities.as_ref())
        {
            request = request.identities(o);
        }
        match self.verifier.begin(token, &request) {
            Ok(Step::Done(v)) => {
                Begin::Done(self.complete(rule, req.scopes, Ok(v), req.audit, req.clock))
            }
            Ok(Step::Signature(signature)) => Begin::Signature(PendingRequest {
                signature,
                rule,
                extra: req.scopes.cloned(),
                peer: peer.cloned(),
                clock: req.clock,
                audit: req.audit,
            }),
            Err(e) => Begin::Done(self.complete(rule, req.scopes, Err(e), req.audit, req.clock)),
        }
    }

    /// What a host whose own crypto checks signatures (Envoy's `verify_signature`) must
    /// check for `pending`: the key the core chose, as DER, and the signature as that crypto
    /// reads it ([`crate::PublicKey::spki_der`], [`crate::signature::host_signature`]). `None`
    /// when the configuration says `"crypto": "wasm"`, the key is gone, or it is one the core
    /// checks itself ([`Gate::check_signature`]).
    pub fn host_check(&self, pending: &PendingRequest) -> Option<HostCheck> {
        if self.config.crypto != Crypto::Native {
            return None;
        }
        let signature = &pending.signature;
        let key = self
            .verifier
            .key_for(signature, pending.clock.earliest())?
            .spki_der()?;
        Some(HostCheck {
            key,
            signature: crate::signature::host_signature(signature.alg(), signature.signature())?,
        })
    }

    /// Check `pending`'s signature with the core's crypto (what [`Gate::decide`] does), for a
    /// host whose own crypto is absent or could not answer.
    pub fn check_signature(&self, pending: &PendingRequest) -> bool {
        self.verifier
            .check_signature(&pending.signature, pending.clock.earliest())
    }

    /// The rest of the decision once the host checked the signature of `pending`.
    pub fn finish(&mut self, pending: PendingRequest, signature_valid: bool) -> Outcome {
        let PendingRequest {
            signature,
            rule,
            extra,
            peer,
            clock,
            audit,
        } = pending;
        let result = {
            let mut request = clock.request();
            let route = self.config.routes.rules.get(rule.unwrap_or(usize::MAX));
            if let Some(s) = route.and_then(Rule::scopes) {
                request = request.scopes(s);
            }
            if let Some(s) = extra.as_ref() {
                request = request.also_scopes(s);
            }
            if let Some(p) = peer.as_ref() {
                request = request.peer(p);
            }
            if let Some(o) = route.and_then(|r| r.identities.as_ref()) {
                request = request.identities(o);
            }
            self.verifier.finish(signature, signature_valid, &request)
        };
        self.complete(rule, extra.as_ref(), result, audit, clock)
    }

    /// [`Allowed::repeatable`] for an enforced allow judged at `clock` with `extra` scopes.
    fn repeatable(&self, clock: Clock, extra: Option<&Scopes>) -> bool {
        self.config.mode == Mode::Enforce
            && matches!(clock, Clock::Within { .. })
            && extra.is_none()
            && self.allows_repeat_for_identical_requests()
    }

    /// Turn an allowed request whose client has no rate left into its answer (429 with
    /// `Retry-After`; in report mode the request still goes on).
    pub fn rate_limited(&self, allowed: Allowed, retry_after_s: u64) -> Outcome {
        let mut record = allowed.record;
        record.verdict = Verdict::Deny;
        record.code = Some(ErrorCode::RateLimited);
        let response = self.response(
            ErrorCode::RateLimited,
            "the client exceeded its request rate",
            &[],
            Some(retry_after_s.max(1)),
        );
        let denied = Denied {
            response,
            message: String::from("the client exceeded its request rate"),
            claims: allowed.claims,
            record,
        };
        self.enforce(denied)
    }

    /// The final outcome of a request whose wait for keys ended without a verdict.
    pub fn give_up(&self, waiting: Denied) -> Outcome {
        self.enforce(waiting)
    }

    /// One JSON audit line for a decision, with the request's method and path (never the query
    /// or the token) and the status answered.
    pub fn audit_line(&self, record: &Decision, status: u16, method: &str, target: &str) -> String {
        let path = target.split(['?', '#']).next().unwrap_or("");
        record.to_json_with_strings(&[
            ("method", JsonScalar::Str(method)),
            ("mode", JsonScalar::Str(self.config.mode.as_str())),
            ("path", JsonScalar::Str(path)),
            ("status", JsonScalar::Int(u64::from(status))),
        ])
    }

    /// The compact audit record of a decision ([`Decision::to_record_json`]) for hosts that hand
    /// it to their own log pipeline (Envoy filter state, written by an access log): `status` is
    /// the status answered, or in report mode the one a denial would have had.
    pub fn audit_record(&self, record: &Decision, status: u16) -> String {
        record.to_record_json(status, self.config.mode == Mode::Report)
    }

    /// The answer for `code`, as every host sends it.
    pub fn response(
        &self,
        code: ErrorCode,
        message: &str,
        scopes: &[&str],
        retry_after_s: Option<u64>,
    ) -> Response {
        let mut headers = Vec::with_capacity(4);
        headers.push(("content-type", String::from("application/json")));
        headers.push(("cache-control", String::from("no-store")));
        if let Some(v) = code.www_authenticate(&self.config.realm, scopes) {
            headers.push(("www-authenticate", v));
        }
        let retry = match code {
            ErrorCode::JwksUnavailable | ErrorCode::PolicyUnavailable => {
                Some(retry_after_s.unwrap_or(JWKS_RETRY_AFTER_S))
            }
            ErrorCode::RateLimited | ErrorCode::SignatureBudgetExhausted => {
                Some(retry_after_s.unwrap_or(1))
            }
            _ => None,
        };
        if let Some(s) = retry {
            headers.push(("retry-after", s.to_string()));
        }
        Response {
            status: code.http_status(),
            code,
            headers,
            body: error_body(code, message),
        }
    }

    fn complete(
        &mut self,
        rule: Option<usize>,
        extra: Option<&Scopes>,
        result: Result<Verified, Error>,
        audit: bool,
        clock: Clock,
    ) -> Outcome {
        if let Err(e) = &result {
            if e.clock_needed() {
                return Outcome::ReadClock;
            }
        }
        let route = self.route_name(rule);
        if let Some(r) = self.rule(rule) {
            if let Some(allowed) = &r.client_ids {
                let client = match &result {
                    Ok(v) => Some(v.claims.client_id()),
                    Err(e) if e.code() == ErrorCode::ScopeInsufficient => {
                        e.claims().map(Claims::client_id)
                    }
                    Err(_) => None,
                };
                if let Some(client) = client {
                    if !client.is_some_and(|c| allowed.contains(c)) {
                        let claims = match &result {
                            Ok(v) => Some(v.claims.clone()),
                            Err(e) => e.claims().map(|c| Arc::new(c.clone())),
                        };
                        let mut record = record_of(&result, audit).route(route);
                        record.verdict = Verdict::Deny;
                        record.code = Some(ErrorCode::ClientNotAllowed);
                        let message = "this client may not use this route";
                        return self.enforce(Denied {
                            response: self.response(
                                ErrorCode::ClientNotAllowed,
                                message,
                                &[],
                                None,
                            ),
                            message: String::from(message),
                            claims,
                            record,
                        });
                    }
                }
            }
        }
        let record = record_of(&result, audit).route(route);
        match result {
            Err(e) => {
                let denied = Denied {
                    response: self.answer(&e, self.rule(rule).and_then(Rule::scopes), extra),
                    message: String::from(e.message()),
                    claims: e.claims().map(|c| Arc::new(c.clone())),
                    record,
                };
                if e.fetch_pending() {
                    Outcome::Wait(denied)
                } else {
                    self.enforce(denied)
                }
            }
            Ok(v) => {
                if rule.is_none() && self.config.routes.default == DefaultAccess::Deny {
                    let mut record = record;
                    record.verdict = Verdict::Deny;
                    record.code = Some(ErrorCode::ScopeInsufficient);
                    let message = "no rule allows this request";
                    return self.enforce(Denied {
                        response: self.response(ErrorCode::ScopeInsufficient, message, &[], None),
                        message: String::from(message),
                        claims: Some(v.claims),
                        record,
                    });
                }
                let rate_key = self.config.rate_limit.map(|_| bucket_key(&v.claims));
                Outcome::Allow(Allowed {
                    forward: self.forwarded(&v.claims),
                    strip_authorization: self.config.strip_authorization,
                    rate_key,
                    claims: Some(v.claims),
                    record,
                    would_deny: None,
                    repeatable: self.repeatable(clock, extra),
                })
            }
        }
    }

    /// A denial in enforce mode; in report mode, an allow that carries it.
    fn enforce(&self, denied: Denied) -> Outcome {
        match self.config.mode {
            Mode::Enforce => Outcome::Deny(denied),
            Mode::Report => Outcome::Allow(Allowed {
                forward: Vec::new(),
                strip_authorization: self.config.strip_authorization,
                rate_key: None,
                claims: None,
                record: denied.record,
                would_deny: Some(denied.response),
                repeatable: false,
            }),
        }
    }

    /// Whether the policy feed lets a token be judged at `now`.
    ///
    /// # Errors
    /// `policy_unavailable`: with [`Error::fetch_pending`] while the first document is loading
    /// (wait for it), without when the feed is stale and the configuration fails closed.
    pub fn feed_ready(&self, now: u64) -> Result<(), Error> {
        let Some(feed) = self.feed.as_ref() else {
            return Ok(());
        };
        match (feed.status(now), feed.config().stale) {
            (FeedStatus::Fresh, _) | (FeedStatus::Stale, StalePolicy::Keep) => Ok(()),
            (FeedStatus::Loading, _) => Err(Error::new(
                ErrorCode::PolicyUnavailable,
                "the policy feed is loading",
            )
            .pending_fetch()),
            (FeedStatus::Stale, StalePolicy::FailClosed) => Err(Error::new(
                ErrorCode::PolicyUnavailable,
                "the policy feed could not be refreshed within max_stale_s",
            )),
        }
    }

    /// What the policy feed's state means for a request that needs a token: wait for its first
    /// load, or refuse when it is stale and the configuration fails closed.
    fn feed_gate(&self, rule: Option<usize>, now: u64) -> Option<Outcome> {
        let e = self.feed_ready(now).err()?;
        let denied = Denied {
            response: self.response(e.code(), e.message(), &[], None),
            message: String::from(e.message()),
            claims: None,
            record: Decision::denied(e.code()).route(self.route_name(rule)),
        };
        Some(if e.fetch_pending() {
            Outcome::Wait(denied)
        } else {
            self.enforce(denied)
        })
    }

    /// The client certificate of a request: the host's TLS facts, or the one a trusted proxy
    /// put in its header (parsed only when something looks at it).
    ///
    /// # Errors
    /// Several certificate header values, or one that is not a certificate (400).
    fn peer_of<'r>(
        &mut self,
        req: &RequestFacts<'r>,
    ) -> Result<Option<PeerFacts<'r>>, &'static str> {
        if !self.needs_peer {
            return Ok(None);
        }
        let source = self.config.certificate_source;
        if source == CertificateSource::Connection {
            return Ok(req.peer.map(PeerFacts::Borrowed));
        }
        let value = match req.client_cert {
            [] => return Ok(None),
            [one] => one,
            _ => return Err("the request carries several client certificate headers"),
        };
        let read = match source {
            CertificateSource::Alb => Peer::from_alb_leaf,
            _ => Peer::from_client_cert_header,
        };
        Ok(Some(PeerFacts::Parsed(
            self.peers.get_or_read(value, read)?,
        )))
    }

    /// A request refused before any rule was chosen: its record names no route.
    fn refuse(&self, code: ErrorCode, message: &str) -> Outcome {
        let record = Decision::denied(code);
        self.enforce(Denied {
            response: self.response(code, message, &[], None),
            message: String::from(message),
            claims: None,
            record,
        })
    }

    fn refuse_error(&self, rule: Option<usize>, e: Error, audit: bool) -> Outcome {
        let record = record_of(&Err(e.clone()), audit).route(self.route_name(rule));
        self.enforce(Denied {
            response: self.response(e.code(), e.message(), &[], None),
            message: String::from(e.message()),
            claims: None,
            record,
        })
    }

    /// The answer to a refused token: for `scope_insufficient`, the challenge lists the first
    /// requirement the token fails, in the order the pipeline checks them: the provider's
    /// `scopes`, then the route's, then the host's own (`extra`).
    pub fn answer(
        &self,
        error: &Error,
        route: Option<&Scopes>,
        extra: Option<&Scopes>,
    ) -> Response {
        let mut listed: &[String] = &[];
        if let (ErrorCode::ScopeInsufficient, Some(claims)) = (error.code(), error.claims()) {
            let iss = claims.iss();
            let provider = self
                .verifier
                .providers()
                .iter()
                .find(|p| iss.is_some_and(|i| p.policy().issuers().iter().any(|x| x == i)))
                .and_then(|p| p.policy().scopes());
            if let Some(unmet) = [provider, route, extra]
                .into_iter()
                .flatten()
                .find(|s| !s.satisfied_by(claims))
            {
                listed = unmet.listed();
            }
        }
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        self.response(error.code(), error.message(), &listed, None)
    }

    fn forwarded(&self, claims: &Claims) -> Vec<(String, String)> {
        self.config
            .forward
            .iter()
            .filter_map(|f| {
                let value = match claims.get(&f.claim)? {
                    Value::String(s) => s.clone(),
                    Value::Null => return None,
                    other => other.to_json(),
                };
                // Whatever the issuer signed, a header never carries a line break.
                if has_control(&value) {
                    return None;
                }
                Some((f.header.clone(), value))
            })
            .collect()
    }

    fn rule(&self, index: Option<usize>) -> Option<&Rule> {
        self.config.routes.rules.get(index?)
    }

    fn route_name(&self, index: Option<usize>) -> String {
        self.rule(index)
            .map_or_else(|| String::from("default"), |r| r.name.clone())
    }
}

enum PeerFacts<'r> {
    Borrowed(&'r Peer),
    Parsed(Arc<Peer>),
}

/// Whether `s` holds a control character (`char::is_control`: U+0000–U+001F, U+007F–U+009F),
/// read from the UTF-8 bytes: C0 and DEL are single bytes, C1 is `C2 80`–`C2 9F`.
fn has_control(s: &str) -> bool {
    let mut after_c2 = false;
    s.bytes().any(|b| {
        let c1 = after_c2 && (0x80..=0x9f).contains(&b);
        after_c2 = b == 0xc2;
        b < 0x20 || b == 0x7f || c1
    })
}

fn record_of(result: &Result<Verified, Error>, audit: bool) -> Decision {
    if audit {
        return Decision::from_result(result);
    }
    // Nobody reads the full record: skip the jti hash and the claim copies.
    match result {
        Ok(v) => {
            let mut d = Decision::allowed();
            d.cached = v.cached;
            d
        }
        Err(e) => Decision::denied(e.code()),
    }
}

/// The body of an answer: `{"error": code, "message": message}`, written straight into one
/// buffer.
fn error_body(code: ErrorCode, message: &str) -> String {
    let mut body = String::with_capacity(32 + message.len());
    body.push_str("{\"error\":");
    json::write_str(&mut body, code.as_str());
    body.push_str(",\"message\":");
    json::write_str(&mut body, message);
    body.push('}');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_body_is_the_json_object_of_code_and_message() {
        for message in ["", "iss is required", "a \"quoted\" \\ é\n\u{1}"] {
            let mut o = json::Object::new();
            o.insert("message".into(), message.into());
            o.insert("error".into(), ErrorCode::TokenExpired.as_str().into());
            assert_eq!(
                error_body(ErrorCode::TokenExpired, message),
                json::object_to_json(&o)
            );
        }
    }

    #[test]
    fn the_byte_control_check_is_char_is_control() {
        let mut buf = [0u8; 4];
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let one = c.encode_utf8(&mut buf);
            assert_eq!(has_control(one), c.is_control(), "{:x}", u32::from(c));
            let mixed = alloc::format!("aé{c}ł");
            assert_eq!(has_control(&mixed), c.is_control(), "{:x}", u32::from(c));
        }
    }
}
