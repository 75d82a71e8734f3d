//! The single verification pipeline (order fixed, first failure wins; see ARCHITECTURE.md).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::claims::{Claims, Time};
use crate::error::{ConfigError, Error, ErrorCode};
use crate::feed::Overlay;
use crate::json::Value;
use crate::jwks::KeySet;
use crate::keycache::{FetchRequest, KeyCache, Lookup, RefreshError};
use crate::peer::Peer;
use crate::policy::{Algorithm, MtlsBinding, Policy, Revocation, Scopes};
use crate::policy::{IdentityOverride, RequireIdentity};
use crate::signature::{PublicKey, PureRust, SignatureBackend};
use crate::token::{parse_object, parse_payload, HeaderMemo};
use crate::tokencache::{CachedToken, TokenCache, DEFAULT_CAPACITY, DEFAULT_MAX_TTL_S};

/// One issuer (or one Cognito pool with both issuer forms): its policy and its keys.
#[derive(Debug)]
pub struct Provider {
    policy: Policy,
    keys: KeyCache,
    overlay: Option<Overlay>,
}

impl Provider {
    /// Pair a policy with the key cache that serves its issuer.
    pub fn new(policy: Policy, keys: KeyCache) -> Provider {
        Provider {
            policy,
            keys,
            overlay: None,
        }
    }

    /// A provider with fixed keys (inline JWKS, tests).
    pub fn with_fixed_keys(policy: Policy, keys: KeySet) -> Provider {
        Provider::new(policy, KeyCache::fixed(keys))
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The key cache.
    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// The key cache, for hosts that feed it fetch results.
    pub fn keys_mut(&mut self) -> &mut KeyCache {
        &mut self.keys
    }

    /// What the policy feed currently says about this provider.
    pub fn overlay(&self) -> Option<&Overlay> {
        self.overlay.as_ref()
    }
}

/// Per-request facts: the time, and what the route and the connection add.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    now: u64,
    latest: u64,
    scopes: Option<&'a Scopes>,
    extra_scopes: Option<&'a Scopes>,
    cert_thumbprint: Option<&'a str>,
    peer: Option<&'a Peer>,
    identities: Option<&'a IdentityOverride>,
}

