//! proxy-wasm ABI glue: moves bytes between Envoy and [`Gate`]. Nothing here decides.
//!
//! One VM per Envoy worker. The root context owns the [`Gate`] (shared with the VM's HTTP
//! contexts through an `Rc<RefCell<…>>`: a VM is single-threaded), fetches JWKS and the policy
//! feed ([`feed`]) with `dispatch_http_call`, publishes them to shared data for the other
//! workers, and on each tick loads what others published, starts due refreshes and times out
//! paused requests. Between two ticks, an allow the gate gave is replayed for the identical
//! request ([`crate::replay`]); each decision's audit record goes to the stream's filter state
//! (or Envoy's log), a replayed one included.
//!
//! Re-entrancy: a host call that acts on a stream (local reply, resume) may call back into this
//! VM before it returns, so the shared state is never borrowed across those calls: decisions are
//! computed under the borrow, then applied after it ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};
use tokengate::config::Cluster;
use tokengate::gate::{Allowed, Begin, Denied, PendingRequest, Response};
use tokengate::peer::Peer;
use tokengate::ratelimit::{self, Bucket, RateLimit};
use tokengate::{AuditSink, Clock, Crypto, Decision, ErrorCode, Gate, Outcome, RequestFacts};

use crate::config;
use crate::hostcrypto;
use crate::replay::{self, Replay};
use crate::shared::{self, JwksRecord, Keys, Lease};

mod abi;
mod feed;
// The npm module's `memcmp`/`bcmp` (64 bytes per step with simd128): a cache hit and a replayed
// answer compare the whole token with their key.
#[path = "../../tokengate-wasm/src/memcmp.rs"]
mod mem;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root { id: context_id, state: Rc::new(RefCell::new(None)) })
    });
}}

type State = Rc<RefCell<Option<Worker>>>;

/// Everything one VM knows once configured.
struct Worker {
    /// The VM's clock (ms), read from the host on each tick and callout rather than on each
    /// request: under Envoy's V8 the time host call costs more than a cached token check.
    clock_ms: u64,
    gate: Gate,
    keys: Keys,
    vm_id: u64,
    metrics: Metrics,
    remotes: Vec<Option<Remote>>,
    /// The policy feed's fetching state, when one is configured.
    feed: Option<feed::FeedRemote>,
    calls: HashMap<u32, Call>,
    waiting: Vec<Waiting>,
    /// Streams resumed with an allow after waiting: their body and trailers may now move on.
    released: Vec<u32>,
    /// Envoy's `wasm` log level lets info lines through (read on each tick): `"audit": "log"`
    /// formats no line that would be dropped.
    info_logged: bool,
    /// The lengths of the names in `gate.remove_headers()` ([`length_bit`]): most request
    /// headers are ruled out without comparing names.
    strip_lengths: u64,
    /// Allows the gate gave since the last tick or callout, replayed for identical requests.
    replay: Replay<Replayed>,
    /// The gate says its allows may be repeated for identical requests
    /// ([`Gate::allows_repeat_for_identical_requests`]).
    replayable: bool,
    /// Ask Envoy's `verify_signature` foreign function: it is served (probed at start) and the
    /// configuration does not say `"crypto": "wasm"`.
    host_crypto: bool,
}

/// One bit per header name length (names of 63 bytes and more share the last).
fn length_bit(len: usize) -> u64 {
    1u64 << len.min(63)
}

/// What an HTTP callout fetches.
#[derive(Clone, Copy, Debug)]
enum Call {
    /// Provider `i`'s JWKS.
    Jwks(usize),
    /// The policy feed.
    Feed,
}

struct Remote {
    source: Cluster,
    timeout_ms: u32,
    applied_seq: u64,
    /// Another worker holds the fetch lease; we wait for its result since then (ms).
    foreign_since: Option<u64>,
}

/// A request as received, owned, for requests that wait for keys.
struct Facts {
    method: String,
    target: String,
    authorization: Vec<Vec<u8>>,
    /// The connection's client certificate (`client_certificate.source: "connection"`).
    peer: Option<Peer>,
    /// Values of the trusted certificate header (header sources).
    client_cert: Vec<Vec<u8>>,
}

impl Facts {
    /// The request as the gate takes it.
    fn view<R>(&self, f: impl FnOnce(&Received<'_>) -> R) -> R {
        let authorization: Vec<&[u8]> = self.authorization.iter().map(Vec::as_slice).collect();
        let client_cert: Vec<&[u8]> = self.client_cert.iter().map(Vec::as_slice).collect();
        f(&Received {
            method: &self.method,
            target: &self.target,
            authorization: &authorization,
            peer: self.peer.as_ref(),
            client_cert: &client_cert,
        })
    }
}

struct Waiting {
    context_id: u32,
    facts: Facts,
    deadline_ms: u64,
    fallback: Denied,
}

/// Counters, kept in the VM and handed to the host on each tick: one host call per request
/// saved on the hot path, at the price of counters that lag by at most one tick.
#[derive(Default)]
struct Metrics {
    allowed: Counter,
    denied: Vec<(ErrorCode, Counter)>,
    refresh: Vec<(&'static str, Counter)>,
    rate_limit_contention: Counter,
    /// Signature checks by Envoy's crypto.
    checks_native: Counter,
    /// Signature checks by the core's crypto.
    checks_wasm: Counter,
    /// Only when a policy feed is configured.
    feed: Option<FeedMetrics>,
}

struct FeedMetrics {
    refresh: Vec<(&'static str, Counter)>,
    version: Gauge,
    stale: Gauge,
}

#[derive(Default)]
struct Counter {
    id: Option<u32>,
    pending: i64,
}

impl Counter {
    fn define(name: &str) -> Counter {
        Counter {
            id: hostcalls::define_metric(MetricType::Counter, name).ok(),
            pending: 0,
        }
    }

