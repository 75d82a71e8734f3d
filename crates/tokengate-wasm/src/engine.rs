//! The binding logic behind [`crate::Core`], free of wasm-bindgen types so it runs natively.

use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

// The core already links hashbrown; std's HashMap would add a second copy and SipHash.
use hashbrown::HashMap;

use tokengate::feed::FeedUpdate;
use tokengate::gate::{Allowed, Denied, Response};
use tokengate::json::{self, Object, Value};
use tokengate::peer::{Peer, PeerCache};
use tokengate::ratelimit::{self, Bucket};
use tokengate::verify::CacheHit;
use tokengate::{
    Algorithm, Begin, Claims, Clock, Config, Decision, Error, ErrorCode, Gate, KeyCache, KeySet,
    Outcome, PendingRequest, PendingSignature, Request, RequestFacts, Revocation, Scopes, Step,
    Verified,
};

/// A JSON object of `"name": value` pairs (each value anything `Value::from` takes), written in
/// name order as `serde_json::json!` objects were.
macro_rules! object {
    ({ $($name:literal: $value:expr),* $(,)? }) => {{
        let mut o = Object::new();
        $(o.insert(String::from($name), Value::from($value));)*
        Value::Object(o)
    }};
}

/// Number of `u32` slots in the meta array.
pub const META_LEN: usize = 16;

/// What a call reports in `meta[0]`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[repr(u32)]
pub enum Status {
    /// Accepted (for [`Engine::decide`]: let through): `meta[1]` claims id (0: not retained),
    /// `meta[2..4]` claims JSON (ptr, len; len 0 when JS has seen this id before, or when
    /// there are no claims), `meta[4]` provider, `meta[5]` 1 when the token cache answered,
    /// `meta[6..8]` the answer JSON of [`Engine::decide`] (ptr, len), `meta[8]` 1 when the
    /// request carried verified claims.
    Accept = 0,
    /// The host must check a signature: `meta[1]` pending id, `[2]` provider, `[3]` key index
    /// (position of the kid in [`Engine::kids`]), `[4]` alg (0 RS256, 1 ES256), `[5]` signing
    /// input length, `[6..8]` signature (ptr, len), `[8]` key generation of the provider, `[9]`
    /// signing input pointer (held by the engine until `finish`).
    Signature = 1,
    /// Refused: `meta[1]` code index, `meta[2..4]` error JSON (ptr, len), `meta[4]` 1 when a
    /// JWKS fetch may change the answer.
    Error = 2,
    /// [`Engine::finish`] got an id it no longer holds: verify again.
    Lost = 3,
}

/// Slots of the meta array that are not status-specific.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum Meta {
    /// Status.
    Status = 0,
    /// Audit record JSON pointer (when flag [`FLAG_AUDIT`] was set).
    AuditPtr = 10,
    /// Audit record JSON length.
    AuditLen = 11,
}

/// Flag: produce the audit record of the decision.
pub const FLAG_AUDIT: u32 = 1;
/// Flag: check the signature in wasm (pure-Rust backend) instead of stopping for the host.
pub const FLAG_PURE: u32 = 2;
/// Flag ([`Engine::decide`]): the host will not fetch keys again, so a request that would wait
/// for keys gets its final answer now.
pub const FLAG_FINAL: u32 = 4;

/// `finish` outcome: the host's crypto said the signature is invalid.
pub const OUTCOME_INVALID: u32 = 0;
/// `finish` outcome: the host's crypto said the signature is valid.
pub const OUTCOME_VALID: u32 = 1;
/// `finish` outcome: the host could not run it (key import failed): use the pure backend.
pub const OUTCOME_PURE: u32 = 2;

/// Pending signatures kept for async host crypto; the oldest is dropped beyond this.
const MAX_PENDING: usize = 1024;
/// Claims ids remembered; the table is emptied beyond this (JS then sees new ids).
const MAX_CLAIMS_IDS: usize = 4096;
/// Registered route scope sets; JS clears and re-registers beyond this.
const MAX_SCOPES: usize = 1024;
/// Rate-limit buckets kept in one process; beyond it they are all forgotten (full again).
const MAX_BUCKETS: usize = 65_536;

struct ProviderInfo {
    jwks_uri: Option<String>,
    remote: bool,
    timeout_ms: u32,
}

enum Pending {
    /// A bare token ([`Engine::verify`]).
    Token {
        signature: PendingSignature,
        peer: Option<CertFacts>,
        route: Option<String>,
        scopes_id: u32,
    },
    /// A whole request ([`Engine::decide`]).
    Request { request: PendingRequest, now: f64 },
}

/// The client certificate of a bare-token verification: facts, or a thumbprint text compared as
/// given (the RFC 8705 binding of `verify(token, {certThumbprint})`).
enum CertFacts {
    Peer(Arc<Peer>),
    Thumbprint(String),
}

impl CertFacts {
    fn from_bytes(peers: &mut PeerCache, bytes: &[u8]) -> Result<CertFacts, &'static str> {
        match peers.get_or_read(bytes, Peer::from_host_bytes) {
            Ok(p) => Ok(CertFacts::Peer(p)),
            Err(why) => match (bytes.first(), core::str::from_utf8(bytes)) {
                (Some(b'{' | b'-' | 0x30), _) | (_, Err(_)) => Err(why),
                (_, Ok(text)) => Ok(CertFacts::Thumbprint(String::from(text))),
            },
        }
    }

    fn apply<'a>(&'a self, req: Request<'a>) -> Request<'a> {
        match self {
            CertFacts::Peer(p) => req.peer(p),
            CertFacts::Thumbprint(t) => req.cert_thumbprint(t),
        }
    }
}

impl Pending {
    fn signature(&self) -> &PendingSignature {
        match self {
            Pending::Token { signature, .. } => signature,
            Pending::Request { request, .. } => request.signature(),
        }
    }
}

/// Values under ids handed out in increasing order and forgotten all together: a vector and
/// the id of its first entry, so a lookup is a subtraction (no hashing, and no second hash
/// table type in the .wasm). Id 0 is never handed out; ids are never reused.
struct Numbered<T> {
    /// The id of `values[0]` (wider than an id, so that it can pass the last one).
    first: u64,
    values: Vec<T>,
}

impl<T> Default for Numbered<T> {
    fn default() -> Self {
        Numbered {
            first: 1,
            values: Vec::new(),
        }
    }
}

impl<T> Numbered<T> {
    /// The id the next [`Numbered::push`] returns, if any is left.
    fn next_id(&self) -> Option<u32> {
        u32::try_from(self.first.saturating_add(self.values.len() as u64)).ok()
    }

    /// Keep `value` under a new id; `None` when the ids are exhausted.
    fn push(&mut self, value: T) -> Option<u32> {
        let id = self.next_id()?;
        self.values.push(value);
        Some(id)
    }

    fn get(&self, id: u32) -> Option<&T> {
        let at = u64::from(id).checked_sub(self.first)?;
        self.values.get(usize::try_from(at).ok()?)
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    /// Forget every value; their ids stay retired.
    fn clear(&mut self) {
        self.first = self.first.saturating_add(self.values.len() as u64);
        self.values.clear();
    }
}

#[derive(Default)]
struct ClaimsIds {
    /// (address, id), direct-mapped by address: a collision only costs the claims crossing
    /// to JS once more under a new id. Empty until the first claims come.
    by_ptr: Vec<(usize, u32)>,
    by_id: Numbered<Arc<Claims>>,
}

/// Slots of [`ClaimsIds::by_ptr`].
const CLAIMS_SLOTS: usize = 4096;

/// The slot of an address: its bits mixed by splitmix64's finaliser. (A lone multiplicative
/// hash is not enough: allocations come in strides, and a stride of 144 bytes, a Fibonacci
/// number, put 1,000 live claims into 349 slots.)
fn claims_slot(ptr: usize) -> usize {
    let mut x = ptr as u64;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) as usize % CLAIMS_SLOTS
}

