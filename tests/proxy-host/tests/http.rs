//! Every case of tests/vectors/http/*.json as a request through the built filter: the local
//! answer (status, code, challenge, Retry-After) or the forwarded headers must be the vector's.
//!
//! `request.peer` reaches the filter the way Envoy hands it over: as the four connection
//! properties (SHA-256 in lower-case hex, the subject, the first URI SAN, the first DNS SAN),
//! never as a header; `request.headers` are request headers. On every request that goes on,
//! the certificate headers the configuration does not trust must be gone.

mod common;

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use tokengate_proxy_host::{Env, Request, Response, Start};

/// Cases whose answer depends on a URI or DNS SAN after the first. Envoy gives a filter only
/// the first URI SAN and the first DNS SAN of the client certificate
/// (`connection.uri_san_peer_certificate`, `connection.dns_san_peer_certificate`), so through
/// Envoy these cases get the answer for the first SANs alone, which is listed here: (case,
/// status, code). Every other case with more SANs must get the vector's own answer. An entry
/// whose answer equals the vector's, or that matches no such case, fails the test.
const ENVOY_FIRST_SANS_ONLY: &[(&str, u32, &str)] = &[
    // The pin spiffe://prod/batch/9 is the second URI SAN; Envoy shows spiffe://prod/legacy/migrator.
    (
        "identity/conn_uri_san_exact_matches_second_uri_san",
        401,
        "identity_mismatch",
    ),
    // Likewise for the prefix pin spiffe://prod/batch/*.
    (
        "identity/conn_uri_san_prefix_matches_second_uri_san",
        401,
        "identity_mismatch",
    ),
    // The provider's spiffe://prod/batch/* matches only the second URI SAN.
    (
        "identity/rule_pins_apply_only_to_their_route",
        401,
        "identity_mismatch",
    ),
];

/// The `client_certificate.source` that trusts request header `name` (RFC 9440 `client-cert*`,
/// AWS ALB `x-amzn-mtls-clientcert*`); `None` for any other header.
fn certificate_header_family(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    if name == "client-cert" || name == "client-cert-chain" {
        Some("client_cert_header")
    } else if name.starts_with("x-amzn-mtls-clientcert") {
        Some("alb")
    } else {
        None
    }
}

#[derive(Debug, PartialEq)]
struct Answer {
    status: u32,
    code: Option<String>,
    www_authenticate: Option<String>,
    retry_after: Option<String>,
    forward: Option<BTreeMap<String, String>>,
}

fn expected(case: &Value) -> Answer {
    let e = &case["expect"];
    let s = |v: &Value| v.as_str().map(String::from);
    Answer {
        status: e["status"].as_u64().unwrap() as u32,
        code: s(&e["code"]),
        www_authenticate: s(&e["www_authenticate"]),
        retry_after: s(&e["retry_after"]),
        forward: e["forward"].as_object().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        }),
    }
}