    fn flush(&mut self) {
        if let (Some(id), true) = (self.id, self.pending > 0) {
            let _ = hostcalls::increment_metric(id, self.pending);
        }
        self.pending = 0;
    }
}

/// A gauge, recorded on the tick when its value changed.
#[derive(Default)]
struct Gauge {
    id: Option<u32>,
    recorded: Option<u64>,
}

impl Gauge {
    fn define(name: &str) -> Gauge {
        Gauge {
            id: hostcalls::define_metric(MetricType::Gauge, name).ok(),
            recorded: None,
        }
    }

    fn set(&mut self, value: u64) {
        if self.recorded == Some(value) {
            return;
        }
        if let Some(id) = self.id {
            let _ = hostcalls::record_metric(id, value);
        }
        self.recorded = Some(value);
    }
}

const REFRESH_RESULTS: &[&str] = &["ok", "http_error", "invalid_jwks", "transport"];

impl Metrics {
    fn define(with_feed: bool) -> Metrics {
        Metrics {
            allowed: Counter::define("tokengate_allowed_total"),
            denied: ErrorCode::ALL
                .iter()
                .map(|&c| {
                    (
                        c,
                        Counter::define(&format!("tokengate_denied_total.code.{}", c.as_str())),
                    )
                })
                .collect(),
            refresh: REFRESH_RESULTS
                .iter()
                .map(|&r| {
                    (
                        r,
                        Counter::define(&format!("tokengate_jwks_refresh_total.result.{r}")),
                    )
                })
                .collect(),
            rate_limit_contention: Counter::define("tokengate_rate_limit_contention_total"),
            checks_native: Counter::define("tokengate_signature_checks_total.crypto.native"),
            checks_wasm: Counter::define("tokengate_signature_checks_total.crypto.wasm"),
            feed: with_feed.then(|| FeedMetrics {
                refresh: crate::report::FEED_RESULTS
                    .iter()
                    .map(|&r| {
                        (
                            r,
                            Counter::define(&format!("tokengate_feed_refresh_total.result.{r}")),
                        )
                    })
                    .collect(),
                version: Gauge::define("tokengate_feed_version"),
                stale: Gauge::define("tokengate_feed_stale"),
            }),
        }
    }

    fn allowed(&mut self) {
        self.allowed.pending += 1;
    }

    fn denied(&mut self, code: ErrorCode) {
        if let Some((_, c)) = self.denied.iter_mut().find(|(c, _)| *c == code) {
            c.pending += 1;
        }
    }

    fn refresh(&mut self, result: &str) {
        if let Some((_, c)) = self.refresh.iter_mut().find(|(r, _)| *r == result) {
            c.pending += 1;
        }
    }

    fn feed_refresh(&mut self, result: &str) {
        let counters = self.feed.as_mut().map(|f| &mut f.refresh);
        if let Some((_, c)) = counters.and_then(|cs| cs.iter_mut().find(|(r, _)| *r == result)) {
            c.pending += 1;
        }
    }