impl<'a> Request<'a> {
    /// A request verified at `now` (seconds since the Unix epoch).
    pub fn at(now: u64) -> Request<'a> {
        Request {
            now,
            latest: now,
            scopes: None,
            extra_scopes: None,
            cert_thumbprint: None,
            peer: None,
            identities: None,
        }
    }

    /// A request whose exact second is only known to lie in `[earliest, latest]` (a host that
    /// reads its clock on a timer). Everything is judged at `earliest`; when the token's time
    /// verdict would change inside the window, verification ends in an error whose
    /// [`Error::clock_needed`] is set, and the host asks again with [`Request::at`] the exact
    /// second. A `latest` before `earliest` is taken as `earliest`.
    pub fn within(earliest: u64, latest: u64) -> Request<'a> {
        Request {
            latest: latest.max(earliest),
            ..Request::at(earliest)
        }
    }

    /// Scopes this route requires, checked in addition to the policy's own.
    pub fn scopes(mut self, scopes: &'a Scopes) -> Request<'a> {
        self.scopes = Some(scopes);
        self
    }

    /// Scopes the host's own routing requires besides the route's (a Node handler's
    /// `authorize(req, {scope})`), checked after them.
    pub fn also_scopes(mut self, scopes: &'a Scopes) -> Request<'a> {
        self.extra_scopes = Some(scopes);
        self
    }

    /// base64url SHA-256 of the DER client certificate presented on the connection (RFC 8705
    /// §3.1), for certificate-bound tokens.
    pub fn cert_thumbprint(mut self, thumbprint: &'a str) -> Request<'a> {
        self.cert_thumbprint = Some(thumbprint);
        self
    }

    /// The client certificate presented on the connection: checked against the client's pins,
    /// and (unless [`Request::cert_thumbprint`] gives one) its SHA-256 is the RFC 8705
    /// thumbprint.
    pub fn peer(mut self, peer: &'a Peer) -> Request<'a> {
        self.peer = Some(peer);
        self
    }

    /// The route's own `client_identities` / `require_identity`.
    pub fn identities(mut self, identities: &'a IdentityOverride) -> Request<'a> {
        self.identities = Some(identities);
        self
    }

    /// The time of the request (the start of its window).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The end of the request's time window (equal to [`Request::now`] for an exact clock).
    pub fn latest(&self) -> u64 {
        self.latest
    }
}

/// A token that passed every check.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The verified claims.
    pub claims: Arc<Claims>,
    /// The kid of the key that verified it.
    pub kid: String,
    /// The algorithm.
    pub alg: Algorithm,
    /// Index of the provider (issuer) that accepted it.
    pub provider: usize,
    /// Whether the signature check was skipped thanks to the verified-token cache.
    pub cached: bool,
    /// The client certificate pin that matched (e.g. `uri_san:spiffe://prod/orders`), when
    /// the client is pinned.
    pub identity: Option<String>,
}

/// A token that passed steps 1–7 and waits for its signature check, for hosts that run the
/// signature with native crypto ([`Verifier::begin`] / [`Verifier::finish`]).
#[derive(Debug)]
pub struct PendingSignature {
    token: String,
    provider: usize,
    kid: String,
    alg: Algorithm,
    signing_input_len: usize,
    signature: Vec<u8>,
    payload: Vec<u8>,
    key_fingerprint: [u8; 32],
    /// [`KeySet::serial`] of the set `kid` was selected from.
    key_set: u64,
}

impl PendingSignature {
    /// Index of the provider whose key must verify the signature.
    pub fn provider(&self) -> usize {
        self.provider
    }

    /// The kid of that key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The bytes the signature covers (`header.payload`).
    pub fn signing_input(&self) -> &[u8] {
        self.token
            .as_bytes()
            .get(..self.signing_input_len)
            .unwrap_or(&[])
    }

    /// The raw signature octets.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The decoded payload (JSON text, not yet parsed), decoded once in [`Verifier::begin`]:
    /// a host that hands the verified claims on as JSON takes them from here.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// A token the verified-token cache answered for ([`Verifier::cached`]), borrowed from it.
#[derive(Debug)]
pub struct CacheHit<'v> {
    /// The verified claims.
    pub claims: &'v Arc<Claims>,
    /// The kid of the key that verified it.
    pub kid: &'v str,
    /// The algorithm.
    pub alg: Algorithm,
    /// Index of the provider (issuer) that accepted it.
    pub provider: usize,
    /// The client certificate pin that matched, when the client is pinned.
    pub identity: Option<String>,
}

impl CacheHit<'_> {
    /// The same answer as an owned [`Verified`] (`cached: true`).
    pub fn into_verified(self) -> Verified {
        Verified {
            claims: self.claims.clone(),
            kid: String::from(self.kid),
            alg: self.alg,
            provider: self.provider,
            cached: true,
            identity: self.identity,
        }
    }
}

/// Outcome of [`Verifier::begin`].
#[derive(Debug)]
pub enum Step {
    /// Decided without a signature check (a verified-token cache hit).
    Done(Verified),
    /// The signature must be checked, then passed to [`Verifier::finish`].
    Signature(PendingSignature),
}

/// Verifies tokens for one or more issuers against their policies.
#[derive(Debug)]
pub struct Verifier<B = PureRust> {
    providers: Vec<Provider>,
    backend: B,
    cache: TokenCache,
    max_token_bytes: usize,
    algorithms: Vec<Algorithm>,
    /// Headers seen last (one per signing key, usually): their facts, by their exact text.
    headers: HeaderMemo,
    budget: SignatureBudget,
}

/// At most `per_s` signature checks in each second of the clock this verifier is given; the
/// count starts again when the second changes (a clock stepping back starts a new second too).
#[derive(Clone, Copy, Debug)]
struct SignatureBudget {
    per_s: Option<u32>,
    second: u64,
    used: u32,
}

impl SignatureBudget {
    /// Spend one check at `now`, or `false` when this second's checks are used up.
    fn spend(&mut self, now: u64) -> bool {
        let Some(per_s) = self.per_s else {
            return true;
        };
        if now != self.second {
            self.second = now;
            self.used = 0;
        }
        if self.used >= per_s {
            return false;
        }
        self.used += 1;
        true
    }
}

impl Verifier<PureRust> {
    /// A verifier with the pure-Rust signature backend and a default token cache.
    ///
    /// # Errors
    /// A [`ConfigError`] on `providers` when the list is empty.
    pub fn new(providers: Vec<Provider>) -> Result<Verifier<PureRust>, ConfigError> {
        Verifier::with_backend(providers, PureRust)
    }
}

impl<B: SignatureBackend> Verifier<B> {
    /// A verifier with a custom signature backend.
    ///
    /// # Errors
    /// A [`ConfigError`] on `providers` when the list is empty.
    pub fn with_backend(providers: Vec<Provider>, backend: B) -> Result<Verifier<B>, ConfigError> {
        if providers.is_empty() {
            return Err(ConfigError::new(
                "providers",
                "at least one issuer is required",
            ));
        }
        let max_token_bytes = providers
            .iter()
            .map(|p| p.policy.max_token_bytes)
            .max()
            .unwrap_or(0);
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for a in providers
            .iter()
            .flat_map(|p| p.policy.algorithms.iter().copied())
        {
            if !algorithms.contains(&a) {
                algorithms.push(a);
            }
        }
        Ok(Verifier {
            providers,
            backend,
            cache: TokenCache::new(DEFAULT_CAPACITY, DEFAULT_MAX_TTL_S),
            max_token_bytes,
            algorithms,
            headers: HeaderMemo::default(),
            budget: SignatureBudget {
                per_s: None,
                second: 0,
                used: 0,
            },
        })
    }

    /// Allow at most `per_s` signature checks per second of the request clock (`None`: no
    /// limit, the default of a bare verifier; [`crate::config::Config`] defaults to
    /// [`crate::config::DEFAULT_SIGNATURE_CHECKS_PER_S`]). Past it, tokens that are not in the
    /// verified-token cache are refused with `signature_budget_exhausted` (503) before any
    /// signature work.
    pub fn with_signature_budget(mut self, per_s: Option<u32>) -> Verifier<B> {
        self.budget.per_s = per_s;
        self
    }

    /// Replace the verified-token cache (capacity 0 disables it).
    pub fn with_token_cache(mut self, capacity: usize, max_ttl_s: u64) -> Verifier<B> {
        self.cache = TokenCache::new(capacity, max_ttl_s);
        self
    }

    /// The providers, in configuration order.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// One provider, mutable (to feed its key cache).
    pub fn provider_mut(&mut self, index: usize) -> Option<&mut Provider> {
        self.providers.get_mut(index)
    }

    /// Replace a provider's revocation lists; takes effect for the next request, cached
    /// tokens included.
    pub fn set_revocation(&mut self, provider: usize, revocation: Revocation) -> bool {
        match self.providers.get_mut(provider) {
            Some(p) => {
                p.policy.revocation = revocation;
                true
            }
            None => false,
        }
    }

    /// Replace what the policy feed says about a provider (`None`: nothing); takes effect for
    /// the next request, cached tokens included.
    pub fn set_overlay(&mut self, provider: usize, overlay: Option<Overlay>) -> bool {
        match self.providers.get_mut(provider) {
            Some(p) => {
                p.overlay = overlay.filter(|o| !o.is_empty());
                true
            }
            None => false,
        }
    }

    /// The next JWKS fetch any provider wants, as `(provider index, request)`.
    pub fn poll(&mut self, now: u64) -> Option<(usize, FetchRequest)> {
        self.providers
            .iter_mut()
            .enumerate()
            .find_map(|(i, p)| p.keys.poll(now).map(|r| (i, r)))
    }

    /// Feed a JWKS HTTP answer to a provider's key cache.
    ///
    /// # Errors
    /// [`RefreshError`] when the answer was not taken (previous keys kept).
    pub fn on_jwks_response(
        &mut self,
        provider: usize,
        now: u64,
        status: u16,
        cache_control: Option<&str>,
        body: &[u8],
    ) -> Result<usize, RefreshError> {
        match self.providers.get_mut(provider) {
            Some(p) => p.keys.on_response(now, status, cache_control, body),
            None => Err(RefreshError::Transport),
        }
    }

    /// Report a failed JWKS fetch for a provider.
    pub fn on_jwks_failure(&mut self, provider: usize, now: u64) {
        if let Some(p) = self.providers.get_mut(provider) {
            p.keys.on_failure(now);
        }
    }

    /// Run the whole pipeline with this verifier's signature backend.
    ///
    /// # Errors
    /// An [`Error`] whose [`ErrorCode`] is the first failed check.
    pub fn verify(&mut self, token: &str, req: &Request<'_>) -> Result<Verified, Error> {
        match self.begin(token, req)? {
            Step::Done(v) => Ok(v),
            Step::Signature(pending) => {
                let ok = self.check_signature(&pending, req.now);
                self.finish(pending, ok, req)
            }
        }
    }

    /// The largest token any provider accepts.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// Check a pending signature with this verifier's backend (false when its key is gone).
    pub fn check_signature(&self, pending: &PendingSignature, now: u64) -> bool {
        match self.key_for(pending, now) {
            Some(key) => self.backend.verify(
                key,
                pending.alg,
                pending.signing_input(),
                &pending.signature,
            ),
            None => false,
        }
    }

    /// The key a pending signature must be checked with.
    pub fn key_for(&self, pending: &PendingSignature, now: u64) -> Option<&PublicKey> {
        let p = self.providers.get(pending.provider)?;
        p.keys
            .keys(now)?
            .select(&pending.kid, pending.alg, p.policy.min_rsa_bits)
            .ok()
    }

    /// A verified-token cache hit: steps 10–17 on the claims stored for `token` (given as
    /// bytes: a token that is not cached needs no UTF-8 check to find that out). `None` when
    /// the token is not cached, or when the key material that verified it is no longer
    /// published (rotation or breach response): the entry is then dropped and the token must
    /// be verified afresh with [`Verifier::begin`]. An accepted hit borrows the entry and
    /// allocates nothing (unless the client is pinned: the matched pin is named).
    ///
    /// # Errors
    /// An [`Error`] (carrying the claims) for the first failed check.
    pub fn cached(
        &mut self,
        token: &[u8],
        req: &Request<'_>,
    ) -> Option<Result<CacheHit<'_>, Error>> {
        let now = req.now;
        let providers = &self.providers;
        // The entry holds for the key material that verified it, not for its kid: a key set
        // that now publishes other material under the same kid verifies the token afresh.
        // While the set that verified it is still in place, that material is there.
        let hit = self.cache.get_or_remove(token, now, |hit| {
            providers
                .get(hit.provider)
                .and_then(|p| p.keys.keys(now))
                .is_some_and(|k| {
                    hit.same_key_set(k) || k.fingerprint(&hit.kid) == Some(hit.key_fingerprint)
                })
        })?;
        let Some(p) = providers.get(hit.provider) else {
            return Some(Err(Error::new(ErrorCode::KidUnknown, "provider vanished")));
        };
        let static_ok = hit.static_checks_passed();
        let checked = check_time(&p.policy, &hit.claims, req)
            .and_then(|_| check_policy(&p.policy, p.overlay.as_ref(), &hit.claims, req, static_ok))
            .map_err(|e| e.with_claims(hit.claims.clone()));
        Some(checked.map(|identity| CacheHit {
            claims: &hit.claims,
            kid: &hit.kid,
            alg: hit.alg,
            provider: hit.provider,
            identity,
        }))
    }

    /// Steps 1–7 (or a cache hit with steps 10–17).
    ///
    /// # Errors
    /// An [`Error`] for the first failed check.
    pub fn begin(&mut self, token: &str, req: &Request<'_>) -> Result<Step, Error> {
        let now = req.now;
        if let Some(hit) = self.cached(token.as_bytes(), req) {
            return hit.map(|h| Step::Done(h.into_verified()));
        }

        let jws = self.headers.parse(token, self.max_token_bytes)?;
        let alg = match jws.header.alg {
            Some(name) => name
                .filter(|a| self.algorithms.contains(a))
                .ok_or_else(|| {
                    Error::new(ErrorCode::AlgNotAllowed, "the token's alg is not allowed")
                })?,
            None => {
                return Err(Error::new(
                    ErrorCode::TokenMalformed,
                    "header has no string alg",
                ))
            }
        };
        if jws.header.unsupported {
            return Err(Error::new(
                ErrorCode::HeaderUnsupported,
                "the header uses crit or b64, which this verifier does not implement",
            ));
        }
        let Some(kid) = jws.header.kid else {
            return Err(Error::new(
                ErrorCode::KidMissing,
                "the header has no string kid",
            ));
        };
        let provider = self.select_provider(&kid, &jws.payload, now)?;
        let p = self
            .providers
            .get(provider)
            .ok_or_else(|| Error::new(ErrorCode::KidUnknown, "provider vanished"))?;
        if !p.policy.algorithms.contains(&alg) {
            return Err(Error::new(
                ErrorCode::AlgNotAllowed,
                "the token's alg is not allowed for its issuer",
            ));
        }
        let keys = p.keys.keys(now).ok_or_else(|| {
            Error::new(
                ErrorCode::JwksUnavailable,
                "no key set is available for the issuer",
            )
        })?;
        keys.select(&kid, alg, p.policy.min_rsa_bits)?;
        let key_fingerprint = keys.fingerprint(&kid).unwrap_or([0; 32]);
        let key_set = keys.serial();
        // Everything cheap has passed; what is left costs an RSA or ECDSA operation.
        if !self.budget.spend(now) {
            return Err(Error::new(
                ErrorCode::SignatureBudgetExhausted,
                "too many signature checks this second; try again",
            ));
        }
        Ok(Step::Signature(PendingSignature {
            key_fingerprint,
            key_set,
            token: String::from(token),
            provider,
            kid,
            alg,
            signing_input_len: jws.signing_input.len(),
            signature: jws.signature,
            payload: jws.payload,
        }))
    }

    /// Steps 8–17 after the host checked the signature of `pending`.
    ///
    /// # Errors
    /// An [`Error`] for the first failed check.
    pub fn finish(
        &mut self,
        pending: PendingSignature,
        signature_valid: bool,
        req: &Request<'_>,
    ) -> Result<Verified, Error> {
        if !signature_valid {
            return Err(Error::new(
                ErrorCode::SignatureInvalid,
                "the signature does not verify",
            ));
        }
        let map = parse_payload(&pending.payload)?;
        let claims = Arc::new(Claims::new(map));
        let (policy, overlay) = match self.providers.get(pending.provider) {
            Some(p) => (&p.policy, p.overlay.as_ref()),
            None => return Err(Error::new(ErrorCode::KidUnknown, "provider vanished")),
        };
        // Computed once: kept with the cache entry so hits skip these checks, and passed on
        // to this verification's own policy step.
        let static_ok = static_checks_pass(policy, &claims);
        let entry = || {
            CachedToken::new(
                pending.provider,
                &pending.kid,
                pending.key_fingerprint,
                pending.alg,
                claims.clone(),
            )
            .with_static_checks(static_ok)
            .with_key_set(pending.key_set)
        };
        let exp = match check_time(policy, &claims, req) {
            Ok(exp) => exp,
            Err(e) => {
                // Valid at the window's start but not for all of it: still worth caching, since
                // the host asks again at once with the exact second.
                if let (true, Some(exp)) = (e.clock_needed(), valid_exp(&claims, policy, req.now)) {
                    if self.cache.capacity() > 0 {
                        self.cache.insert(&pending.token, entry(), exp, req.now);
                    }
                }
                return Err(e.with_claims(claims.clone()));
            }
        };
        if self.cache.capacity() > 0 {
            self.cache.insert(&pending.token, entry(), exp, req.now);
        }
        let identity = check_policy(policy, overlay, &claims, req, static_ok)
            .map_err(|e| e.with_claims(claims.clone()))?;
        Ok(Verified {
            claims,
            kid: pending.kid,
            alg: pending.alg,
            provider: pending.provider,
            cached: false,
            identity,
        })
    }

    /// Step 6 across providers: the kid picks the key, and so the provider. Kids are unique in
    /// practice; if two providers publish the same kid, the token's (unverified) `iss` decides,
    /// and the issuer check after the signature makes that choice safe.
    fn select_provider(&mut self, kid: &str, payload: &[u8], now: u64) -> Result<usize, Error> {
        let holds = |p: &Provider| p.keys.keys(now).is_some_and(|k| k.contains(kid));
        // The common case, one issuer with this kid, without collecting them.
        let mut holding = self.providers.iter().enumerate().filter(|(_, p)| holds(p));
        if let (Some((only, _)), None) = (holding.next(), holding.next()) {
            return Ok(only);
        }
        let holders: Vec<usize> = self
            .providers
            .iter()
            .enumerate()
            .filter(|(_, p)| holds(p))
            .map(|(i, _)| i)
            .collect();
        let by_issuer = if self.providers.len() == 1 {
            Some(0)
        } else {
            let iss = unverified_iss(payload);
            self.providers.iter().position(|p| {
                iss.as_deref()
                    .is_some_and(|i| p.policy.issuers.iter().any(|x| x == i))
            })
        };
        if holders.len() > 1 {
            return by_issuer.filter(|i| holders.contains(i)).ok_or_else(|| {
                Error::new(ErrorCode::KeyUnusable, "several issuers publish this kid")
            });
        }
        let Some(index) = by_issuer else {
            return Err(Error::new(
                ErrorCode::KidUnknown,
                "no issuer's key set has this kid",
            ));
        };
        let Some(p) = self.providers.get_mut(index) else {
            return Err(Error::new(
                ErrorCode::KidUnknown,
                "no issuer's key set has this kid",
            ));
        };
        match p.keys.lookup(kid, now) {
            Lookup::Found(_) => Ok(index),
            Lookup::Unknown { refetch } => {
                let e = Error::new(
                    ErrorCode::KidUnknown,
                    "no key in the issuer's key set has this kid",
                );
                Err(if refetch { e.pending_fetch() } else { e })
            }
            Lookup::Unavailable => {
                let e = Error::new(
                    ErrorCode::JwksUnavailable,
                    "no key set is available for the issuer",
                );
                let fetching = p.keys.fetch_pending(now);
                Err(if fetching { e.pending_fetch() } else { e })
            }
        }
    }
}

fn unverified_iss(payload: &[u8]) -> Option<String> {
    let map = parse_object(payload).ok()?;
    map.get("iss")?.as_str().map(String::from)
}

/// Step 10 at `req.now`. Returns `exp` for the token cache. With a clock window, a verdict that
/// changes inside the window is an error with [`Error::clock_needed`].
fn check_time(policy: &Policy, claims: &Claims, req: &Request<'_>) -> Result<f64, Error> {
    let verdict = time_verdict(policy, claims, req.now);
    if req.latest > req.now && time_changes_within(policy, claims, req.now, req.latest) {
        let e = match verdict {
            Err(e) => e,
            Ok(_) => Error::new(
                ErrorCode::TokenExpired,
                "the token's validity changes within the clock's uncertainty",
            ),
        };
        return Err(e.needing_clock());
    }
    verdict
}

/// `exp` when the time checks pass at `now`.
fn valid_exp(claims: &Claims, policy: &Policy, now: u64) -> Option<f64> {
    time_verdict(policy, claims, now).ok()
}

fn time_verdict(policy: &Policy, claims: &Claims, now: u64) -> Result<f64, Error> {
    let leeway = policy.leeway_s as f64;
    let now = now as f64;
    let exp = match claims.exp() {
        Time::Absent => return Err(Error::new(ErrorCode::ClaimMissing, "exp is required")),
        Time::At(t) => Some(t),
        Time::NotNumber => None,
    };
    let nbf = claims.nbf();
    let iat = claims.iat();
    let (Some(exp), false, false) = (exp, nbf == Time::NotNumber, iat == Time::NotNumber) else {
        return Err(Error::new(
            ErrorCode::ClaimInvalid,
            "exp, nbf and iat must be JSON numbers",
        ));
    };
    if now >= exp + leeway {
        return Err(Error::new(ErrorCode::TokenExpired, "the token has expired"));
    }
    if let Time::At(nbf) = nbf {
        if nbf > now + leeway {
            return Err(Error::new(
                ErrorCode::TokenNotYetValid,
                "the token is not valid yet (nbf)",
            ));
        }
    }
    if let Time::At(iat) = iat {
        if iat > now + leeway {
            return Err(Error::new(
                ErrorCode::TokenIssuedInFuture,
                "the token was issued in the future (iat)",
            ));
        }
    }
    if let Some(max_age) = policy.max_token_age_s {
        match iat {
            Time::At(iat) => {
                if now - iat > max_age as f64 + leeway {
                    return Err(Error::new(
                        ErrorCode::TokenExpired,
                        "the token is older than the maximum age",
                    ));
                }
            }
            _ => {
                return Err(Error::new(
                    ErrorCode::ClaimMissing,
                    "iat is required by the maximum token age",
                ))
            }
        }
    }
    Ok(exp)
}

/// Whether the time verdict for some whole second in `(earliest, latest]` differs from the one
/// at `earliest`. Each check flips at one boundary second `b` (false before, true from `b` on),
/// so the verdict changes inside the window exactly when some `b` lies in `(earliest, latest]`:
/// - `now >= exp + L` flips at `ceil(exp + L)`; `nbf > now + L` and `iat > now + L` stop
///   holding at `ceil(nbf - L)`, `ceil(iat - L)`. For whole seconds `e < ceil(x) <= l` is
///   `e < x <= l`, so no rounding is needed (`core` has no `f64::ceil`).
/// - `now - iat > M + L` flips at `floor(iat + M + L) + 1`, and `e < floor(x) + 1 <= l` is
///   `e <= x < l`.
fn time_changes_within(policy: &Policy, claims: &Claims, earliest: u64, latest: u64) -> bool {
    let (e, l) = (earliest as f64, latest as f64);
    let leeway = policy.leeway_s as f64;
    let ceil_inside = |x: f64| e < x && x <= l;
    let at = |name: &str| match claims.time(name) {
        Time::At(t) => Some(t),
        _ => None,
    };
    let exp = at("exp");
    let iat = at("iat");
    exp.is_some_and(|t| ceil_inside(t + leeway))
        || at("nbf").is_some_and(|t| ceil_inside(t - leeway))
        || iat.is_some_and(|t| ceil_inside(t - leeway))
        || match (policy.max_token_age_s, iat) {
            (Some(m), Some(t)) => {
                let x = t + m as f64 + leeway;
                e <= x && x < l
            }
            _ => false,
        }
}

/// Steps 11–17, with what the policy feed adds (`overlay`) at steps 13 and 14. Returns the
/// client certificate pin that matched, if the client is pinned.
///
/// `static_ok`: the checks that depend only on the claims and the provider's fixed policy
/// (issuer, `token_use`, the configured `client_id` allow-list, audience, the policy's scopes,
/// claim rules) are known to pass ([`static_checks_pass`], kept with each verified-token cache
/// entry), so they are skipped; everything that can change (revocation, the policy feed, the
/// request's certificate and scopes) runs every time. Skipping checks that pass cannot change
/// which check fails first.
fn check_policy(
    policy: &Policy,
    overlay: Option<&Overlay>,
    claims: &Claims,
    req: &Request<'_>,
    static_ok: bool,
) -> Result<Option<String>, Error> {
    if let Some(o) = overlay {
        if req.latest > req.now && o.changes_within(claims, req.now, req.latest) {
            // A feed entry for this token starts or ends inside the clock window.
            let e = check_policy(
                policy,
                overlay,
                claims,
                &Request {
                    latest: req.now,
                    ..*req
                },
                static_ok,
            )
            .err()
            .unwrap_or_else(|| {
                Error::new(
                    ErrorCode::TokenRevoked,
                    "a policy feed entry for this token changes within the clock's uncertainty",
                )
            });
            return Err(e.needing_clock());
        }
    }
    let now = req.now as f64;
    if !static_ok {
        check_issuer(policy, claims)?;
        check_token_use(policy, claims)?;
    }
    // 13. client_id (the feed's allow-list replaces the configured one), then audience
    if let Some(feed_allows) = overlay.filter(|o| o.has_client_ids()) {
        match claims.get("client_id") {
            None => return Err(Error::new(ErrorCode::ClaimMissing, "client_id is required")),
            Some(Value::String(id)) => {
                if feed_allows.allows_client(id, now) != Some(true) {
                    return Err(Error::new(
                        ErrorCode::ClientNotAllowed,
                        "client_id is not allowed by the policy feed",
                    ));
                }
            }
            Some(_) => {
                return Err(Error::new(
                    ErrorCode::ClaimInvalid,
                    "client_id must be a string",
                ))
            }
        }
    } else if !static_ok {
        check_client_allowlist(policy, claims)?;
    }
    if !static_ok {
        check_audience(policy, claims)?;
    }
    // 14. revocation
    let revocation = &policy.revocation;
    if !revocation.is_empty() {
        if claims.jti().is_some_and(|j| revocation.jti.contains(j)) {
            return Err(Error::new(
                ErrorCode::TokenRevoked,
                "the token (jti) was revoked",
            ));
        }
        if let Some(client) = claims.client_id() {
            if revocation.client_ids.contains(client) {
                return Err(Error::new(
                    ErrorCode::TokenRevoked,
                    "the client's tokens were revoked",
                ));
            }
            if let Some(&cutoff) = revocation.issued_before.get(client) {
                let before = match claims.time("iat") {
                    Time::At(iat) => iat < cutoff,
                    _ => true,
                };
                if before {
                    return Err(Error::new(
                        ErrorCode::TokenRevoked,
                        "the client's tokens issued before the cut-off were revoked",
                    ));
                }
            }
        }
    }
    if let Some(why) = overlay.and_then(|o| o.revoked(claims, now)) {
        return Err(Error::new(ErrorCode::TokenRevoked, why));
    }
    // 15. RFC 8705 certificate binding
    if policy.mtls_binding != MtlsBinding::Off {
        let thumbprint = match claims.get("cnf") {
            None => None,
            Some(Value::Object(cnf)) => match cnf.get("x5t#S256") {
                None => None,
                Some(Value::String(t)) => Some(t.as_str()),
                Some(_) => {
                    return Err(Error::new(
                        ErrorCode::BindingMismatch,
                        "cnf.x5t#S256 is not a certificate thumbprint string",
                    ))
                }
            },
            Some(_) => return Err(Error::new(ErrorCode::ClaimInvalid, "cnf must be an object")),
        };
        // The host's thumbprint text as given, or the SHA-256 of the peer's certificate against
        // the claim's base64url (decoded: no second encoder in the module).
        let presented = match (req.cert_thumbprint, req.peer.and_then(|p| p.sha256)) {
            (Some(tp), _) => Some(Presented::Text(tp)),
            (None, Some(d)) => Some(Presented::Digest(d)),
            (None, None) => None,
        };
        let same = |want: &str, got: &Presented<'_>| match got {
            Presented::Text(t) => want == *t,
            Presented::Digest(d) => {
                use base64::Engine as _;
                want.len() == 43
                    && base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(want)
                        .is_ok_and(|w| w == d[..])
            }
        };
        match (thumbprint, presented.as_ref()) {
            (None, _) if policy.mtls_binding == MtlsBinding::Required => {
                return Err(Error::new(
                    ErrorCode::BindingMismatch,
                    "the token is not bound to a client certificate (cnf.x5t#S256)",
                ))
            }
            (None, _) => {}
            (Some(want), Some(got)) if same(want, got) => {}
            (Some(_), None) => {
                return Err(Error::new(
                    ErrorCode::BindingMismatch,
                    "the token is certificate-bound but no client certificate was presented",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(Error::new(
                    ErrorCode::BindingMismatch,
                    "the client certificate is not the one the token is bound to",
                ))
            }
        }
    }
    // 15b. client certificate pins (before scopes: a 403 never hides a pin failure)
    let identity = check_identity(policy, claims, req)?;
    // 16. scopes: the policy's, then the route's, then the host's
    let own = policy.scopes.as_ref().filter(|_| !static_ok);
    for scopes in [own, req.scopes, req.extra_scopes].into_iter().flatten() {
        if !scopes.satisfied_by(claims) {
            return Err(scope_insufficient());
        }
    }
    if !static_ok {
        check_claim_rules(policy, claims)?;
    }
    Ok(identity)
}

/// Whether every check of [`check_policy`] that depends only on the claims and the provider's
/// fixed policy passes (its `static_ok`). A provider's policy changes after construction only
/// in its revocation lists and feed overlay, which are not among these.
fn static_checks_pass(policy: &Policy, claims: &Claims) -> bool {
    check_issuer(policy, claims).is_ok()
        && check_token_use(policy, claims).is_ok()
        && check_client_allowlist(policy, claims).is_ok()
        && check_audience(policy, claims).is_ok()
        && policy
            .scopes
            .as_ref()
            .is_none_or(|s| s.satisfied_by(claims))
        && check_claim_rules(policy, claims).is_ok()
}

/// Step 11.
fn check_issuer(policy: &Policy, claims: &Claims) -> Result<(), Error> {
    match claims.get("iss") {
        None => Err(Error::new(ErrorCode::ClaimMissing, "iss is required")),
        Some(Value::String(iss)) if policy.issuers.iter().any(|i| i == iss) => Ok(()),
        Some(Value::String(_)) => Err(Error::new(
            ErrorCode::IssuerMismatch,
            "iss is not an accepted issuer",
        )),
        Some(_) => Err(Error::new(ErrorCode::ClaimInvalid, "iss must be a string")),
    }
}

/// Step 12.
fn check_token_use(policy: &Policy, claims: &Claims) -> Result<(), Error> {
    let Some(want) = policy.token_use else {
        return Ok(());
    };
    match claims.get("token_use") {
        None => Err(Error::new(ErrorCode::ClaimMissing, "token_use is required")),
        Some(v) if v.as_str() == Some(want.as_str()) => Ok(()),
        Some(_) => Err(Error::with_message(
            ErrorCode::TokenUseMismatch,
            alloc::format!("token_use must be \"{}\"", want.as_str()),
        )),
    }
}

/// Step 13 with the configured allow-list (when the policy feed has none).
fn check_client_allowlist(policy: &Policy, claims: &Claims) -> Result<(), Error> {
    let Some(allowed) = &policy.client_ids else {
        return Ok(());
    };
    match claims.get("client_id") {
        None => Err(Error::new(ErrorCode::ClaimMissing, "client_id is required")),
        Some(Value::String(id)) if allowed.iter().any(|a| a == id) => Ok(()),
        Some(Value::String(_)) => Err(Error::new(
            ErrorCode::ClientNotAllowed,
            "client_id is not allowed",
        )),
        Some(_) => Err(Error::new(
            ErrorCode::ClaimInvalid,
            "client_id must be a string",
        )),
    }
}

/// Step 13, audience.
fn check_audience(policy: &Policy, claims: &Claims) -> Result<(), Error> {
    let Some(audiences) = &policy.audience else {
        return Ok(());
    };
    let ok = match claims.get("aud") {
        None => return Err(Error::new(ErrorCode::ClaimMissing, "aud is required")),
        Some(Value::String(a)) => audiences.iter().any(|x| x == a),
        Some(Value::Array(items)) => items
            .iter()
            .any(|i| i.as_str().is_some_and(|a| audiences.iter().any(|x| x == a))),
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::AudienceMismatch,
            "aud holds no accepted audience",
        ))
    }
}