impl ClaimsIds {
    /// The id of these claims, and whether it is new. Holding the `Arc` keeps its address from
    /// being reused by other claims while the id lives.
    fn id_for(&mut self, claims: &Arc<Claims>) -> (u32, bool) {
        let ptr = Arc::as_ptr(claims) as usize;
        let slot = claims_slot(ptr);
        if let Some(&(at, id)) = self.by_ptr.get(slot) {
            // An id in the table holds its claims' Arc, so the address is still theirs.
            if at == ptr && id != 0 {
                return (id, false);
            }
        }
        if self.by_id.len() >= MAX_CLAIMS_IDS || self.by_ptr.is_empty() {
            self.by_ptr.clear();
            self.by_ptr.resize(CLAIMS_SLOTS, (0, 0));
            self.by_id.clear();
        }
        match self.by_id.push(claims.clone()) {
            Some(id) => {
                if let Some(s) = self.by_ptr.get_mut(slot) {
                    *s = (ptr, id);
                }
                (id, true)
            }
            // All 2^32 - 1 ids handed out: never reuse one (the JS side may still hold claims
            // under it); claims then simply cross the boundary on every call.
            None => (0, true),
        }
    }
}

/// One gate with its buffers.
pub struct Engine {
    gate: Gate,
    providers: Vec<ProviderInfo>,
    generations: Vec<u32>,
    input: Vec<u8>,
    out: Vec<u8>,
    answer: Vec<u8>,
    audit: Vec<u8>,
    meta: Vec<u32>,
    buckets: HashMap<String, Bucket>,
    pending: Vec<(u32, Pending)>,
    next_pending: u32,
    scopes: Numbered<Scopes>,
    claims_ids: ClaimsIds,
    /// The decoded payload of the token being finished (then swapped with `out`).
    spare: Vec<u8>,
    last_refresh_error: String,
    /// Client certificates already read (`peer` fields), by their bytes.
    peers: PeerCache,
}

impl Engine {
    /// Build from the gate configuration (`tokengate::Config`, the same JSON as the Envoy
    /// filter's) at `now` (seconds), with `jitter_seed` spreading JWKS retries.
    ///
    /// # Errors
    /// `field: message` for the first mistake; a remote provider needs `jwks.uri` here.
    pub fn new(config: &str, now: f64, jitter_seed: u64) -> Result<Engine, String> {
        let config = Config::from_json(config.as_bytes()).map_err(|e| e.to_string())?;
        let mut infos = Vec::with_capacity(config.providers.len());
        for (i, p) in config.providers.iter().enumerate() {
            let uri = p.source.as_ref().and_then(|s| s.uri.clone());
            if p.source.is_some() && uri.is_none() {
                return Err(format!(
                    "providers[{i}].jwks.uri: is required here: JavaScript hosts fetch the JWKS \
                     from a URL (\"cluster\" is for the Envoy filter)"
                ));
            }
            infos.push(ProviderInfo {
                remote: uri.is_some(),
                jwks_uri: uri,
                timeout_ms: p.source.as_ref().map_or(0, |s| s.timeout_ms),
            });
        }
        if let Some(f) = &config.feed {
            if f.source.uri.is_none() {
                return Err(String::from(
                    "feed.uri: is required here: JavaScript hosts fetch the policy feed from a \
                     URL (\"cluster\" is for the Envoy filter)",
                ));
            }
        }
        let gate = Gate::new(config, secs(now), jitter_seed).map_err(|e| e.to_string())?;
        let n = infos.len();
        Ok(Engine {
            gate,
            providers: infos,
            generations: vec![1; n],
            input: Vec::new(),
            out: Vec::new(),
            answer: Vec::new(),
            audit: Vec::new(),
            meta: vec![0; META_LEN],
            buckets: HashMap::new(),
            pending: Vec::new(),
            next_pending: 0,
            scopes: Numbered::default(),
            claims_ids: ClaimsIds::default(),
            spare: Vec::new(),
            last_refresh_error: String::new(),
            peers: PeerCache::default(),
        })
    }

    /// Providers (issuers, JWKS URL and fetch limits, required scopes), the token size limit,
    /// the realm and the error codes with their HTTP statuses, as JSON.
    pub fn info(&self) -> String {
        let providers: Vec<Value> = self
            .gate
            .verifier()
            .providers()
            .iter()
            .zip(&self.providers)
            .map(|(p, info)| {
                object!({
                    "issuers": p.policy().issuers(),
                    "jwks_uri": info.jwks_uri.as_deref(),
                    "remote": info.remote,
                    "timeout_ms": info.timeout_ms,
                    "max_jwks_bytes": p.keys().config().limits.max_bytes,
                    "scopes": p.policy().scopes().map(scopes_json),
                    "max_token_bytes": p.policy().max_token_bytes(),
                })
            })
            .collect();
        let codes: Vec<Value> = ErrorCode::ALL
            .iter()
            .map(|c| object!({"code": c.as_str(), "status": c.http_status()}))
            .collect();
        object!({
            "providers": providers,
            "max_token_bytes": self.gate.verifier().max_token_bytes(),
            "codes": codes,
            "meta_len": META_LEN,
            "realm": &self.gate.config().realm,
            "rules": self.gate.config().routes.rules.len(),
            "remove_headers": self.gate.remove_headers(),
            "certificate_header": self.gate.certificate_header(),
            "needs_peer": self.gate.needs_connection_certificate(),
            "crypto": self.gate.config().crypto.as_str(),
            "feed": self.gate.config().feed.as_ref().map(|f| object!({
                "uri": f.source.uri.as_deref(),
                "timeout_ms": f.source.timeout_ms,
                "max_bytes": f.feed.max_bytes,
                "max_stale_s": f.feed.max_stale_s,
            })),
        })
        .to_string()
    }

    /// Grow the input buffer to at least `capacity` bytes; its address.
    pub fn input(&mut self, capacity: usize) -> *mut u8 {
        if self.input.len() < capacity {
            self.input.resize(capacity, 0);
        }
        self.input.as_mut_ptr()
    }

    /// Mutable input buffer (native tests write the token here).
    pub fn input_mut(&mut self) -> &mut [u8] {
        &mut self.input
    }

    /// Address of the meta array.
    pub fn meta_ptr(&self) -> *const u32 {
        self.meta.as_ptr()
    }

    /// The meta array.
    pub fn meta(&self) -> &[u32] {
        &self.meta
    }

    /// The output buffer (claims or error JSON).
    pub fn out(&self) -> &[u8] {
        &self.out
    }

    /// The answer JSON of the last [`Engine::decide`] that let a request through.
    pub fn answer(&self) -> &[u8] {
        &self.answer
    }

    /// The audit record of the last decision, when asked for.
    pub fn audit(&self) -> &[u8] {
        &self.audit
    }

