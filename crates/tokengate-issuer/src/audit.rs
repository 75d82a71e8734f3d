//! One JSON line per token request, revocation request and admin change of the edge policy
//! feed or of a client's secrets. Never a secret, never a token, never a secret hash.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::config::AuditTarget;

/// Where audit lines go.
#[derive(Clone, Debug)]
pub enum AuditSink {
    /// Standard output (the default; `listening on` goes there too).
    Stdout,
    /// Standard error.
    Stderr,
    /// Dropped.
    Off,
    /// Kept in memory, for tests.
    Memory(AuditBuffer),
}

impl From<AuditTarget> for AuditSink {
    fn from(target: AuditTarget) -> Self {
        match target {
            AuditTarget::Stdout => AuditSink::Stdout,
            AuditTarget::Stderr => AuditSink::Stderr,
            AuditTarget::Off => AuditSink::Off,
        }
    }
}

/// Audit lines kept in memory. Clones share the lines.
#[derive(Clone, Debug, Default)]
pub struct AuditBuffer(Arc<Mutex<Vec<String>>>);

impl AuditBuffer {
    /// An empty buffer.
    pub fn new() -> AuditBuffer {
        AuditBuffer::default()
    }

    /// The lines written so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One token request's outcome.
#[derive(Debug, Serialize)]
pub(crate) struct AuditRecord<'a> {
    /// RFC 3339, UTC, whole seconds.
    pub ts: String,
    pub pool: &'a str,
    /// As presented by the caller, even when unknown (it is not a secret).
    pub client_id: Option<&'a str>,
    pub scopes_granted: &'a [String],
    /// `"issued"` or the OAuth error code.
    pub result: &'a str,
    pub remote: SocketAddr,
    /// The RFC 8705 thumbprint an issued token is bound to (the client authenticated with
    /// that certificate).
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<&'a str>,
    /// Why a request failed, for the developer reading the log; the HTTP answer stays terse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

/// One revocation request (`event: "revoke"`) or admin change (`event: "admin.…"`).
#[derive(Debug, Default, Serialize)]
pub(crate) struct EventRecord<'a> {
    /// RFC 3339, UTC, whole seconds.
    pub ts: String,
    pub pool: &'a str,
    /// `revoke`, `admin.revoke_client`, `admin.revoke_issued_before`, `admin.edge_clients`,
    /// `admin.client_secrets`.
    pub event: &'a str,
    /// The client concerned (for `revoke`: as presented by the caller).
    pub client_id: Option<&'a str>,
    /// `revoked`, `not_revoked`, `changed`, `unchanged`, `ok` (secrets), or an error code.
    pub result: &'a str,
    /// The revoked token's id (published in the feed anyway; the token itself never is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<&'a str>,
    /// What the change did, e.g. `add` / `remove` for the allow-list and secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// The feed version after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

impl AuditSink {
    pub(crate) fn write(&self, record: &impl Serialize) {
        let Ok(line) = serde_json::to_string(record) else {
            return;
        };
        // A closed stdout must not take the server down, so write errors are ignored
        // (println! would panic).
        match self {
            AuditSink::Stdout => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            AuditSink::Stderr => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            AuditSink::Off => {}
            AuditSink::Memory(buffer) => buffer
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub(crate) fn rfc3339(epoch_s: u64) -> String {
    let days = epoch_s / 86_400;
    let seconds_of_day = epoch_s % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm, for non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_268_800), "2026-01-01T12:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