/// Step 17.
fn check_claim_rules(policy: &Policy, claims: &Claims) -> Result<(), Error> {
    for rule in &policy.claim_rules {
        match claims.get(rule.claim()) {
            None => {
                return Err(Error::with_message(
                    ErrorCode::ClaimMissing,
                    alloc::format!("{} is required", rule.claim()),
                ))
            }
            Some(v) if rule.accepts(v) => {}
            Some(_) => {
                return Err(Error::with_message(
                    ErrorCode::ClaimInvalid,
                    alloc::format!("{} does not satisfy its rule", rule.claim()),
                ))
            }
        }
    }
    Ok(())
}

fn scope_insufficient() -> Error {
    Error::new(
        ErrorCode::ScopeInsufficient,
        "the token lacks a required scope",
    )
}

/// Step 15b: the route's pins and mode where it sets them, else the provider's.
/// The certificate a host presented for the RFC 8705 binding.
enum Presented<'a> {
    /// A thumbprint the host computed ([`Request::cert_thumbprint`]), compared as text.
    Text(&'a str),
    /// The SHA-256 of the peer's certificate.
    Digest([u8; 32]),
}

fn check_identity(
    policy: &Policy,
    claims: &Claims,
    req: &Request<'_>,
) -> Result<Option<String>, Error> {
    let own = policy.identities.as_ref();
    let pins = req
        .identities
        .and_then(|o| o.pins.as_ref())
        .or(own.map(|i| &i.pins));
    let require = req
        .identities
        .and_then(|o| o.require)
        .or(own.map(|i| i.require))
        .unwrap_or(if pins.is_some() {
            RequireIdentity::WhenListed
        } else {
            RequireIdentity::Off
        });
    if require == RequireIdentity::Off {
        return Ok(None);
    }
    let listed = claims.client_id().and_then(|c| pins?.get(c));
    match (listed, req.peer, require) {
        (Some(_), None, _) | (None, None, RequireIdentity::Always) => Err(Error::new(
            ErrorCode::IdentityMissing,
            "no client certificate was presented, and this client must present one",
        )),
        (Some(pins), Some(peer), _) => match pins.iter().find(|p| p.matches(peer)) {
            Some(pin) => Ok(Some(pin.describe())),
            None => Err(Error::new(
                ErrorCode::IdentityMismatch,
                "the client certificate is not one this client is pinned to",
            )),
        },
        (None, Some(_), RequireIdentity::Always) => Err(Error::new(
            ErrorCode::IdentityMismatch,
            "no client certificate is pinned for this client",
        )),
        (None, _, _) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::KeySetLimits;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    /// Every signature is valid: these tests are about what happens around it.
    struct AnySignature;

    impl SignatureBackend for AnySignature {
        fn verify(&self, _: &PublicKey, _: Algorithm, _: &[u8], _: &[u8]) -> bool {
            true
        }
    }

    const JWKS: &str = include_str!("../../../tests/vectors/keys/jwks-public.json");
    const ISS: &str = "https://issuer.example";

    fn token(kid: &str, claims: Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": kid}).to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{h}.{p}.c2ln")
    }

    fn verifier(policy: Value) -> (Verifier<AnySignature>, String) {
        let keys = KeySet::from_json(JWKS.as_bytes(), KeySetLimits::default()).unwrap();
        let kid = String::from(keys.kids().next().unwrap());
        let policy = Policy::from_json(&policy).unwrap();
        let v = Verifier::with_backend(vec![Provider::with_fixed_keys(policy, keys)], AnySignature)
            .unwrap();
        (v, kid)
    }

    fn code(r: &Result<Verified, Error>) -> &'static str {
        match r {
            Ok(_) => "accept",
            Err(e) => e.code().as_str(),
        }
    }

    #[test]
    fn cache_hits_skip_only_the_checks_that_cannot_change() {
        let (mut v, kid) = verifier(json!({
            "issuers": [ISS], "token_use": "access", "client_ids": ["a", "b"],
            "scopes": {"all": ["read"]}
        }));
        let claims = |client: &str, jti: &str| {
            json!({"iss": ISS, "exp": 2000, "token_use": "access", "client_id": client,
                   "scope": "read write", "jti": jti})
        };
        let good = token(&kid, claims("a", "j1"));
        let other = token(&kid, claims("zz", "j2"));
        let req = Request::at(1000);
        for _ in 0..2 {
            assert_eq!(code(&v.verify(&good, &req)), "accept");
            assert_eq!(code(&v.verify(&other, &req)), "client_not_allowed");
        }
        let hit = v.cached(good.as_bytes(), &req).unwrap().unwrap();
        assert_eq!(hit.provider, 0);
        assert!(v.cache.get(&good, 1000).unwrap().static_checks_passed());
        assert!(!v.cache.get(&other, 1000).unwrap().static_checks_passed());
        // What changes at run time still applies to the cached token: revocation, the
        // request's scopes, time.
        let revoked = Revocation::from_json("r", &json!({"jti": ["j1"]})).unwrap();
        v.set_revocation(0, revoked);
        assert_eq!(code(&v.verify(&good, &req)), "token_revoked");
        v.set_revocation(0, Revocation::default());
        let write_admin = Scopes::All(vec![String::from("admin")]);
        let with_scopes = Request::at(1000).also_scopes(&write_admin);
        assert_eq!(code(&v.verify(&good, &with_scopes)), "scope_insufficient");
        assert_eq!(code(&v.verify(&good, &Request::at(2000))), "token_expired");
        assert_eq!(code(&v.verify(&good, &req)), "accept");
        assert!(v.cached(b"not.cached.token", &req).is_none());
    }

    #[test]
    fn a_hit_needs_the_key_material_that_verified_the_token() {
        let (mut v, kid) =
            verifier(json!({"issuers": [ISS], "token_use": null, "client_ids": null}));
        let t = token(&kid, json!({"iss": ISS, "exp": 2000}));
        let req = Request::at(1000);
        let parse = |doc: &str| KeySet::from_json(doc.as_bytes(), KeySetLimits::default()).unwrap();
        let is_hit =
            |v: &mut Verifier<AnySignature>| matches!(v.cached(t.as_bytes(), &req), Some(Ok(_)));
        assert_eq!(code(&v.verify(&t, &req)), "accept");
        assert!(is_hit(&mut v));
        // Another parse of the same document: another serial, the same material: still a hit.
        let again = parse(JWKS);
        let first = v.providers[0].keys.keys(1000).unwrap().serial();
        assert!(first != 0 && again.serial() != 0 && again.serial() != first);
        v.providers[0].keys.seed(again.clone(), 1000);
        assert!(is_hit(&mut v));
        // A copy of that parse (a worker's shared set) is the same set.
        v.providers[0].keys.seed(again, 1000);
        assert!(is_hit(&mut v));
        // Other material under the same kid: the entry goes, and the token is verified again.
        let mut doc: serde_json::Value = serde_json::from_str(JWKS).unwrap();
        let other_n = doc["keys"][1]["n"].clone();
        assert_eq!(doc["keys"][0]["kid"], kid.as_str());
        doc["keys"][0]["n"] = other_n;
        v.providers[0].keys.seed(parse(&doc.to_string()), 1000);
        assert!(!is_hit(&mut v));
        assert!(v.cache.get(&t, 1000).is_none(), "the entry was removed");
        assert!(matches!(v.begin(&t, &req), Ok(Step::Signature(_))));
    }

    #[test]
    fn the_payload_is_decoded_once_and_handed_out() {
        let (mut v, kid) =
            verifier(json!({"issuers": [ISS], "token_use": null, "client_ids": null}));
        let claims = json!({"iss": ISS, "exp": 2000, "x": "é"});
        let t = token(&kid, claims.clone());
        let Ok(Step::Signature(pending)) = v.begin(&t, &Request::at(1000)) else {
            panic!("a signature to check");
        };
        assert_eq!(pending.payload(), claims.to_string().as_bytes());
        assert_eq!(
            pending.signing_input(),
            t.rsplit_once('.').unwrap().0.as_bytes()
        );
    }
}
