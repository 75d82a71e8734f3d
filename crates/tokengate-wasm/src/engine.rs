//! The binding logic behind [`crate::Core`], free of wasm-bindgen types so it runs natively.

use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
// The core already links hashbrown; std's HashMap would add a second copy and SipHash.
use hashbrown::HashMap;

use serde_json::{json, Map, Value};
use tokengate::{
    Algorithm, Claims, CognitoPool, Decision, Error, ErrorCode, KeyCache, KeyCacheConfig, KeySet,
    PendingSignature, Policy, Provider, PureRust, Request, Revocation, Scopes, SignatureBackend,
    Step, Verified, Verifier,
};

/// Number of `u32` slots in the meta array.
pub const META_LEN: usize = 16;

/// What a call reports in `meta[0]`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
#[repr(u32)]
pub enum Status {
    /// Accepted: `meta[1]` claims id (0: not retained), `meta[2..4]` claims JSON (ptr, len;
    /// len 0 when JS has seen this id before), `meta[4]` provider, `meta[5]` 1 when the token
    /// cache answered.
    Accept = 0,
    /// The host must check a signature: `meta[1]` pending id, `[2]` provider, `[3]` key index
    /// (position of the kid in [`Engine::kids`]), `[4]` alg (0 RS256, 1 ES256), `[5]` signing
    /// input length (a prefix of the token in the input buffer), `[6..8]` signature (ptr,
    /// len), `[8]` key generation of the provider.
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

struct ProviderInfo {
    jwks_uri: Option<String>,
    remote: bool,
}

struct Pending {
    signature: PendingSignature,
    thumbprint: Option<String>,
    route: Option<String>,
    scopes_id: u32,
}

#[derive(Default)]
struct ClaimsIds {
    by_ptr: HashMap<usize, u32>,
    by_id: HashMap<u32, Arc<Claims>>,
    next: u32,
}

impl ClaimsIds {
    /// The id of these claims, and whether it is new. Holding the `Arc` keeps its address from
    /// being reused by other claims while the id lives.
    fn id_for(&mut self, claims: &Arc<Claims>) -> (u32, bool) {
        let ptr = Arc::as_ptr(claims) as usize;
        if let Some(&id) = self.by_ptr.get(&ptr) {
            return (id, false);
        }
        if self.by_ptr.len() >= MAX_CLAIMS_IDS {
            self.by_ptr.clear();
            self.by_id.clear();
        }
        self.next = self.next.wrapping_add(1).max(1);
        self.by_ptr.insert(ptr, self.next);
        self.by_id.insert(self.next, claims.clone());
        (self.next, true)
    }
}

/// One verifier with its buffers.
pub struct Engine {
    verifier: Verifier,
    providers: Vec<ProviderInfo>,
    generations: Vec<u32>,
    realm: String,
    input: Vec<u8>,
    out: Vec<u8>,
    audit: Vec<u8>,
    meta: Vec<u32>,
    pending: Vec<(u32, Pending)>,
    next_pending: u32,
    scopes: HashMap<u32, Scopes>,
    next_scopes_id: u32,
    claims_ids: ClaimsIds,
    last_refresh_error: String,
}

impl Engine {
    /// Build from the configuration JSON:
    ///
    /// ```json
    /// { "providers": [{ "policy": {…policy object…}, "jwks": {…}?, "jwks_uri": "…"?,
    ///                   "cognito_user_pool_id": "…"? }],
    ///   "key_cache": { "refresh_s", "max_stale_s", "fetch_timeout_s", "unknown_kid_cooldown_s",
    ///                  "max_jwks_bytes", "max_keys", "jitter_seed" }?,
    ///   "token_cache": { "capacity", "max_ttl_s" }?, "realm": "…"?, "now": seconds }
    /// ```
    ///
    /// # Errors
    /// `field: message` for the first mistake.
    pub fn new(config: &str) -> Result<Engine, String> {
        let doc: Value =
            serde_json::from_str(config).map_err(|e| format!("config: not JSON ({e})"))?;
        let obj = doc.as_object().ok_or("config: must be an object")?;
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "providers" | "key_cache" | "token_cache" | "realm" | "now"
            ) {
                return Err(format!("{key}: unknown field"));
            }
        }
        let now = match obj.get("now") {
            None => 0,
            Some(v) => secs(v.as_f64().ok_or("now: must be a number")?),
        };
        let key_cache = key_cache_config(obj.get("key_cache"))?;
        let list = obj
            .get("providers")
            .and_then(Value::as_array)
            .ok_or("providers: must be an array")?;
        if list.is_empty() {
            return Err("providers: at least one issuer is required".into());
        }
        let mut providers = Vec::with_capacity(list.len());
        let mut infos = Vec::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            let mut cfg = key_cache;
            cfg.jitter_seed = cfg
                .jitter_seed
                .wrapping_add((i as u64).wrapping_mul(0x9E37_79B9));
            let (provider, info) =
                provider(p, cfg, now).map_err(|e| format!("providers[{i}].{e}"))?;
            providers.push(provider);
            infos.push(info);
        }
        let mut verifier = Verifier::new(providers).map_err(|e| e.to_string())?;
        if let Some(tc) = obj.get("token_cache") {
            let tc = tc.as_object().ok_or("token_cache: must be an object")?;
            let capacity = opt_u64(tc, "capacity", "token_cache")?.unwrap_or(4096);
            let max_ttl = opt_u64(tc, "max_ttl_s", "token_cache")?.unwrap_or(600);
            verifier = verifier.with_token_cache(capacity.min(1 << 20) as usize, max_ttl);
        }
        let realm = match obj.get("realm") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err("realm: must be a string".into()),
        };
        let n = infos.len();
        Ok(Engine {
            verifier,
            providers: infos,
            generations: vec![1; n],
            realm,
            input: Vec::new(),
            out: Vec::new(),
            audit: Vec::new(),
            meta: vec![0; META_LEN],
            pending: Vec::new(),
            next_pending: 0,
            scopes: HashMap::new(),
            next_scopes_id: 0,
            claims_ids: ClaimsIds::default(),
            last_refresh_error: String::new(),
        })
    }

    /// Providers (issuers, JWKS URL, required scopes), the token size limit and the error codes
    /// with their HTTP statuses, as JSON.
    pub fn info(&self) -> String {
        let providers: Vec<Value> = self
            .verifier
            .providers()
            .iter()
            .zip(&self.providers)
            .map(|(p, info)| {
                json!({
                    "issuers": p.policy().issuers(),
                    "jwks_uri": info.jwks_uri,
                    "remote": info.remote,
                    "scopes": p.policy().scopes().map(scopes_json),
                    "max_token_bytes": p.policy().max_token_bytes(),
                })
            })
            .collect();
        let max_token_bytes = self
            .verifier
            .providers()
            .iter()
            .map(|p| p.policy().max_token_bytes())
            .max()
            .unwrap_or(0);
        let codes: Vec<Value> = ErrorCode::ALL
            .iter()
            .map(|c| json!({"code": c.as_str(), "status": c.http_status()}))
            .collect();
        json!({
            "providers": providers,
            "max_token_bytes": max_token_bytes,
            "codes": codes,
            "meta_len": META_LEN,
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

    /// The audit record of the last decision, when asked for.
    pub fn audit(&self) -> &[u8] {
        &self.audit
    }

    /// Verify the token held in `input[..token_len]`. The certificate thumbprint (RFC 8705)
    /// follows it when `thumbprint_len != u32::MAX`, then the route name for the audit record
    /// when `route_len != u32::MAX`. `scopes_id` names route scopes from
    /// [`Engine::register_scopes`] (0: none). Flags: [`FLAG_AUDIT`], [`FLAG_PURE`].
    pub fn verify(
        &mut self,
        token_len: usize,
        thumbprint_len: u32,
        route_len: u32,
        now: f64,
        scopes_id: u32,
        flags: u32,
    ) -> Status {
        let now = secs(now);
        let (token, thumbprint, route) =
            match split_input(&self.input, token_len, thumbprint_len, route_len) {
                Some(parts) => parts,
                None => {
                    let e = Error::new(ErrorCode::TokenMalformed, "token is not UTF-8");
                    return self.report(Err(e), None, 0, flags);
                }
            };
        let route = route.map(String::from);
        let scopes = match route_scopes(&self.scopes, scopes_id) {
            Ok(s) => s,
            Err(e) => return self.report(Err(e), route.as_deref(), 0, flags),
        };
        let mut req = Request::at(now);
        if let Some(s) = scopes {
            req = req.scopes(s);
        }
        if let Some(tp) = thumbprint {
            req = req.cert_thumbprint(tp);
        }
        let result = if flags & FLAG_PURE != 0 {
            let result = self.verifier.verify(token, &req);
            if matches!(&result, Ok(v) if !v.cached) {
                let payload = payload_of(token.as_bytes());
                return self.report_with(result, payload, route.as_deref(), scopes_id, flags);
            }
            result
        } else {
            match self.verifier.begin(token, &req) {
                Ok(Step::Done(v)) => Ok(v),
                Ok(Step::Signature(pending)) => {
                    let thumbprint = thumbprint.map(String::from);
                    return self.suspend(pending, thumbprint, route, scopes_id, now);
                }
                Err(e) => Err(e),
            }
        };
        self.report(result, route.as_deref(), scopes_id, flags)
    }

    /// Steps 8–17 for a pending signature: `outcome` is [`OUTCOME_VALID`], [`OUTCOME_INVALID`]
    /// or [`OUTCOME_PURE`] (check it here with the pure-Rust backend).
    pub fn finish(&mut self, pending: u32, outcome: u32, now: f64, flags: u32) -> Status {
        let now = secs(now);
        self.out.clear();
        self.audit.clear();
        let Some(at) = self.pending.iter().position(|(id, _)| *id == pending) else {
            self.set_meta(Status::Lost, &[]);
            return Status::Lost;
        };
        let (_, p) = self.pending.swap_remove(at);
        // The verified payload is handed to JS as the token's own JSON text (the core parsed
        // exactly these bytes), which is cheaper than serialising the parsed claims again.
        let payload = payload_of(p.signature.signing_input());
        let valid = match outcome {
            OUTCOME_VALID => true,
            OUTCOME_PURE => match self.verifier.key_for(&p.signature, now) {
                Some(key) => PureRust.verify(
                    key,
                    p.signature.alg(),
                    p.signature.signing_input(),
                    p.signature.signature(),
                ),
                None => false,
            },
            _ => false,
        };
        let scopes = match route_scopes(&self.scopes, p.scopes_id) {
            Ok(s) => s,
            Err(e) => return self.report(Err(e), p.route.as_deref(), 0, flags),
        };
        let mut req = Request::at(now);
        if let Some(s) = scopes {
            req = req.scopes(s);
        }
        if let Some(tp) = p.thumbprint.as_deref() {
            req = req.cert_thumbprint(tp);
        }
        let result = self.verifier.finish(p.signature, valid, &req);
        self.report_with(result, payload, p.route.as_deref(), p.scopes_id, flags)
    }

    /// Forget a pending signature.
    pub fn drop_pending(&mut self, pending: u32) {
        self.pending.retain(|(id, _)| *id != pending);
    }

    /// Write the claims JSON of `id` to the output buffer (meta[2..4]); its length, 0 when the
    /// id is no longer known.
    pub fn claims_json(&mut self, id: u32) -> usize {
        self.out.clear();
        if let Some(c) = self.claims_ids.by_id.get(&id) {
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
        match self.verifier.poll(secs(now)) {
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
        match self
            .verifier
            .on_jwks_response(p, secs(now), status, cache_control, body)
        {
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

    /// Report a failed fetch.
    pub fn on_jwks_failure(&mut self, provider: u32, now: f64) {
        self.verifier.on_jwks_failure(provider as usize, secs(now));
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
            .verifier
            .providers()
            .get(p)
            .map(|p| p.keys().config().limits)
            .unwrap_or_default();
        let keys = KeySet::from_json(jwks.as_bytes(), limits).map_err(|e| e.to_string())?;
        let count = keys.kids().count() as u32;
        let slot = self.verifier.provider_mut(p).ok_or("no such provider")?;
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
        self.verifier
            .providers()
            .get(provider as usize)
            .is_some_and(|p| p.keys().keys(secs(now)).is_some())
    }

    /// The kids of a provider's current key set (JSON array); index = key index.
    pub fn kids(&self, provider: u32, now: f64) -> String {
        let kids: Vec<&str> = self
            .verifier
            .providers()
            .get(provider as usize)
            .and_then(|p| p.keys().keys(secs(now)))
            .map(|k| k.kids().collect())
            .unwrap_or_default();
        json!(kids).to_string()
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
        let v: Value =
            serde_json::from_str(json).map_err(|e| format!("revocation: not JSON ({e})"))?;
        let revocation = Revocation::from_json("revocation", &v).map_err(|e| e.to_string())?;
        for i in 0..self.providers.len() {
            self.verifier.set_revocation(i, revocation.clone());
        }
        Ok(())
    }

    /// Register route scopes; their id for [`Engine::verify`]. Ids are never reused, so a
    /// verification still pending when the set is cleared fails closed instead of meeting
    /// another route's scopes.
    ///
    /// # Errors
    /// A malformed requirement, or too many registered.
    pub fn register_scopes(&mut self, json: &str) -> Result<u32, String> {
        let v: Value = serde_json::from_str(json).map_err(|e| format!("scope: not JSON ({e})"))?;
        let scopes = Scopes::from_json("scope", &v).map_err(|e| e.to_string())?;
        if self.scopes.len() >= MAX_SCOPES {
            return Err("scope: too many distinct route scope sets".into());
        }
        self.next_scopes_id = self
            .next_scopes_id
            .checked_add(1)
            .ok_or("scope: route scope ids exhausted")?;
        self.scopes.insert(self.next_scopes_id, scopes);
        Ok(self.next_scopes_id)
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

    fn suspend(
        &mut self,
        signature: PendingSignature,
        thumbprint: Option<String>,
        route: Option<String>,
        scopes_id: u32,
        now: u64,
    ) -> Status {
        let provider = signature.provider();
        let key_index = self
            .verifier
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
        let meta = [
            0, // pending id, set below
            provider as u32,
            key_index as u32,
            alg,
            signature.signing_input().len() as u32,
            self.out.as_ptr() as u32,
            self.out.len() as u32,
            self.generation(provider as u32),
        ];
        if self.pending.len() >= MAX_PENDING {
            // Oldest first: ids only grow (until they wrap, far beyond any real backlog).
            self.pending.remove(0);
        }
        self.next_pending = self.next_pending.wrapping_add(1).max(1);
        let id = self.next_pending;
        self.pending.push((
            id,
            Pending {
                signature,
                thumbprint,
                route,
                scopes_id,
            },
        ));
        self.set_meta(Status::Signature, &meta);
        self.set_slot(1, id);
        Status::Signature
    }

    fn report(
        &mut self,
        result: Result<Verified, Error>,
        route: Option<&str>,
        scopes_id: u32,
        flags: u32,
    ) -> Status {
        self.report_with(result, None, route, scopes_id, flags)
    }

    /// `payload`: the decoded payload JSON of the token, when at hand, used as the claims JSON.
    fn report_with(
        &mut self,
        result: Result<Verified, Error>,
        payload: Option<Vec<u8>>,
        route: Option<&str>,
        scopes_id: u32,
        flags: u32,
    ) -> Status {
        self.out.clear();
        self.audit.clear();
        if flags & FLAG_AUDIT != 0 {
            let mut d = Decision::from_result(&result);
            if let Some(r) = route {
                d = d.route(r);
            }
            self.audit = d.to_json().into_bytes();
        }
        let status =
            match result {
                Ok(v) => {
                    // Claims the token cache holds (a second reference) get an id so JS keeps
                    // one object for them; others (cache disabled or full) get id 0 and are
                    // not retained on either side.
                    let (id, new) = if Arc::strong_count(&v.claims) > 1 {
                        self.claims_ids.id_for(&v.claims)
                    } else {
                        (0, true)
                    };
                    if new {
                        self.out = payload.unwrap_or_else(|| claims_bytes(&v.claims));
                    }
                    let meta = [
                        id,
                        self.out.as_ptr() as u32,
                        self.out.len() as u32,
                        v.provider as u32,
                        u32::from(v.cached),
                    ];
                    self.set_meta(Status::Accept, &meta);
                    Status::Accept
                }
                Err(e) => {
                    let code = e.code();
                    let mut required: Vec<&str> = Vec::new();
                    if code == ErrorCode::ScopeInsufficient {
                        let iss = e.claims().and_then(Claims::iss);
                        if let Some(p) = self.verifier.providers().iter().find(|p| {
                            iss.is_some_and(|i| p.policy().issuers().iter().any(|x| x == i))
                        }) {
                            if let Some(s) = p.policy().scopes() {
                                required.extend(s.listed().iter().map(String::as_str));
                            }
                        }
                        if let Ok(Some(s)) = route_scopes(&self.scopes, scopes_id) {
                            for s in s.listed() {
                                if !required.contains(&s.as_str()) {
                                    required.push(s);
                                }
                            }
                        }
                    }
                    let doc = json!({
                        "code": code.as_str(),
                        "message": e.message(),
                        "status": code.http_status(),
                        "www_authenticate": code.www_authenticate(&self.realm, &required),
                        "claims": e.claims().map(|c| Value::Object(c.as_map().clone())),
                        "fetch_pending": e.fetch_pending(),
                    });
                    self.out = doc.to_string().into_bytes();
                    let index = ErrorCode::ALL.iter().position(|c| *c == code).unwrap_or(0);
                    let meta = [
                        index as u32,
                        self.out.as_ptr() as u32,
                        self.out.len() as u32,
                        u32::from(e.fetch_pending()),
                    ];
                    self.set_meta(Status::Error, &meta);
                    Status::Error
                }
            };
        let (ptr, len) = (self.audit.as_ptr() as u32, self.audit.len() as u32);
        self.set_slot(Meta::AuditPtr as usize, ptr);
        self.set_slot(Meta::AuditLen as usize, len);
        status
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

/// Seconds from a JS number: fractions dropped, negative or non-finite as 0.
fn secs(now: f64) -> u64 {
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

type Parts<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

fn split_input(
    input: &[u8],
    token_len: usize,
    thumbprint_len: u32,
    route_len: u32,
) -> Option<Parts<'_>> {
    let token = core::str::from_utf8(input.get(..token_len)?).ok()?;
    let mut at = token_len;
    let mut field = |len: u32| -> Option<Option<&str>> {
        if len == u32::MAX {
            return Some(None);
        }
        let end = at.checked_add(len as usize)?;
        let s = core::str::from_utf8(input.get(at..end)?).ok()?;
        at = end;
        Some(Some(s))
    };
    let thumbprint = field(thumbprint_len)?;
    let route = field(route_len)?;
    Some((token, thumbprint, route))
}

fn route_scopes(scopes: &HashMap<u32, Scopes>, id: u32) -> Result<Option<&Scopes>, Error> {
    if id == 0 {
        return Ok(None);
    }
    // An unknown id must not drop the route's requirement: fail closed.
    scopes
        .get(&id)
        .map(Some)
        .ok_or_else(|| Error::new(ErrorCode::ScopeInsufficient, "unknown route scopes"))
}

/// The decoded payload segment of `header.payload[.signature]`.
fn payload_of(token: &[u8]) -> Option<Vec<u8>> {
    let mut parts = token.split(|&b| b == b'.');
    parts.next()?;
    URL_SAFE_NO_PAD.decode(parts.next()?).ok()
}

fn claims_bytes(c: &Claims) -> Vec<u8> {
    serde_json::to_vec(c.as_map()).unwrap_or_default()
}

fn scopes_json(s: &Scopes) -> Value {
    match s {
        Scopes::All(l) => json!({ "all": l }),
        Scopes::Any(l) => json!({ "any": l }),
    }
}

fn opt_u64(obj: &Map<String, Value>, key: &str, parent: &str) -> Result<Option<u64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{parent}.{key}: must be a non-negative integer")),
    }
}

fn key_cache_config(v: Option<&Value>) -> Result<KeyCacheConfig, String> {
    let mut cfg = KeyCacheConfig::default();
    let Some(v) = v else { return Ok(cfg) };
    let obj = v.as_object().ok_or("key_cache: must be an object")?;
    for (key, _) in obj.iter() {
        let Some(n) = opt_u64(obj, key, "key_cache")? else {
            continue;
        };
        match key.as_str() {
            "refresh_s" => cfg.refresh_s = n.max(1),
            "max_stale_s" => cfg.max_stale_s = n,
            "fetch_timeout_s" => cfg.fetch_timeout_s = n.max(1),
            "unknown_kid_cooldown_s" => cfg.unknown_kid_cooldown_s = n,
            "max_jwks_bytes" => cfg.limits.max_bytes = n as usize,
            "max_keys" => cfg.limits.max_keys = n as usize,
            "jitter_seed" => cfg.jitter_seed = n,
            other => return Err(format!("key_cache.{other}: unknown field")),
        }
    }
    Ok(cfg)
}

fn provider(v: &Value, cfg: KeyCacheConfig, now: u64) -> Result<(Provider, ProviderInfo), String> {
    let obj = v.as_object().ok_or("provider: must be an object")?;
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "policy" | "jwks" | "jwks_uri" | "cognito_user_pool_id"
        ) {
            return Err(format!("{key}: unknown field"));
        }
    }
    let mut policy = obj.get("policy").cloned().unwrap_or_else(|| json!({}));
    let mut jwks_uri = match obj.get("jwks_uri") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => return Err("jwks_uri: must be a non-empty string".into()),
    };
    match obj.get("cognito_user_pool_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) => {
            let pool = CognitoPool::parse(id).map_err(|e| e.to_string())?;
            let policy_obj = policy
                .as_object_mut()
                .ok_or("policy: must be a JSON object")?;
            if !policy_obj.contains_key("issuers") {
                policy_obj.insert(
                    "issuers".into(),
                    json!([pool.issuer(), pool.alternate_issuer()]),
                );
            }
            if jwks_uri.is_none() {
                jwks_uri = Some(pool.jwks_url());
            }
        }
        Some(_) => return Err("cognito_user_pool_id: must be a string".into()),
    }
    let policy = Policy::from_json(&policy).map_err(|e| format!("policy.{e}"))?;
    let inline = match obj.get("jwks") {
        None | Some(Value::Null) => None,
        Some(doc) => Some(KeySet::from_value(doc, cfg.limits).map_err(|e| format!("jwks: {e}"))?),
    };
    let remote = jwks_uri.is_some();
    let keys = match (remote, inline) {
        (true, inline) => {
            let mut cache = KeyCache::remote(cfg);
            if let Some(keys) = inline {
                cache.seed(keys, now);
            }
            cache
        }
        (false, Some(keys)) => KeyCache::fixed(keys),
        (false, None) => return Err("jwks: either jwks or jwks_uri is required".into()),
    };
    Ok((
        Provider::new(policy, keys),
        ProviderInfo { jwks_uri, remote },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://issuer.example";

    fn engine(extra: Value) -> Engine {
        let mut cfg = json!({
            "providers": [{
                "policy": {"issuers": [ISS], "client_ids": null, "token_use": null},
                "jwks": {"keys": []}
            }]
        });
        if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        Engine::new(&cfg.to_string()).unwrap()
    }

    fn run(e: &mut Engine, token: &str) -> Status {
        e.input(token.len());
        e.input_mut()[..token.len()].copy_from_slice(token.as_bytes());
        e.verify(token.len(), u32::MAX, u32::MAX, 1.0e9, 0, FLAG_AUDIT)
    }

    fn error_doc(e: &Engine) -> Value {
        serde_json::from_slice(e.out()).unwrap()
    }

    #[test]
    fn config_mistakes_name_their_field() {
        let err = |c: Value| Engine::new(&c.to_string()).err().unwrap();
        assert_eq!(
            err(json!({"providers": []})),
            "providers: at least one issuer is required"
        );
        assert!(
            err(json!({"providers": [{"policy": {"issuers": [ISS]}, "jwks": {"keys": []}}]}))
                .starts_with("providers[0].policy.client_ids")
        );
        assert!(
            err(json!({"providers": [{"policy": {"issuers": [ISS], "client_ids": null}}]}))
                .contains("either jwks or jwks_uri")
        );
        assert!(err(json!({"providers": [], "bogus": 1})).starts_with("bogus"));
        assert!(
            err(json!({"providers": [{"cognito_user_pool_id": "nope", "policy": {}}]}))
                .contains("user_pool_id")
        );
    }

    #[test]
    fn cognito_pool_derives_both_issuers_and_the_jwks_url() {
        let e = Engine::new(
            &json!({"providers": [{"cognito_user_pool_id": "eu-west-1_AbC123",
                                   "policy": {"client_ids": ["c"]}}]})
            .to_string(),
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
    fn invalid_utf8_and_out_of_range_lengths_are_malformed_not_a_panic() {
        let mut e = engine(json!({}));
        e.input(4);
        e.input_mut()[..4].copy_from_slice(&[0xff, 0xfe, b'.', b'.']);
        assert_eq!(e.verify(4, u32::MAX, u32::MAX, 0.0, 0, 0), Status::Error);
        assert_eq!(e.verify(1 << 30, 7, 9, f64::NAN, 0, 0), Status::Error);
        assert_eq!(error_doc(&e)["code"], "token_malformed");
    }

    #[test]
    fn unknown_route_scopes_fail_closed() {
        let mut e = engine(json!({}));
        e.input(3);
        e.input_mut()[..3].copy_from_slice(b"a.b");
        assert_eq!(e.verify(3, u32::MAX, u32::MAX, 0.0, 42, 0), Status::Error);
        assert_eq!(error_doc(&e)["code"], "scope_insufficient");
    }

    #[test]
    fn cleared_route_scope_ids_are_retired_and_fail_closed() {
        let mut e = engine(json!({}));
        let a = e.register_scopes("{\"all\": [\"a\"]}").unwrap();
        e.clear_scopes();
        let b = e.register_scopes("{\"all\": [\"b\"]}").unwrap();
        assert_ne!(a, b);
        e.input(3);
        e.input_mut()[..3].copy_from_slice(b"a.b");
        assert_eq!(e.verify(3, u32::MAX, u32::MAX, 0.0, a, 0), Status::Error);
        assert_eq!(error_doc(&e)["code"], "scope_insufficient");
        assert!(e.register_scopes("{\"all\": \"a\"}").is_err());
    }

    #[test]
    fn claims_ids_are_stable_per_claims_object() {
        let mut ids = ClaimsIds::default();
        let claims = Arc::new(Claims::new(Map::new()));
        let held = claims.clone();
        assert_eq!(ids.id_for(&claims), (1, true));
        assert_eq!(ids.id_for(&held), (1, false));
        let other = Arc::new(Claims::new(Map::new()));
        assert_eq!(ids.id_for(&other), (2, true));
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
            &json!({"providers": [{"jwks_uri": "http://127.0.0.1:1/jwks",
                    "policy": {"issuers": [ISS], "client_ids": null}}]})
            .to_string(),
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