    fn flush(&mut self) {
        self.allowed.flush();
        for (_, c) in &mut self.denied {
            c.flush();
        }
        for (_, c) in &mut self.refresh {
            c.flush();
        }
        self.rate_limit_contention.flush();
        self.checks_native.flush();
        self.checks_wasm.flush();
        if let Some(f) = &mut self.feed {
            for (_, c) in &mut f.refresh {
                c.flush();
            }
        }
    }
}

/// What to do to a stream, computed under the state borrow and applied after it.
enum Effect {
    /// Let the request go on.
    Continue(Rc<Pass>, Audit),
    /// Answer locally.
    Reply(Response, Audit),
    /// Keep the request paused (it waits for keys).
    Pause,
}

/// What a request let through changes on its way to the origin.
struct Pass {
    /// Headers to add (incoming copies of these names were removed on arrival).
    headers: Vec<(String, String)>,
    strip_authorization: bool,
}

/// An allow remembered for replay ([`replay`]).
struct Replayed {
    pass: Rc<Pass>,
    /// The record of a replayed answer (`"cached": true`).
    audit: Audit,
}

/// The audit record of a decision, as the configuration wants it recorded.
#[derive(Clone)]
enum Audit {
    /// Compact JSON for the stream's filter state (`wasm.tokengate`).
    FilterState(Rc<str>),
    /// One JSON line for Envoy's log.
    Line(Rc<str>),
    /// Nothing to write (`"audit": "log"` while Envoy drops info lines).
    Dropped,
}

/// The filter state key's path: Envoy stores it as `wasm.tokengate`.
const FILTER_STATE_PATH: &[u8] = b"tokengate";

struct Root {
    id: u32,
    state: State,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let now_ms = now_ms();
        let now = now_ms / 1000;
        {
            let mut st = self.state.borrow_mut();
            let Some(w) = st.as_mut() else { return };
            w.clock_ms = now_ms;
            w.replay.clear();
            match w.calls.remove(&token_id) {
                Some(Call::Jwks(provider)) => {
                    on_jwks_answer(w, provider, now, num_headers, body_size)
                }
                Some(Call::Feed) => feed::on_answer(w, now, num_headers, body_size),
                None => return,
            }
        }
        self.retry_waiting(now_ms);
    }
}

/// The answer to this worker's fetch of provider `provider`'s JWKS.
fn on_jwks_answer(w: &mut Worker, provider: usize, now: u64, num_headers: usize, body_size: usize) {
    let headers = call_response_headers(num_headers);
    let status = header(&headers, ":status").and_then(|s| s.parse::<u16>().ok());
    let result = match status {
        None => {
            // Envoy answers a reset, timeout or unknown cluster with no headers.
            w.gate.verifier_mut().on_jwks_failure(provider, now);
            "transport"
        }
        Some(status) => {
            let limit = w
                .gate
                .config()
                .providers
                .get(provider)
                .map_or(64 * 1024, |p| p.cache.limits.max_bytes);
            let body = call_response_body(body_size, limit);
            let cache_control = header(&headers, "cache-control").map(str::to_owned);
            match w.gate.verifier_mut().on_jwks_response(
                provider,
                now,
                status,
                cache_control.as_deref(),
                &body,
            ) {
                Ok(kids) => {
                    publish(w, provider, now, cache_control, body);
                    log(
                        LogLevel::Info,
                        &format!("tokengate: providers[{provider}] JWKS loaded ({kids} keys)"),
                    );
                    "ok"
                }
                Err(e) => {
                    log(
                        LogLevel::Warn,
                        &format!("tokengate: providers[{provider}] JWKS refresh failed: {e}"),
                    );
                    match e {
                        tokengate::RefreshError::Status(_) => "http_error",
                        tokengate::RefreshError::Jwks(_) => "invalid_jwks",
                        tokengate::RefreshError::Transport => "transport",
                    }
                }
            }
        }
    };
    if result == "transport" {
        log(
            LogLevel::Warn,
            &format!("tokengate: providers[{provider}] JWKS fetch failed (no response)"),
        );
    }
    w.metrics.refresh(result);
    release_lease(w, &w.keys.lease(provider));
}

/// The headers of the callout answer being delivered (none: Envoy reports a failed call so).
fn call_response_headers(num_headers: usize) -> Vec<(String, Vec<u8>)> {
    if num_headers == 0 {
        return Vec::new();
    }
    hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default()
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// The body of the callout answer being delivered, cut one byte past `limit`: enough for the
/// core to refuse it as too large without copying more.
fn call_response_body(body_size: usize, limit: usize) -> Vec<u8> {
    let want = body_size.min(limit.saturating_add(1));
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, want)
        .ok()
        .flatten()
        .unwrap_or_default()
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(b)) => b,
            _ => Vec::new(),
        };
        let config = match config::parse(&bytes) {
            Ok(c) => c,
            Err(e) => return refuse_configuration(&e),
        };
        let now_ms = now_ms();
        let vm_id = next_vm_id();
        let seed = vm_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now_ms;
        let remotes = config
            .providers
            .iter()
            .map(|p| {
                let source = p.source.as_ref()?;
                Some(Remote {
                    source: source.cluster.clone()?,
                    timeout_ms: source.timeout_ms,
                    applied_seq: 0,
                    foreign_since: None,
                })
            })
            .collect();
        // `config::parse` refused a feed without a cluster.
        let feed = config.feed.as_ref().and_then(|f| {
            Some(feed::FeedRemote::new(
                f.source.cluster.clone()?,
                f.source.timeout_ms,
            ))
        });
        let tick = Duration::from_millis(u64::from(config.tick_ms));
        let host_crypto = config.crypto == Crypto::Native && hostcrypto_served();
        let summary = format!(
            "tokengate: configured ({} providers, {} rules, mode {}{}, {})",
            config.providers.len(),
            config.routes.rules.len(),
            config.mode.as_str(),
            match &feed {
                Some(f) => format!(", policy feed from cluster {:?}", f.cluster_name()),
                None => String::new(),
            },
            match (host_crypto, config.crypto) {
                (true, _) => "signatures checked by the host's verify_signature",
                (false, Crypto::Native) => {
                    "signatures checked in wasm: this host has no verify_signature"
                }
                (false, Crypto::Wasm) => "signatures checked in wasm (\"crypto\": \"wasm\")",
            }
        );
        let gate = match Gate::new(config, now_ms / 1000, seed) {
            Ok(g) => g,
            Err(e) => return refuse_configuration(&e),
        };
        let strip_lengths = gate
            .remove_headers()
            .iter()
            .fold(0, |mask, h| mask | length_bit(h.len()));
        let replayable = gate.allows_repeat_for_identical_requests();
        let worker = Worker {
            clock_ms: now_ms,
            keys: Keys::for_config(&bytes),
            gate,
            vm_id,
            metrics: Metrics::define(feed.is_some()),
            remotes,
            feed,
            calls: HashMap::new(),
            waiting: Vec::new(),
            released: Vec::new(),
            info_logged: abi::info_logged(),
            strip_lengths,
            replay: Replay::new(),
            replayable,
            host_crypto,
        };
        *self.state.borrow_mut() = Some(worker);
        let _ = hostcalls::set_tick_period(tick);
        log(LogLevel::Info, &summary);
        true
    }

    fn on_tick(&mut self) {
        self.pump();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            id: context_id,
            state: self.state.clone(),
            hold: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Root {
    /// Load key sets and feed documents other workers published, start due fetches, time out
    /// paused requests.
    fn pump(&self) {
        let now_ms = now_ms();
        let now = now_ms / 1000;
        let mut fetches: Vec<(Call, Cluster, u32, Option<String>)> = Vec::new();
        let mut changed = false;
        {
            let mut st = self.state.borrow_mut();
            let Some(w) = st.as_mut() else { return };
            w.clock_ms = now_ms;
            // Keys, the policy feed and the clock may change from here on.
            w.replay.clear();
            w.metrics.flush();
            w.info_logged = abi::info_logged();
            for i in 0..w.remotes.len() {
                changed |= sync_shared(w, i, now_ms);
            }
            changed |= feed::sync(w, now_ms);
            while let Some((i, _reason)) = w.gate.verifier_mut().poll(now) {
                let Some(Some(remote)) = w.remotes.get(i) else {
                    continue;
                };
                let source = remote.source.clone();
                let timeout_ms = remote.timeout_ms;
                if take_lease(w, &w.keys.lease(i), now_ms, u64::from(timeout_ms)) {
                    fetches.push((Call::Jwks(i), source, timeout_ms, None));
                } else if let Some(Some(r)) = w.remotes.get_mut(i) {
                    r.foreign_since = Some(now_ms);
                }
            }
            if let Some(f) = feed::poll(w, now_ms) {
                fetches.push((Call::Feed, f.cluster, f.timeout_ms, f.if_none_match));
            }
            changed |= feed::watch(w, now);
        }
        for (call, source, timeout_ms, if_none_match) in fetches {
            let accept = match call {
                Call::Jwks(_) => "application/json",
                // A signed feed is a compact JWS.
                Call::Feed => "application/json, application/jwt",
            };
            let mut headers = vec![
                (":method", "GET"),
                (":path", source.path.as_str()),
                (":authority", source.authority.as_str()),
                ("accept", accept),
            ];
            if let Some(tag) = if_none_match.as_deref() {
                headers.push(("if-none-match", tag));
            }
            let result = self.dispatch_http_call(
                &source.name,
                headers,
                None,
                Vec::new(),
                Duration::from_millis(u64::from(timeout_ms)),
            );
            let mut st = self.state.borrow_mut();
            let Some(w) = st.as_mut() else { return };
            match (result, call) {
                (Ok(token), call) => {
                    w.calls.insert(token, call);
                }
                (Err(status), Call::Jwks(i)) => {
                    log(
                        LogLevel::Warn,
                        &format!(
                            "tokengate: providers[{i}] JWKS fetch could not start on cluster {:?} ({status:?})",
                            source.name
                        ),
                    );
                    w.gate.verifier_mut().on_jwks_failure(i, now);
                    w.metrics.refresh("transport");
                    release_lease(w, &w.keys.lease(i));
                    changed = true;
                }
                (Err(status), Call::Feed) => {
                    feed::start_failed(w, now, &source.name, status);
                    changed = true;
                }
            }
        }
        let _ = hostcalls::set_effective_context(self.id);
        let expired = {
            let st = self.state.borrow();
            st.as_ref()
                .is_some_and(|w| w.waiting.iter().any(|x| now_ms >= x.deadline_ms))
        };
        if changed || expired {
            self.retry_waiting(now_ms);
        }
    }

    /// Decide again for every paused request; apply what is final.
    fn retry_waiting(&self, now_ms: u64) {
        let effects: Vec<(u32, Effect)> = {
            let mut st = self.state.borrow_mut();
            let Some(w) = st.as_mut() else { return };
            let waiting = std::mem::take(&mut w.waiting);
            let mut out = Vec::new();
            for mut x in waiting {
                // A paused request has already cost more than a clock read: judge it exactly.
                let outcome = x
                    .facts
                    .view(|req| decide(w, req, Clock::from_unix_ms(now_ms)));
                let (method, target) = (x.facts.method.as_str(), x.facts.target.as_str());
                match outcome {
                    Outcome::Wait(fallback) if now_ms < x.deadline_ms => {
                        x.fallback = fallback;
                        w.waiting.push(x);
                    }
                    Outcome::Wait(fallback) => {
                        let outcome = w.gate.give_up(fallback);
                        let effect = finish(w, method, target, outcome, now_ms, None);
                        out.push((x.context_id, effect));
                    }
                    outcome => {
                        let effect = finish(w, method, target, outcome, now_ms, None);
                        out.push((x.context_id, effect));
                    }
                }
            }
            for (context_id, effect) in &out {
                if matches!(effect, Effect::Continue(..)) {
                    w.released.push(*context_id);
                }
            }
            out
        };
        for (context_id, effect) in effects {
            // The stream may be gone (client went away): then there is nothing to do.
            if hostcalls::set_effective_context(context_id).is_ok() {
                apply(effect, true);
            }
        }
        let _ = hostcalls::set_effective_context(self.id);
    }
}

struct Http {
    id: u32,
    state: State,
    /// Set while the request waits for keys or after it was answered locally: its body and
    /// trailers must not move on (Envoy's `allow_on_headers_stop_iteration: true` would
    /// otherwise let them through to the origin while the headers are held).
    hold: bool,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // One host call for the whole map, read in place: under V8 it costs less than the three
        // single reads the gate needs, and it tells which untrusted headers came at all.
        let headers = abi::request_headers();
        let effect = {
            let mut st = self.state.borrow_mut();
            let Some(w) = st.as_mut() else {
                drop(st);
                return self.unconfigured();
            };
            let cert_header = w.gate.certificate_header();
            let (mut method, mut target): (&[u8], &[u8]) = (b"", b"");
            let mut authorization = Values::default();
            let mut client_cert = Values::default();
            let mut removed: u64 = 0;
            for (name, value) in headers.iter() {
                // Envoy hands names lower-case; pseudo-headers are exact and never removed.
                if name.first() == Some(&b':') {
                    match name {
                        b":method" => method = value,
                        b":path" => target = value,
                        _ => {}
                    }
                    continue;
                }
                if name.eq_ignore_ascii_case(b"authorization") {
                    authorization.push(value);
                    continue;
                }
                if cert_header.is_some_and(|h| name.eq_ignore_ascii_case(h.as_bytes())) {
                    client_cert.push(value);
                }
                if w.strip_lengths & length_bit(name.len()) == 0 {
                    continue;
                }
                // Whatever the verdict, a client never gets to set the headers the origin
                // trusts: removed when present, before anything is decided.
                let strip = w.gate.remove_headers();
                if let Some(i) = strip
                    .iter()
                    .position(|h| name.eq_ignore_ascii_case(h.as_bytes()))
                {
                    let bit = 1u64.checked_shl(i as u32).unwrap_or(0);
                    if removed & bit == 0 || bit == 0 {
                        removed |= bit;
                        if let Some(h) = strip.get(i) {
                            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, h, None);
                        }
                    }
                }
            }
            let replay_key = (w.replayable && authorization.count <= 1).then(|| replay::Key {
                method,
                target,
                authorization: authorization.first(),
            });
            match replay_key.and_then(|k| w.replay.get(&k, w.clock_ms)) {
                Some(r) => {
                    w.metrics.allowed();
                    Effect::Continue(r.pass.clone(), r.audit.clone())
                }
                None => self.ask_gate(
                    w,
                    (method, target),
                    authorization.as_slice(),
                    client_cert.as_slice(),
                    replay_key,
                ),
            }
        };
        self.hold = !matches!(effect, Effect::Continue(..));
        apply(effect, false)
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        self.held()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.held()
    }
}

