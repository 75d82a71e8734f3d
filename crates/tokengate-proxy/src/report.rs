//! What the filter says about the policy feed: the result label of each fetch
//! (`tokengate_feed_refresh_total.result.<…>`) and the plain-text log lines. Plain Rust, so it
//! is unit-tested natively; the ABI glue calls it.

use tokengate::feed::{FeedError, FeedUpdate, StalePolicy};

/// Every `result` label of `tokengate_feed_refresh_total`.
pub const FEED_RESULTS: &[&str] = &[
    "ok",
    "not_modified",
    "http_error",
    "invalid",
    "older_version",
    "transport",
];

/// The label of one fetch's outcome: `ok` for a document taken (a new version, or the same one
/// again), `not_modified` for a `304`, else the kind of failure.
pub fn feed_result(status: Option<u16>, result: &Result<FeedUpdate, FeedError>) -> &'static str {
    match result {
        Ok(_) if status == Some(304) => "not_modified",
        Ok(_) => "ok",
        Err(FeedError::Status(_)) => "http_error",
        Err(FeedError::OlderVersion { .. }) => "older_version",
        Err(FeedError::Transport) => "transport",
        Err(
            FeedError::TooLarge
            | FeedError::TooManyEntries
            | FeedError::Invalid(_)
            | FeedError::SignatureMissing
            | FeedError::UnexpectedSignature
            | FeedError::SignatureInvalid(_),
        ) => "invalid",
    }
}

/// The line logged once when the feed turns stale.
///
/// `fresh_at`: when the document in use was last fetched or confirmed (0 and `version` `None`
/// when none was ever loaded); `last_error` why the last refresh failed (a [`FeedError`]'s
/// text); `now` the time the turn was seen.
pub fn stale_line(
    version: Option<u64>,
    fresh_at: u64,
    max_stale_s: u64,
    policy: StalePolicy,
    last_error: Option<&str>,
    now: u64,
) -> String {
    let since = match version {
        Some(_) => fresh_at.saturating_add(max_stale_s).min(now),
        None => now,
    };
    let mut detail = format!("max_stale_s {max_stale_s}");
    match version {
        Some(_) => detail.push_str(&format!(", last refreshed {}", rfc3339(fresh_at))),
        None => detail.push_str(", never loaded"),
    }
    if let Some(e) = last_error {
        detail.push_str(&format!(", last error: {e}"));
    }
    let what = match (policy, version) {
        (StalePolicy::FailClosed, _) => String::from("failing closed with 503 policy_unavailable"),
        (StalePolicy::Keep, Some(v)) => format!("keeping version {v}"),
        (StalePolicy::Keep, None) => {
            String::from("no version to keep: going on with the configured policy alone")
        }
    };
    format!(
        "tokengate: policy feed stale since {} ({detail}): {what}",
        rfc3339(since)
    )
}

/// The line logged once when a stale feed is fresh again.
pub fn fresh_again_line(version: Option<u64>) -> String {
    match version {
        Some(v) => format!("tokengate: policy feed fresh again: version {v}"),
        None => String::from("tokengate: policy feed fresh again"),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC, proleptic Gregorian).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days to a civil date (H. Hinnant's algorithm), for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_268_800), "2026-01-01T12:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn each_outcome_has_its_label() {
        let update = Ok(FeedUpdate::Unchanged);
        assert_eq!(feed_result(Some(304), &update), "not_modified");
        assert_eq!(feed_result(Some(200), &update), "ok");
        assert_eq!(
            feed_result(Some(200), &Ok(FeedUpdate::Applied { version: 2 })),
            "ok"
        );
        for (e, label) in [
            (FeedError::Status(500), "http_error"),
            (FeedError::TooLarge, "invalid"),
            (FeedError::TooManyEntries, "invalid"),
            (FeedError::Invalid("x".into()), "invalid"),
            (FeedError::SignatureMissing, "invalid"),
            (FeedError::UnexpectedSignature, "invalid"),
            (FeedError::SignatureInvalid("bad signature"), "invalid"),
            (FeedError::OlderVersion { have: 2, got: 1 }, "older_version"),
            (FeedError::Transport, "transport"),
        ] {
            let label_found = feed_result(Some(200), &Err(e));
            assert_eq!(label_found, label);
            assert!(FEED_RESULTS.contains(&label_found));
        }
    }

    #[test]
    fn the_stale_line_says_what_happens_next() {
        let keep = stale_line(
            Some(4),
            1_767_268_800,
            3,
            StalePolicy::Keep,
            Some(&FeedError::Transport.to_string()),
            1_767_268_810,
        );
        assert_eq!(
            keep,
            "tokengate: policy feed stale since 2026-01-01T12:00:03Z (max_stale_s 3, last \
             refreshed 2026-01-01T12:00:00Z, last error: policy feed fetch failed or timed \
             out): keeping version 4"
        );
        let closed = stale_line(
            Some(4),
            1_767_268_800,
            3,
            StalePolicy::FailClosed,
            None,
            1_767_268_810,
        );
        assert!(closed.ends_with(": failing closed with 503 policy_unavailable"));
        let never = stale_line(None, 0, 600, StalePolicy::Keep, None, 1_767_268_800);
        assert!(never.contains("stale since 2026-01-01T12:00:00Z (max_stale_s 600, never loaded)"));
        assert_eq!(
            fresh_again_line(Some(5)),
            "tokengate: policy feed fresh again: version 5"
        );
    }
}