/// Forwarded headers the gate set: those named in the config's `forward`.
fn forwarded(config: &Value, headers: &[(String, Vec<u8>)]) -> BTreeMap<String, String> {
    let names: Vec<String> = config["forward"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|v| v.as_str().unwrap().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    headers
        .iter()
        .filter(|(k, _)| names.contains(k))
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

/// A SHA-256 as Envoy writes it: 64 lower-case hex digits (the vectors may use base64url).
fn lower_hex(digest: &str) -> String {
    if digest.len() == 64 {
        return digest.to_ascii_lowercase();
    }
    let bytes = URL_SAFE_NO_PAD.decode(digest).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_http_vector_gets_the_same_answer_through_the_filter() {
    let dir = common::vectors_dir().join("http");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    let mut beyond_first_san = 0;
    let mut envoy_specific: Vec<String> = Vec::new();
    let mut stripping_checked = 0;
    for file in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        for case in doc["cases"].as_array().unwrap() {
            total += 1;
            let name = format!("{stem}/{}", case["name"].as_str().unwrap());
            let config = doc["configs"][case["config"].as_str().unwrap()].clone();
            let env = Env::at(case["now"].as_u64().unwrap());
            let mut vm = match env.vm(common::filter(), &config.to_string()) {
                Ok(vm) => vm,
                Err(Start::Refused(logs)) => {
                    failures.push(format!("{name}: config refused: {logs:?}"));
                    continue;
                }
                Err(Start::Trap(e)) => {
                    failures.push(format!("{name}: trap at start: {e:#}"));
                    continue;
                }
            };
            // A stateful case (`before`): its earlier requests go to the same filter first.
            for step in case["before"].as_array().into_iter().flatten() {
                let req = &step["request"];
                assert!(
                    req["peer"].is_null() && req["headers"].is_null(),
                    "{name}: this host replays `before` requests with a method, target and Authorization only"
                );
                let mut r = Request::new(
                    req["method"].as_str().unwrap(),
                    req["target"].as_str().unwrap(),
                );
                for v in req["authorization"].as_array().unwrap() {
                    r = r.header("authorization", v.as_str().unwrap());
                }
                vm.set_time(step["now"].as_u64().unwrap()).unwrap();
                vm.request(r).unwrap();
            }
            if case.get("before").is_some() {
                vm.set_time(case["now"].as_u64().unwrap()).unwrap();
            }
            let req = &case["request"];
            let mut r = Request::new(
                req["method"].as_str().unwrap(),
                req["target"].as_str().unwrap(),
            );
            for v in req["authorization"].as_array().unwrap() {
                r = r.header("authorization", v.as_str().unwrap());
            }
            let sent: Vec<(String, String)> = req["headers"]
                .as_array()
                .map(|hs| {
                    hs.iter()
                        .map(|pair| {
                            let s = |i: usize| pair[i].as_str().unwrap().to_owned();
                            (s(0), s(1))
                        })
                        .collect()
                })
                .unwrap_or_default();
            for (name, value) in &sent {
                r = r.header(name, value);
            }
            let mut first_sans_only = false;
            if let Some(peer) = req["peer"].as_object() {
                let list = |k: &str| -> Vec<&str> {
                    peer.get(k)
                        .and_then(Value::as_array)
                        .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
                        .unwrap_or_default()
                };
                let (uris, dnss) = (list("uri_sans"), list("dns_sans"));
                first_sans_only = uris.len() > 1 || dnss.len() > 1;
                let hex = peer.get("sha256").and_then(Value::as_str).map(lower_hex);
                let subject = peer.get("subject").and_then(Value::as_str);
                r = r.peer_certificate(hex.as_deref(), subject, &uris, &dnss);
            }
            let source = config["client_certificate"]["source"]
                .as_str()
                .unwrap_or("connection")
                .to_owned();
            let outcome = vm.request(r);
            let got = match &outcome {
                Ok(Response::Forwarded(headers)) => Answer {
                    status: 200,
                    code: None,
                    www_authenticate: None,
                    retry_after: None,
                    forward: Some(forwarded(&config, headers)),
                },
                Ok(local @ Response::Local { .. }) => Answer {
                    status: local.status(),
                    code: local.error_code(),
                    www_authenticate: local.header("www-authenticate"),
                    retry_after: local.header("retry-after"),
                    forward: None,
                },
                Ok(Response::Paused) => {
                    failures.push(format!("{name}: paused with inline keys"));
                    continue;
                }
                Err(e) => {
                    failures.push(format!("{name}: trap: {e:#}"));
                    continue;
                }
            };
            if let Ok(Response::Forwarded(headers)) = &outcome {
                let went_on = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
                for (header, _) in &sent {
                    let Some(family) = certificate_header_family(header) else {
                        continue;
                    };
                    stripping_checked += 1;
                    if family != source && went_on(header) {
                        failures.push(format!(
                            "{name}: untrusted {header} reached the origin (source {source})"
                        ));
                    }
                    if family == source && !went_on(header) {
                        failures.push(format!(
                            "{name}: the trusted {header} was removed (source {source})"
                        ));
                    }
                }
            }
            let mut want = expected(case);
            let envoy = ENVOY_FIRST_SANS_ONLY.iter().find(|(n, ..)| *n == name);
            if first_sans_only {
                beyond_first_san += 1;
            }
            if let Some(&(_, status, code)) = envoy {
                envoy_specific.push(name.clone());
                let envoy_answer = Answer {
                    status,
                    code: Some(code.to_owned()),
                    www_authenticate: Some(
                        r#"Bearer realm="tokengate", error="invalid_token""#.to_owned(),
                    ),
                    retry_after: None,
                    forward: None,
                };
                if !first_sans_only {
                    failures.push(format!(
                        "{name}: listed as Envoy-specific but its peer has no SAN after the first"
                    ));
                }
                if envoy_answer == want {
                    failures.push(format!(
                        "{name}: listed as Envoy-specific but the vector already answers {want:?}"
                    ));
                }
                want = envoy_answer;
            }
            if got != want {
                failures.push(format!("{name}:\n  want {want:?}\n  got  {got:?}"));
            }
        }
    }
    for (n, ..) in ENVOY_FIRST_SANS_ONLY {
        if !envoy_specific.iter().any(|s| s == n) {
            failures.push(format!("{n}: listed as Envoy-specific but no such case"));
        }
    }
    assert!(total >= 250, "only {total} HTTP vectors");
    assert!(
        stripping_checked >= 20,
        "only {stripping_checked} certificate headers checked"
    );
    println!(
        "{total} HTTP vectors through the filter, {} failed; {beyond_first_san} with SANs after \
         the first (Envoy shows only the first), {} of them answered differently through Envoy \
         ({}); {stripping_checked} certificate headers checked on forwarded requests",
        failures.len(),
        envoy_specific.len(),
        envoy_specific.join(", "),
    );
    assert!(
        failures.is_empty(),
        "{} of {total} HTTP vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
