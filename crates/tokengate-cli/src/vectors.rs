//! `tokengate check --vectors`: replay HTTP vector files (`tests/vectors/http/README.md`), each
//! case through a fresh gate, and compare the answer with the case's `expect`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Map, Value};
use tokengate::peer::Peer;
use tokengate::{Clock, Config, ConfigError, ErrorCode, Gate, RequestFacts};

use crate::check::{answer, read_file, supply_keys, Answer, Fit, KeyFile, EXIT_DENIED};
use crate::{print_json, print_text, warn, Failure};

/// The `expect` members compared, in the order failures list them.
const FIELDS: [&str; 5] = [
    "status",
    "code",
    "www_authenticate",
    "retry_after",
    "forward",
];

/// Replay every case of the file, or of every `*.json` in the directory (sorted by name).
pub fn run(path: &Path, keys: &[KeyFile], json_out: bool) -> Result<ExitCode, Failure> {
    let files = vector_files(path)?;
    let mut passed = 0usize;
    let mut failures: Vec<Value> = Vec::new();
    let mut used = vec![false; keys.len()];
    for file in &files {
        replay_file(file, keys, &mut used, &mut passed, &mut failures)?;
    }
    for (key, used) in keys.iter().zip(used) {
        if !used {
            warn(&format!(
                "--jwks {}: no configuration of the vectors has a remote provider it fits; unused",
                key.path.display()
            ));
        }
    }
    let failed = failures.len();
    if passed + failed == 0 {
        return Err(Failure::Config(format!(
            "{}: no vector cases to replay",
            path.display()
        )));
    }
    if json_out {
        print_json(
            &json!({"passed": passed, "failed": failed, "failures": failures}),
            false,
        )?;
    } else {
        let mut out = String::new();
        for f in &failures {
            out.push_str(&format!(
                "FAIL {}: {}\n",
                f["case"].as_str().unwrap_or("?"),
                f["differences"].as_str().unwrap_or("?")
            ));
        }
        out.push_str(&format!("{passed} passed, {failed} failed\n"));
        print_text(&out)?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    })
}

fn vector_files(path: &Path) -> Result<Vec<PathBuf>, Failure> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::Config(format!("cannot read vectors {}: {e}", path.display())))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| Failure::Config(format!("cannot read directory {}: {e}", path.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            Failure::Config(format!("cannot read directory {}: {e}", path.display()))
        })?;
        let p = entry.path();
        if p.extension().is_some_and(|x| x == "json") && p.is_file() {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(Failure::Config(format!(
            "no *.json vector files in {}",
            path.display()
        )));
    }
    files.sort();
    Ok(files)
}

