//! `tokengate check`: one HTTP request through the request gate of a configuration file (the
//! same JSON every host loads), or a replay of HTTP vector files (`tests/vectors/http`).
//!
//! The CLI is a host like any other: it reads the clock, hands the gate what it "received", and
//! plays the JWKS fetches of remote providers from files (`--jwks`), never from the network.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::error::ErrorKind;
use clap::Args;
use serde_json::{json, Map, Value};
use tokengate::peer::Peer;
use tokengate::{Clock, Decision, ErrorCode, Gate, Outcome, RequestFacts, Response};

use crate::verify::is_http_url;
use crate::{print_json, print_text, vectors, warn, Failure};

/// Exit status of a request the gate refused.
pub(crate) const EXIT_DENIED: u8 = 1;

/// Retry jitter seed of the key caches; the CLI never retries a fetch, so any value does.
const JITTER_SEED: u64 = 1;

/// Largest configuration file read (inline keys included).
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Largest JWKS file read: the largest `jwks.max_bytes` a configuration may set, plus one byte
/// so that the key cache itself says "too large" under the provider's own limit.
const MAX_JWKS_READ: u64 = (1 << 20) + 1;

/// Arguments of `tokengate check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The gate configuration: the JSON every tokengate host loads (Envoy plugin configuration,
    /// npm `fromConfig`).
    #[arg(long, value_name = "FILE", required_unless_present = "vectors")]
    config: Option<PathBuf>,

    /// The policy feed document (plain JSON, or the signed JWS), as if fetched now from the
    /// configuration's `feed`. Without it a configuration with a feed answers as a host whose
    /// feed fetch failed.
    #[arg(long, value_name = "FILE")]
    feed: Option<PathBuf>,

    /// Key set of a provider whose keys are fetched remotely (jwks.uri or jwks.cluster), fed to
    /// its key cache as if fetched: N=FILE for providers[N], or FILE when one provider is
    /// remote. Repeatable. Without it such a provider has no keys (503 jwks_unavailable).
    #[arg(long = "jwks", value_name = "[N=]FILE", value_parser = parse_jwks_arg)]
    jwks: Vec<JwksArg>,

    /// The request method, exactly as sent (case matters: `get` is refused).
    #[arg(long, value_name = "METHOD", required_unless_present = "vectors")]
    method: Option<String>,

    /// The request target exactly as sent (`:path` for HTTP/2), query included, e.g.
    /// '/orders/7?x=1'.
    #[arg(long, value_name = "TARGET", required_unless_present = "vectors")]
    target: Option<String>,

    /// One `Authorization` field value, e.g. 'Bearer eyJ…'. Repeat for a request that carries
    /// several (in order).
    #[arg(long = "authorization", value_name = "VALUE")]
    authorization: Vec<OsString>,

    /// A request header as 'Name: value'. Authorization (any case) counts like --authorization,
    /// after those; the certificate header the configuration trusts (`Client-Cert`,
    /// `X-Amzn-Mtls-Clientcert-Leaf`) is read as the proxy sent it; other headers are ignored,
    /// with a note on stderr.
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'")]
    headers: Vec<OsString>,

    /// The client certificate of the connection (PEM or DER file), for identity pins and
    /// mtls_binding (client_certificate.source "connection").
    #[arg(long, value_name = "FILE", conflicts_with = "peer")]
    peer_cert: Option<PathBuf>,

    /// The client certificate's facts as a TLS stack reports them, as JSON
    /// ('{"uri_sans": [..], "dns_sans": [..], "subject": "CN=…", "sha256": "<hex>"}'), or only
    /// its SHA-256 thumbprint (base64url or hex).
    #[arg(long, value_name = "FACTS", alias = "cert-thumbprint")]
    peer: Option<String>,

    /// Judge the request at this second since the epoch [default: the system clock].
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<u64>,

    /// Print one JSON object instead of the HTTP-like text.
    #[arg(long)]
    json: bool,

    /// Replay HTTP vector files instead (a file, or every *.json in a directory): print a line
    /// per failing case and `N passed, M failed`.
    #[arg(
        long,
        value_name = "DIR_OR_FILE",
        conflicts_with_all = [
            "config", "method", "target", "authorization", "headers", "peer_cert", "peer", "now",
        ]
    )]
    vectors: Option<PathBuf>,
}

/// One `--jwks` value.
#[derive(Clone, Debug)]
pub(crate) struct JwksArg {
    /// `N` of `N=FILE`.
    index: Option<usize>,
    path: PathBuf,
}