    /// Verify the token held in `input[token_at..][..token_len]` (JS keeps the last few tokens
    /// it wrote at fixed places, so a client reusing its token costs no copy). The client
    /// certificate ([`Peer::from_host_bytes`]: DER, JSON facts or an RFC 8705 thumbprint)
    /// follows it when `peer_len != u32::MAX`, then the route name for the audit record
    /// when `route_len != u32::MAX`. `scopes_id` names scopes from
    /// [`Engine::register_scopes`] (0: none). Flags: [`FLAG_AUDIT`], [`FLAG_PURE`].
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &mut self,
        token_at: usize,
        token_len: usize,
        peer_len: u32,
        route_len: u32,
        now: f64,
        scopes_id: u32,
        flags: u32,
    ) -> Status {
        let now = secs(now);
        let input = std::mem::take(&mut self.input);
        let status = self.verify_in(
            input.get(token_at..).unwrap_or_default(),
            token_len,
            [peer_len, route_len],
            now,
            scopes_id,
            flags,
        );
        self.input = input;
        status
    }

    fn verify_in(
        &mut self,
        input: &[u8],
        token_len: usize,
        lens: [u32; 2],
        now: u64,
        scopes_id: u32,
        flags: u32,
    ) -> Status {
        let parts = input.get(..token_len).zip(
            input
                .get(token_len..)
                .and_then(|rest| split_bytes(rest, &lens)),
        );
        let Some((token, [peer, route])) = parts else {
            return self.not_text(flags);
        };
        // The token's UTF-8 check is the first check, but a cached token is text already: it
        // runs on a cache miss, and before any other check reports.
        let is_text = || core::str::from_utf8(token).is_ok();
        let Ok(route) = route.map(core::str::from_utf8).transpose() else {
            if !is_text() {
                return self.not_text(flags);
            }
            let e = Error::new(ErrorCode::TokenMalformed, "the route name is not UTF-8");
            return self.report(Err(e), None, 0, flags);
        };
        let peer = match peer
            .map(|b| CertFacts::from_bytes(&mut self.peers, b))
            .transpose()
        {
            Ok(p) => p,
            Err(_) if !is_text() => return self.not_text(flags),
            Err(why) => {
                let e = Error::new(ErrorCode::RequestInvalid, why);
                return self.report(Err(e), route, 0, flags);
            }
        };
        let scopes = match route_scopes(&self.scopes, scopes_id) {
            Ok(s) => s,
            Err(_) if !is_text() => return self.not_text(flags),
            Err(e) => return self.report(Err(e), route, 0, flags),
        };
        let mut req = Request::at(now);
        if let Some(s) = scopes {
            req = req.also_scopes(s);
        }
        if let Some(c) = peer.as_ref() {
            req = c.apply(req);
        }
        if let Err(e) = self.gate.feed_ready(now) {
            if !is_text() {
                return self.not_text(flags);
            }
            return self.report(Err(e), route, scopes_id, flags);
        }
        let verifier = self.gate.verifier_mut();
        match verifier.cached(token, &req) {
            Some(Ok(hit)) if flags & FLAG_AUDIT == 0 => {
                let (claims, provider) = (hit.claims.clone(), hit.provider);
                return self.report_hit(&claims, provider);
            }
            Some(hit) => {
                let result = hit.map(CacheHit::into_verified);
                return self.report(result, route, scopes_id, flags);
            }
            None => {}
        }
        let Ok(token) = core::str::from_utf8(token) else {
            return self.not_text(flags);
        };
        let result = match verifier.begin(token, &req) {
            Ok(Step::Done(v)) => Ok(v),
            Ok(Step::Signature(signature)) if flags & FLAG_PURE != 0 => {
                let valid = verifier.check_signature(&signature, now);
                self.spare.clear();
                self.spare.extend_from_slice(signature.payload());
                let result = self.gate.verifier_mut().finish(signature, valid, &req);
                return self.report_with(result, true, route, scopes_id, flags);
            }
            Ok(Step::Signature(signature)) => {
                let pending = Pending::Token {
                    signature,
                    peer,
                    route: route.map(String::from),
                    scopes_id,
                };
                return self.suspend(pending, now);
            }
            Err(e) => Err(e),
        };
        self.report(result, route, scopes_id, flags)
    }

    fn not_text(&mut self, flags: u32) -> Status {
        let e = Error::new(ErrorCode::TokenMalformed, "token is not UTF-8");
        self.report(Err(e), None, 0, flags)
    }

    /// Decide on one HTTP request. The input buffer holds, one after the other (`u32::MAX`:
    /// absent, takes no bytes): the method, the request target, the client certificate of the
    /// connection ([`Peer::from_host_bytes`]), up to two `Authorization` values, then up to two
    /// values of the certificate header the configuration trusts (`info().certificate_header`).
    /// A host that received more than two values of either passes the first two, which is
    /// already "several". `scopes_id` adds scopes the host's own routing requires (0: none).
    /// Flags: [`FLAG_AUDIT`], [`FLAG_PURE`], [`FLAG_FINAL`].
    pub fn decide(&mut self, lens: [u32; 7], now: f64, scopes_id: u32, flags: u32) -> Status {
        let input = std::mem::take(&mut self.input);
        let status = self.decide_in(&input, lens, now, scopes_id, flags);
        self.input = input;
        status
    }

    fn decide_in(
        &mut self,
        input: &[u8],
        lens: [u32; 7],
        now: f64,
        scopes_id: u32,
        flags: u32,
    ) -> Status {
        let Some(parts) = split_bytes(input, &lens) else {
            return self.answer_invalid("the request is not valid text");
        };
        let [method, target, peer, auth0, auth1, cert0, cert1] = parts;
        let (Some(Ok(method)), Some(Ok(target))) = (
            method.map(core::str::from_utf8),
            target.map(core::str::from_utf8),
        ) else {
            return self.answer_invalid("the method and target must be text");
        };
        let peer = match peer
            .map(|b| self.peers.get_or_read(b, Peer::from_host_bytes))
            .transpose()
        {
            Ok(p) => p,
            Err(why) => return self.answer_invalid(why),
        };
        let authorization: Vec<&[u8]> = [auth0, auth1].into_iter().flatten().collect();
        let client_cert: Vec<&[u8]> = [cert0, cert1].into_iter().flatten().collect();
        let scopes = match route_scopes(&self.scopes, scopes_id) {
            Ok(s) => s.cloned(),
            Err(e) => return self.report(Err(e), None, 0, flags),
        };
        let facts = RequestFacts {
            method,
            target,
            authorization: &authorization,
            peer: peer.as_deref(),
            client_cert: &client_cert,
            scopes: scopes.as_ref(),
            clock: Clock::from_unix_seconds(now),
            audit: flags & FLAG_AUDIT != 0,
        };
        let outcome = if flags & FLAG_PURE != 0 {
            self.gate.decide(&facts)
        } else {
            match self.gate.begin(&facts) {
                Begin::Done(outcome) => outcome,
                Begin::Signature(request) => {
                    return self.suspend(Pending::Request { request, now }, secs(now));
                }
            }
        };
        self.report_outcome(outcome, false, now, flags)
    }

    /// The rest of a pending verification: `outcome` is [`OUTCOME_VALID`], [`OUTCOME_INVALID`]
    /// or [`OUTCOME_PURE`] (check it here with the pure-Rust backend).
    pub fn finish(&mut self, pending: u32, outcome: u32, now: f64, flags: u32) -> Status {
        self.out.clear();
        self.audit.clear();
        let Some(at) = self.pending.iter().position(|(id, _)| *id == pending) else {
            self.set_meta(Status::Lost, &[]);
            return Status::Lost;
        };
        let (_, p) = self.pending.swap_remove(at);
        // The verified payload is handed to JS as the token's own JSON text (the core parsed
        // exactly these bytes, decoded once in `begin`), which is cheaper than serialising the
        // parsed claims again.
        self.spare.clear();
        self.spare.extend_from_slice(p.signature().payload());
        let valid = match outcome {
            OUTCOME_VALID => true,
            OUTCOME_PURE => self
                .gate
                .verifier()
                .check_signature(p.signature(), secs(now)),
            _ => false,
        };
        match p {
            Pending::Token {
                signature,
                peer,
                route,
                scopes_id,
            } => {
                let scopes = match route_scopes(&self.scopes, scopes_id) {
                    Ok(s) => s,
                    Err(e) => return self.report(Err(e), route.as_deref(), 0, flags),
                };
                let mut req = Request::at(secs(now));
                if let Some(s) = scopes {
                    req = req.also_scopes(s);
                }
                if let Some(c) = peer.as_ref() {
                    req = c.apply(req);
                }
                let result = self.gate.verifier_mut().finish(signature, valid, &req);
                self.report_with(result, true, route.as_deref(), scopes_id, flags)
            }
            Pending::Request { request, now } => {
                let outcome = self.gate.finish(request, valid);
                self.report_outcome(outcome, true, now, flags)
            }
        }
    }

    /// Forget a pending signature.
    pub fn drop_pending(&mut self, pending: u32) {
        self.pending.retain(|(id, _)| *id != pending);
    }

    /// Write the claims JSON of `id` to the output buffer (meta[2..4]); its length, 0 when the
    /// id is no longer known.
    pub fn claims_json(&mut self, id: u32) -> usize {
        self.out.clear();
        if let Some(c) = self.claims_ids.by_id.get(id) {
            self.out = claims_bytes(c);
        }
        let (ptr, len) = (self.out.as_ptr() as u32, self.out.len() as u32);
        self.set_slot(2, ptr);
        self.set_slot(3, len);
        self.out.len()
    }

    /// A denial decided outside the pipeline (no token, a token that is not a string, no key
    /// set after a fetch), with the route in `input[..route_len]` when `route_len != u32::MAX`.
    /// Unknown code names become `token_malformed`.
    pub fn deny(&mut self, code: &str, message: &str, route_len: u32, flags: u32) -> Status {
        let code = ErrorCode::from_name(code).unwrap_or(ErrorCode::TokenMalformed);
        let route = match route_len {
            u32::MAX => None,
            n => self
                .input
                .get(..n as usize)
                .and_then(|b| core::str::from_utf8(b).ok())
                .map(String::from),
        };
        let e = Error::with_message(code, String::from(message));
        self.report(Err(e), route.as_deref(), 0, flags)
    }

    /// The provider whose JWKS should be fetched now, or -1.
    pub fn poll(&mut self, now: f64) -> i32 {
        match self.gate.verifier_mut().poll(secs(now)) {
            Some((i, _)) => i32::try_from(i).unwrap_or(-1),
            None => -1,
        }
    }

    /// Feed a JWKS HTTP answer. The number of kids taken, or -1 (see
    /// [`Engine::last_refresh_error`]).
    pub fn on_jwks_response(
        &mut self,
        provider: u32,
        now: f64,
        status: u16,
        cache_control: Option<&str>,
        body: &[u8],
    ) -> i32 {
        let p = provider as usize;
        let result =
            self.gate
                .verifier_mut()
                .on_jwks_response(p, secs(now), status, cache_control, body);
        match result {
            Ok(n) => {
                self.bump(p);
                self.last_refresh_error.clear();
                i32::try_from(n).unwrap_or(i32::MAX)
            }
            Err(e) => {
                self.last_refresh_error = e.to_string();
                -1
            }
        }
    }

    /// Why the last JWKS answer was refused.
    pub fn last_refresh_error(&self) -> &str {
        &self.last_refresh_error
    }

    /// The policy feed fetch to start now, as JSON `{"if_none_match": …}`, or `None`.
    pub fn poll_feed(&mut self, now: f64) -> Option<String> {
        let fetch = self.gate.poll_feed(secs(now))?;
        Some(object!({ "if_none_match": fetch.if_none_match }).to_json())
    }

    /// Feed the policy feed's HTTP answer: 1 when a new version applies, 0 when nothing
    /// changed (304, same version), -1 when it was not taken (see
    /// [`Engine::last_feed_error`]).
    pub fn on_feed_response(
        &mut self,
        now: f64,
        status: u16,
        etag: Option<&str>,
        cache_control: Option<&str>,
        body: &[u8],
    ) -> i32 {
        match self
            .gate
            .on_feed_response(secs(now), status, etag, cache_control, body)
        {
            Ok(FeedUpdate::Applied { .. }) => 1,
            Ok(FeedUpdate::Unchanged) => 0,
            Err(_) => -1,
        }
    }

    /// Report a failed policy feed fetch.
    pub fn on_feed_failure(&mut self, now: f64) {
        self.gate.on_feed_failure(secs(now));
    }

    /// Why the last feed answer was not taken ("" when it was).
    pub fn last_feed_error(&self) -> String {
        self.gate
            .feed()
            .and_then(|f| f.last_error())
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    /// Where the policy feed stands at `now`, as JSON (`null` without a feed): status,
    /// version, when it was last confirmed, the last error.
    pub fn feed_state(&self, now: f64) -> String {
        let Some(feed) = self.gate.feed() else {
            return String::from("null");
        };
        object!({
            "status": feed.status(secs(now)).to_string(),
            "version": feed.version(),
            "fresh_at": feed.fresh_at(),
            "last_error": feed.last_error().map(|e| e.to_string()),
        })
        .to_string()
    }

    /// Report a failed fetch.
    pub fn on_jwks_failure(&mut self, provider: u32, now: f64) {
        self.gate
            .verifier_mut()
            .on_jwks_failure(provider as usize, secs(now));
    }

    /// Install a key set for a provider: seeded as if fetched at `now` for remote providers,
    /// replacing the fixed keys otherwise. Returns the number of kids.
    ///
    /// # Errors
    /// Why the document is refused (not a key set, no usable key, too large).
    pub fn cache_jwks(&mut self, provider: u32, now: f64, jwks: &str) -> Result<u32, String> {
        let p = provider as usize;
        let remote = self
            .providers
            .get(p)
            .map(|i| i.remote)
            .ok_or("no such provider")?;
        let limits = self
            .gate
            .verifier()
            .providers()
            .get(p)
            .map(|p| p.keys().config().limits)
            .unwrap_or_default();
        let keys = KeySet::from_json(jwks.as_bytes(), limits).map_err(|e| e.to_string())?;
        let count = keys.kids().count() as u32;
        let slot = self
            .gate
            .verifier_mut()
            .provider_mut(p)
            .ok_or("no such provider")?;
        if remote {
            slot.keys_mut().seed(keys, secs(now));
        } else {
            *slot.keys_mut() = KeyCache::fixed(keys);
        }
        self.bump(p);
        Ok(count)
    }

    /// Whether a provider has a usable key set at `now`.
    pub fn has_keys(&self, provider: u32, now: f64) -> bool {
        self.gate
            .verifier()
            .providers()
            .get(provider as usize)
            .is_some_and(|p| p.keys().keys(secs(now)).is_some())
    }

    /// The kids of a provider's current key set (JSON array); index = key index.
    pub fn kids(&self, provider: u32, now: f64) -> String {
        let kids: Vec<&str> = self
            .gate
            .verifier()
            .providers()
            .get(provider as usize)
            .and_then(|p| p.keys().keys(secs(now)))
            .map(|k| k.kids().collect())
            .unwrap_or_default();
        Value::from(kids).to_json()
    }

    /// Bumped whenever a provider's key set is replaced.
    pub fn generation(&self, provider: u32) -> u32 {
        self.generations
            .get(provider as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Replace every provider's revocation lists.
    ///
    /// # Errors
    /// `revocation…: message`.
    pub fn set_revocation(&mut self, json: &str) -> Result<(), String> {
        let v = json::parse(json.as_bytes()).map_err(|e| format!("revocation: not JSON ({e})"))?;
        let revocation = Revocation::from_json("revocation", &v).map_err(|e| e.to_string())?;
        for i in 0..self.providers.len() {
            self.gate
                .verifier_mut()
                .set_revocation(i, revocation.clone());
        }
        Ok(())
    }

    /// Register per-call scopes; their id for [`Engine::verify`] and [`Engine::decide`]. Ids
    /// are never reused, so a verification still pending when the set is cleared fails closed
    /// instead of meeting another call's scopes.
    ///
    /// # Errors
    /// A malformed or empty requirement (an empty list would silently require nothing), or too
    /// many registered.
    pub fn register_scopes(&mut self, json: &str) -> Result<u32, String> {
        let v = json::parse(json.as_bytes()).map_err(|e| format!("scope: not JSON ({e})"))?;
        let scopes = Scopes::from_json("scope", &v).map_err(|e| e.to_string())?;
        if scopes.listed().is_empty() {
            return Err("scope: must list at least one scope".into());
        }
        if scopes
            .listed()
            .iter()
            .any(|s| s.is_empty() || s.contains(' '))
        {
            return Err("scope: a scope is a non-empty string without spaces".into());
        }
        if self.scopes.len() >= MAX_SCOPES {
            return Err("scope: too many distinct route scope sets".into());
        }
        self.scopes
            .push(scopes)
            .ok_or_else(|| String::from("scope: route scope ids exhausted"))
    }

    /// Forget the registered route scopes (their ids stay retired).
    pub fn clear_scopes(&mut self) {
        self.scopes.clear();
    }

    fn bump(&mut self, provider: usize) {
        if let Some(g) = self.generations.get_mut(provider) {
            *g = g.wrapping_add(1);
        }
    }

    fn suspend(&mut self, pending: Pending, now: u64) -> Status {
        let signature = pending.signature();
        let provider = signature.provider();
        let key_index = self
            .gate
            .verifier()
            .providers()
            .get(provider)
            .and_then(|p| p.keys().keys(now))
            .and_then(|k| k.kids().position(|kid| kid == signature.kid()))
            .unwrap_or(usize::MAX);
        self.out.clear();
        self.audit.clear();
        self.out.extend_from_slice(signature.signature());
        let alg = match signature.alg() {
            Algorithm::Rs256 => 0,
            _ => 1,
        };
        let signing_input_len = signature.signing_input().len() as u32;
        let signing_input_ptr = signature.signing_input().as_ptr() as u32;
        let meta = [
            0, // pending id, set below
            provider as u32,
            key_index as u32,
            alg,
            signing_input_len,
            self.out.as_ptr() as u32,
            self.out.len() as u32,
            self.generation(provider as u32),
            signing_input_ptr,
        ];
        if self.pending.len() >= MAX_PENDING {
            // Oldest first: ids only grow (until they wrap, far beyond any real backlog).
            self.pending.remove(0);
        }
        self.next_pending = self.next_pending.wrapping_add(1).max(1);
        let id = self.next_pending;
        self.pending.push((id, pending));
        self.set_meta(Status::Signature, &meta);
        self.set_slot(1, id);
        Status::Signature
    }

    /// A request whose bytes cannot even be read as text: 400 like every other odd request.
    fn answer_invalid(&mut self, message: &str) -> Status {
        let response = self
            .gate
            .response(ErrorCode::RequestInvalid, message, &[], None);
        let denied = Denied {
            response,
            message: String::from(message),
            claims: None,
            record: Decision::denied(ErrorCode::RequestInvalid),
        };
        self.report_denied(&denied, false, FLAG_AUDIT)
    }

    /// `payload`: `self.spare` holds the token's decoded payload JSON (see
    /// [`Engine::report_with`]).
    fn report_outcome(&mut self, outcome: Outcome, payload: bool, now: f64, flags: u32) -> Status {
        let outcome = match outcome {
            Outcome::Allow(allowed) => self.limit(allowed, now),
            Outcome::Wait(denied) if flags & FLAG_FINAL != 0 => self.gate.give_up(denied),
            other => other,
        };
        match outcome {
            Outcome::Allow(allowed) => self.report_allowed(allowed, payload, flags),
            Outcome::Deny(denied) => self.report_denied(&denied, false, flags),
            Outcome::Wait(denied) => self.report_denied(&denied, true, flags),
            // Only an inexact clock asks for the time again; this host's clock is exact.
            Outcome::ReadClock => {
                let e = Error::new(ErrorCode::JwksUnavailable, "internal: clock");
                self.report(Err(e), None, 0, flags)
            }
        }
    }

    /// The in-process rate limit: buckets live in this engine (one per process or isolate).
    fn limit(&mut self, allowed: Allowed, now: f64) -> Outcome {
        let (Some(limit), Some(key)) = (self.gate.config().rate_limit, allowed.rate_key.as_ref())
        else {
            return Outcome::Allow(allowed);
        };
        let now_ms = if now.is_finite() && now > 0.0 {
            (now * 1000.0) as u64
        } else {
            0
        };
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(key) {
            self.buckets.clear();
        }
        let prev = self.buckets.get(key).copied();
        let (bucket, verdict) = ratelimit::take(prev, now_ms, limit);
        self.buckets.insert(key.clone(), bucket);
        match verdict {
            Ok(()) => Outcome::Allow(allowed),
            Err(retry_after_s) => self.gate.rate_limited(allowed, retry_after_s),
        }
    }

    fn report_allowed(&mut self, allowed: Allowed, payload: bool, flags: u32) -> Status {
        self.out.clear();
        self.audit.clear();
        if flags & FLAG_AUDIT != 0 {
            self.audit = allowed.record.to_json().into_bytes();
        }
        let (mut id, mut has_claims, mut cached) = (0, false, false);
        if let Some(claims) = &allowed.claims {
            has_claims = true;
            cached = allowed.record.cached;
            let (cid, new) = if Arc::strong_count(claims) > 1 {
                self.claims_ids.id_for(claims)
            } else {
                (0, true)
            };
            id = cid;
            if new {
                self.claims_out(claims, payload);
            }
        }
        write_answer(&mut self.answer, &allowed);
        let meta = [
            id,
            self.out.as_ptr() as u32,
            self.out.len() as u32,
            0,
            u32::from(cached),
            self.answer.as_ptr() as u32,
            self.answer.len() as u32,
            u32::from(has_claims),
        ];
        self.set_meta(Status::Accept, &meta);
        self.set_audit_slots();
        Status::Accept
    }

    fn report_denied(&mut self, denied: &Denied, fetch_pending: bool, flags: u32) -> Status {
        self.out.clear();
        self.audit.clear();
        if flags & FLAG_AUDIT != 0 {
            self.audit = denied.record.to_json().into_bytes();
        }
        let r = &denied.response;
        let doc = object!({
            "code": r.code.as_str(),
            "message": &denied.message,
            "status": r.status,
            "www_authenticate": r.header("www-authenticate"),
            "claims": denied.claims.as_ref().map(|c| Value::Object(c.as_map().clone())),
            "fetch_pending": fetch_pending,
            "response": response_json(r),
        });
        self.out = doc.to_json().into_bytes();
        let index = ErrorCode::ALL
            .iter()
            .position(|c| *c == r.code)
            .unwrap_or(0);
        let meta = [
            index as u32,
            self.out.as_ptr() as u32,
            self.out.len() as u32,
            u32::from(fetch_pending),
        ];
        self.set_meta(Status::Error, &meta);
        self.set_audit_slots();
        Status::Error
    }

    fn report(
        &mut self,
        result: Result<Verified, Error>,
        route: Option<&str>,
        scopes_id: u32,
        flags: u32,
    ) -> Status {
        self.report_with(result, false, route, scopes_id, flags)
    }

    /// An accepted verified-token cache hit without an audit record: no allocation once JS
    /// knows the claims (their id), which is every hit after the first.
    fn report_hit(&mut self, claims: &Arc<Claims>, provider: usize) -> Status {
        self.out.clear();
        self.audit.clear();
        let (id, new) = self.claims_ids.id_for(claims);
        if new {
            self.claims_out(claims, false);
        }
        let meta = [
            id,
            self.out.as_ptr() as u32,
            self.out.len() as u32,
            provider as u32,
            1,
        ];
        self.set_meta(Status::Accept, &meta);
        self.set_audit_slots();
        Status::Accept
    }

    /// The claims JSON into `out`: the token's own payload text when `payload` says
    /// `self.spare` holds it (swapped in, so both buffers keep their capacity), else the claims
    /// serialised.
    fn claims_out(&mut self, claims: &Claims, payload: bool) {
        if payload {
            std::mem::swap(&mut self.out, &mut self.spare);
        } else {
            self.out = claims_bytes(claims);
        }
    }

    /// `payload`: `self.spare` holds the decoded payload JSON of the token, used as the claims
    /// JSON. `scopes_id`: the call's registered scopes (0: none), named in a 403 challenge.
    fn report_with(
        &mut self,
        result: Result<Verified, Error>,
        payload: bool,
        route: Option<&str>,
        scopes_id: u32,
        flags: u32,
    ) -> Status {
        let mut record = Decision::allowed();
        if flags & FLAG_AUDIT != 0 {
            record = Decision::from_result(&result);
            if let Some(r) = route {
                record = record.route(r);
            }
        }
        match result {
            Ok(v) => {
                self.out.clear();
                self.audit.clear();
                if flags & FLAG_AUDIT != 0 {
                    self.audit = record.to_json().into_bytes();
                }
                // Claims the token cache holds (a second reference) get an id so JS keeps one
                // object for them; others (cache disabled or full) get id 0 and are not
                // retained on either side.
                let (id, new) = if Arc::strong_count(&v.claims) > 1 {
                    self.claims_ids.id_for(&v.claims)
                } else {
                    (0, true)
                };
                if new {
                    self.claims_out(&v.claims, payload);
                }
                let meta = [
                    id,
                    self.out.as_ptr() as u32,
                    self.out.len() as u32,
                    v.provider as u32,
                    u32::from(v.cached),
                ];
                self.set_meta(Status::Accept, &meta);
                self.set_audit_slots();
                Status::Accept
            }
            Err(e) => {
                let scopes = route_scopes(&self.scopes, scopes_id).ok().flatten();
                let denied = Denied {
                    response: self.gate.answer(&e, None, scopes),
                    message: String::from(e.message()),
                    claims: e.claims().map(|c| Arc::new(c.clone())),
                    record,
                };
                self.report_denied(&denied, e.fetch_pending(), flags)
            }
        }
    }

    fn set_audit_slots(&mut self) {
        let (ptr, len) = (self.audit.as_ptr() as u32, self.audit.len() as u32);
        self.set_slot(Meta::AuditPtr as usize, ptr);
        self.set_slot(Meta::AuditLen as usize, len);
    }

    fn set_meta(&mut self, status: Status, values: &[u32]) {
        self.set_slot(Meta::Status as usize, status as u32);
        for (i, v) in values.iter().enumerate() {
            self.set_slot(i + 1, *v);
        }
    }

    fn set_slot(&mut self, i: usize, v: u32) {
        if let Some(slot) = self.meta.get_mut(i) {
            *slot = v;
        }
    }
}

/// Seconds from a JS number: fractions dropped, negative or non-finite as 0 (the core's clock
/// rule: a request is judged at its whole second).
fn secs(now: f64) -> u64 {
    Clock::from_unix_seconds(now).earliest()
}

/// Consecutive byte fields of the given lengths (`u32::MAX`: absent, takes no bytes).
fn split_bytes<'a, const N: usize>(
    input: &'a [u8],
    lens: &[u32; N],
) -> Option<[Option<&'a [u8]>; N]> {
    let mut at = 0usize;
    let mut out = [None; N];
    for (slot, &len) in out.iter_mut().zip(lens) {
        if len == u32::MAX {
            continue;
        }
        let end = at.checked_add(len as usize)?;
        *slot = Some(input.get(at..end)?);
        at = end;
    }
    Some(out)
}

fn route_scopes(scopes: &Numbered<Scopes>, id: u32) -> Result<Option<&Scopes>, Error> {
    if id == 0 {
        return Ok(None);
    }
    // An unknown id must not drop the call's requirement: fail closed.
    scopes
        .get(id)
        .map(Some)
        .ok_or_else(|| Error::new(ErrorCode::ScopeInsufficient, "unknown route scopes"))
}

fn claims_bytes(c: &Claims) -> Vec<u8> {
    json::object_to_json(c.as_map()).into_bytes()
}

/// The answer of an allowed request, `{"forward": {header: value}, "strip_authorization",
/// "route", "would_deny"}`, written into `out` (reused between requests) rather than built as a
/// JSON value first: it is written on every request a gate lets through.
fn write_answer(out: &mut Vec<u8>, allowed: &Allowed) {
    out.clear();
    out.extend_from_slice(b"{\"forward\":{");
    // In name order, a header named twice with its last value, as a JSON object of them was.
    // A handful of headers: an insertion into a sorted list, no sort or map code.
    let mut forward: Vec<(&str, &str)> = Vec::with_capacity(allowed.forward.len());
    for (h, v) in &allowed.forward {
        match forward.binary_search_by(|(k, _)| k.cmp(&h.as_str())) {
            Ok(at) => {
                if let Some(slot) = forward.get_mut(at) {
                    slot.1 = v;
                }
            }
            Err(at) => forward.insert(at, (h, v)),
        }
    }
    for (i, (h, v)) in forward.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(out, h);
        out.push(b':');
        json_string(out, v);
    }
    out.extend_from_slice(b"},\"strip_authorization\":");
    out.extend_from_slice(if allowed.strip_authorization {
        b"true"
    } else {
        b"false"
    });
    out.extend_from_slice(b",\"route\":");
    match &allowed.record.route {
        Some(r) => json_string(out, r),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"would_deny\":");
    match &allowed.would_deny {
        Some(r) => out.extend_from_slice(response_json(r).to_json().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

/// `s` as a JSON string (RFC 8259 §7): quote, backslash and control characters escaped.
fn json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                for nibble in [b >> 4, b & 0xf] {
                    out.push(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'));
                }
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn response_json(r: &Response) -> Value {
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|(n, v)| Value::from(vec![*n, v.as_str()]))
        .collect();
    object!({
        "status": r.status,
        "code": r.code.as_str(),
        "headers": headers,
        "body": &r.body,
    })
}

fn scopes_json(s: &Scopes) -> Value {
    match s {
        Scopes::All(l) => object!({ "all": l.as_slice() }),
        Scopes::Any(l) => object!({ "any": l.as_slice() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const ISS: &str = "https://issuer.example";

    fn engine(extra: Value) -> Engine {
        let mut cfg = json!({
            "providers": [{
                "issuer": ISS, "client_ids": null, "token_use": null,
                "jwks": {"keys": []}
            }]
        });
        if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        Engine::new(&cfg.to_string(), 1.0e9, 7).unwrap()
    }

    fn run(e: &mut Engine, token: &str) -> Status {
        e.input(token.len());
        e.input_mut()[..token.len()].copy_from_slice(token.as_bytes());
        e.verify(0, token.len(), u32::MAX, u32::MAX, 1.0e9, 0, FLAG_AUDIT)
    }

    fn request(e: &mut Engine, method: &str, target: &str, auth: &[&str]) -> Status {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(method.as_bytes());
        bytes.extend_from_slice(target.as_bytes());
        for a in auth {
            bytes.extend_from_slice(a.as_bytes());
        }
        e.input(bytes.len());
        e.input_mut()[..bytes.len()].copy_from_slice(&bytes);
        let len = |i: usize| auth.get(i).map_or(u32::MAX, |a| a.len() as u32);
        e.decide(
            [
                method.len() as u32,
                target.len() as u32,
                u32::MAX,
                len(0),
                len(1),
                u32::MAX,
                u32::MAX,
            ],
            1.0e9,
            0,
            FLAG_AUDIT | FLAG_PURE,
        )
    }

    fn error_doc(e: &Engine) -> Value {
        serde_json::from_slice(e.out()).unwrap()
    }

    /// `bytes` is the compact text `serde_json` writes for the value it holds (member order,
    /// escapes, number forms): what the engine wrote with `serde_json` before.
    fn assert_serde_compact(bytes: &[u8]) {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            core::str::from_utf8(bytes).unwrap()
        );
    }

    #[test]
    fn what_the_engine_writes_is_serde_jsons_compact_text() {
        let mut e = engine(json!({
            "realm": "a \"quoted\" realm",
            "rules": [{"match": {"prefix": "/health"}, "allow": "anonymous"},
                      {"match": {"prefix": "/"}, "scopes": {"any": ["orders/read"]}}],
            "feed": {"uri": "https://feed.example/p.json", "unsigned": true}
        }));
        assert_serde_compact(e.info().as_bytes());
        assert_serde_compact(e.feed_state(1.0e9).as_bytes());
        assert_serde_compact(e.poll_feed(1.0e9).unwrap().as_bytes());
        assert_serde_compact(e.kids(0, 1.0e9).as_bytes());
        // (The answer of an allowed request was written by hand before, in its own order.)
        assert_eq!(request(&mut e, "GET", "/health", &[]), Status::Accept);
        assert_serde_compact(e.audit());
        for (target, auth) in [("/x", "Bearer not.a.jwt"), ("/x", ""), ("/a/../b", "")] {
            let auth: &[&str] = if auth.is_empty() { &[] } else { &[auth] };
            assert_eq!(request(&mut e, "GET", target, auth), Status::Error);
            assert_serde_compact(e.out());
            assert_serde_compact(e.audit());
        }
    }

    #[test]
    fn config_mistakes_name_their_field() {
        let err = |c: Value| Engine::new(&c.to_string(), 0.0, 0).err().unwrap();
        assert_eq!(
            err(json!({"providers": []})),
            "providers: must list at least one provider"
        );
        assert!(
            err(json!({"providers": [{"issuer": ISS, "jwks": {"keys": []}}]}))
                .starts_with("providers[0].client_ids")
        );
        assert!(
            err(json!({"providers": [{"issuer": ISS, "client_ids": null}]}))
                .starts_with("providers[0].jwks")
        );
        assert!(err(json!({"providers": [], "bogus": 1})).starts_with("bogus"));
        assert!(
            err(json!({"providers": [{"cognito_user_pool_id": "nope", "client_ids": null}]}))
                .starts_with("providers[0].cognito_user_pool_id")
        );
        assert!(err(json!({"providers": [{"issuer": ISS, "client_ids": null,
                            "jwks": {"cluster": "c", "path": "/j"}}]}))
        .starts_with("providers[0].jwks.uri"));
    }

    #[test]
    fn cognito_pool_derives_both_issuers_and_the_jwks_url() {
        let e = Engine::new(
            &json!({"providers": [{"cognito_user_pool_id": "eu-west-1_AbC123",
                                   "client_ids": ["c"]}]})
            .to_string(),
            0.0,
            0,
        )
        .unwrap();
        let info: Value = serde_json::from_str(&e.info()).unwrap();
        let p = &info["providers"][0];
        assert_eq!(
            p["issuers"],
            json!([
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123",
                "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
            ])
        );
        assert_eq!(
            p["jwks_uri"],
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123/.well-known/jwks.json"
        );
        assert_eq!(p["remote"], true);
        assert_eq!(p["timeout_ms"], 2000);
        assert_eq!(info["realm"], "tokengate");
    }

    #[test]
    fn garbage_gets_a_stable_code_and_an_audit_line_without_the_token() {
        let mut e = engine(json!({"realm": "api"}));
        assert_eq!(run(&mut e, "not-a-jwt"), Status::Error);
        let doc = error_doc(&e);
        assert_eq!(doc["code"], "token_malformed");
        assert_eq!(doc["status"], 401);
        assert_eq!(
            doc["www_authenticate"],
            "Bearer realm=\"api\", error=\"invalid_token\""
        );
        let audit = core::str::from_utf8(e.audit()).unwrap();
        assert!(audit.contains("\"decision\":\"deny\""));
        assert!(!audit.contains("not-a-jwt"));
        assert_eq!(run(&mut e, ""), Status::Error);
        assert_eq!(error_doc(&e)["code"], "token_missing");
    }

    #[test]
    fn requests_get_the_gate_answer() {
        let mut e = engine(json!({
            "rules": [{"match": {"prefix": "/health"}, "allow": "anonymous"},
                      {"match": {"prefix": "/"}, "allow": "authenticated"}]
        }));
        assert_eq!(request(&mut e, "GET", "/health", &[]), Status::Accept);
        let answer: Value = serde_json::from_slice(e.answer()).unwrap();
        assert_eq!(answer["route"], "rules[0]");
        assert_eq!(e.meta()[8], 0, "no claims on an anonymous route");
        assert_eq!(request(&mut e, "GET", "/health/..;/x", &[]), Status::Error);
        let doc = error_doc(&e);
        assert_eq!(doc["code"], "request_invalid");
        assert_eq!(doc["response"]["status"], 400);
        assert_eq!(
            request(&mut e, "GET", "/x", &["Bearer a.b.c", "Bearer a.b.c"]),
            Status::Error
        );
        assert_eq!(error_doc(&e)["code"], "token_malformed");
        assert_eq!(request(&mut e, "GET", "/x", &[]), Status::Error);
        let doc = error_doc(&e);
        assert_eq!(doc["www_authenticate"], "Bearer realm=\"tokengate\"");
        assert_eq!(
            doc["response"]["headers"][2],
            json!(["www-authenticate", "Bearer realm=\"tokengate\""])
        );
        // Lengths that run past the input are a 400, never a panic.
        assert_eq!(
            e.decide([1 << 30, 7, 9, 3, u32::MAX, 5, 5], 1.0, 0, 0),
            Status::Error
        );
        assert_eq!(error_doc(&e)["code"], "request_invalid");
    }

    #[test]
    fn certificate_facts_that_do_not_parse_are_a_400_not_a_panic() {
        let mut e = engine(json!({}));
        for peer in [
            &b"\x30\x83abc"[..],
            b"{\"sha256\": 1}",
            b"{nope",
            b"-----BEGIN",
            b"\xff",
            b"not-a-digest",
        ] {
            let mut bytes = b"GET/x".to_vec();
            bytes.extend_from_slice(peer);
            e.input(bytes.len());
            e.input_mut()[..bytes.len()].copy_from_slice(&bytes);
            let lens = [
                3,
                2,
                peer.len() as u32,
                u32::MAX,
                u32::MAX,
                u32::MAX,
                u32::MAX,
            ];
            assert_eq!(e.decide(lens, 1.0, 0, 0), Status::Error);
            assert_eq!(error_doc(&e)["code"], "request_invalid", "{peer:?}");
            let mut bytes = b"a.b.c".to_vec();
            bytes.extend_from_slice(peer);
            e.input(bytes.len());
            e.input_mut()[..bytes.len()].copy_from_slice(&bytes);
            assert_eq!(
                e.verify(0, 5, peer.len() as u32, u32::MAX, 1.0, 0, 0),
                Status::Error
            );
            // verify(): other text is a thumbprint compared as given (certThumbprint).
            let want = if peer == b"not-a-digest" {
                "token_malformed"
            } else {
                "request_invalid"
            };
            assert_eq!(error_doc(&e)["code"], want, "{peer:?}");
        }
    }

    #[test]
    fn invalid_utf8_and_out_of_range_lengths_are_malformed_not_a_panic() {
        let mut e = engine(json!({}));
        e.input(4);
        e.input_mut()[..4].copy_from_slice(&[0xff, 0xfe, b'.', b'.']);
        assert_eq!(e.verify(0, 4, u32::MAX, u32::MAX, 0.0, 0, 0), Status::Error);
        assert_eq!(e.verify(0, 1 << 30, 7, 9, f64::NAN, 0, 0), Status::Error);
        assert_eq!(
            e.verify(1 << 30, 3, u32::MAX, u32::MAX, 0.0, 0, 0),
            Status::Error
        );
        assert_eq!(e.verify(usize::MAX, 3, 7, 9, 0.0, 0, 0), Status::Error);
        assert_eq!(error_doc(&e)["code"], "token_malformed");
    }

    #[test]
    fn unknown_route_scopes_fail_closed() {
        let mut e = engine(json!({}));
        e.input(3);
        e.input_mut()[..3].copy_from_slice(b"a.b");
        assert_eq!(
            e.verify(0, 3, u32::MAX, u32::MAX, 0.0, 42, 0),
            Status::Error
        );
        assert_eq!(error_doc(&e)["code"], "scope_insufficient");
    }

    #[test]
    fn cleared_route_scope_ids_are_retired_and_empty_ones_refused() {
        let mut e = engine(json!({}));
        let a = e.register_scopes("{\"all\": [\"a\"]}").unwrap();
        e.clear_scopes();
        let b = e.register_scopes("{\"all\": [\"b\"]}").unwrap();
        assert_ne!(a, b);
        e.input(3);
        e.input_mut()[..3].copy_from_slice(b"a.b");
        assert_eq!(e.verify(0, 3, u32::MAX, u32::MAX, 0.0, a, 0), Status::Error);
        assert_eq!(error_doc(&e)["code"], "scope_insufficient");
        assert!(e.register_scopes("{\"all\": \"a\"}").is_err());
        assert!(e.register_scopes("{\"all\": []}").is_err());
        assert!(e.register_scopes("{\"any\": []}").is_err());
    }

    #[test]
    fn answer_strings_are_json_whatever_they_hold() {
        let mut out = Vec::new();
        for s in [
            "plain",
            "q\"b\\s/",
            "c\u{1}\n\t\u{1f}\u{7f}",
            "ünï ✓ \u{2028}",
            "",
        ] {
            out.clear();
            json_string(&mut out, s);
            assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), s);
        }
    }

    #[test]
    fn numbered_ids_grow_and_stay_retired_after_a_clear() {
        let mut t = Numbered::default();
        assert_eq!(t.get(0), None);
        assert_eq!(t.push("a"), Some(1));
        assert_eq!(t.push("b"), Some(2));
        assert_eq!(
            (t.get(1), t.get(2), t.get(3)),
            (Some(&"a"), Some(&"b"), None)
        );
        t.clear();
        assert_eq!((t.get(1), t.get(2), t.len()), (None, None, 0));
        assert_eq!(t.push("c"), Some(3), "ids are never reused");
        assert_eq!((t.get(2), t.get(3)), (None, Some(&"c")));
        // The last id is u32::MAX; after it, none is handed out (and 0 never is).
        let mut t = Numbered {
            first: u64::from(u32::MAX - 1),
            values: Vec::new(),
        };
        assert_eq!(t.push("y"), Some(u32::MAX - 1));
        assert_eq!(t.push("z"), Some(u32::MAX));
        assert_eq!(t.push("none"), None);
        assert_eq!(t.get(u32::MAX), Some(&"z"));
        assert_eq!(t.get(0), None);
        t.clear();
        assert_eq!(t.push("none"), None, "a clear does not bring ids back");
    }

    #[test]
    fn claims_ids_are_stable_per_claims_object() {
        let mut ids = ClaimsIds::default();
        let claims = Arc::new(Claims::new(Object::new()));
        let held = claims.clone();
        assert_eq!(ids.id_for(&claims), (1, true));
        assert_eq!(ids.id_for(&held), (1, false));
        let other = Arc::new(Claims::new(Object::new()));
        assert_eq!(ids.id_for(&other), (2, true));
        assert_eq!(ids.id_for(&claims), (1, false));
        // Many claims at once: each gets a new id and keeps it unless its slot was taken
        // (then it gets another, never someone else's).
        let many: Vec<_> = (0..1000)
            .map(|_| Arc::new(Claims::new(Object::new())))
            .collect();
        let first: Vec<_> = many.iter().map(|c| ids.id_for(c)).collect();
        assert!(first.iter().all(|&(id, new)| new && id > 2));
        let mut again_same = 0;
        for (c, &(id, _)) in many.iter().zip(&first) {
            let (again, new) = ids.id_for(c);
            if !new {
                assert_eq!(again, id);
                again_same += 1;
            } else {
                assert!(again > id);
            }
        }
        assert!(again_same > 700, "{again_same} of 1000 kept their id");
        let slots: std::collections::HashSet<usize> = many
            .iter()
            .map(|c| claims_slot(Arc::as_ptr(c) as usize))
            .collect();
        assert!(slots.len() > 850, "1000 claims in {} slots", slots.len());
        // Past MAX_CLAIMS_IDS ids everything is forgotten together, and ids are not reused.
        let before = ids.by_id.next_id().unwrap();
        for _ in 0..MAX_CLAIMS_IDS {
            ids.id_for(&Arc::new(Claims::new(Object::new())));
        }
        let (id, new) = ids.id_for(&claims);
        assert!(new && id >= before);
        assert!(ids.by_id.len() <= MAX_CLAIMS_IDS);
    }

    #[test]
    fn finish_of_an_unknown_pending_id_asks_to_verify_again() {
        let mut e = engine(json!({}));
        assert_eq!(e.finish(7, OUTCOME_VALID, 0.0, 0), Status::Lost);
    }

    #[test]
    fn host_denials_use_the_core_mapping() {
        let mut e = engine(json!({"realm": "r"}));
        assert_eq!(e.deny("token_missing", "none", u32::MAX, 0), Status::Error);
        let doc = error_doc(&e);
        assert_eq!(doc["www_authenticate"], "Bearer realm=\"r\"");
        assert_eq!(doc["status"], 401);
    }

    #[test]
    fn bad_jwks_answers_keep_previous_keys() {
        let mut e = Engine::new(
            &json!({"providers": [{"jwks": {"uri": "http://127.0.0.1:1/jwks"},
                    "issuer": ISS, "client_ids": null}]})
            .to_string(),
            0.0,
            0,
        )
        .unwrap();
        assert_eq!(e.poll(100.0), 0);
        assert_eq!(e.poll(100.0), -1, "single flight");
        assert_eq!(e.on_jwks_response(0, 101.0, 200, None, b"<html>"), -1);
        assert!(e.last_refresh_error().contains("not a JSON object"));
        assert!(!e.has_keys(0, 101.0));
        assert_eq!(e.generation(0), 1);
        assert!(e.cache_jwks(0, 101.0, "{\"keys\":[]}").is_err());
        assert!(e.set_revocation("{\"jti\":[\"x\"]}").is_ok());
        assert!(e.set_revocation("{\"nope\":1}").is_err());
    }
}
