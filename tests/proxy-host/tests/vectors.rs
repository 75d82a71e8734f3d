//! Every case of tests/vectors/*.json, replayed as an HTTP request through the built filter:
//! the verdict and the code must be the core's (`expect`).

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use tokengate_proxy_host::{Env, Request, Response, Start};

/// The filter configuration for one case: its policy as the provider, its JWKS inline, one
/// rule that needs a valid token on every path.
fn case_config(case: &Value) -> String {
    let mut provider = case["policy"].as_object().cloned().unwrap_or_default();
    provider.insert("jwks".into(), json!({"keys": case["jwks"]["keys"].clone()}));
    json!({
        "providers": [provider],
        "rules": [{"match": {"prefix": "/"}, "allow": "authenticated"}],
        "audit_log": false
    })
    .to_string()
}

fn status_of(code: &str) -> u32 {
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
    for file in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let Some(cases) = doc["cases"].as_array() else {
            continue;
        };
        for case in cases {
            total += 1;
            let name = format!(
                "{}/{}",
                file.file_name().unwrap().to_string_lossy(),
                case["name"].as_str().unwrap_or("?")
            );
            let expect = case["expect"].as_str().unwrap();
            let env = Env::at(case["now"].as_u64().unwrap());
            let mut vm = match env.vm(common::filter(), &case_config(case)) {
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
                    "{name}: expected {expect}, got {} {:?}",
                    got.status(),
                    got.error_code()
                ));
            }
        }
    }
    assert!(total > 0, "no vectors found");
    println!(
        "{total} vectors replayed through the filter, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