impl Http {
    /// The gate's answer to a request as received (and the allow remembered for replay under
    /// `replay_key`, when it qualifies).
    fn ask_gate(
        &self,
        w: &mut Worker,
        (method, target): (&[u8], &[u8]),
        authorization: &[&[u8]],
        client_cert: &[&[u8]],
        replay_key: Option<replay::Key<'_>>,
    ) -> Effect {
        // Bytes that are not UTF-8 become U+FFFD, which the gate refuses as non-ASCII.
        let method = String::from_utf8_lossy(method);
        let target = String::from_utf8_lossy(target);
        let peer = if w.gate.needs_connection_certificate() {
            connection_peer()
        } else {
            None
        };
        let received = Received {
            method: &method,
            target: &target,
            authorization,
            peer: peer.as_ref(),
            client_cert,
        };
        let clock_ms = w.clock_ms;
        let uncertainty_ms = u64::from(w.gate.config().tick_ms).saturating_add(CLOCK_SLACK_MS);
        let mut outcome = decide(w, &received, Clock::since_read(clock_ms, uncertainty_ms));
        if let Outcome::ReadClock = outcome {
            // Near a time boundary of this token: the tick clock is not exact enough (and the
            // core marks an answer at an exact second as not repeatable).
            let exact_ms = now_ms();
            w.clock_ms = w.clock_ms.max(exact_ms);
            outcome = decide(w, &received, Clock::from_unix_ms(exact_ms));
        }
        match outcome {
            Outcome::Wait(fallback) => {
                if w.waiting.len() < w.gate.config().wait.max_requests {
                    let deadline_ms = clock_ms.saturating_add(w.gate.config().wait.timeout_ms);
                    w.waiting.push(Waiting {
                        context_id: self.id,
                        facts: received.to_owned(),
                        deadline_ms,
                        fallback,
                    });
                    Effect::Pause
                } else {
                    let outcome = w.gate.give_up(fallback);
                    finish(w, &method, &target, outcome, clock_ms, None)
                }
            }
            outcome => finish(w, &method, &target, outcome, clock_ms, replay_key),
        }
    }