fn parse_jwks_arg(s: &str) -> Result<JwksArg, String> {
    let (index, path) = match s.split_once('=') {
        Some((n, path)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            let n = n
                .parse::<usize>()
                .map_err(|_| format!("provider index {n} is out of range"))?;
            (Some(n), path)
        }
        _ => (None, s),
    };
    if path.is_empty() {
        return Err("expected FILE, or N=FILE for providers[N]".into());
    }
    if is_http_url(path) {
        return Err(format!(
            "fetching a JWKS URL is not supported; download it and pass the file: \
             curl -fsS -o jwks.json '{path}' and then --jwks jwks.json"
        ));
    }
    Ok(JwksArg {
        index,
        path: PathBuf::from(path),
    })
}

/// A `--jwks` file, read once.
#[derive(Debug)]
pub(crate) struct KeyFile {
    index: Option<usize>,
    /// Where it was read from.
    pub path: PathBuf,
    body: Vec<u8>,
}

/// Read every `--jwks` file.
pub(crate) fn read_key_files(args: &[JwksArg]) -> Result<Vec<KeyFile>, Failure> {
    args.iter()
        .map(|a| {
            let error = |e: std::io::Error| {
                Failure::Config(format!("cannot read JWKS file {}: {e}", a.path.display()))
            };
            let mut body = Vec::new();
            File::open(&a.path)
                .map_err(error)?
                .take(MAX_JWKS_READ)
                .read_to_end(&mut body)
                .map_err(error)?;
            Ok(KeyFile {
                index: a.index,
                path: a.path.clone(),
                body,
            })
        })
        .collect()
}

/// How `--jwks` values that do not fit a configuration are treated.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Fit {
    /// Every value must name a remote provider of the configuration (`check`).
    Strict,
    /// Values that name no remote provider of this configuration are skipped (vector files
    /// hold several configurations).
    Skip,
}

/// Feed the key files to the key caches of the gate's remote providers, as a fetch answered
/// `200` at `now`. Returns `(file index, provider index)` of each file fed.
///
/// # Errors
/// A message when a file does not fit the configuration or is not a usable key set.
pub(crate) fn supply_keys(
    gate: &mut Gate,
    files: &[KeyFile],
    now: u64,
    fit: Fit,
) -> Result<Vec<(usize, usize)>, String> {
    let providers = gate.config().providers.len();
    let remote: Vec<usize> = gate
        .config()
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| p.source.is_some())
        .map(|(i, _)| i)
        .collect();
    let mut fed: Vec<(usize, usize)> = Vec::new();
    for (k, file) in files.iter().enumerate() {
        let path = file.path.display();
        let index = match file.index {
            Some(n) if n >= providers => {
                if fit == Fit::Skip {
                    continue;
                }
                return Err(format!(
                    "--jwks {n}={path}: there is no providers[{n}] (the configuration has {providers})"
                ));
            }
            Some(n) if !remote.contains(&n) => {
                if fit == Fit::Skip {
                    continue;
                }
                return Err(format!(
                    "--jwks {n}={path}: providers[{n}] has no remote key source \
                     (jwks.uri or jwks.cluster); its inline jwks.keys are used as configured"
                ));
            }
            Some(n) => n,
            None => match remote.as_slice() {
                [only] => *only,
                [] if fit == Fit::Skip => continue,
                [] => {
                    return Err(format!(
                        "--jwks {path}: no provider fetches its keys remotely (jwks.uri or \
                         jwks.cluster); inline jwks.keys are used as configured"
                    ))
                }
                several => {
                    let names: Vec<String> =
                        several.iter().map(|i| format!("providers[{i}]")).collect();
                    return Err(format!(
                        "--jwks {path}: several providers fetch their keys remotely ({}); \
                         say which one with --jwks N={path}",
                        names.join(", ")
                    ));
                }
            },
        };
        if fed.iter().any(|&(_, i)| i == index) {
            return Err(format!("--jwks gives keys for providers[{index}] twice"));
        }
        gate.verifier_mut()
            .on_jwks_response(index, now, 200, None, &file.body)
            .map_err(|e| format!("JWKS file {path} (for providers[{index}]): {e}"))?;
        fed.push((k, index));
    }
    Ok(fed)
}

