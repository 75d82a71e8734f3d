//! The policy feed in the filter, polled like a JWKS: the gate says when a fetch is due
//! ([`Gate::poll_feed`](tokengate::Gate::poll_feed)), one worker fetches it (a lease in shared
//! data) and publishes what it got with the time of the fetch: a `200`'s document, or after a
//! `304` the document in use again. Every other worker loads that record on its tick and hands
//! it to its own gate as an answer of that time: a `200` (a new version applies there too, the
//! same version only refreshes), or a `304` when the record holds the very bytes it already uses
//! (no second parse), so one fetch keeps every worker fresh. A failed fetch publishes nothing;
//! the workers that were waiting on it back off as the fetcher did.
//!
//! Also here: the feed's metrics and the log lines for a loaded version, a failed refresh, and
//! the turn to stale and back (once per process: the first worker to see the turn logs it).

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, Status};
use tokengate::config::Cluster;
use tokengate::feed::{FeedError, FeedStatus, FeedUpdate};

use super::{
    call_response_body, call_response_headers, header, log, publish_record, release_lease,
    take_lease, Worker,
};
use crate::report;
use crate::shared::{self, FeedRecord, Lease};

/// The feed's fetching state in one worker.
pub(super) struct FeedRemote {
    source: Cluster,
    timeout_ms: u32,
    /// The last record loaded from (or published to) shared data.
    applied_seq: u64,
    /// Another worker holds the fetch lease; we wait for its result since then (ms).
    foreign_since: Option<u64>,
    /// The document in use, as fetched: republished with the new time when a `304` confirms it.
    last: Option<FeedRecord>,
    /// The status seen on the last tick (a change re-decides paused requests).
    status: Option<FeedStatus>,
    /// Whether this worker last saw the feed stale (for the log lines and the gauge).
    stale: bool,
}

/// A fetch to start.
pub(super) struct Fetch {
    pub(super) cluster: Cluster,
    pub(super) timeout_ms: u32,
    pub(super) if_none_match: Option<String>,
}

impl FeedRemote {
    pub(super) fn new(source: Cluster, timeout_ms: u32) -> FeedRemote {
        FeedRemote {
            source,
            timeout_ms,
            applied_seq: 0,
            foreign_since: None,
            last: None,
            status: None,
            stale: false,
        }
    }

    pub(super) fn cluster_name(&self) -> &str {
        &self.source.name
    }
}

/// Load a record another worker published, or give up waiting on a fetch that worker abandoned.
/// Returns whether the gate's feed changed state.
pub(super) fn sync(w: &mut Worker, now_ms: u64) -> bool {
    let Some(f) = w.feed.as_ref() else {
        return false;
    };
    let (applied, foreign_since) = (f.applied_seq, f.foreign_since);
    let seq = hostcalls::get_shared_data(&w.keys.feed_seq())
        .ok()
        .and_then(|(v, _)| v)
        .and_then(|v| shared::decode_u64(&v))
        .unwrap_or(0);
    if seq > applied {
        let record = hostcalls::get_shared_data(&w.keys.feed())
            .ok()
            .and_then(|(v, _)| v)
            .and_then(|v| FeedRecord::decode(&v));
        if let Some(record) = record {
            // The same bytes as the document in use (another worker's 304, republished): a 304
            // here too, which refreshes without parsing and verifying the document again.
            let same = w
                .feed
                .as_ref()
                .and_then(|f| f.last.as_ref())
                .is_some_and(|l| l.etag == record.etag && l.body == record.body)
                && w.gate.feed().is_some_and(|f| f.version().is_some());
            // The fetching worker checked it with the same configuration; what can still fail
            // here is a version older than one this worker fetched itself in a race: ignored.
            let taken = w
                .gate
                .on_feed_response(
                    record.fetched_at,
                    if same { 304 } else { 200 },
                    record.etag.as_deref(),
                    record.cache_control.as_deref(),
                    if same { &[] } else { &record.body },
                )
                .is_ok();
            if let Some(f) = w.feed.as_mut() {
                f.applied_seq = record.seq.max(seq);
                f.foreign_since = None;
                if taken {
                    f.last = Some(record);
                }
            }
            return true;
        }
    }
    if foreign_since.is_some() {
        let lease = hostcalls::get_shared_data(&w.keys.feed_lease())
            .ok()
            .and_then(|(v, _)| v);
        if !Lease::held_by_other(lease.as_deref(), w.vm_id, now_ms) {
            // The other worker finished without publishing (its fetch failed): back off too.
            w.gate.on_feed_failure(now_ms / 1000);
            if let Some(f) = w.feed.as_mut() {
                f.foreign_since = None;
            }
            return true;
        }
    }
    false
}

/// The fetch to start now, if one is due and no other worker is already on it.
pub(super) fn poll(w: &mut Worker, now_ms: u64) -> Option<Fetch> {
    let f = w.feed.as_ref()?;
    let (cluster, timeout_ms) = (f.source.clone(), f.timeout_ms);
    let fetch = w.gate.poll_feed(now_ms / 1000)?;
    if take_lease(w, &w.keys.feed_lease(), now_ms, u64::from(timeout_ms)) {
        Some(Fetch {
            cluster,
            timeout_ms,
            if_none_match: fetch.if_none_match,
        })
    } else {
        if let Some(f) = w.feed.as_mut() {
            f.foreign_since = Some(now_ms);
        }
        None
    }
}

/// `dispatch_http_call` refused the fetch (e.g. an unknown cluster).
pub(super) fn start_failed(w: &mut Worker, now: u64, cluster: &str, status: Status) {
    log(
        LogLevel::Warn,
        &format!(
            "tokengate: policy feed fetch could not start on cluster {cluster:?} ({status:?})"
        ),
    );
    w.gate.on_feed_failure(now);
    w.metrics.feed_refresh("transport");
    note_error(w, now, &FeedError::Transport);
    release_lease(w, &w.keys.feed_lease());
}

