//! Every case of tests/vectors/http/*.json as a request through the built filter: the local
//! answer (status, code, challenge, Retry-After) or the forwarded headers must be the vector's.

mod common;

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use tokengate_proxy_host::{Env, Request, Response, Start};

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
    for file in &files {
        let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        for case in doc["cases"].as_array().unwrap() {
            total += 1;
            let name = format!("{stem}/{}", case["name"].as_str().unwrap());
            let mut config = doc["configs"][case["config"].as_str().unwrap()].clone();
            config["audit_log"] = Value::Bool(false);
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
            let req = &case["request"];
            let mut r = Request::new(
                req["method"].as_str().unwrap(),
                req["target"].as_str().unwrap(),
            );
            for v in req["authorization"].as_array().unwrap() {
                r = r.header("authorization", v.as_str().unwrap());
            }
            if let Some(tp) = req["cert_thumbprint"].as_str() {
                let digest = URL_SAFE_NO_PAD.decode(tp).unwrap();
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                r = r.peer_certificate_sha256(&hex);
            }
            let got = match vm.request(r) {
                Ok(Response::Forwarded(headers)) => Answer {
                    status: 200,
                    code: None,
                    www_authenticate: None,
                    retry_after: None,
                    forward: Some(forwarded(&config, &headers)),
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
            let want = expected(case);
            if got != want {
                failures.push(format!("{name}:\n  want {want:?}\n  got  {got:?}"));
            }
        }
    }
    assert!(total >= 250, "only {total} HTTP vectors");
    println!(
        "{total} HTTP vectors through the filter, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} HTTP vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
