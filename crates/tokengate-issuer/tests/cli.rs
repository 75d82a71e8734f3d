//! The `tokengate-issuer` binary as a script or a person runs it.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokengate_issuer::Config;

const BIN: &str = env!("CARGO_BIN_EXE_tokengate-issuer");

fn run(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "tokengate-issuer-cli-{}-{name}",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn help_says_development_and_tests_only() {
    for args in [&["--help"][..], &["serve", "--help"], &["-h"]] {
        let output = run(args, "");
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(
            help.to_lowercase().contains("development and tests only"),
            "{help}"
        );
    }
}

#[test]
fn sample_config_prints_a_valid_config() {
    let output = run(&["sample-config"], "");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with('#'));
    Config::from_toml_str(&text).unwrap();
}

#[test]
fn hash_secret_prints_an_argon2id_hash_the_config_accepts() {
    let output = run(&["hash-secret"], "my-secret\n");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hash = String::from_utf8(output.stdout).unwrap();
    let hash = hash.trim_end();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    let toml = format!(
        "[[pools]]\nid = \"eu-west-1_LocalPool1\"\n[[pools.clients]]\nclient_id = \"c\"\nclient_secret_hash = \"{hash}\"\n"
    );
    Config::from_toml_str(&toml).unwrap();

    let empty = run(&["hash-secret"], "\n");
    assert!(!empty.status.success());
}

#[test]
fn non_loopback_listen_is_refused_without_the_flag() {
    let config = temp_config(
        "loopback.toml",
        "[[pools]]\nid = \"eu-west-1_LocalPool1\"\n",
    );
    let output = run(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--allow-non-loopback"), "{stderr}");
    std::fs::remove_file(config).unwrap();
}

#[test]
fn bad_config_exits_with_the_field_named() {
    let config = temp_config(
        "bad.toml",
        "[[pools]]\nid = \"eu-west-1_LocalPool1\"\ntoken_lifetime_s = 5\n",
    );
    let output = run(&["serve", "--config", config.to_str().unwrap()], "");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("pools[0].token_lifetime_s: must be between 300 and 86400"),
        "{stderr}"
    );
    std::fs::remove_file(config).unwrap();
}

#[test]
fn serve_announces_its_address_answers_and_stops_on_sigterm() {
    let key = support::key_file(1);
    let config = temp_config(
        "serve.toml",
        &format!(
            "{}\n",
            tokengate_issuer::SAMPLE_CONFIG.replace(
                "pem_files = []",
                &format!("pem_files = [{:?}]", key.to_str().unwrap())
            )
        ),
    );
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let response = runtime.block_on(support::request(
        "POST",
        &format!("{url}/oauth2/token"),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            (
                "authorization",
                &support::basic_header("orders-reader", "orders-reader-secret"),
            ),
        ],
        b"grant_type=client_credentials",
    ));
    assert_eq!(response.status, 200, "{}", response.text());
    let jwks = runtime.block_on(support::request(
        "GET",
        &format!("{url}/eu-west-1_LocalPool1/.well-known/jwks.json"),
        &[],
        b"",
    ));
    let token = response.json()["access_token"].as_str().unwrap().to_owned();
    let decoded = support::verify_rs256(&token, &jwks.json()).unwrap();
    assert_eq!(decoded.claims["iss"], format!("{url}/eu-west-1_LocalPool1"));

    // The audit line for that request follows on stdout.
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let audit: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(audit["result"], "issued");
    assert_eq!(audit["client_id"], "orders-reader");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(status.expect("stopped within 10 s").success());
    std::fs::remove_file(config).unwrap();
}
