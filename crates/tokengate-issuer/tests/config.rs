//! Config files: the sample, TOML and JSON, and validation errors that name the field.

mod support;

use std::path::PathBuf;

use tokengate_issuer::{
    ClientCertHeader, Config, Error, Issuer, TokenEndpointAuthMethod, SAMPLE_CONFIG,
};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$9GAuWToRea6+QTFxH2Yx2Q$LSlK6yC7FOd2Yrz30BFDxRcLBWPc9w3t99hIQWg/iOI";

fn toml_with_client(client_fields: &str) -> String {
    format!(
        r#"
[[pools]]
id = "eu-west-1_LocalPool1"

[[pools.clients]]
client_id = "first"
client_secret_hash = "{HASH}"
allowed_scopes = ["orders/read"]

[[pools.clients]]
{client_fields}
"#
    )
}

fn invalid(text: &str) -> String {
    Config::from_toml_str(text).unwrap_err().to_string()
}

#[test]
fn sample_config_is_valid_and_has_the_demo_clients() {
    let config = Config::from_toml_str(SAMPLE_CONFIG).unwrap();
    let pool = &config.pools[0];
    assert_eq!(pool.id, "eu-west-1_LocalPool1");
    let clients: Vec<(&str, &[String], bool)> = pool
        .clients
        .iter()
        .map(|c| (c.client_id.as_str(), c.allowed_scopes.as_slice(), c.enabled))
        .collect();
    assert_eq!(
        clients,
        [
            ("orders-reader", &["orders/read".to_owned()][..], true),
            (
                "orders-writer",
                &["orders/read".to_owned(), "orders/write".to_owned()][..],
                true
            ),
            ("not-allowed-client", &["orders/read".to_owned()][..], true),
            ("disabled-client", &["orders/read".to_owned()][..], false),
        ]
    );
}

#[test]
fn token_lifetime_outside_cognitos_range_names_the_field() {
    let text = toml_with_client(&format!(
        r#"client_id = "second"
client_secret_hash = "{HASH}"
token_lifetime_s = 299"#
    ));
    assert_eq!(
        invalid(&text),
        "pools[0].clients[1].token_lifetime_s: must be between 300 and 86400"
    );
    let pool_level = r#"
[[pools]]
id = "eu-west-1_LocalPool1"
token_lifetime_s = 86401
"#;
    assert_eq!(
        invalid(pool_level),
        "pools[0].token_lifetime_s: must be between 300 and 86400"
    );
}

#[test]
fn bad_values_are_refused_with_the_field_path() {
    let cases = [
        (
            "[[pools]]\nid = \"eu-west-1_short\"\n".to_owned(),
            "pools[0].id",
        ),
        (
            "[[pools]]\nid = \"LocalPool1\"\n".to_owned(),
            "pools[0].id",
        ),
        (
            "[[pools]]\nid = \"eu-west-1_LocalPool1\"\n[[pools]]\nid = \"eu-west-1_LocalPool1\"\n"
                .to_owned(),
            "pools[1].id",
        ),
        (
            "[[pools]]\nid = \"eu-west-1_LocalPool1\"\nissuer = \"cognito\"\n".to_owned(),
            "pools[0].issuer",
        ),
        (
            toml_with_client(&format!(
                "client_id = \"second\"\nclient_secret_hash = \"{HASH}\"\nallowed_scopes = [\"openid\"]"
            )),
            "pools[0].clients[1].allowed_scopes[0]",
        ),
        (
            toml_with_client("client_id = \"second\"\nclient_secret_hash = \"plain-secret\""),
            "pools[0].clients[1].client_secret_hash",
        ),
        (
            toml_with_client(&format!("client_id = \"first\"\nclient_secret_hash = \"{HASH}\"")),
            "pools[0].clients[1].client_id",
        ),
        (
            toml_with_client(&format!("client_id = \"has:colon\"\nclient_secret_hash = \"{HASH}\"")),
            "pools[0].clients[1].client_id",
        ),
        (
            "[server]\nadmin_token = \"short\"\n[[pools]]\nid = \"eu-west-1_LocalPool1\"\n"
                .to_owned(),
            "server.admin_token",
        ),
        (
            "[server.rate_limit]\nper_s = 0.0\n[[pools]]\nid = \"eu-west-1_LocalPool1\"\n"
                .to_owned(),
            "server.rate_limit.per_s",
        ),
        (
            "[[pools]]\nid = \"eu-west-1_LocalPool1\"\n[pools.keys]\nrotate_every_s = 10\n"
                .to_owned(),
            "pools[0].keys.rotate_every_s",
        ),
        ("[server]\n".to_owned(), "pools"),
    ];
    for (text, field) in cases {
        let error = Config::from_toml_str(&text).unwrap_err();
        assert_eq!(error.field(), Some(field), "{error}");
        assert!(
            error.to_string().starts_with(&format!("{field}: ")),
            "{error}"
        );
    }
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let message = invalid("[[pools]]\nid = \"eu-west-1_LocalPool1\"\ntoken_lifetime = 300\n");
    assert!(message.contains("token_lifetime"), "{message}");
    assert!(message.starts_with("invalid TOML config"), "{message}");
}