    /// Never configured (Envoy refused the configuration but a stream came): fail closed, and
    /// record it like any other decision.
    fn unconfigured(&mut self) -> Action {
        self.hold = true;
        record(Audit::FilterState(
            Decision::denied(ErrorCode::JwksUnavailable)
                .to_record_json(503, false)
                .into(),
        ));
        let _ = hostcalls::send_http_response(
            503,
            vec![("content-type", "application/json")],
            Some(br#"{"error":"jwks_unavailable","message":"the filter is not configured"}"#),
        );
        Action::Pause
    }

    /// Body and trailers wait with the headers; once the request is resumed with an allow they
    /// move on. A request answered locally never lets them go.
    fn held(&mut self) -> Action {
        if !self.hold {
            return Action::Continue;
        }
        let released = self.state.try_borrow_mut().ok().is_some_and(|mut st| {
            st.as_mut().is_some_and(|w| {
                let before = w.released.len();
                w.released.retain(|id| *id != self.id);
                w.released.len() != before
            })
        });
        if released {
            self.hold = false;
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        // A paused request whose stream ended: forget it. (try_borrow: never panic in drop.)
        if let Ok(mut st) = self.state.try_borrow_mut() {
            if let Some(w) = st.as_mut() {
                w.waiting.retain(|x| x.context_id != self.id);
                w.released.retain(|id| *id != self.id);
            }
        }
    }
}

/// How far past the last tick the real time may be, beyond one tick period. Near a time
/// boundary of the token (within this window) the filter reads the exact clock, so only an
/// event loop stalled for longer than this could judge a request at the wrong second.
const CLOCK_SLACK_MS: u64 = 60_000;

/// A request as received, borrowed from the header map (owned only when it must wait).
struct Received<'a> {
    method: &'a str,
    target: &'a str,
    authorization: &'a [&'a [u8]],
    peer: Option<&'a Peer>,
    client_cert: &'a [&'a [u8]],
}