/// The final answer to one request, in the terms every host sends it.
#[derive(Debug)]
pub(crate) struct Answer {
    /// HTTP status: 200 when the request goes on.
    pub status: u16,
    /// The code of a refusal.
    pub code: Option<ErrorCode>,
    /// The local answer's headers (none on 200).
    pub headers: Vec<(&'static str, String)>,
    /// The local answer's body.
    pub body: Option<String>,
    /// On 200: the headers set for the origin.
    pub forward: Option<Vec<(String, String)>>,
    /// Report mode: the answer enforce mode would have sent.
    pub would_deny: Option<Response>,
    /// The audit record.
    pub record: Decision,
}

impl Answer {
    /// The value of a header of the local answer.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The matched route (`default` when no rule matched).
    pub fn route(&self) -> &str {
        self.record.route.as_deref().unwrap_or("default")
    }
}

/// Decide on one request as an offline host: a wait for keys ends at once without new keys
/// (every `--jwks` file was fed before), so the waiting denial is the answer.
///
/// # Errors
/// Only if the gate asks for the time again, which it never does for an exact clock.
pub(crate) fn answer(gate: &mut Gate, facts: &RequestFacts<'_>) -> Result<Answer, Failure> {
    let outcome = match gate.decide(facts) {
        Outcome::Wait(waiting) => gate.give_up(waiting),
        other => other,
    };
    match outcome {
        Outcome::Allow(allowed) => Ok(Answer {
            status: 200,
            code: None,
            headers: Vec::new(),
            body: None,
            forward: Some(allowed.forward),
            would_deny: allowed.would_deny,
            record: allowed.record,
        }),
        Outcome::Deny(denied) | Outcome::Wait(denied) => {
            let r = denied.response;
            Ok(Answer {
                status: r.status,
                code: Some(r.code),
                headers: r.headers,
                body: Some(r.body),
                forward: None,
                would_deny: None,
                record: denied.record,
            })
        }
        Outcome::ReadClock => Err(Failure::Config(
            "internal error: the gate asked for the exact time although it was given".into(),
        )),
    }
}

/// Run `tokengate check`.
pub fn run(args: &CheckArgs) -> Result<ExitCode, Failure> {
    let keys = read_key_files(&args.jwks)?;
    if let Some(path) = &args.vectors {
        return vectors::run(path, &keys, args.json);
    }
    let (Some(config_path), Some(method), Some(target)) =
        (&args.config, &args.method, &args.target)
    else {
        // clap requires all three without --vectors; keep a clear answer anyway.
        return Err(Failure::usage(
            "check",
            ErrorKind::MissingRequiredArgument,
            "--config, --method and --target are required (or --vectors)",
        ));
    };
    let (authorization, other_headers) = authorization_values(args)?;
    let peer = peer_arg(args)?;
    let clock = match args.now {
        Some(now) => Clock::At(now),
        None => Clock::from_unix_ms(system_ms()?),
    };
    let now = clock.earliest();
    let config = read_file(config_path, "configuration file")?;
    let label = config_path.display();
    let mut gate = Gate::from_json(&config, now, JITTER_SEED)
        .map_err(|e| Failure::Config(format!("configuration file {label}: {e}")))?;
    let fed: Vec<usize> = supply_keys(&mut gate, &keys, now, Fit::Strict)
        .map_err(Failure::Config)?
        .into_iter()
        .map(|(_, provider)| provider)
        .collect();
    notes(&gate, &fed);
    supply_feed(&mut gate, args.feed.as_deref(), now)?;
    let values: Vec<&[u8]> = authorization.iter().map(Vec::as_slice).collect();
    let cert_header = gate.certificate_header();
    let mut client_cert: Vec<&[u8]> = Vec::new();
    for (name, value) in &other_headers {
        if cert_header.is_some_and(|h| h.eq_ignore_ascii_case(name)) {
            client_cert.push(value);
        } else {
            warn(&format!(
                "note: header {name} is ignored: the gate reads Authorization{}",
                cert_header.map_or(String::new(), |h| format!(" and {h}"))
            ));
        }
    }
    if peer.is_some() && !gate.needs_connection_certificate() {
        warn(
            "note: the connection's client certificate is not read with this configuration \
             (no pins or binding, or client_certificate.source names a header)",
        );
    }
    let facts = RequestFacts {
        method,
        target,
        authorization: &values,
        peer: peer.as_ref(),
        client_cert: &client_cert,
        scopes: None,
        clock,
        audit: true,
    };
    let answer = answer(&mut gate, &facts)?;
    let status = if answer.code.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    };
    if let Some(would) = &answer.would_deny {
        warn(&format!(
            "mode is \"report\": the request goes on; in enforce mode the answer would be {} {}",
            would.status,
            would.code.as_str()
        ));
    }
    if args.json {
        let record = gate.audit_line(&answer.record, answer.status, method, target);
        print_json(&to_json(&answer, &record), false)?;
    } else {
        print_text(&human(&answer))?;
    }
    Ok(status)
}

