//! Runs the built `tokengate` binary: the conformance vectors through `verify`, token input
//! rules, exit codes and the JSON shapes of every command.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use tokengate::{KeySet, KeySetLimits};

const BIN: &str = env!("CARGO_BIN_EXE_tokengate");

const POOL: &str = "eu-west-1_TEST0pool";
const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST0pool";
const CLIENT: &str = "3q9f1k7c2m8v4n6b0x5z1l2h7d";

// ---------------------------------------------------------------------------------------------
// Harness

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {:?}", self.stdout))
    }
}

fn run(args: &[&str]) -> Run {
    run_with_stdin(args, None)
}

fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tokengate");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let bytes = bytes.to_vec();
        // The CLI stops reading once past its limit; a broken pipe here is expected then.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().expect("wait for tokengate");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// A fresh directory under cargo's per-target scratch space.
fn scratch(label: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write scratch file");
    path.to_str().expect("UTF-8 path").to_string()
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn group(name: &str) -> Vec<Value> {
    let path = vectors_dir().join(format!("{name}.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("vector file is JSON");
    doc["cases"].as_array().expect("cases array").clone()
}

fn case(group_name: &str, name: &str) -> Value {
    group(group_name)
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("vector {group_name}/{name} not found"))
}

/// The plain Cognito access token every input test starts from: its token, a JWKS file, and
/// the `now` that makes it valid.
struct Accepted {
    token: String,
    jwks: String,
    now: String,
    dir: PathBuf,
}

fn accepted() -> Accepted {
    let c = case("accept", "cognito_rs256_access_token_is_accepted");
    assert_eq!(c["expect"], "accept");
    let dir = scratch("accepted");
    Accepted {
        token: c["token"].as_str().expect("token").to_string(),
        jwks: write(&dir, "jwks.json", c["jwks"].to_string()),
        now: c["now"].to_string(),
        dir,
    }
}

impl Accepted {
    /// `verify --jwks FILE --now NOW`, the whitespace-separated `flags`, then `tail` (token,
    /// paths) as they are.
    fn bare(&self, flags: &str, tail: &[&str]) -> Run {
        let mut args = vec!["verify", "--jwks", &self.jwks, "--now", &self.now];
        args.extend(flags.split_whitespace());
        args.extend_from_slice(tail);
        run(&args)
    }

    /// `verify` with the flags that accept this token, then `extra`.
    fn verify(&self, extra: &[&str]) -> Run {
        self.verify_with_stdin(extra, None)
    }

    fn verify_with_stdin(&self, extra: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut args = vec![
            "verify",
            "--jwks",
            &self.jwks,
            "--issuer",
            ISSUER,
            "--client-id",
            CLIENT,
            "--now",
            &self.now,
        ];
        args.extend_from_slice(extra);
        run_with_stdin(&args, stdin)
    }
}

fn assert_valid(r: &Run) {
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["valid"], true);
    assert!(v["claims"].is_object());
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{v}");
}

fn assert_invalid(r: &Run, code: &str) {
    assert_eq!(r.code, 1, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["error"], code, "{v}");
    assert_eq!(v["status"], expected_status(code), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(4), "{v}");
}

/// Usage and configuration errors: status 2, nothing on stdout, a message on stderr.
fn assert_usage(r: &Run, stderr_has: &str) {
    assert_eq!(r.code, 2, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "stdout: {:?}", r.stdout);
    assert!(
        r.stderr.contains(stderr_has),
        "stderr lacks {stderr_has:?}: {:?}",
        r.stderr
    );
}

/// The HTTP status table of tests/vectors/README.md and the core's docs.
fn expected_status(code: &str) -> u64 {
    match code {
        "scope_insufficient" => 403,
        "rate_limited" => 429,
        "jwks_unavailable" => 503,
        _ => 401,
    }
}

/// The 1024-bit RSA key of the vectors, alone in a set: it parses but never verifies.
fn weak_only_jwks() -> Value {
    let c = case("keys", "rsa_1024_bit_modulus_is_unusable");
    let weakest = c["jwks"]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .min_by_key(|k| k["n"].as_str().map_or(usize::MAX, str::len))
        .expect("a key")
        .clone();
    assert!(
        weakest["n"].as_str().is_some_and(|n| n.len() < 200),
        "1024-bit modulus"
    );
    json!({ "keys": [weakest] })
}

// ---------------------------------------------------------------------------------------------
// Conformance vectors through `verify --policy`

/// Replay every case of a vector group with `verify --jwks FILE --policy FILE --token-file`.
/// A case whose JWKS holds no key usable under its policy must be a configuration error
/// (status 2 naming the JWKS file): `verify` refuses such a file before looking at any token.
fn replay_group(name: &str) {
    let dir = scratch(name);
    let mut failures = Vec::new();
    for (i, c) in group(name).iter().enumerate() {
        let case_name = c["name"].as_str().unwrap_or("?");
        let jwks = write(&dir, &format!("{i}.jwks.json"), c["jwks"].to_string());
        let policy = write(&dir, &format!("{i}.policy.json"), c["policy"].to_string());
        let token = write(
            &dir,
            &format!("{i}.token"),
            c["token"].as_str().expect("token"),
        );
        let now = c["now"].to_string();
        let mut args = vec![
            "verify",
            "--jwks",
            &jwks,
            "--policy",
            &policy,
            "--now",
            &now,
            "--token-file",
            &token,
        ];
        if let Some(tp) = c["context"]["cert_thumbprint"].as_str() {
            args.extend_from_slice(&["--cert-thumbprint", tp]);
        }
        let r = run(&args);
        let expect = c["expect"].as_str().expect("expect");
        if jwks_refused(c) {
            if r.code != 2
                || !r.stderr.contains(&jwks)
                || !r.stdout.is_empty()
                || expect == "accept"
            {
                failures.push(format!(
                    "{case_name}: JWKS has no usable key, want status 2 naming the file; got {} {:?} {:?}",
                    r.code, r.stdout, r.stderr
                ));
            }
            continue;
        }
        let got: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        let ok = if expect == "accept" {
            r.code == 0
                && got["valid"] == true
                && c["expect_claims"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .all(|(k, v)| got["claims"][k] == *v)
        } else {
            r.code == 1
                && got["valid"] == false
                && got["error"] == expect
                && got["status"] == expected_status(expect)
        };
        if !ok {
            failures.push(format!(
                "{case_name}: want {expect}; got status {} {:?} {:?}",
                r.code, r.stdout, r.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// True when the case's JWKS has no key its policy could use (or is over the size limit).
fn jwks_refused(c: &Value) -> bool {
    let min_rsa_bits = c["policy"]["min_rsa_bits"].as_u64().unwrap_or(2048) as usize;
    let limits = KeySetLimits::default();
    c["jwks"].to_string().len() > limits.max_bytes
        || tokengate::json::parse(c["jwks"].to_string().as_bytes())
            .ok()
            .and_then(|jwks| KeySet::from_value(&jwks, limits).ok())
            .is_none_or(|k| k.usable_count(min_rsa_bits) == 0)
}

macro_rules! vector_groups {
    ($($test:ident => $group:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                replay_group($group);
            }
        )*
    };
}

vector_groups! {
    vectors_accept_replay_through_policy_file => "accept",
    vectors_attacks_replay_through_policy_file => "attacks",
    vectors_binding_replay_through_policy_file => "binding",
    vectors_claims_replay_through_policy_file => "claims",
    vectors_header_replay_through_policy_file => "header",
    vectors_keys_replay_through_policy_file => "keys",
    vectors_order_replay_through_policy_file => "order",
    vectors_revocation_replay_through_policy_file => "revocation",
    vectors_scopes_replay_through_policy_file => "scopes",
    vectors_signature_replay_through_policy_file => "signature",
    vectors_size_replay_through_policy_file => "size",
    vectors_syntax_replay_through_policy_file => "syntax",
    vectors_time_replay_through_policy_file => "time",
}

#[test]
fn every_vector_file_is_replayed() {
    let mut files: Vec<String> = std::fs::read_dir(vectors_dir())
        .expect("read tests/vectors")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    files.sort();
    let replayed = [
        "accept",
        "attacks",
        "binding",
        "claims",
        "header",
        "keys",
        "order",
        "revocation",
        "scopes",
        "signature",
        "size",
        "syntax",
        "time",
    ];
    assert_eq!(files, replayed, "add new vector groups to vector_groups!");
}

/// Cases whose policy the flags can say (issuers, algorithms, token_use, client_ids,
/// scopes.all, leeway_s; no request context) give the same verdict through the flags, with the
/// token as a positional argument.
#[test]
fn vectors_expressible_as_flags_give_the_same_verdict() {
    let dir = scratch("flags");
    let mut checked = 0;
    let mut failures = Vec::new();
    for name in [
        "accept",
        "attacks",
        "claims",
        "header",
        "scopes",
        "signature",
        "time",
    ] {
        for (i, c) in group(name).iter().enumerate() {
            let Some(args) = flag_args(c) else { continue };
            let token = c["token"].as_str().expect("token");
            if jwks_refused(c) || token.len() > 64 * 1024 || token.starts_with('-') {
                continue;
            }
            let jwks = write(
                &dir,
                &format!("{name}-{i}.jwks.json"),
                c["jwks"].to_string(),
            );
            let now = c["now"].to_string();
            let mut argv = vec![
                "verify".to_string(),
                "--jwks".into(),
                jwks,
                "--now".into(),
                now,
            ];
            argv.extend(args);
            argv.push(token.to_string());
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let r = run(&argv);
            let expect = c["expect"].as_str().expect("expect");
            let got: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
            let ok = match expect {
                "accept" => r.code == 0 && got["valid"] == true,
                code => r.code == 1 && got["error"] == code,
            };
            if !ok {
                failures.push(format!(
                    "{name}/{}: want {expect}; got {} {:?} {:?}",
                    c["name"], r.code, r.stdout, r.stderr
                ));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked >= 100,
        "only {checked} cases were expressible as flags"
    );
}

fn flag_args(c: &Value) -> Option<Vec<String>> {
    let policy = c["policy"].as_object()?;
    if c.get("context").is_some() {
        return None;
    }
    let mut args = Vec::new();
    for (field, value) in policy {
        match (field.as_str(), value) {
            ("issuers", Value::Array(list)) => {
                for iss in list {
                    args.extend(["--issuer".to_string(), iss.as_str()?.to_string()]);
                }
            }
            ("algorithms", Value::Array(list)) => {
                for alg in list {
                    args.extend(["--alg".to_string(), alg.as_str()?.to_string()]);
                }
            }
            ("token_use", Value::Null) => args.extend(["--token-use".into(), "none".into()]),
            ("token_use", Value::String(u)) => args.extend(["--token-use".into(), u.clone()]),
            ("client_ids", Value::Null) => args.push("--any-client".into()),
            ("client_ids", Value::Array(list)) if !list.is_empty() => {
                for id in list {
                    args.extend(["--client-id".to_string(), id.as_str()?.to_string()]);
                }
            }
            ("scopes", Value::Null) => {}
            ("scopes", Value::Object(o)) if o.len() == 1 && o.contains_key("all") => {
                for s in o["all"].as_array()? {
                    args.extend(["--scope".to_string(), s.as_str()?.to_string()]);
                }
            }
            ("leeway_s", n) => args.extend(["--leeway".to_string(), n.as_u64()?.to_string()]),
            _ => return None,
        }
    }
    // Values clap would read as flags, or empty ones, need the policy file instead.
    if args.iter().any(|a| a.is_empty()) {
        return None;
    }
    Some(args)
}

// ---------------------------------------------------------------------------------------------
// Where the token comes from

#[test]
fn token_file_is_read_verbatim_and_accepted() {
    let a = accepted();
    let file = write(&a.dir, "token", &a.token);
    assert_valid(&a.verify(&["--token-file", &file]));
}

#[test]
fn token_file_with_trailing_newline_is_malformed() {
    let a = accepted();
    let file = write(&a.dir, "token-nl", format!("{}\n", a.token));
    let r = a.verify(&["--token-file", &file]);
    assert_invalid(&r, "token_malformed");
    assert!(
        r.stderr.contains("verbatim"),
        "hint expected: {:?}",
        r.stderr
    );
}

#[test]
fn token_file_with_trailing_crlf_or_leading_space_is_malformed() {
    let a = accepted();
    for (name, text) in [
        ("crlf", format!("{}\r\n", a.token)),
        ("space", format!(" {}", a.token)),
    ] {
        let file = write(&a.dir, name, text);
        assert_invalid(&a.verify(&["--token-file", &file]), "token_malformed");
    }
}

#[test]
fn positional_token_drops_one_trailing_newline() {
    let a = accepted();
    assert_valid(&a.verify(&[&a.token]));
    assert_valid(&a.verify(&[&format!("{}\n", a.token)]));
    assert_valid(&a.verify(&[&format!("{}\r\n", a.token)]));
}

#[test]
fn positional_token_drops_only_one_newline_and_nothing_else() {
    let a = accepted();
    for text in ["{}\n\n", "{} ", " {}", "{}\r", "\n{}"] {
        let token = text.replace("{}", &a.token);
        assert_invalid(&a.verify(&[&token]), "token_malformed");
    }
}

#[test]
fn stdin_dash_drops_one_trailing_newline() {
    let a = accepted();
    for text in ["{}", "{}\n", "{}\r\n"] {
        let input = text.replace("{}", &a.token);
        assert_valid(&a.verify_with_stdin(&["-"], Some(input.as_bytes())));
    }
    let input = format!("{}\n\n", a.token);
    assert_invalid(
        &a.verify_with_stdin(&["-"], Some(input.as_bytes())),
        "token_malformed",
    );
}

#[test]
fn empty_token_is_token_missing() {
    let a = accepted();
    assert_invalid(&a.verify(&[""]), "token_missing");
    assert_invalid(&a.verify_with_stdin(&["-"], Some(b"\n")), "token_missing");
    let file = write(&a.dir, "empty", "");
    assert_invalid(&a.verify(&["--token-file", &file]), "token_missing");
}

#[test]
fn one_mebibyte_on_stdin_is_too_large_without_being_read_whole() {
    let a = accepted();
    let big = vec![b'a'; 1 << 20];
    assert_invalid(&a.verify_with_stdin(&["-"], Some(&big)), "token_too_large");
}

#[test]
fn non_utf8_token_file_gets_a_verdict_not_an_error() {
    let a = accepted();
    let mut bytes = a.token.clone().into_bytes();
    bytes.insert(5, 0xff);
    let file = write(&a.dir, "binary", &bytes);
    assert_invalid(&a.verify(&["--token-file", &file]), "token_malformed");
}

// ---------------------------------------------------------------------------------------------
// Verdicts and policy flags

#[test]
fn valid_token_prints_claims_and_exits_zero() {
    let c = case("accept", "cognito_rs256_access_token_is_accepted");
    let a = accepted();
    let r = a.verify(&[&a.token]);
    assert_valid(&r);
    assert_eq!(r.json()["claims"], c["expect_claims"]);
    assert_eq!(r.stdout.lines().count(), 1, "one JSON object on one line");
}

#[test]
fn scope_flags_are_all_required_and_insufficient_is_403() {
    let a = accepted();
    let both = format!("--issuer {ISSUER} --client-id {CLIENT} --scope orders/read --scope");
    assert_valid(&a.bare(&format!("{both} orders/write"), &[&a.token]));
    assert_invalid(
        &a.bare(&format!("{both} orders/admin"), &[&a.token]),
        "scope_insufficient",
    );
}

#[test]
fn wrong_client_id_token_use_and_alg_are_refused() {
    let a = accepted();
    let t = &[a.token.as_str()];
    let iss = format!("--issuer {ISSUER}");
    let ok = format!("{iss} --client-id {CLIENT}");
    assert_invalid(
        &a.bare(&format!("{iss} --client-id other"), t),
        "client_not_allowed",
    );
    assert_invalid(
        &a.bare(&format!("{ok} --token-use id"), t),
        "token_use_mismatch",
    );
    assert_valid(&a.bare(&format!("{ok} --token-use none"), t));
    assert_valid(&a.bare(&format!("{ok} --token-use access"), t));
    assert_invalid(&a.bare(&format!("{ok} --alg ES256"), t), "alg_not_allowed");
    assert_valid(&a.bare(&format!("{ok} --alg ES256 --alg RS256"), t));
}

#[test]
fn any_client_skips_the_allow_list_loudly() {
    let a = accepted();
    let r = a.bare(&format!("--issuer {ISSUER} --any-client"), &[&a.token]);
    assert_valid(&r);
    assert!(
        r.stderr.contains("--any-client"),
        "warning expected: {:?}",
        r.stderr
    );
}

#[test]
fn user_pool_id_accepts_both_cognito_issuer_forms() {
    let dir = scratch("pool");
    for name in [
        "cognito_rs256_access_token_is_accepted",
        "cognito_alternate_issuer_form_is_accepted",
    ] {
        let c = case("accept", name);
        let jwks = write(&dir, &format!("{name}.json"), c["jwks"].to_string());
        let now = c["now"].to_string();
        let token = c["token"].as_str().expect("token");
        let flags = [
            "--user-pool-id",
            POOL,
            "--client-id",
            CLIENT,
            "--now",
            &now,
            token,
        ];
        assert_valid(&run(&[&["verify", "--jwks", &jwks][..], &flags].concat()));
    }
    let a = accepted();
    let r = a.bare(
        &format!("--user-pool-id eu-west-1_Other --client-id {CLIENT}"),
        &[&a.token],
    );
    assert_invalid(&r, "issuer_mismatch");
}

#[test]
fn now_is_taken_from_the_system_clock_by_default() {
    // The vector token expired on 2026-01-01T13:00Z; any clock after that calls it expired.
    let a = accepted();
    let args = [
        "verify",
        "--jwks",
        &a.jwks,
        "--issuer",
        ISSUER,
        "--client-id",
        CLIENT,
        &a.token,
    ];
    assert_invalid(&run(&args), "token_expired");
}

#[test]
fn leeway_flag_extends_exp() {
    let c = case("accept", "cognito_rs256_access_token_is_accepted");
    let exp = c["expect_claims"]["exp"].as_u64().expect("exp").to_string();
    let a = Accepted {
        now: exp,
        ..accepted()
    };
    let flags = format!("--issuer {ISSUER} --client-id {CLIENT}");
    assert_invalid(&a.bare(&flags, &[&a.token]), "token_expired");
    assert_valid(&a.bare(&format!("{flags} --leeway 1"), &[&a.token]));
}

// ---------------------------------------------------------------------------------------------
// Usage and configuration errors: status 2

#[test]
fn client_id_is_required_unless_any_client() {
    let a = accepted();
    let r = a.bare(&format!("--issuer {ISSUER}"), &[&a.token]);
    assert_usage(&r, "--client-id");
    assert!(r.stderr.contains("--any-client"), "{:?}", r.stderr);
}

#[test]
fn conflicting_or_missing_arguments_are_usage_errors() {
    let a = accepted();
    let file = write(&a.dir, "token", &a.token);
    let ok = format!("--issuer {ISSUER} --client-id {CLIENT}");
    // Each case: flags, whether the token follows them, and what stderr must mention.
    let cases = [
        (ok.clone(), false, "<TOKEN|--token-file <PATH>>"),
        (format!("{ok} --token-file {file}"), true, "cannot be used"),
        (format!("{ok} --any-client"), true, "--any-client"),
        (format!("--client-id {CLIENT}"), true, "--issuer"),
        (format!("{ok} --alg HS256"), true, "HS256"),
        (format!("{ok} --alg rs256"), true, "rs256"),
        (format!("{ok} --token-use refresh"), true, "refresh"),
        (format!("{ok} --leeway -1"), true, "'-1'"),
        (format!("{ok} --leeway 1.5"), true, "--leeway"),
        (
            format!("--policy {} --issuer {ISSUER}", a.jwks),
            true,
            "--policy",
        ),
    ];
    for (flags, with_token, stderr_has) in cases {
        let tail: &[&str] = if with_token { &[&a.token] } else { &[] };
        assert_usage(&a.bare(&flags, tail), stderr_has);
    }
    let yesterday = Accepted {
        now: "yesterday".into(),
        ..accepted()
    };
    assert_usage(&yesterday.verify(&[&a.token]), "yesterday");
    let others: [&[&str]; 4] = [
        &[
            "verify",
            "--issuer",
            ISSUER,
            "--client-id",
            CLIENT,
            &a.token,
        ],
        &["decode"],
        &["frobnicate"],
        &[],
    ];
    for (args, stderr_has) in others
        .into_iter()
        .zip(["--jwks", "<TOKEN", "frobnicate", "Usage"])
    {
        assert_usage(&run(args), stderr_has);
    }
}

#[test]
fn invalid_policy_values_name_the_flag() {
    let a = accepted();
    let t = &[a.token.as_str()];
    let ok = format!("--issuer {ISSUER} --client-id {CLIENT}");
    assert_usage(&a.bare(&format!("{ok} --leeway 3601"), t), "--leeway");
    assert_usage(
        &a.bare(&format!("{ok} --alg RS256"), &["--client-id", "", t[0]]),
        "--client-id",
    );
    assert_usage(
        &a.bare(&format!("--client-id {CLIENT}"), &["--issuer", "", t[0]]),
        "--issuer",
    );
    assert_usage(&a.bare(&ok, &["--scope", "a b", t[0]]), "--scope");
    let r = a.bare(
        &format!("--user-pool-id not-a-pool --client-id {CLIENT}"),
        t,
    );
    assert_usage(&r, "--user-pool-id");
}

#[test]
fn bad_jwks_files_are_configuration_errors_naming_the_file() {
    let a = accepted();
    let too_big = format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(70_000));
    let cases = [
        ("not-json.json", "{\"keys\": [".to_string()),
        ("no-keys.json", "{\"kty\":\"RSA\"}".to_string()),
        ("array.json", "[]".to_string()),
        ("empty-set.json", "{\"keys\":[]}".to_string()),
        ("weak-only.json", weak_only_jwks().to_string()),
        ("too-big.json", too_big),
    ];
    let mut paths: Vec<String> = cases
        .into_iter()
        .map(|(n, body)| write(&a.dir, n, body))
        .collect();
    paths.push(
        a.dir
            .join("missing.json")
            .to_str()
            .expect("path")
            .to_string(),
    );
    for path in paths {
        let args = [
            "verify",
            "--jwks",
            &path,
            "--issuer",
            ISSUER,
            "--client-id",
            CLIENT,
            &a.token,
        ];
        assert_usage(&run(&args), &path);
    }
}

#[test]
fn jwks_url_is_not_fetched_yet() {
    let a = accepted();
    let url = "https://example.invalid/.well-known/jwks.json";
    let args = [
        "verify",
        "--jwks",
        url,
        "--issuer",
        ISSUER,
        "--client-id",
        CLIENT,
        &a.token,
    ];
    assert_usage(
        &run(&args),
        "fetching a JWKS URL is not supported yet; download it and pass the file",
    );
    let r = run(&[
        "verify",
        "--user-pool-id",
        POOL,
        "--client-id",
        CLIENT,
        &a.token,
    ]);
    assert_usage(&r, "fetching a JWKS URL is not supported yet");
    let pool_url = format!("{ISSUER}/.well-known/jwks.json");
    assert!(
        r.stderr.contains(&pool_url),
        "the pool's JWKS URL is named: {:?}",
        r.stderr
    );
}

#[test]
fn unreadable_token_file_and_bad_policy_file_are_configuration_errors() {
    let a = accepted();
    let missing = a.dir.join("no-such-token");
    let missing = missing.to_str().expect("path");
    assert_usage(&a.verify(&["--token-file", missing]), missing);
    let no_client = format!("{{\"issuers\":[\"{ISSUER}\"]}}");
    let unknown = format!("{{\"issuers\":[\"{ISSUER}\"],\"client_ids\":null,\"bogus\":1}}");
    for (name, body, stderr_has) in [
        ("policy-not-json.json", "{", "not JSON"),
        ("policy-no-client.json", &*no_client, "client_ids"),
        ("policy-unknown.json", &*unknown, "bogus"),
    ] {
        let policy = write(&a.dir, name, body);
        assert_usage(&a.bare("", &["--policy", &policy, &a.token]), stderr_has);
    }
}

// ---------------------------------------------------------------------------------------------
// decode

#[test]
fn decode_prints_header_and_claims_marked_unverified() {
    let c = case("accept", "cognito_rs256_access_token_is_accepted");
    let r = run(&["decode", c["token"].as_str().expect("token")]);
    assert_eq!(r.code, 0, "{:?}", r.stderr);
    assert!(r.stderr.contains("UNVERIFIED"), "{:?}", r.stderr);
    let v = r.json();
    assert_eq!(v["unverified"], true);
    assert_eq!(v["claims"], c["expect_claims"]);
    assert_eq!(v["header"]["alg"], "RS256");
    assert_eq!(v["header"]["kid"], c["jwks"]["keys"][0]["kid"]);
    assert_eq!(v.as_object().map(|o| o.len()), Some(3));
}

#[test]
fn decode_shows_tokens_that_would_fail_verification() {
    let c = case("signature", "tampered_payload_scope_is_invalid");
    let r = run(&["decode", c["token"].as_str().expect("token")]);
    assert_eq!(r.code, 0, "{:?}", r.stderr);
    assert_eq!(r.json()["unverified"], true);
}

#[test]
fn decode_reads_stdin_and_token_file_like_verify() {
    let a = accepted();
    let r = run_with_stdin(&["decode", "-"], Some(format!("{}\n", a.token).as_bytes()));
    assert_eq!(r.code, 0, "{:?}", r.stderr);
    let verbatim = write(&a.dir, "token", &a.token);
    assert_eq!(run(&["decode", "--token-file", &verbatim]).code, 0);
    let with_newline = write(&a.dir, "token-nl", format!("{}\n", a.token));
    let r = run(&["decode", "--token-file", &with_newline]);
    assert_usage(&r, "cannot decode token");
    assert!(r.stderr.contains("verbatim"), "{:?}", r.stderr);
}

#[test]
fn decode_refuses_undecodable_tokens_with_status_2() {
    for (token, why) in [
        ("not-a-token", "three"),
        ("e30.e30", "three"),
        ("e30.e30.YQ.YQ", "three"),
        ("e30=.e30.YQ", "header is not strict base64url"),
        ("e30.e 30.YQ", "payload is not strict base64url"),
        ("e30.e30.YR", "signature is not strict base64url"),
        ("W10.e30.YQ", "header: not a JSON object"),
        (
            "e30.eyJhIjoxLCJhIjoyfQ.YQ",
            "payload: duplicate member name",
        ),
        ("e30.bm90IGpzb24.YQ", "payload: not valid UTF-8 JSON"),
    ] {
        assert_usage(&run(&["decode", token]), why);
    }
}

// ---------------------------------------------------------------------------------------------
// jwks

#[test]
fn jwks_lists_each_key_and_whether_it_is_usable() {
    let dir = scratch("jwks");
    let public = std::fs::read_to_string(vectors_dir().join("keys/jwks-public.json"))
        .expect("read keys/jwks-public.json");
    let doc: Value = serde_json::from_str(&public).expect("JSON");
    let mut keys = doc["keys"].as_array().expect("keys").clone();
    keys.push(json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}));
    keys.push(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}));
    let file = write(&dir, "mixed.json", json!({ "keys": keys }).to_string());
    let r = run(&["jwks", &file]);
    assert_eq!(r.code, 0, "{:?}", r.stderr);
    let v = r.json();
    assert_eq!(v["accepted"], true);
    let listed = v["keys"].as_array().expect("keys listed");
    assert_eq!(listed.len(), keys.len());
    for (entry, jwk) in listed.iter().zip(&keys) {
        assert_eq!(entry["kid"], jwk["kid"], "listing keeps document order");
        let usable = entry["usable"].as_bool().expect("usable flag");
        assert!(usable || entry["reason"].is_string(), "{entry}");
    }
    let usable_for = |alg: &str| listed.iter().any(|k| k["algorithms"] == json!([alg]));
    assert!(usable_for("RS256") && usable_for("ES256"), "{v}");
    let hmac = listed
        .iter()
        .find(|k| k["kid"] == "hmac")
        .expect("hmac entry");
    assert_eq!(hmac["usable"], false);
    let usable = listed.iter().filter(|k| k["usable"] == true).count();
    assert_eq!(v["usable_keys"].as_u64(), u64::try_from(usable).ok());
}

#[test]
fn jwks_without_usable_keys_exits_1_and_unreadable_exits_2() {
    let dir = scratch("jwks-bad");
    let weak = write(&dir, "weak.json", weak_only_jwks().to_string());
    let r = run(&["jwks", &weak]);
    assert_eq!(r.code, 1, "{:?} {:?}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["accepted"], false);
    let reason = v["keys"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("minimum"), "{v}");
    assert_eq!(v["keys"][0]["bits"], 1024);

    let not_json = write(&dir, "not.json", "nope");
    assert_usage(&run(&["jwks", &not_json]), &not_json);
    let missing = dir.join("missing.json");
    let missing = missing.to_str().expect("path");
    assert_usage(&run(&["jwks", missing]), missing);
}

// ---------------------------------------------------------------------------------------------
// check: one HTTP request through a gate configuration; HTTP vector replay

fn http_vectors_dir() -> PathBuf {
    vectors_dir().join("http")
}

fn http_doc(group_name: &str) -> Value {
    let path = http_vectors_dir().join(format!("{group_name}.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("HTTP vector file is JSON")
}

/// The `routes` configuration of tests/vectors/http/routes.json, and the bearer value and
/// `now` of a case that it lets through (GET /orders/7 with orders/read).
struct Gated {
    config: Value,
    bearer: String,
    now: String,
    dir: PathBuf,
}

fn gated() -> Gated {
    let doc = http_doc("routes");
    let c = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == "orders_prefix_with_scope")
        .expect("routes/orders_prefix_with_scope")
        .clone();
    assert_eq!(c["expect"]["status"], 200);
    Gated {
        config: doc["configs"][c["config"].as_str().expect("config")].clone(),
        bearer: c["request"]["authorization"][0]
            .as_str()
            .expect("authorization")
            .to_string(),
        now: c["now"].to_string(),
        dir: scratch("check"),
    }
}

impl Gated {
    /// `check --config FILE --now NOW` with this configuration changed by `edit`, then `extra`.
    fn check_with(&self, edit: impl FnOnce(&mut Value), extra: &[&str]) -> Run {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let mut config = self.config.clone();
        edit(&mut config);
        let name = format!("gate-{}.json", NEXT.fetch_add(1, Ordering::Relaxed));
        let file = write(&self.dir, &name, config.to_string());
        let mut args = vec!["check", "--config", &file, "--now", &self.now];
        args.extend_from_slice(extra);
        run(&args)
    }

    fn check(&self, extra: &[&str]) -> Run {
        self.check_with(|_| {}, extra)
    }

    /// The configuration's inline key set as a JWKS file.
    fn jwks_file(&self) -> String {
        let keys = json!({ "keys": self.config["providers"][0]["jwks"]["keys"] });
        write(&self.dir, "jwks.json", keys.to_string())
    }
}

/// The provider fetches its keys from the pool's URL instead of having them inline.
fn remote_keys(config: &mut Value) {
    config["providers"][0]["jwks"] = json!({ "uri": format!("{ISSUER}/.well-known/jwks.json") });
}

fn lines(r: &Run) -> Vec<&str> {
    r.stdout.lines().collect()
}

fn assert_denied(r: &Run, status_line: &str) {
    assert_eq!(r.code, 1, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(
        lines(r).first().copied(),
        Some(status_line),
        "{:?}",
        r.stdout
    );
    assert!(
        r.stdout.contains("content-type: application/json\n")
            && r.stdout.contains("cache-control: no-store\n"),
        "{:?}",
        r.stdout
    );
}

#[test]
fn check_replays_every_http_vector_with_no_failure() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(http_vectors_dir())
        .expect("read tests/vectors/http")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let total: usize = files
        .iter()
        .map(|f| {
            let doc: Value =
                serde_json::from_slice(&std::fs::read(f).expect("read")).expect("JSON");
            doc["cases"].as_array().expect("cases").len()
        })
        .sum();
    assert!(total >= 250, "only {total} HTTP vectors");
    let dir = http_vectors_dir();
    let dir = dir.to_str().expect("UTF-8 path");
    let r = run(&["check", "--vectors", dir]);
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(r.stdout, format!("{total} passed, 0 failed\n"));

    let r = run(&["check", "--vectors", dir, "--json"]);
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(
        r.json(),
        json!({"passed": total, "failed": 0, "failures": []})
    );

    // One file at a time gives the same count.
    let mut sum = 0;
    for f in &files {
        let r = run(&[
            "check",
            "--vectors",
            f.to_str().expect("UTF-8 path"),
            "--json",
        ]);
        assert_eq!(r.code, 0, "{}: {:?} {:?}", f.display(), r.stdout, r.stderr);
        sum += r.json()["passed"].as_u64().expect("passed");
    }
    assert_eq!(sum, total as u64);
}

#[test]
fn check_vectors_list_each_failing_case_and_exit_1() {
    let dir = scratch("vectors-fail");
    let mut doc = http_doc("routes");
    let cases = doc["cases"].as_array_mut().expect("cases");
    let total = cases.len();
    cases[0]["expect"]["status"] = json!(299);
    // A member left out of `expect` is not compared.
    cases[1]["expect"]
        .as_object_mut()
        .expect("expect")
        .remove("forward");
    let first = cases[0]["name"].as_str().expect("name").to_string();
    let status = http_doc("routes")["cases"][0]["expect"]["status"].clone();
    let file = write(&dir, "mine.json", doc.to_string());
    let r = run(&["check", "--vectors", &file]);
    assert_eq!(r.code, 1, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(
        lines(&r),
        [
            format!("FAIL mine/{first}: status: want 299, got {status}").as_str(),
            format!("{} passed, 1 failed", total - 1).as_str(),
        ]
    );
    let r = run(&["check", "--vectors", &file, "--json"]);
    assert_eq!(r.code, 1);
    let v = r.json();
    assert_eq!(v["failed"], 1);
    assert_eq!(v["failures"][0]["case"], format!("mine/{first}"));
    assert_eq!(v["failures"][0]["want"]["status"], 299);

    // Malformed vector files are configuration errors.
    let no_cases = write(&dir, "no-cases.json", r#"{"configs": {}, "cases": []}"#);
    assert_usage(&run(&["check", "--vectors", &no_cases]), "no vector cases");
    let mut bad = http_doc("routes");
    bad["cases"][0]["config"] = json!("nope");
    let bad = write(&dir, "bad.json", bad.to_string());
    assert_usage(&run(&["check", "--vectors", &bad]), "\"nope\"");
    let empty_dir = scratch("vectors-empty");
    assert_usage(
        &run(&["check", "--vectors", empty_dir.to_str().expect("path")]),
        "no *.json vector files",
    );
}

#[test]
fn check_allows_with_forwarded_headers_and_route() {
    let g = gated();
    let r = g.check(&[
        "--method",
        "GET",
        "--target",
        "/orders/7?x=1",
        "--authorization",
        &g.bearer,
    ]);
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(
        lines(&r),
        [
            "200 allow",
            &format!("forward x-tokengate-client-id: {CLIENT}"),
            "route orders",
        ]
    );
    assert!(r.stderr.is_empty(), "{:?}", r.stderr);

    // Copy-pasted header lines work too; other headers are ignored with a note.
    let header = format!("authorization: {}", g.bearer);
    let r = g.check(&[
        "--method",
        "GET",
        "--target",
        "/orders/7",
        "--header",
        "X-Request-Id: 1",
        "-H",
        &header,
    ]);
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(lines(&r).first().copied(), Some("200 allow"));
    assert!(
        r.stderr.contains("X-Request-Id is ignored"),
        "{:?}",
        r.stderr
    );
}

#[test]
fn check_refuses_path_parameters_with_400() {
    let g = gated();
    let r = g.check(&[
        "--method",
        "GET",
        "--target",
        "/admin;x=1",
        "--authorization",
        &g.bearer,
    ]);
    assert_denied(&r, "400 request_invalid");
    assert!(!r.stdout.contains("www-authenticate"), "{:?}", r.stdout);
    assert!(
        r.stdout.contains("\n\n{\"error\":\"request_invalid\","),
        "{:?}",
        r.stdout
    );
    let r = g.check(&["--method", "get", "--target", "/orders/7"]);
    assert_denied(&r, "400 request_invalid");
}

#[test]
fn check_without_token_is_401_with_the_realm_challenge() {
    let g = gated();
    let r = g.check(&["--method", "GET", "--target", "/orders/7"]);
    assert_denied(&r, "401 token_missing");
    assert!(
        r.stdout
            .contains("\nwww-authenticate: Bearer realm=\"tokengate\"\n"),
        "{:?}",
        r.stdout
    );
    assert_eq!(lines(&r).last().copied(), Some("route orders"));

    let r = g.check_with(
        |c| c["realm"] = json!("orders-api"),
        &["--method", "GET", "--target", "/orders/7"],
    );
    assert_denied(&r, "401 token_missing");
    assert!(
        r.stdout
            .contains("\nwww-authenticate: Bearer realm=\"orders-api\"\n"),
        "{:?}",
        r.stdout
    );

    // An anonymous route never reads Authorization.
    let r = g.check(&["--method", "GET", "--target", "/static/app.js"]);
    assert_eq!(r.code, 0, "{:?}", r.stdout);
    assert_eq!(lines(&r), ["200 allow", "route static"]);
}

#[test]
fn check_with_two_authorization_values_is_token_malformed() {
    let g = gated();
    let header = format!("Authorization: {}", g.bearer);
    for extra in [
        [
            "--authorization",
            g.bearer.as_str(),
            "--authorization",
            g.bearer.as_str(),
        ],
        [
            "--authorization",
            g.bearer.as_str(),
            "--header",
            header.as_str(),
        ],
    ] {
        let mut args = vec!["--method", "GET", "--target", "/orders/7"];
        args.extend(extra);
        let r = g.check(&args);
        assert_denied(&r, "401 token_malformed");
        assert!(
            r.stdout.contains(
                "\nwww-authenticate: Bearer realm=\"tokengate\", error=\"invalid_token\"\n"
            ),
            "{:?}",
            r.stdout
        );
    }
}

#[test]
fn check_scope_insufficient_lists_the_scope() {
    let g = gated();
    let r = g.check(&[
        "--method",
        "GET",
        "--target",
        "/admin",
        "--authorization",
        &g.bearer,
    ]);
    // The token of this case has orders/read, not admin.
    assert_denied(&r, "403 scope_insufficient");
    assert!(
        r.stdout.contains(
            "\nwww-authenticate: Bearer realm=\"tokengate\", error=\"insufficient_scope\", scope=\"admin\"\n"
        ),
        "{:?}",
        r.stdout
    );
    assert_eq!(lines(&r).last().copied(), Some("route admin-exact"));
}

#[test]
fn check_reads_the_system_clock_by_default() {
    // The vector token expired on 2026-01-01T13:00Z; any clock after that calls it expired.
    let g = gated();
    let config = write(&g.dir, "gate.json", g.config.to_string());
    let r = run(&[
        "check",
        "--config",
        &config,
        "--method",
        "GET",
        "--target",
        "/orders/7",
        "--authorization",
        &g.bearer,
    ]);
    assert_denied(&r, "401 token_expired");
}

#[test]
fn check_config_errors_name_the_field_and_exit_2() {
    let g = gated();
    let req = ["--method", "GET", "--target", "/orders/7"];
    let r = g.check_with(
        |c| {
            c["providers"][0]
                .as_object_mut()
                .expect("provider")
                .remove("client_ids");
        },
        &req,
    );
    assert_usage(&r, "providers[0].client_ids: ");
    let r = g.check_with(|c| c["rules"][0]["match"] = json!({"prefix": "x"}), &req);
    assert_usage(&r, "rules[0].match.prefix: ");
    let r = g.check_with(|c| c["mode"] = json!("audit"), &req);
    assert_usage(&r, "mode: ");

    let dir = scratch("check-config");
    let not_json = write(&dir, "not.json", "{");
    assert_usage(
        &run(&[
            "check", "--config", &not_json, "--method", "GET", "--target", "/",
        ]),
        &not_json,
    );
    let missing = dir.join("missing.json");
    let missing = missing.to_str().expect("path");
    assert_usage(
        &run(&[
            "check", "--config", missing, "--method", "GET", "--target", "/",
        ]),
        missing,
    );
    // Usage: required flags, conflicts, malformed --header.
    assert_usage(&run(&["check", "--config", missing]), "--method");
    assert_usage(
        &run(&["check", "--vectors", missing, "--method", "GET"]),
        "cannot be used",
    );
    assert_usage(
        &g.check(&["--method", "GET", "--target", "/", "-H", "nocolon"]),
        "--header",
    );
}

#[test]
fn check_remote_provider_without_keys_is_503_never_200() {
    let g = gated();
    let req = [
        "--method",
        "GET",
        "--target",
        "/orders/7",
        "--authorization",
        g.bearer.as_str(),
    ];
    let r = g.check_with(remote_keys, &req);
    assert_denied(&r, "503 jwks_unavailable");
    assert!(r.stdout.contains("\nretry-after: 5\n"), "{:?}", r.stdout);
    assert!(r.stderr.contains("--jwks 0=FILE"), "{:?}", r.stderr);

    let r = g.check_with(remote_keys, &[&req[..], &["--json"]].concat());
    assert_eq!(r.code, 1);
    let v = r.json();
    assert_eq!(v["status"], 503);
    assert_eq!(v["code"], "jwks_unavailable");
    assert_eq!(v["headers"]["retry-after"], "5");
    assert_eq!(v["forward"], Value::Null);
}

#[test]
fn check_remote_provider_with_jwks_file_is_allowed() {
    let g = gated();
    let jwks = g.jwks_file();
    let req = [
        "--method",
        "GET",
        "--target",
        "/orders/7",
        "--authorization",
        g.bearer.as_str(),
    ];
    let indexed = format!("0={jwks}");
    for keys in [jwks.as_str(), indexed.as_str()] {
        let r = g.check_with(remote_keys, &[&req[..], &["--jwks", keys]].concat());
        assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
        assert_eq!(lines(&r).first().copied(), Some("200 allow"));
        assert!(r.stderr.is_empty(), "{:?}", r.stderr);
    }
    // A key set without the token's kid: the answer of a host that fetched it.
    let mut key = g.config["providers"][0]["jwks"]["keys"][0].clone();
    key["kid"] = json!("other");
    let other = write(&g.dir, "other.json", json!({ "keys": [key] }).to_string());
    let r = g.check_with(remote_keys, &[&req[..], &["--jwks", &other]].concat());
    assert_denied(&r, "401 kid_unknown");
}

#[test]
fn check_jwks_files_that_do_not_fit_are_usage_errors() {
    let g = gated();
    let jwks = g.jwks_file();
    let req = ["--method", "GET", "--target", "/orders/7"];
    let no_such = format!("1={jwks}");
    let r = g.check_with(remote_keys, &[&req[..], &["--jwks", &no_such]].concat());
    assert_usage(&r, "there is no providers[1]");
    let r = g.check(&[&req[..], &["--jwks", &jwks]].concat());
    assert_usage(&r, "no provider fetches its keys remotely");
    let twice = format!("0={jwks}");
    let r = g.check_with(
        remote_keys,
        &[&req[..], &["--jwks", &jwks, "--jwks", &twice]].concat(),
    );
    assert_usage(&r, "twice");
    let not_keys = write(&g.dir, "not-keys.json", "{\"kty\":\"RSA\"}");
    let r = g.check_with(remote_keys, &[&req[..], &["--jwks", &not_keys]].concat());
    assert_usage(&r, &not_keys);
    let r = g.check_with(
        remote_keys,
        &[&req[..], &["--jwks", "https://example.invalid/jwks.json"]].concat(),
    );
    assert_usage(&r, "fetching a JWKS URL is not supported");
}

#[test]
fn check_json_output_is_one_object() {
    let g = gated();
    let r = g.check(&[
        "--method",
        "GET",
        "--target",
        "/orders/7?x=1",
        "--authorization",
        &g.bearer,
        "--json",
    ]);
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{:?}", r.stdout);
    let v = r.json();
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "body",
            "code",
            "forward",
            "headers",
            "record",
            "route",
            "status",
            "would_deny"
        ]
    );
    assert_eq!(v["status"], 200);
    assert_eq!(v["code"], Value::Null);
    assert_eq!(v["headers"], json!({}));
    assert_eq!(v["body"], Value::Null);
    assert_eq!(v["forward"], json!({ "x-tokengate-client-id": CLIENT }));
    assert_eq!(v["route"], "orders");
    let record = &v["record"];
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["route"], "orders");
    assert_eq!(record["client_id"], CLIENT);
    assert_eq!(record["iss"], ISSUER);
    assert_eq!(record["path"], "/orders/7", "the query is never logged");
    assert!(!r.stdout.contains(&g.bearer), "the token is never printed");

    let r = g.check(&["--method", "GET", "--target", "/orders/7", "--json"]);
    assert_eq!(r.code, 1);
    let v = r.json();
    assert_eq!(v["status"], 401);
    assert_eq!(v["code"], "token_missing");
    assert_eq!(
        v["headers"]["www-authenticate"],
        "Bearer realm=\"tokengate\""
    );
    assert_eq!(v["body"]["error"], "token_missing");
    assert_eq!(v["forward"], Value::Null);
    assert_eq!(v["record"]["decision"], "deny");
    assert_eq!(v["record"]["code"], "token_missing");
}

#[test]
fn check_report_mode_lets_the_request_through_and_says_what_enforce_would_do() {
    let g = gated();
    let r = g.check_with(
        |c| c["mode"] = json!("report"),
        &["--method", "GET", "--target", "/orders/7"],
    );
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(
        lines(&r),
        ["200 allow", "would-deny 401 token_missing", "route orders"]
    );
    assert!(r.stderr.contains("report"), "{:?}", r.stderr);
}

#[test]
fn check_vectors_with_remote_providers_take_jwks_files() {
    // A user's own expectations, for a configuration that fetches its keys.
    let g = gated();
    let jwks = g.jwks_file();
    let mut doc = http_doc("routes");
    let total = doc["cases"].as_array().expect("cases").len();
    for config in doc["configs"]
        .as_object_mut()
        .expect("configs")
        .values_mut()
    {
        remote_keys(config);
    }
    let file = write(&g.dir, "remote.json", doc.to_string());
    let r = run(&["check", "--vectors", &file, "--jwks", &jwks]);
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert_eq!(r.stdout, format!("{total} passed, 0 failed\n"));
    // Without the keys, no case that needs a token passes.
    let r = run(&["check", "--vectors", &file, "--json"]);
    assert_eq!(r.code, 1);
    let v = r.json();
    let failures = v["failures"].as_array().expect("failures");
    assert!(!failures.is_empty());
    assert!(
        failures
            .iter()
            .all(|f| f["got"]["code"] == "jwks_unavailable" && f["got"]["status"] == 503),
        "{v}"
    );
}

/// The configuration with an unsigned policy feed (`stale` as given).
fn with_feed(stale: &'static str) -> impl FnOnce(&mut Value) {
    move |config: &mut Value| {
        config["feed"] = json!({"uri": "https://feed.example/edge-policy.json", "unsigned": true,
                                "stale": stale});
    }
}

#[test]
fn check_takes_the_policy_feed_from_a_file() {
    let g = gated();
    let req = [
        "--method",
        "GET",
        "--target",
        "/orders/7",
        "--authorization",
        &g.bearer,
    ];
    let issuer = g.config["providers"][0]["issuer"]
        .as_str()
        .expect("issuer")
        .to_owned();
    let revoked = json!({"format": 1, "version": 3, "issued_at": 0,
                         "providers": {issuer.clone(): {"revoke": {"client_ids": [CLIENT]}}}});
    let feed = write(&g.dir, "feed-revoked.json", revoked.to_string());
    let mut args = req.to_vec();
    args.extend(["--feed", feed.as_str()]);
    let r = g.check_with(with_feed("keep"), &args);
    assert_denied(&r, "401 token_revoked");

    let empty = json!({"format": 1, "version": 3, "issued_at": 0, "providers": {}});
    let feed = write(&g.dir, "feed-empty.json", empty.to_string());
    let mut args = req.to_vec();
    args.extend(["--feed", feed.as_str()]);
    let r = g.check_with(with_feed("keep"), &args);
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);

    // Without the document: a host whose feed fetch failed.
    let r = g.check_with(with_feed("fail_closed"), &req);
    assert_denied(&r, "503 policy_unavailable");
    assert!(r.stderr.contains("--feed FILE"), "{:?}", r.stderr);
    let r = g.check_with(with_feed("keep"), &req);
    assert_eq!(r.code, 0, "stdout {:?} stderr {:?}", r.stdout, r.stderr);

    // A document that is not one, or a --feed without a configured feed: exit 2 naming it.
    let bad = write(&g.dir, "feed-bad.json", r#"{"format": 2}"#);
    let mut args = req.to_vec();
    args.extend(["--feed", bad.as_str()]);
    let r = g.check_with(with_feed("keep"), &args);
    assert_eq!(r.code, 2, "stdout {:?} stderr {:?}", r.stdout, r.stderr);
    assert!(r.stderr.contains("format"), "{:?}", r.stderr);
    let r = g.check(&args);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no \"feed\""), "{:?}", r.stderr);
}

/// The identity vectors' configuration and the orders-writer token pinned in it.
fn pinned() -> (Value, String, String, PathBuf) {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(http_vectors_dir().join("identity.json")).expect("identity.json"),
    )
    .expect("JSON");
    let c = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == "conn_uri_san_exact_match")
        .expect("conn_uri_san_exact_match")
        .clone();
    let dir = scratch("identity");
    let config = doc["configs"]["connection"].clone();
    (
        config,
        c["request"]["authorization"][0]
            .as_str()
            .expect("authorization")
            .to_string(),
        c["now"].to_string(),
        dir,
    )
}