fn replay_file(
    file: &Path,
    keys: &[KeyFile],
    used: &mut [bool],
    passed: &mut usize,
    failures: &mut Vec<Value>,
) -> Result<(), Failure> {
    let label = file.display().to_string();
    let stem = file
        .file_stem()
        .map_or_else(|| label.clone(), |s| s.to_string_lossy().into_owned());
    let bytes = read_file(file, "vector file")?;
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::Config(format!("vector file {label} is not JSON: {e}")))?;
    let bad = |what: String| Failure::Config(format!("vector file {label}: {what}"));
    let configs = doc
        .get("configs")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("\"configs\" must be an object of named configurations".into()))?;
    // Each configuration is parsed once; a mistake in one is a mistake in the file.
    let parsed: BTreeMap<&str, Config> = configs
        .iter()
        .map(|(name, value)| {
            Config::from_value(&crate::edge::to_core(value))
                .map(|c| (name.as_str(), c))
                .map_err(|e: ConfigError| bad(format!("configs.{name}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let cases = doc
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("\"cases\" must be an array".into()))?;
    for (i, case) in cases.iter().enumerate() {
        let name = case
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("cases[{i}]"), String::from);
        let at = |what: &str| bad(format!("cases[{i}] ({name}): {what}"));
        let config_name = case
            .get("config")
            .and_then(Value::as_str)
            .ok_or_else(|| at("\"config\" must name one of \"configs\""))?;
        let config = parsed
            .get(config_name)
            .ok_or_else(|| at(&format!("no configuration named {config_name:?}")))?;
        let now = case
            .get("now")
            .and_then(Value::as_u64)
            .ok_or_else(|| at("\"now\" must be a whole number of seconds"))?;
        let request = Request::parse(case.get("request")).map_err(|why| at(&why))?;
        let expect = case
            .get("expect")
            .and_then(Value::as_object)
            .filter(|e| e.get("status").is_some_and(Value::is_u64))
            .ok_or_else(|| at("\"expect\" must be an object with a numeric \"status\""))?;
        let mut gate = Gate::new(config.clone(), now, 1)
            .map_err(|e| bad(format!("configs.{config_name}: {e}")))?;
        let fed = supply_keys(&mut gate, keys, now, Fit::Skip)
            .map_err(|why| bad(format!("configs.{config_name}: {why}")))?;
        for (k, _) in fed {
            if let Some(u) = used.get_mut(k) {
                *u = true;
            }
        }
        // A stateful case (`before`) sends these to the same gate first.
        for (j, step) in case
            .get("before")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at_step = |what: &str| at(&format!("before[{j}]: {what}"));
            let step_now = step
                .get("now")
                .and_then(Value::as_u64)
                .ok_or_else(|| at_step("\"now\" must be a whole number of seconds"))?;
            let step_request = Request::parse(step.get("request")).map_err(|why| at_step(&why))?;
            send(&mut gate, &step_request, step_now)?;
        }
        let got = in_vector_terms(&send(&mut gate, &request, now)?);
        let differences = differences(expect, &got);
        if differences.is_empty() {
            *passed += 1;
        } else {
            failures.push(json!({
                "case": format!("{stem}/{name}"),
                "differences": differences.join("; "),
                "want": Value::Object(expect.clone()),
                "got": got,
            }));
        }
    }
    Ok(())
}

/// One request of a case through `gate` at `now`.
fn send(gate: &mut Gate, request: &Request, now: u64) -> Result<Answer, Failure> {
    let values: Vec<&[u8]> = request.authorization.iter().map(|v| v.as_bytes()).collect();
    let cert_header = gate.certificate_header();
    let client_cert: Vec<&[u8]> = request
        .headers
        .iter()
        .filter(|(n, _)| cert_header.is_some_and(|h| h.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v.as_bytes())
        .collect();
    let peer = request
        .peer
        .as_ref()
        .filter(|_| gate.needs_connection_certificate());
    let facts = RequestFacts {
        method: &request.method,
        target: &request.target,
        authorization: &values,
        peer,
        client_cert: &client_cert,
        scopes: None,
        clock: Clock::At(now),
        audit: false,
    };
    answer(gate, &facts)
}

/// The request of a case.
struct Request {
    method: String,
    target: String,
    authorization: Vec<String>,
    /// `request.peer`: the connection's client certificate.
    peer: Option<Peer>,
    /// `request.headers`: other header fields, in order.
    headers: Vec<(String, String)>,
}

impl Request {
    fn parse(value: Option<&Value>) -> Result<Request, String> {
        let r = value
            .and_then(Value::as_object)
            .ok_or("\"request\" must be an object")?;
        let string = |key: &str| {
            r.get(key)
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| format!("request.{key} must be a string"))
        };
        let authorization = match r.get("authorization") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .ok_or("request.authorization must be an array of strings")?,
            Some(_) => return Err("request.authorization must be an array of strings".into()),
        };
        let peer = match r.get("peer") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                Peer::from_value(&crate::edge::to_core(v))
                    .map_err(|why| format!("request.peer: {why}"))?,
            ),
        };
        let headers = match r.get("headers") {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|pair| match pair.as_array().map(Vec::as_slice) {
                    Some([Value::String(n), Value::String(v)]) => Some((n.clone(), v.clone())),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or("request.headers must be an array of [name, value] strings")?,
            Some(_) => {
                return Err("request.headers must be an array of [name, value] strings".into())
            }
        };
        Ok(Request {
            method: string("method")?,
            target: string("target")?,
            authorization,
            peer,
            headers,
        })
    }
}

/// The answer as an `expect` object.
fn in_vector_terms(a: &Answer) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), a.status.into());
    m.insert("code".into(), json!(a.code.map(ErrorCode::as_str)));
    m.insert(
        "www_authenticate".into(),
        json!(a.header("www-authenticate")),
    );
    m.insert("retry_after".into(), json!(a.header("retry-after")));
    let forward = a.forward.as_ref().map_or(Value::Null, |list| {
        Value::Object(
            list.iter()
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect(),
        )
    });
    m.insert("forward".into(), forward);
    Value::Object(m)
}

/// `field: want W, got G` for every compared member the expectation states. A member left out
/// of `expect` is not compared (`null` is: it means "absent").
fn differences(expect: &Map<String, Value>, got: &Value) -> Vec<String> {
    FIELDS
        .iter()
        .filter_map(|field| {
            let want = expect.get(*field)?;
            let have = got.get(*field).unwrap_or(&Value::Null);
            (want != have).then(|| format!("{field}: want {want}, got {have}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stated_members_are_compared() {
        let got = json!({"status": 401, "code": "token_missing", "www_authenticate": "Bearer realm=\"x\"",
                         "retry_after": null, "forward": null});
        let expect = json!({"status": 401, "code": "token_missing"});
        assert!(differences(expect.as_object().unwrap(), &got).is_empty());
        let expect = json!({"status": 401, "www_authenticate": null});
        assert_eq!(
            differences(expect.as_object().unwrap(), &got),
            ["www_authenticate: want null, got \"Bearer realm=\\\"x\\\"\""]
        );
    }
}