/// Every `Authorization` value: the `--authorization` ones, then those of `--header`.
/// A `--peer-cert` file: one PEM or DER certificate.
pub(crate) fn peer_cert_file(path: &std::path::Path) -> Result<Peer, Failure> {
    let bytes = read_file(path, "client certificate")?;
    let peer = match bytes.first() {
        Some(0x30) => Peer::from_der(&bytes),
        _ => Peer::from_pem(&bytes),
    };
    peer.map_err(|why| Failure::Config(format!("--peer-cert {}: {why}", path.display())))
}

/// `--peer-cert` or `--peer`, read.
fn peer_arg(args: &CheckArgs) -> Result<Option<Peer>, Failure> {
    if let Some(path) = &args.peer_cert {
        return peer_cert_file(path).map(Some);
    }
    match &args.peer {
        None => Ok(None),
        Some(facts) => Peer::from_host_bytes(facts.as_bytes())
            .map(Some)
            .map_err(|why| {
                Failure::usage("check", ErrorKind::InvalidValue, format!("--peer: {why}"))
            }),
    }
}

/// The `Authorization` values (`--authorization`, then `-H Authorization:`), and the other
/// `-H` headers as (name, value).
type Headers = (Vec<Vec<u8>>, Vec<(String, Vec<u8>)>);

