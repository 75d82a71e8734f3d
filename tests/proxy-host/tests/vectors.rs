//! Every case of tests/vectors/*.json, replayed as an HTTP request through the built filter:
//! the verdict and the code must be the core's (`expect`).

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokengate_proxy_host::{Env, Request, Response, Start};

/// The filter configuration for one case: its policy as the provider, its JWKS inline, one
/// rule that needs a valid token on every path.
fn case_config(case: &Value) -> String {
    let mut provider = case["policy"].as_object().cloned().unwrap_or_default();
    provider.insert("jwks".into(), json!({"keys": case["jwks"]["keys"].clone()}));
    json!({
        "providers": [provider],
        "rules": [{"match": {"prefix": "/"}, "allow": "authenticated"}]
    })
    .to_string()
}

fn status_of(code: &str) -> u32 {
    if code == "request_invalid" {
        return 400;
    }
    match code {
        "scope_insufficient" => 403,
        "rate_limited" => 429,
        "jwks_unavailable" => 503,
        _ => 401,
    }
}

#[test]
fn every_vector_gets_the_same_verdict_and_code_through_the_filter() {
    let mut files: Vec<_> = std::fs::read_dir(common::vectors_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    let host_checks = Arc::new(AtomicUsize::new(0));
    for file in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let Some(cases) = doc["cases"].as_array() else {
            continue;
        };
        for case in cases {
            // A token with spaces around it cannot travel as itself in a header: `Bearer  t`
            // is one token after 1*SP (RFC 9110 §11.6.2), and field values lose surrounding
            // whitespace. Such cases are about `verify(token)`; tests/vectors/http covers the
            // header forms.
            let raw = case["token"].as_str().unwrap_or("");
            if raw.trim_matches([' ', '\t']) != raw {
                continue;
            }
            total += 1;
            let name = format!(
                "{}/{}",
                file.file_name().unwrap().to_string_lossy(),
                case["name"].as_str().unwrap_or("?")
            );
            let expect = case["expect"].as_str().unwrap();
            let now = case["now"].as_u64().unwrap();
            let env = Env::at(now);
            match env.vm(common::filter(), &case_config(case)) {
                Ok(_) => {}
                Err(Start::Refused(logs)) => {
                    failures.push(format!("{name}: config refused: {logs:?}"));
                    continue;
                }
                Err(Start::Trap(e)) => {
                    failures.push(format!("{name}: trap at start: {e:#}"));
                    continue;
                }
            };
            // The filter reads its clock on ticks. Each vector is replayed with the last tick
            // in the previous second (the request's real time is `now` + 0 ms), at `now` + 999
            // ms, and lagging 100 ms behind a request at `now` + 50 ms: always judged at `now`.
            // A fresh VM per lag, so the token cache of one run does not answer the next. The
            // last run's host serves Envoy's `verify_signature` (common::envoy_verify_signature),
            // so every RS256 and ES256 signature is also checked by the host's crypto, not the core's.
            for (run, (tick_ms, request_ms)) in [
                (now * 1000 - 1, now * 1000),
                (now * 1000 + 999, now * 1000 + 999),
                (now * 1000 - 50, now * 1000 + 50),
            ]
            .into_iter()
            .enumerate()
            {
                let env = Env::at(now);
                if run == 2 {
                    let asked = host_checks.clone();
                    env.set_foreign_function("verify_signature", move |args| {
                        if !args.is_empty() {
                            asked.fetch_add(1, Ordering::Relaxed);
                        }
                        common::envoy_verify_signature(args)
                    });
                }
                let Ok(mut vm) = env.vm(common::filter(), &case_config(case)) else {
                    failures.push(format!("{name}: config refused on a second start"));
                    break;
                };
                env.set_time(0);
                env.advance_ms(tick_ms);
                vm.tick().unwrap();
                env.set_time(0);
                env.advance_ms(request_ms);
                let mut req = Request::get("/resource").bearer(case["token"].as_str().unwrap());
                if let Some(tp) = case["context"]["cert_thumbprint"].as_str() {
                    let digest = URL_SAFE_NO_PAD.decode(tp).expect("thumbprint is base64url");
                    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                    req = req.peer_certificate_sha256(&hex);
                }
                let got = match vm.request(req) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("{name}: trap: {e:#}"));
                        continue;
                    }
                };
                let ok = match (&got, expect) {
                    (Response::Forwarded(_), "accept") => true,
                    (Response::Local { status, .. }, code) => {
                        got.error_code().as_deref() == Some(code) && *status == status_of(code)
                    }
                    _ => false,
                };
                if !ok {
                    failures.push(format!(
                        "{name} (tick at {tick_ms} ms, request at {request_ms} ms): expected {expect}, got {} {:?}",
                        got.status(),
                        got.error_code()
                    ));
                }
            }
        }
    }
    assert!(total > 0, "no vectors found");
    let host_checks = host_checks.load(Ordering::Relaxed);
    println!(
        "{total} vectors replayed through the filter, {} failed; {host_checks} signatures checked by the host's verify_signature",
        failures.len()
    );
    // Every vector whose RS256 signature is checked (accepted ones and forged signatures).
    assert!(host_checks >= 200, "the host was asked {host_checks} times");
    assert!(
        failures.is_empty(),
        "{} of {total} vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
