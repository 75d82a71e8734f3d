//! Every case of tests/vectors/http/*.json through `Gate::decide`: the status, code, challenge,
//! `Retry-After` and forwarded headers must be the vector's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use tokengate::peer::Peer;
use tokengate::{Clock, Gate, Outcome, RequestFacts};

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/http"
    ))
}

/// What a host answered, in the vectors' terms.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    code: Option<String>,
    www_authenticate: Option<String>,
    retry_after: Option<String>,
    forward: Option<BTreeMap<String, String>>,
}

fn expected(case: &Value) -> Answer {
    let e = &case["expect"];
    let s = |v: &Value| v.as_str().map(String::from);
    Answer {
        status: e["status"].as_u64().unwrap() as u16,
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

/// The case's `Authorization` values as bytes.
fn values(case: &Value) -> Vec<&[u8]> {
    case["request"]["authorization"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().as_bytes())
        .collect()
}

/// The case's client certificate facts (`request.peer`).
fn peer(case: &Value) -> Option<Peer> {
    let p = case["request"]["peer"].as_object()?;
    let list = |k: &str| -> Vec<String> {
        p.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    Some(Peer {
        uri_sans: list("uri_sans"),
        dns_sans: list("dns_sans"),
        subject: p.get("subject").and_then(Value::as_str).map(String::from),
        sha256: p
            .get("sha256")
            .and_then(Value::as_str)
            .map(|h| tokengate::peer::digest(h).unwrap()),
    })
}

/// The values of the request header `name` in `request.headers`.
fn header_values<'a>(case: &'a Value, name: Option<&str>) -> Vec<&'a [u8]> {
    let Some(name) = name else { return Vec::new() };
    case["request"]["headers"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
                .map(|h| h[1].as_str().unwrap().as_bytes())
                .collect()
        })
        .unwrap_or_default()
}

fn facts<'a>(
    case: &'a Value,
    values: &'a [&'a [u8]],
    peer: Option<&'a Peer>,
    client_cert: &'a [&'a [u8]],
    clock: Clock,
) -> RequestFacts<'a> {
    let req = &case["request"];
    RequestFacts {
        method: req["method"].as_str().unwrap(),
        target: req["target"].as_str().unwrap(),
        authorization: values,
        peer,
        client_cert,
        scopes: None,
        clock,
        audit: true,
    }
}

fn answer(gate: &mut Gate, case: &Value, clock: Clock) -> Answer {
    let values = values(case);
    let peer = peer(case);
    let client_cert = header_values(case, gate.certificate_header());
    match gate.decide(&facts(case, &values, peer.as_ref(), &client_cert, clock)) {
        Outcome::Allow(a) => {
            assert!(a.would_deny.is_none());
            Answer {
                status: 200,
                code: None,
                www_authenticate: None,
                retry_after: None,
                forward: Some(a.forward.into_iter().collect()),
            }
        }
        Outcome::Deny(d) | Outcome::Wait(d) => {
            let r = d.response;
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["error"], r.code.as_str());
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.header("cache-control"), Some("no-store"));
            Answer {
                status: r.status,
                code: Some(r.code.as_str().to_owned()),
                www_authenticate: r.header("www-authenticate").map(String::from),
                retry_after: r.header("retry-after").map(String::from),
                forward: None,
            }
        }
        Outcome::ReadClock => panic!("an exact clock never needs reading again"),
    }
}

/// The requests a stateful case (`before`) sends to the same gate first; their answers are not
/// the case's business.
fn before(gate: &mut Gate, case: &Value) {
    for step in case["before"].as_array().into_iter().flatten() {
        answer(gate, step, Clock::At(step["now"].as_u64().unwrap()));
    }
}

fn cases() -> Vec<(String, Value, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        for case in doc["cases"].as_array().unwrap() {
            let config = doc["configs"][case["config"].as_str().unwrap()].clone();
            let name = format!("{stem}/{}", case["name"].as_str().unwrap());
            out.push((name, config, case.clone()));
        }
    }
    out
}

#[test]
fn every_http_vector_gets_its_answer_from_the_gate() {
    let all = cases();
    assert!(all.len() >= 250, "only {} HTTP vectors", all.len());
    let mut failures = Vec::new();
    for (name, config, case) in &all {
        let now = case["now"].as_u64().unwrap();
        let mut gate = Gate::from_json(config.to_string().as_bytes(), now, 1)
            .unwrap_or_else(|e| panic!("{name}: config refused: {e}"));
        before(&mut gate, case);
        let got = answer(&mut gate, case, Clock::At(now));
        let want = expected(case);
        if got != want {
            failures.push(format!("{name}:\n  want {want:?}\n  got  {got:?}"));
            continue;
        }
        // The same request again is a verified-token cache hit: same answer.
        let again = answer(&mut gate, case, Clock::At(now));
        if again != want {
            failures.push(format!(
                "{name} (cache hit):\n  want {want:?}\n  got  {again:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} HTTP vectors differ:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn a_clock_window_never_changes_an_answer_it_gives() {
    // Judged with an uncertain clock [now - k, now] or [now, now + k], the gate either gives
    // the exact-second answer or asks for the exact time: it never guesses.
    let all = cases();
    let mut asked = 0;
    for (name, config, case) in all.iter().filter(|(n, ..)| n.starts_with("time/")) {
        let now = case["now"].as_u64().unwrap();
        let want = expected(case);
        for (earliest, latest) in [(now, now + 1), (now.saturating_sub(1), now), (now, now + 5)] {
            if !(earliest..=latest).contains(&now) {
                continue;
            }
            let mut gate = Gate::from_json(config.to_string().as_bytes(), now, 1).unwrap();
            before(&mut gate, case);
            let clock = Clock::Within { earliest, latest };
            let values = values(case);
            if let Outcome::ReadClock = gate.decide(&facts(case, &values, None, &[], clock)) {
                asked += 1;
                continue;
            }
            // No boundary inside the window: the answer holds for every second in it.
            let got = answer(&mut gate, case, clock);
            assert_eq!(got, want, "{name} with window [{earliest}, {latest}]");
        }
    }
    assert!(asked > 0, "no time vector sits at a boundary");
}