fn authorization_values(args: &CheckArgs) -> Result<Headers, Failure> {
    let mut others = Vec::new();
    let mut values: Vec<Vec<u8>> = args
        .authorization
        .iter()
        .map(|v| v.as_encoded_bytes().to_vec())
        .collect();
    for header in &args.headers {
        let bytes = header.as_encoded_bytes();
        let parsed = bytes
            .iter()
            .position(|&b| b == b':')
            .map(|colon| bytes.split_at(colon))
            .and_then(|(name, rest)| Some((std::str::from_utf8(name).ok()?, rest.get(1..)?)))
            .filter(|(name, _)| !name.is_empty() && name.bytes().all(is_tchar));
        let Some((name, value)) = parsed else {
            return Err(Failure::usage(
                "check",
                ErrorKind::InvalidValue,
                format!(
                    "invalid value '{}' for '--header <'NAME: VALUE'>': expected a header \
                     name, ':' and the value",
                    header.to_string_lossy()
                ),
            ));
        };
        if name.eq_ignore_ascii_case("authorization") {
            // Optional whitespace around a field value is not part of it (RFC 9110 §5.5).
            values.push(trim_ows(value).to_vec());
        } else {
            others.push((String::from(name), trim_ows(value).to_vec()));
        }
    }
    Ok((values, others))
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn system_ms() -> Result<u64, Failure> {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| {
        Failure::Config("the system clock is before 1970; pass --now UNIX_SECONDS".into())
    })?;
    Ok(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Read a configuration (or vector) file; `what` names it in messages.
pub(crate) fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    let error =
        |e: std::io::Error| Failure::Config(format!("cannot read {what} {}: {e}", path.display()));
    let mut bytes = Vec::new();
    File::open(path)
        .map_err(error)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(error)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Failure::Config(format!(
            "{what} {} is larger than {MAX_CONFIG_BYTES} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Feed `--feed FILE` to the gate's policy feed as a 200 answer fetched at `now`.
fn supply_feed(gate: &mut Gate, path: Option<&Path>, now: u64) -> Result<(), Failure> {
    let configured = gate.feed().is_some();
    match (path, configured) {
        (None, false) => Ok(()),
        (None, true) => {
            warn(
                "the configuration has a policy feed and no --feed gives it: the answer is that \
                 of a host whose feed fetch failed (its stale policy applies); pass the document \
                 with --feed FILE",
            );
            if gate.poll_feed(now).is_some() {
                gate.on_feed_failure(now);
            }
            Ok(())
        }
        (Some(p), false) => Err(Failure::Config(format!(
            "--feed {}: the configuration has no \"feed\"",
            p.display()
        ))),
        (Some(p), true) => {
            let body = read_file(p, "policy feed")?;
            let _ = gate.poll_feed(now);
            gate.on_feed_response(now, 200, None, None, &body)
                .map(|_| ())
                .map_err(|e| Failure::Config(format!("--feed {}: {e}", p.display())))
        }
    }
}

/// Notes on stderr about what this offline answer does not show.
fn notes(gate: &Gate, fed: &[usize]) {
    for (i, p) in gate.config().providers.iter().enumerate() {
        if p.policy.client_ids().is_none() {
            warn(&format!(
                "WARNING: providers[{i}] does not check client_id (client_ids null): tokens of \
                 every app client of the issuer pass"
            ));
        }
        let Some(source) = &p.source else { continue };
        if fed.contains(&i) || p.inline.is_some() {
            continue;
        }
        let from = match (&source.uri, &source.cluster) {
            (Some(uri), _) => uri.clone(),
            (None, Some(c)) => format!("cluster {} at {}", c.name, c.path),
            (None, None) => "a remote source".into(),
        };
        warn(&format!(
            "providers[{i}] fetches its keys from {from} and no --jwks gives them: the answer is \
             that of a host whose fetch failed (503 jwks_unavailable for its tokens); pass the \
             key set with --jwks {i}=FILE"
        ));
    }
}

/// The HTTP-like text form: status line, the answer's headers, a blank line and the body; or,
/// for a request that goes on, the headers set for the origin. Last, the matched route.
fn human(a: &Answer) -> String {
    let mut out = match a.code {
        None => format!("{} allow\n", a.status),
        Some(code) => format!("{} {}\n", a.status, code.as_str()),
    };
    for (name, value) in &a.headers {
        out.push_str(&format!("{name}: {value}\n"));
    }
    if let Some(body) = &a.body {
        out.push_str(&format!("\n{body}\n"));
    }
    for (name, value) in a.forward.iter().flatten() {
        out.push_str(&format!("forward {name}: {value}\n"));
    }
    if let Some(would) = &a.would_deny {
        out.push_str(&format!(
            "would-deny {} {}\n",
            would.status,
            would.code.as_str()
        ));
    }
    out.push_str(&format!("route {}\n", a.route()));
    out
}

/// The `--json` form.
fn to_json(a: &Answer, audit_line: &str) -> Value {
    let headers = |list: &[(&'static str, String)]| -> Value {
        Value::Object(
            list.iter()
                .map(|(n, v)| ((*n).to_string(), Value::String(v.clone())))
                .collect(),
        )
    };
    let body = |b: &str| serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.into()));
    let forward = a.forward.as_ref().map_or(Value::Null, |list| {
        Value::Object(
            list.iter()
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect::<Map<String, Value>>(),
        )
    });
    let would_deny = a.would_deny.as_ref().map_or(Value::Null, |r| {
        json!({
            "status": r.status,
            "code": r.code.as_str(),
            "headers": headers(&r.headers),
            "body": body(&r.body),
        })
    });
    json!({
        "status": a.status,
        "code": a.code.map(ErrorCode::as_str),
        "headers": headers(&a.headers),
        "body": a.body.as_deref().map(body),
        "forward": forward,
        "route": a.route(),
        "record": serde_json::from_str::<Value>(audit_line)
            .unwrap_or_else(|_| Value::String(audit_line.into())),
        "would_deny": would_deny,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_values_name_a_provider_or_not() {
        let a = parse_jwks_arg("1=keys.json").unwrap();
        assert_eq!((a.index, a.path), (Some(1), PathBuf::from("keys.json")));
        let a = parse_jwks_arg("keys.json").unwrap();
        assert_eq!((a.index, a.path), (None, PathBuf::from("keys.json")));
        let a = parse_jwks_arg("./0=keys.json").unwrap();
        assert_eq!((a.index, a.path), (None, PathBuf::from("./0=keys.json")));
        let a = parse_jwks_arg("x=1.json").unwrap();
        assert_eq!(a.index, None);
        assert!(parse_jwks_arg("").is_err());
        assert!(parse_jwks_arg("0=").is_err());
        assert!(parse_jwks_arg("99999999999999999999999=k.json").is_err());
        assert!(parse_jwks_arg("https://example.com/jwks").is_err());
    }

    #[test]
    fn ows_is_trimmed_from_header_values() {
        assert_eq!(trim_ows(b" \tBearer x \t"), b"Bearer x");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b"a b"), b"a b");
    }
}