impl Received<'_> {
    fn to_owned(&self) -> Facts {
        Facts {
            method: self.method.to_owned(),
            target: self.target.to_owned(),
            authorization: self.authorization.iter().map(|v| v.to_vec()).collect(),
            peer: self.peer.cloned(),
            client_cert: self.client_cert.iter().map(|v| v.to_vec()).collect(),
        }
    }
}

/// The values of one header, in order, without an allocation for the usual single value.
#[derive(Default)]
struct Values<'a> {
    first: [&'a [u8]; 1],
    count: usize,
    all: Vec<&'a [u8]>,
}

impl<'a> Values<'a> {
    fn push(&mut self, value: &'a [u8]) {
        match self.count {
            0 => self.first = [value],
            1 => {
                let [first] = self.first;
                self.all = vec![first, value];
            }
            _ => self.all.push(value),
        }
        self.count += 1;
    }

    /// The first value, empty when there is none.
    fn first(&self) -> &'a [u8] {
        let [first] = self.first;
        if self.count == 0 {
            b""
        } else {
            first
        }
    }

    fn as_slice(&self) -> &[&'a [u8]] {
        match self.count {
            0 => &[],
            1 => &self.first,
            _ => &self.all,
        }
    }
}

/// One decision through the gate.
fn decide(w: &mut Worker, received: &Received<'_>, clock: Clock) -> Outcome {
    let req = RequestFacts {
        method: received.method,
        target: received.target,
        authorization: received.authorization,
        peer: received.peer,
        client_cert: received.client_cert,
        scopes: None,
        clock,
        // The claims part of the record is only built when it will be written.
        audit: w.gate.config().audit == AuditSink::FilterState || w.info_logged,
    };
    match w.gate.begin(&req) {
        Begin::Done(outcome) => outcome,
        Begin::Signature(pending) => {
            let valid = match host_check(w, &pending) {
                Some(valid) => {
                    w.metrics.checks_native.pending += 1;
                    valid
                }
                None => {
                    w.metrics.checks_wasm.pending += 1;
                    w.gate.check_signature(&pending)
                }
            };
            w.gate.finish(pending, valid)
        }
    }
}

/// Whether the host registers the `verify_signature` foreign function. Asked with an empty
/// argument message: Envoy then answers `BadArgument` (no key), a host without the function
/// `NotFound`.
fn hostcrypto_served() -> bool {
    !matches!(
        hostcalls::call_foreign_function(hostcrypto::FUNCTION, Some(&[])),
        Err(Status::NotFound)
    )
}

/// The signature check by Envoy's own crypto (`verify_signature`), for the keys the core hands
/// out ([`Gate::host_check`]). `None` when Envoy did not answer: the function went missing (then
/// never asked again), a key it would not import, or an answer that is not a result message.
fn host_check(w: &mut Worker, pending: &PendingRequest) -> Option<bool> {
    if !w.host_crypto {
        return None;
    }
    let check = w.gate.host_check(pending)?;
    let signing_input = pending.signature().signing_input();
    let args = hostcrypto::arguments(&check.key, &check.signature, signing_input);
    match hostcalls::call_foreign_function(hostcrypto::FUNCTION, Some(&args)) {
        Ok(answer) => hostcrypto::result(answer.as_deref().unwrap_or(&[])),
        Err(Status::NotFound) => {
            w.host_crypto = false;
            None
        }
        Err(_) => None,
    }
}