#[test]
fn json_config_has_the_same_shape() {
    let json = format!(
        r#"{{
  "server": {{ "jwks_max_age_s": 60 }},
  "pools": [{{
    "id": "eu-west-1_LocalPool1",
    "clients": [{{ "client_id": "a", "client_secret_hash": "{}", "allowed_scopes": ["orders/read"] }}]
  }}]
}}"#,
        HASH
    );
    let config = Config::from_json_str(&json).unwrap();
    assert_eq!(config.server.jwks_max_age_s, 60);
    assert_eq!(config.pools[0].clients[0].client_id, "a");
    assert_eq!(config.pools[0].token_lifetime_s, 3600);
    let bad = json.replace("\"a\"", "\"a b\"");
    assert_eq!(
        Config::from_json_str(&bad).unwrap_err().field(),
        Some("pools[0].clients[0].client_id")
    );
}

#[test]
fn load_reads_toml_or_json_and_resolves_key_paths_next_to_the_file() {
    let dir = std::env::temp_dir().join(format!("tokengate-issuer-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(support::key_file(1), dir.join("signing.pem")).unwrap();
    let toml_path = dir.join("issuer.toml");
    std::fs::write(
        &toml_path,
        "[[pools]]\nid = \"eu-west-1_LocalPool1\"\n[pools.keys]\npem_files = [\"signing.pem\"]\n",
    )
    .unwrap();
    let config = Config::load(&toml_path).unwrap();
    assert_eq!(config.pools[0].keys.pem_files, [dir.join("signing.pem")]);
    Issuer::from_config(config).unwrap();

    let json_path = dir.join("issuer.conf");
    std::fs::write(
        &json_path,
        r#" {"pools": [{"id": "eu-west-1_LocalPool1"}]}"#,
    )
    .unwrap();
    assert_eq!(Config::load(&json_path).unwrap().pools.len(), 1);

    let missing = Config::load(&dir.join("missing.toml")).unwrap_err();
    assert!(
        missing.to_string().starts_with("cannot read config file"),
        "{missing}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreadable_or_weak_pem_files_name_the_field() {
    let mut config = Config::from_toml_str("[[pools]]\nid = \"eu-west-1_LocalPool1\"\n").unwrap();
    config.pools[0].keys.pem_files =
        vec![support::key_file(1), PathBuf::from("/nonexistent/key.pem")];
    let Err(Error::Config(error)) = Issuer::from_config(config.clone()) else {
        panic!("missing key file accepted");
    };
    assert_eq!(error.field(), Some("pools[0].keys.pem_files[1]"));

    let dir = std::env::temp_dir().join(format!("tokengate-issuer-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_a_key = dir.join("not-a-key.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    config.pools[0].keys.pem_files = vec![not_a_key];
    let Err(Error::Config(error)) = Issuer::from_config(config) else {
        panic!("garbage key accepted");
    };
    assert_eq!(error.field(), Some("pools[0].keys.pem_files[0]"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secret_hash_lists_and_edge_policy_fields_are_checked_by_field() {
    let cases = [
        (
            toml_with_client("client_id = \"second\"\nallowed_scopes = [\"orders/read\"]"),
            "pools[0].clients[1].client_secret_hash",
        ),
        (
            toml_with_client(&format!(
                "client_id = \"second\"\nclient_secret_hashes = [\"{HASH}\", \"plain\"]"
            )),
            "pools[0].clients[1].client_secret_hashes[1]",
        ),
        (
            toml_with_client(&format!(
                "client_id = \"second\"\nclient_secret_hash = \"{HASH}\"\nclient_secret_hashes = [\"{HASH}\"]"
            )),
            "pools[0].clients[1].client_secret_hashes[0]",
        ),
        (
            "[[pools]]\nid = \"eu-west-1_LocalPool1\"\nedge_client_ids = [\"a\", \"a\"]\n"
                .to_owned(),
            "pools[0].edge_client_ids[1]",
        ),
        (
            "[[pools]]\nid = \"eu-west-1_LocalPool1\"\nedge_client_ids = [\"a b\"]\n".to_owned(),
            "pools[0].edge_client_ids[0]",
        ),
        (
            "[[pools]]\nid = \"eu-west-1_LocalPool1\"\n[pools.edge_policy]\nsigning_key_pem = \"k.pem\"\nkid = \"\"\n"
                .to_owned(),
            "pools[0].edge_policy.kid",
        ),
    ];
    for (text, field) in cases {
        let error = Config::from_toml_str(&text).unwrap_err();
        assert_eq!(error.field(), Some(field), "{error}");
    }
    let two = Config::from_toml_str(&toml_with_client(&format!(
        "client_id = \"second\"\nclient_secret_hashes = [\"{HASH}\"]"
    )))
    .unwrap();
    assert_eq!(two.pools[0].clients[1].secret_hashes(), [HASH]);
}

#[test]
fn load_resolves_the_feed_signing_key_next_to_the_file() {
    let dir = std::env::temp_dir().join(format!("tokengate-issuer-feed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(support::feed_key_file(), dir.join("feed-key.pem")).unwrap();
    let path = dir.join("issuer.toml");
    std::fs::write(
        &path,
        "[[pools]]\nid = \"eu-west-1_LocalPool1\"\nedge_client_ids = [\"a\"]\n[pools.edge_policy]\nsigning_key_pem = \"feed-key.pem\"\n",
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(
        config.pools[0]
            .edge_policy
            .as_ref()
            .unwrap()
            .signing_key_pem,
        dir.join("feed-key.pem")
    );
    let issuer = Issuer::from_config(config).unwrap();
    let document = issuer.edge_policy("eu-west-1_LocalPool1").unwrap();
    assert!(document.signed);
    assert_eq!(document.content_type(), "application/jose");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn certificate_clients_parse_from_toml() {
    let text = format!(
        r#"
[server]
trusted_client_cert_header = "x-forwarded-client-cert"
{}
token_endpoint_auth_method = "tls_client_auth"
tls_client_auth_san_uri = "spiffe://demo/reports"
allowed_scopes = ["orders/read"]

[[pools.clients]]
client_id = "self-signed"
token_endpoint_auth_method = "self_signed_tls_client_auth"
tls_client_auth_sha256 = ["CY3q5UjLUcLEi82tcfsdxlUAyu1gHy0_hm4LeHF-jPw", "{}"]
allowed_scopes = ["orders/read"]
"#,
        toml_with_client("client_id = \"reports\"").trim_start(),
        "ab".repeat(32)
    );
    let config = Config::from_toml_str(&text).unwrap();
    assert_eq!(
        config.server.trusted_client_cert_header,
        Some(ClientCertHeader::XForwardedClientCert)
    );
    let clients = &config.pools[0].clients;
    assert_eq!(
        clients[0].token_endpoint_auth_method,
        TokenEndpointAuthMethod::ClientSecretBasic
    );
    assert_eq!(
        clients[1].token_endpoint_auth_method,
        TokenEndpointAuthMethod::TlsClientAuth
    );
    assert_eq!(clients[2].tls_client_auth_sha256.len(), 2);
    let rfc9440 = "[server]\ntrusted_client_cert_header = \"client-cert\"\n[[pools]]\nid = \"eu-west-1_LocalPool1\"\n";
    assert_eq!(
        Config::from_toml_str(rfc9440)
            .unwrap()
            .server
            .trusted_client_cert_header,
        Some(ClientCertHeader::ClientCert)
    );
    let unknown = "[server]\ntrusted_client_cert_header = \"x-client-cert\"\n[[pools]]\nid = \"eu-west-1_LocalPool1\"\n";
    assert!(
        invalid(unknown).contains("x-client-cert"),
        "{}",
        invalid(unknown)
    );
}

#[test]
fn each_authentication_method_takes_its_own_fields_only() {
    let pki = "token_endpoint_auth_method = \"tls_client_auth\"";
    let self_signed = "token_endpoint_auth_method = \"self_signed_tls_client_auth\"";
    let uri = "tls_client_auth_san_uri = \"spiffe://demo/reports\"";
    let sha = format!("tls_client_auth_sha256 = [\"{}\"]", "ab".repeat(32));
    let secret = format!("client_secret_hash = \"{HASH}\"");
    let cases = [
        // tls_client_auth: exactly one registration value, no secret.
        (vec![pki], "pools[0].clients[1].token_endpoint_auth_method"),
        (
            vec![pki, uri, "tls_client_auth_san_dns = \"reports.internal\""],
            "pools[0].clients[1].tls_client_auth_san_uri",
        ),
        (
            vec![pki, uri, &secret],
            "pools[0].clients[1].client_secret_hash",
        ),
        (
            vec![pki, uri, &sha],
            "pools[0].clients[1].tls_client_auth_sha256",
        ),
        (
            vec![pki, "tls_client_auth_subject_dn = \"not a DN\""],
            "pools[0].clients[1].tls_client_auth_subject_dn",
        ),
        (
            vec![pki, "tls_client_auth_san_dns = \"\""],
            "pools[0].clients[1].tls_client_auth_san_dns",
        ),
        // self_signed_tls_client_auth: thumbprints, well-formed and distinct, no secret.
        (
            vec![self_signed],
            "pools[0].clients[1].tls_client_auth_sha256",
        ),
        (
            vec![self_signed, "tls_client_auth_sha256 = [\"abc\"]"],
            "pools[0].clients[1].tls_client_auth_sha256[0]",
        ),
        (
            vec![self_signed, &sha, uri],
            "pools[0].clients[1].tls_client_auth_san_uri",
        ),
        (
            vec![self_signed, &sha, &secret],
            "pools[0].clients[1].client_secret_hash",
        ),
        // A secret client takes no certificate fields.
        (
            vec![&secret, uri],
            "pools[0].clients[1].tls_client_auth_san_uri",
        ),
        (
            vec![&secret, &sha],
            "pools[0].clients[1].tls_client_auth_sha256",
        ),
    ];
    for (fields, field) in cases {
        let text = toml_with_client(&format!("client_id = \"second\"\n{}", fields.join("\n")));
        let error = Config::from_toml_str(&text).unwrap_err();
        assert_eq!(error.field(), Some(field), "{fields:?}: {error}");
    }
    let twice = format!(
        "{self_signed}\ntls_client_auth_sha256 = [\"{}\", \"{}\"]",
        "ab".repeat(32),
        base64_of_ab()
    );
    let error = Config::from_toml_str(&toml_with_client(&format!(
        "client_id = \"second\"\n{twice}"
    )))
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "pools[0].clients[1].tls_client_auth_sha256[1]: duplicate certificate SHA-256"
    );
}

/// The base64url form of 32 bytes of 0xab: the same digest as `"ab" * 32` in hex.
fn base64_of_ab() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xab; 32])
}

#[test]
fn sample_configs_commented_certificate_clients_are_valid() {
    // Uncomment the sample's RFC 8705 lines: the trusted header and the two example clients.
    let mut section = false;
    let text: String = SAMPLE_CONFIG
        .lines()
        .map(|line| {
            section = (section || line.starts_with("# A client that authenticates"))
                && !line.starts_with("# A second pool");
            let toml = line.strip_prefix("# ").filter(|rest| {
                rest.starts_with("[[") || rest.contains(" = ") && !rest.starts_with(' ')
            });
            match toml {
                Some(rest) if section || rest.starts_with("trusted_client_cert_header") => {
                    format!("{rest}\n")
                }
                _ => format!("{line}\n"),
            }
        })
        .collect();
    let config = Config::from_toml_str(&text).unwrap();
    assert_eq!(
        config.server.trusted_client_cert_header,
        Some(ClientCertHeader::XForwardedClientCert)
    );
    let methods: Vec<(&str, TokenEndpointAuthMethod)> = config.pools[0]
        .clients
        .iter()
        .map(|c| (c.client_id.as_str(), c.token_endpoint_auth_method))
        .filter(|(_, method)| method.uses_certificate())
        .collect();
    assert_eq!(
        methods,
        [
            ("reports", TokenEndpointAuthMethod::TlsClientAuth),
            (
                "nightly-export",
                TokenEndpointAuthMethod::SelfSignedTlsClientAuth
            ),
        ]
    );
}
