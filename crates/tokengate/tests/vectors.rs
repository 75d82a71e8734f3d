//! Replays every conformance vector in `tests/vectors/*.json` through the core and checks the
//! verdict and the error code. The same files drive the JS and proxy tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokengate::json::{self, Object, Value};
use tokengate::{ErrorCode, KeySet, KeySetLimits, Policy, Provider, Request, Verifier};

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

struct Case {
    file: String,
    name: String,
    value: Value,
}

fn cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vector_dir())
        .expect("tests/vectors exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let doc = json::parse(&std::fs::read(&f).expect("read vector file")).expect("vector JSON");
        for case in doc["cases"].as_array().expect("cases array") {
            out.push(Case {
                file: f.file_name().unwrap().to_string_lossy().into_owned(),
                name: case["name"].as_str().expect("case name").to_owned(),
                value: case.clone(),
            });
        }
    }
    out
}

/// Runs one case and returns the code ("accept" or an error code).
fn run(case: &Value) -> (String, Option<Object>) {
    let policy = Policy::from_json(&case["policy"]).expect("vector policy is valid");
    let keys = KeySet::from_value(&case["jwks"], KeySetLimits::default())
        .expect("vector jwks is a key set");
    let mut verifier =
        Verifier::new(vec![Provider::with_fixed_keys(policy, keys)]).expect("verifier");
    let token = case["token"].as_str().expect("token string");
    let now = case["now"].as_u64().expect("now");
    let thumbprint = case["context"]["cert_thumbprint"].as_str();
    let mut req = Request::at(now);
    if let Some(t) = thumbprint {
        req = req.cert_thumbprint(t);
    }
    let first = verifier.verify(token, &req);
    // A second run answers from the verified-token cache when the first passed the signature
    // and time checks: the verdict must not change.
    let second = verifier.verify(token, &req);
    let code = |r: &Result<tokengate::Verified, tokengate::Error>| match r {
        Ok(_) => "accept".to_owned(),
        Err(e) => e.code().as_str().to_owned(),
    };
    assert_eq!(code(&first), code(&second), "cached verdict differs");
    let claims = first.ok().map(|v| v.claims.as_map().clone());
    (code(&second), claims)
}

#[test]
fn every_vector_gets_its_expected_verdict() {
    let cases = cases();
    assert!(cases.len() >= 200, "only {} vectors", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let expect = case.value["expect"].as_str().expect("expect");
        let (got, claims) = run(&case.value);
        if got != expect {
            failures.push(format!(
                "{}/{}: expected {expect}, got {got}",
                case.file, case.name
            ));
            continue;
        }
        if let (Some(want), Some(claims)) = (case.value.get("expect_claims"), claims) {
            for (k, v) in want.as_object().expect("expect_claims object") {
                if claims.get(k) != Some(v) {
                    failures.push(format!(
                        "{}/{}: claim {k} = {:?}, want {v}",
                        case.file,
                        case.name,
                        claims.get(k)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_token_level_error_code_has_a_vector() {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for case in cases() {
        *seen
            .entry(case.value["expect"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for code in ErrorCode::ALL {
        // Host-state codes depend on rate counters and JWKS fetches, not on the token; the
        // key-cache unit tests and the host tests cover them. `request_invalid` is about the
        // request around the token: tests/vectors/http expects it (tests/http.rs);
        // `policy_unavailable` is the policy feed's state (tests/feed.rs); the identity codes
        // are about the connection's certificate (tests/vectors/http/identity.json);
        // `signature_budget_exhausted` is the gate's count of checks this second
        // (tests/vectors/http/budget.json, tests/budget.rs).
        if matches!(
            code,
            ErrorCode::RateLimited
                | ErrorCode::JwksUnavailable
                | ErrorCode::RequestInvalid
                | ErrorCode::PolicyUnavailable
                | ErrorCode::IdentityMismatch
                | ErrorCode::IdentityMissing
                | ErrorCode::SignatureBudgetExhausted
        ) {
            continue;
        }
        assert!(seen.contains_key(code.as_str()), "no vector expects {code}");
    }
    for name in seen.keys() {
        assert!(
            name == "accept" || ErrorCode::from_name(name).is_some(),
            "unknown code {name} in vectors"
        );
    }
}

#[test]
fn the_one_mebibyte_token_is_refused_before_decoding() {
    let case = cases()
        .into_iter()
        .find(|c| {
            c.value["token"]
                .as_str()
                .is_some_and(|t| t.len() >= 1 << 20)
        })
        .expect("a 1 MiB vector");
    let policy = Policy::from_json(&case.value["policy"]).unwrap();
    let keys = KeySet::from_value(&case.value["jwks"], KeySetLimits::default()).unwrap();
    let mut verifier = Verifier::new(vec![Provider::with_fixed_keys(policy, keys)]).unwrap();
    let token = case.value["token"].as_str().unwrap();
    let err = verifier.verify(token, &Request::at(0)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenTooLarge);
}