fn cert_file(name: &str) -> String {
    vectors_dir()
        .join("keys/certs")
        .join(name)
        .to_str()
        .expect("path")
        .to_string()
}

#[test]
fn check_reads_the_client_certificate_from_a_file_or_facts() {
    let (config, bearer, now, dir) = pinned();
    let file = write(&dir, "gate.json", config.to_string());
    let base = [
        "check",
        "--config",
        &file,
        "--now",
        &now,
        "--method",
        "GET",
        "--target",
        "/api/orders",
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--authorization", &bearer]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let ok = with(&["--peer-cert", &cert_file("orders-writer.pem"), "--json"]);
    assert_eq!(ok.code, 0, "{:?} {:?}", ok.stdout, ok.stderr);
    assert_eq!(
        ok.json()["record"]["identity"],
        "uri_san:spiffe://prod/orders-writer"
    );
    let other = with(&["--peer-cert", &cert_file("intruder.pem")]);
    assert_denied(&other, "401 identity_mismatch");
    assert_denied(&with(&[]), "401 identity_missing");
    let facts = r#"{"uri_sans": ["spiffe://prod/orders-writer"]}"#;
    assert_eq!(with(&["--peer", facts]).code, 0);
    // A thumbprint alone carries no URI SAN.
    let hex = "098deae548cb51c2c48bcdad71fb1dc65500caed601f2d3f866e0b78717e8cfc";
    assert_denied(&with(&["--peer", hex]), "401 identity_mismatch");
    // A client's own Client-Cert header is not a certificate with this configuration.
    let forged = format!(
        "Client-Cert: :{}:",
        base64_der(&cert_file("orders-writer.pem"))
    );
    let r = with(&["-H", &forged]);
    assert_denied(&r, "401 identity_missing");
    assert!(
        r.stderr.contains("Client-Cert is ignored"),
        "{:?}",
        r.stderr
    );
    assert_usage(&with(&["--peer", "{\"uri\": 1}"]), "--peer");
    let not_a_cert = write(
        &dir,
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let r = with(&["--peer-cert", &not_a_cert]);
    assert_eq!(r.code, 2, "{:?}", r.stderr);
    assert!(r.stderr.contains("--peer-cert"), "{:?}", r.stderr);
}

#[test]
fn check_reads_a_trusted_client_cert_header() {
    let (mut config, bearer, now, dir) = pinned();
    config["client_certificate"] = json!({"source": "client_cert_header"});
    let file = write(&dir, "gate-header.json", config.to_string());
    let header = |cert: &str| format!("client-cert: :{}:", base64_der(&cert_file(cert)));
    let run_with = |h: &str| {
        run(&[
            "check",
            "--config",
            &file,
            "--now",
            &now,
            "--method",
            "GET",
            "--target",
            "/api/orders",
            "--authorization",
            &bearer,
            "-H",
            h,
        ])
    };
    let ok = run_with(&header("orders-writer.pem"));
    assert_eq!(ok.code, 0, "{:?} {:?}", ok.stdout, ok.stderr);
    assert_denied(&run_with(&header("intruder.pem")), "401 identity_mismatch");
    assert_denied(
        &run_with("client-cert: not-a-byte-sequence"),
        "400 request_invalid",
    );
}

/// Standard base64 of the DER inside a PEM file.
fn base64_der(pem_file: &str) -> String {
    let pem = std::fs::read_to_string(pem_file).expect("pem");
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}