/// The answer to this worker's fetch.
pub(super) fn on_answer(w: &mut Worker, now: u64, num_headers: usize, body_size: usize) {
    let headers = call_response_headers(num_headers);
    let status = header(&headers, ":status").and_then(|s| s.parse::<u16>().ok());
    let result = match status {
        None => {
            // Envoy answers a reset, timeout or unknown cluster with no headers.
            w.gate.on_feed_failure(now);
            Err(FeedError::Transport)
        }
        Some(status) => {
            // Only a 200 carries a document; other bodies are never read.
            let body = if status == 200 {
                let limit = w.gate.feed().map_or(0, |f| f.config().max_bytes);
                call_response_body(body_size, limit)
            } else {
                Vec::new()
            };
            let etag = header(&headers, "etag").map(str::to_owned);
            let cache_control = header(&headers, "cache-control").map(str::to_owned);
            let result = w.gate.on_feed_response(
                now,
                status,
                etag.as_deref(),
                cache_control.as_deref(),
                &body,
            );
            if result.is_ok() {
                publish(w, now, status, etag, cache_control, body);
            }
            result
        }
    };
    w.metrics.feed_refresh(report::feed_result(status, &result));
    match &result {
        Ok(FeedUpdate::Applied { version }) => log(
            LogLevel::Info,
            &format!("tokengate: policy feed loaded version {version}"),
        ),
        Ok(FeedUpdate::Unchanged) => {}
        Err(e) => {
            log(
                LogLevel::Warn,
                &format!("tokengate: policy feed refresh failed: {e}"),
            );
            note_error(w, now, e);
        }
    }
    release_lease(w, &w.keys.feed_lease());
}

/// Publish what a successful fetch established: the `200`'s document, or for a `304` the
/// document in use, dated `now` either way.
fn publish(
    w: &mut Worker,
    now: u64,
    status: u16,
    etag: Option<String>,
    cache_control: Option<String>,
    body: Vec<u8>,
) {
    let keys = &w.keys;
    let Some(f) = w.feed.as_mut() else {
        return;
    };
    let mut record = if status == 304 {
        // The gate keeps its ETag on a 304; so does the record.
        let Some(last) = f.last.take() else {
            return;
        };
        FeedRecord {
            seq: 0,
            fetched_at: now,
            etag: last.etag,
            cache_control,
            body: last.body,
        }
    } else {
        FeedRecord {
            seq: 0,
            fetched_at: now,
            etag,
            cache_control,
            body,
        }
    };
    let published = publish_record(&keys.feed_seq(), &keys.feed(), |seq| {
        record.seq = seq;
        record.encode()
    });
    if let Some(seq) = published {
        f.applied_seq = seq;
        f.foreign_since = None;
    }
    f.last = Some(record);
}

/// On each tick: the gauges, and one log line when the feed turns stale or fresh again.
/// Returns whether the feed's status changed since the last tick (paused requests are then
/// decided again).
pub(super) fn watch(w: &mut Worker, now: u64) -> bool {
    let (Some(feed), Some(f)) = (w.gate.feed(), w.feed.as_mut()) else {
        return false;
    };
    let status = feed.status(now);
    let stale = status == FeedStatus::Stale;
    let version = feed.version();
    if let Some(m) = w.metrics.feed.as_mut() {
        m.version.set(version.unwrap_or(0));
        m.stale.set(u64::from(stale));
    }
    let changed = f.status.is_some_and(|s| s != status);
    f.status = Some(status);
    if stale != f.stale {
        f.stale = stale;
        if first_to_report(&w.keys.feed_state(), stale) {
            let line = if stale {
                // The fetching worker's error: this worker may only know that a fetch failed.
                let error = shared_error(&w.keys.feed_error(), feed.fresh_at())
                    .or_else(|| feed.last_error().map(ToString::to_string));
                report::stale_line(
                    version,
                    feed.fresh_at(),
                    feed.config().max_stale_s,
                    feed.config().stale,
                    error.as_deref(),
                    now,
                )
            } else {
                report::fresh_again_line(version)
            };
            log(
                if stale {
                    LogLevel::Warn
                } else {
                    LogLevel::Info
                },
                &line,
            );
        }
    }
    changed
}

/// Note why this worker's fetch failed, for whichever worker reports the feed stale.
fn note_error(w: &Worker, now: u64, error: &FeedError) {
    let mut value = now.to_le_bytes().to_vec();
    value.extend_from_slice(error.to_string().as_bytes());
    let _ = hostcalls::set_shared_data(&w.keys.feed_error(), Some(&value), None);
}

/// The last failure noted by any worker, if it happened after `since`.
fn shared_error(key: &str, since: u64) -> Option<String> {
    let value = hostcalls::get_shared_data(key).ok()?.0?;
    let at = shared::decode_u64(value.get(..8)?)?;
    let text = std::str::from_utf8(value.get(8..)?).ok()?;
    (at >= since && !text.is_empty()).then(|| text.to_owned())
}

/// Whether this worker is the first to see the feed turn `stale` (or fresh again, `!stale`):
/// the turn is written to shared data and only the worker that writes it logs it.
fn first_to_report(key: &str, stale: bool) -> bool {
    let want: &[u8] = if stale { b"stale" } else { b"fresh" };
    let Ok((current, cas)) = hostcalls::get_shared_data(key) else {
        return true;
    };
    match current.as_deref() {
        Some(v) if v == want => false,
        // Never reported stale: there is nothing to recover from.
        None if !stale => false,
        _ => hostcalls::set_shared_data(key, Some(want), cas).is_ok(),
    }
}