/// Turn a final outcome into an effect: rate limit, metrics and the audit record. An allow the
/// core marks repeatable ([`Allowed::repeatable`]) is remembered for replay under `replay`, the
/// request's method, target and one `Authorization` value, when that is given.
fn finish(
    w: &mut Worker,
    method: &str,
    target: &str,
    outcome: Outcome,
    now_ms: u64,
    replay: Option<replay::Key<'_>>,
) -> Effect {
    let outcome = match outcome {
        Outcome::Allow(allowed) => {
            match (w.gate.config().rate_limit, allowed.rate_key.as_deref()) {
                (Some(limit), Some(key)) => match take_token(w, key, now_ms, limit) {
                    Ok(()) => Outcome::Allow(allowed),
                    Err(retry_after_s) => w.gate.rate_limited(allowed, retry_after_s),
                },
                _ => Outcome::Allow(allowed),
            }
        }
        other => other,
    };
    match outcome {
        Outcome::Allow(Allowed {
            forward,
            strip_authorization,
            mut record,
            would_deny,
            repeatable,
            ..
        }) => {
            let status = match &would_deny {
                // Report mode: counted and recorded as the denial it would have been.
                Some(r) => {
                    w.metrics.denied(r.code);
                    r.status
                }
                None => {
                    w.metrics.allowed();
                    200
                }
            };
            let pass = Rc::new(Pass {
                headers: forward,
                strip_authorization,
            });
            let audit_now = audit(w, &record, status, method, target);
            if let (Some(key), true) = (replay, repeatable) {
                // A replay answers from memory: its record says so.
                let replayed = if record.cached {
                    audit_now.clone()
                } else {
                    record.cached = true;
                    audit(w, &record, status, method, target)
                };
                let clock_ms = w.clock_ms;
                w.replay.insert(
                    &key,
                    clock_ms,
                    Rc::new(Replayed {
                        pass: pass.clone(),
                        audit: replayed,
                    }),
                );
            }
            Effect::Continue(pass, audit_now)
        }
        Outcome::Deny(denied) | Outcome::Wait(denied) => {
            w.metrics.denied(denied.response.code);
            let audit = audit(w, &denied.record, denied.response.status, method, target);
            Effect::Reply(denied.response, audit)
        }
        Outcome::ReadClock => {
            // Only asked of an inexact clock, which `finish` never sees; fail closed.
            let r = w
                .gate
                .response(ErrorCode::JwksUnavailable, "internal: clock", &[], None);
            w.metrics.denied(r.code);
            let record = Decision::denied(r.code);
            let audit = audit(w, &record, r.status, method, target);
            Effect::Reply(r, audit)
        }
    }
}

/// Apply an effect to the current (effective) stream. `resume`: the stream was paused earlier.
fn apply(effect: Effect, resume: bool) -> Action {
    match effect {
        Effect::Pause => Action::Pause,
        Effect::Continue(pass, audit) => {
            record(audit);
            // Incoming copies of these names were removed when the headers arrived.
            for (name, value) in &pass.headers {
                let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value);
            }
            if pass.strip_authorization {
                let _ =
                    hostcalls::set_map_value(MapType::HttpRequestHeaders, "authorization", None);
            }
            if resume {
                let _ = hostcalls::resume_http_request();
            }
            Action::Continue
        }
        Effect::Reply(response, audit) => {
            record(audit);
            let headers: Vec<(&str, &str)> = response
                .headers
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .collect();
            let _ = hostcalls::send_http_response(
                u32::from(response.status),
                headers,
                Some(response.body.as_bytes()),
            );
            Action::Pause
        }
    }
}

/// The record of a decision, in the form the configuration asks for.
fn audit(w: &Worker, decision: &Decision, status: u16, method: &str, target: &str) -> Audit {
    match w.gate.config().audit {
        AuditSink::FilterState => Audit::FilterState(w.gate.audit_record(decision, status).into()),
        AuditSink::Log if w.info_logged => {
            Audit::Line(w.gate.audit_line(decision, status, method, target).into())
        }
        AuditSink::Log => Audit::Dropped,
    }
}

/// Hand the record to Envoy. Filter state goes with the stream, so this runs with the stream's
/// context effective; if Envoy refuses it, the record goes to the log instead: every decision is
/// recorded somewhere.
fn record(audit: Audit) {
    match audit {
        Audit::FilterState(json) => {
            if !abi::set_property(FILTER_STATE_PATH, json.as_bytes()) {
                log(LogLevel::Info, &json);
            }
        }
        Audit::Line(line) => log(LogLevel::Info, &line),
        Audit::Dropped => {}
    }
}

/// The downstream client certificate as Envoy reports it: its SHA-256 (lower-case hex), subject
/// (RFC 2253, the same order as RFC 4514) and the first URI and DNS subjectAltName (Envoy
/// exposes no others). Each property maps to its own fact: a property Envoy leaves out (or a
/// digest that does not parse) loses only that fact, which then matches no pin of its kind.
/// `None` when Envoy reports none of them: no certificate (empty strings), or not a TLS
/// connection (not found).
fn connection_peer() -> Option<Peer> {
    let property = |name: &str| {
        hostcalls::get_property(vec!["connection", name])
            .ok()
            .flatten()
            .filter(|v| !v.is_empty())
            .and_then(|v| String::from_utf8(v).ok())
    };
    let peer = Peer {
        sha256: property("sha256_peer_certificate_digest")
            .and_then(|hex| tokengate::peer::digest(&hex)),
        subject: property("subject_peer_certificate"),
        uri_sans: property("uri_san_peer_certificate").into_iter().collect(),
        dns_sans: property("dns_san_peer_certificate").into_iter().collect(),
    };
    (peer != Peer::default()).then_some(peer)
}

/// Load a key set another worker published for provider `i`, or give up waiting on a fetch that
/// worker abandoned. Returns whether the verifier's keys changed state.
fn sync_shared(w: &mut Worker, i: usize, now_ms: u64) -> bool {
    let Some(Some(remote)) = w.remotes.get(i) else {
        return false;
    };
    let applied = remote.applied_seq;
    let foreign_since = remote.foreign_since;
    let seq = hostcalls::get_shared_data(&w.keys.seq(i))
        .ok()
        .and_then(|(v, _)| v)
        .and_then(|v| shared::decode_u64(&v))
        .unwrap_or(0);
    if seq > applied {
        let record = hostcalls::get_shared_data(&w.keys.jwks(i))
            .ok()
            .and_then(|(v, _)| v)
            .and_then(|v| JwksRecord::decode(&v));
        if let Some(record) = record {
            let _ = w.gate.verifier_mut().on_jwks_response(
                i,
                record.fetched_at,
                200,
                record.cache_control.as_deref(),
                &record.body,
            );
            if let Some(Some(r)) = w.remotes.get_mut(i) {
                r.applied_seq = record.seq.max(seq);
                r.foreign_since = None;
            }
            return true;
        }
    }
    if foreign_since.is_some() {
        let lease = hostcalls::get_shared_data(&w.keys.lease(i))
            .ok()
            .and_then(|(v, _)| v);
        if !Lease::held_by_other(lease.as_deref(), w.vm_id, now_ms) {
            // The other worker finished without publishing (its fetch failed): back off too.
            w.gate.verifier_mut().on_jwks_failure(i, now_ms / 1000);
            if let Some(Some(r)) = w.remotes.get_mut(i) {
                r.foreign_since = None;
            }
            return true;
        }
    }
    false
}

