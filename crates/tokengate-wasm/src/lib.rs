#![doc = include_str!("../README.md")]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod engine;
#[cfg(any(target_arch = "wasm32", test))]
mod memcmp;
#[cfg(any(target_arch = "wasm32", test))]
mod pool;

pub use engine::{
    Engine, Meta, Status, FLAG_AUDIT, FLAG_FINAL, FLAG_PURE, META_LEN, OUTCOME_INVALID,
    OUTCOME_PURE, OUTCOME_VALID,
};

use wasm_bindgen::prelude::*;

/// One verifier, built from a JSON configuration (format in the crate documentation).
#[wasm_bindgen]
pub struct Core {
    engine: Engine,
}

#[wasm_bindgen]
impl Core {
    /// Build from the gate configuration JSON at `now` (seconds); `jitter_seed` (an integer
    /// below 2^53) spreads JWKS retries.
    ///
    /// # Errors
    /// The configuration mistake, as `field: message`.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &str, now: f64, jitter_seed: f64) -> Result<Core, JsError> {
        let seed = if jitter_seed.is_finite() && jitter_seed >= 0.0 {
            jitter_seed as u64
        } else {
            0
        };
        Engine::new(config, now, seed)
            .map(|engine| Core { engine })
            .map_err(|e| JsError::new(&e))
    }

    /// Static facts JS needs once: providers (issuers, JWKS URL), limits, error code names.
    pub fn info(&self) -> String {
        self.engine.info()
    }

    /// Make the input buffer at least `capacity` bytes and return its address.
    pub fn input(&mut self, capacity: usize) -> usize {
        self.engine.input(capacity) as usize
    }

    /// Address of the `meta` array (`META_LEN` × u32).
    pub fn meta(&self) -> usize {
        self.engine.meta_ptr() as usize
    }

    /// Verify the token at `token_at` in the input buffer. See [`Engine::verify`].
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
    ) -> u32 {
        self.engine.verify(
            token_at, token_len, peer_len, route_len, now, scopes_id, flags,
        ) as u32
    }

    /// Decide on one HTTP request held in the input buffer. See [`Engine::decide`].
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &mut self,
        method_len: u32,
        target_len: u32,
        peer_len: u32,
        auth0_len: u32,
        auth1_len: u32,
        cert0_len: u32,
        cert1_len: u32,
        now: f64,
        scopes_id: u32,
        flags: u32,
    ) -> u32 {
        self.engine.decide(
            [
                method_len, target_len, peer_len, auth0_len, auth1_len, cert0_len, cert1_len,
            ],
            now,
            scopes_id,
            flags,
        ) as u32
    }

    /// Finish a pending signature. See [`Engine::finish`].
    pub fn finish(&mut self, pending: u32, outcome: u32, now: f64, flags: u32) -> u32 {
        self.engine.finish(pending, outcome, now, flags) as u32
    }

    /// Forget a pending signature (its host crypto failed unexpectedly).
    pub fn drop_pending(&mut self, pending: u32) {
        self.engine.drop_pending(pending);
    }

    /// Write the claims JSON of an id into the output buffer; returns its length (0: unknown).
    pub fn claims_json(&mut self, id: u32) -> usize {
        self.engine.claims_json(id)
    }

    /// A host-level denial (no token, wrong type, no keys): error JSON in the output.
    pub fn deny(&mut self, code: &str, message: &str, route_len: u32, flags: u32) -> u32 {
        self.engine.deny(code, message, route_len, flags) as u32
    }

    /// The provider whose JWKS should be fetched now, or -1.
    pub fn poll(&mut self, now: f64) -> i32 {
        self.engine.poll(now)
    }

    /// Feed a JWKS HTTP answer; returns the number of kids taken, or -1 when refused (the
    /// previous keys stay). The reason is then in [`Core::last_refresh_error`].
    pub fn on_jwks_response(
        &mut self,
        provider: u32,
        now: f64,
        status: u16,
        cache_control: Option<String>,
        body: &[u8],
    ) -> i32 {
        self.engine
            .on_jwks_response(provider, now, status, cache_control.as_deref(), body)
    }

    /// Why the last JWKS answer was refused.
    pub fn last_refresh_error(&self) -> String {
        self.engine.last_refresh_error().to_owned()
    }

    /// The policy feed fetch to start now (`{"if_none_match": …}`), or undefined.
    pub fn poll_feed(&mut self, now: f64) -> Option<String> {
        self.engine.poll_feed(now)
    }

    /// Feed the policy feed's answer: 1 applied, 0 unchanged, -1 refused (see
    /// [`Core::last_feed_error`]).
    pub fn on_feed_response(
        &mut self,
        now: f64,
        status: u16,
        etag: Option<String>,
        cache_control: Option<String>,
        body: &[u8],
    ) -> i32 {
        self.engine
            .on_feed_response(now, status, etag.as_deref(), cache_control.as_deref(), body)
    }

    /// Report a failed policy feed fetch.
    pub fn on_feed_failure(&mut self, now: f64) {
        self.engine.on_feed_failure(now);
    }

    /// Why the last feed answer was refused ("" when it was taken).
    pub fn last_feed_error(&self) -> String {
        self.engine.last_feed_error()
    }

    /// The policy feed's state as JSON (`null` without a feed).
    pub fn feed_state(&self, now: f64) -> String {
        self.engine.feed_state(now)
    }

    /// Report a failed JWKS fetch (network error, timeout).
    pub fn on_jwks_failure(&mut self, provider: u32, now: f64) {
        self.engine.on_jwks_failure(provider, now);
    }

    /// Install a JWKS for a provider as if just fetched.
    ///
    /// # Errors
    /// Why the JWKS is unusable.
    pub fn cache_jwks(&mut self, provider: u32, now: f64, jwks: &str) -> Result<u32, JsError> {
        self.engine
            .cache_jwks(provider, now, jwks)
            .map_err(|e| JsError::new(&e))
    }

    /// Whether a provider has a usable key set at `now`.
    pub fn has_keys(&self, provider: u32, now: f64) -> bool {
        self.engine.has_keys(provider, now)
    }

    /// The kids of a provider's current key set, JSON array, in key-index order.
    pub fn kids(&self, provider: u32, now: f64) -> String {
        self.engine.kids(provider, now)
    }

    /// Counter bumped whenever a provider's key set is replaced.
    pub fn generation(&self, provider: u32) -> u32 {
        self.engine.generation(provider)
    }

    /// Replace the revocation lists of every provider.
    ///
    /// # Errors
    /// A malformed list.
    pub fn set_revocation(&mut self, json: &str) -> Result<(), JsError> {
        self.engine
            .set_revocation(json)
            .map_err(|e| JsError::new(&e))
    }

    /// Register route scopes (`{"all": [..]}` / `{"any": [..]}`); returns their id.
    ///
    /// # Errors
    /// A malformed scope requirement.
    pub fn register_scopes(&mut self, json: &str) -> Result<u32, JsError> {
        self.engine
            .register_scopes(json)
            .map_err(|e| JsError::new(&e))
    }

    /// Forget all registered route scopes.
    pub fn clear_scopes(&mut self) {
        self.engine.clear_scopes();
    }
}

/// The module's allocator: TLSF (two-level segregated fit: constant-time allocation and free,
/// blocks coalesced on free) in its code-size build, in place of std's dlmalloc. Same speed
/// on the verification path (interleaved A/B of the uncached `verifySync` in one Node process),
/// 2.7 KB smaller gzipped. Single-threaded wasm: its lock is a no-op.
/// Small blocks (up to 64 bytes) are recycled through free lists in front of it
/// (`pool::Pooled`): a pop and a push instead of a split and a coalesce.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOC: pool::Pooled<rlsf::SmallGlobalTlsf> = pool::Pooled::new(rlsf::SmallGlobalTlsf::new());

/// With threads, TLSF alone (the free lists have no lock).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
#[global_allocator]
static ALLOC: rlsf::SmallGlobalTlsf = rlsf::SmallGlobalTlsf::new();