/// Claim the fetch behind lease `key` for this worker, unless another worker holds it.
fn take_lease(w: &Worker, key: &str, now_ms: u64, timeout_ms: u64) -> bool {
    let Ok((current, cas)) = hostcalls::get_shared_data(key) else {
        return true;
    };
    if Lease::held_by_other(current.as_deref(), w.vm_id, now_ms) {
        return false;
    }
    let lease = Lease {
        owner: w.vm_id,
        until_ms: now_ms.saturating_add(timeout_ms).saturating_add(1000),
    };
    if hostcalls::set_shared_data(key, Some(&lease.encode()), cas).is_err() {
        return false;
    }
    // Without a previous value there was no CAS to lose; read back to settle a race.
    match hostcalls::get_shared_data(key) {
        Ok((Some(v), _)) => Lease::decode(&v).is_some_and(|l| l.owner == w.vm_id),
        _ => true,
    }
}

fn release_lease(w: &Worker, key: &str) {
    if let Ok((Some(v), cas)) = hostcalls::get_shared_data(key) {
        if Lease::decode(&v).is_some_and(|l| l.owner == w.vm_id) {
            let _ = hostcalls::set_shared_data(key, Some(&[]), cas);
        }
    }
}

/// Store a record under `data_key` with the next sequence number of `seq_key` (`encode` builds
/// it for a given number). Returns the number it went out with, if it went out.
fn publish_record(
    seq_key: &str,
    data_key: &str,
    mut encode: impl FnMut(u64) -> Vec<u8>,
) -> Option<u64> {
    let mut published = None;
    for _ in 0..16 {
        let Ok((current, cas)) = hostcalls::get_shared_data(seq_key) else {
            break;
        };
        let seq = current
            .as_deref()
            .and_then(shared::decode_u64)
            .unwrap_or(0)
            .saturating_add(1);
        if hostcalls::set_shared_data(data_key, Some(&encode(seq)), None).is_err() {
            break;
        }
        published = Some(seq);
        if hostcalls::set_shared_data(seq_key, Some(&seq.to_le_bytes()), cas).is_ok() {
            break;
        }
    }
    published
}

/// Make a freshly fetched key set available to every worker.
fn publish(w: &mut Worker, i: usize, now: u64, cache_control: Option<String>, body: Vec<u8>) {
    let mut record = JwksRecord {
        seq: 0,
        fetched_at: now,
        cache_control,
        body,
    };
    let published = publish_record(&w.keys.seq(i), &w.keys.jwks(i), |seq| {
        record.seq = seq;
        record.encode()
    });
    if let (Some(seq), Some(Some(r))) = (published, w.remotes.get_mut(i)) {
        r.applied_seq = seq;
        r.foreign_since = None;
    }
}

/// One token from the client's shared bucket. When the compare-and-swap loses 8 times in a row
/// (other workers updating the same bucket at that instant) or shared data fails, the request
/// goes on and `tokengate_rate_limit_contention_total` counts it: the limit protects capacity,
/// it is not an authorization decision, and the token was verified already.
fn take_token(w: &mut Worker, key: &str, now_ms: u64, limit: RateLimit) -> Result<(), u64> {
    let key = w.keys.bucket(key);
    for _ in 0..8 {
        let Ok((current, cas)) = hostcalls::get_shared_data(&key) else {
            break;
        };
        let prev = current.as_deref().and_then(Bucket::decode);
        let (bucket, verdict) = ratelimit::take(prev, now_ms, limit);
        match hostcalls::set_shared_data(&key, Some(&bucket.encode()), cas) {
            Ok(()) => return verdict,
            Err(Status::CasMismatch) => continue,
            Err(_) => break,
        }
    }
    w.metrics.rate_limit_contention.pending += 1;
    Ok(())
}

/// A number unique to this VM among those sharing data (used for leases and retry jitter).
fn next_vm_id() -> u64 {
    for _ in 0..32 {
        let Ok((current, cas)) = hostcalls::get_shared_data(shared::VM_COUNTER_KEY) else {
            break;
        };
        let next = current
            .as_deref()
            .and_then(shared::decode_u64)
            .unwrap_or(0)
            .saturating_add(1);
        if hostcalls::set_shared_data(shared::VM_COUNTER_KEY, Some(&next.to_le_bytes()), cas)
            .is_ok()
        {
            return next;
        }
    }
    now_ms()
}

fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One error line naming the field, and `false`: Envoy then refuses the filter.
fn refuse_configuration(e: &tokengate::ConfigError) -> bool {
    log(
        LogLevel::Error,
        &format!(
            "tokengate: invalid configuration: {}: {}",
            e.field, e.message
        ),
    );
    false
}

fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}
