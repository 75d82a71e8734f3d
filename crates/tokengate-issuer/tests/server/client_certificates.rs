//! RFC 8705 client authentication at the token endpoint: a certificate forwarded by the
//! TLS-terminating proxy in the one header the config trusts, matched against the client's
//! registration (`tls_client_auth`, `self_signed_tls_client_auth`), and tokens bound to it
//! (`cnf.x5t#S256`). The certificates are the shared TEST leaves of `tests/vectors/keys/certs`;
//! the thumbprints expected here are computed with `sha2`, not with the code under test.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokengate::peer::Peer;
use tokengate::{
    ErrorCode, KeyCache, KeySet, KeySetLimits, MtlsBinding, Policy, Provider, Request, Verifier,
};
use tokengate_issuer::{ClientCertHeader, ClientConfig, Config, TokenEndpointAuthMethod};

use crate::support::{
    admin_config, basic_header, decode, request, start, HttpResponse, TestServer, NOW, POOL,
};

const CC: &str = "grant_type=client_credentials";

/// A shared TEST certificate: its PEM text and DER.
struct Cert {
    pem: String,
    der: Vec<u8>,
}

fn cert(name: &str) -> Cert {
    let path = format!(
        "{}/../../tests/vectors/keys/certs/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).expect("PEM body is base64");
    Cert { pem, der }
}

impl Cert {
    /// RFC 8705 §3.1: base64url of the SHA-256 of the DER.
    fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(&self.der))
    }

    fn sha256_hex(&self) -> String {
        Sha256::digest(&self.der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// What Envoy writes with `SANITIZE_SET` and `set_current_client_cert_details`
    /// `{cert, subject, uri, dns}`: the certificate's hash, the URL-encoded PEM, the rest.
    fn xfcc(&self) -> String {
        format!(
            "Hash={};Cert=\"{}\";Subject=\"CN=ignored\";URI=spiffe://ignored;DNS=ignored",
            self.sha256_hex(),
            utf8_percent_encode(&self.pem, NON_ALPHANUMERIC)
        )
    }

    /// RFC 9440 `Client-Cert`: the DER as a structured-field byte sequence.
    fn client_cert(&self) -> String {
        format!(":{}:", STANDARD.encode(&self.der))
    }
}

/// `orders-writer.pem` carries `URI:spiffe://prod/orders-writer`; `intruder.pem` is another
/// leaf of the same TEST CA; `batch-7.pem` is registered by its SHA-256.
fn mtls_config(header: Option<ClientCertHeader>) -> Config {
    let mut config = admin_config();
    config.server.trusted_client_cert_header = header;
    let mut pki = ClientConfig::with_certificate(
        "orders-batch",
        TokenEndpointAuthMethod::TlsClientAuth,
        ["orders/read"],
    );
    pki.tls_client_auth_san_uri = Some("spiffe://prod/orders-writer".to_owned());
    let mut by_subject = ClientConfig::with_certificate(
        "orders-batch-dn",
        TokenEndpointAuthMethod::TlsClientAuth,
        ["orders/read"],
    );
    by_subject.tls_client_auth_subject_dn = Some("CN=orders-writer,OU=payments,O=Example".into());
    let mut self_signed = ClientConfig::with_certificate(
        "reports",
        TokenEndpointAuthMethod::SelfSignedTlsClientAuth,
        ["orders/read"],
    );
    self_signed.tls_client_auth_sha256 = vec![cert("batch-7").sha256_hex()];
    config.pools[0]
        .clients
        .extend([pki, by_subject, self_signed]);
    config
}

async fn token_with(
    server: &TestServer,
    form: &str,
    extra: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> HttpResponse {
    let authorization = basic.map(|(id, secret)| basic_header(id, secret));
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(authorization) = &authorization {
        headers.push(("authorization", authorization));
    }
    headers.extend_from_slice(extra);
    request(
        "POST",
        &server.url("/oauth2/token"),
        &headers,
        form.as_bytes(),
    )
    .await
}

fn claims_of(response: &HttpResponse) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    decode(
        response.json()["access_token"]
            .as_str()
            .expect("access_token"),
    )
    .claims
}

fn assert_invalid_client(response: &HttpResponse) {
    assert_eq!(response.status, 401, "{}", response.text());
    assert_eq!(response.json(), json!({ "error": "invalid_client" }));
}

fn last_audit(server: &TestServer) -> Value {
    let lines = server.audit.lines();
    serde_json::from_str(lines.last().expect("an audit line")).expect("audit JSON")
}

#[tokio::test]
async fn registered_certificate_gets_a_token_bound_to_it() {
    let server = start(mtls_config(Some(ClientCertHeader::XForwardedClientCert))).await;
    let leaf = cert("orders-writer");
    for client in ["orders-batch", "orders-batch-dn"] {
        let response = token_with(
            &server,
            &format!("{CC}&client_id={client}"),
            &[("x-forwarded-client-cert", &leaf.xfcc())],
            None,
        )
        .await;
        let claims = claims_of(&response);
        assert_eq!(claims["client_id"], client);
        assert_eq!(claims["cnf"], json!({ "x5t#S256": leaf.thumbprint() }));
        let audit = last_audit(&server);
        assert_eq!(audit["result"], "issued");
        assert_eq!(audit["x5t#S256"], leaf.thumbprint());
    }
}

#[tokio::test]
async fn self_signed_client_is_known_by_its_certificate_hash() {
    let server = start(mtls_config(Some(ClientCertHeader::XForwardedClientCert))).await;
    let own = cert("batch-7");
    let response = token_with(
        &server,
        &format!("{CC}&client_id=reports"),
        &[("x-forwarded-client-cert", &own.xfcc())],
        None,
    )
    .await;
    assert_eq!(
        claims_of(&response)["cnf"]["x5t#S256"],
        json!(own.thumbprint())
    );
    let other = token_with(
        &server,
        &format!("{CC}&client_id=reports"),
        &[("x-forwarded-client-cert", &cert("intruder").xfcc())],
        None,
    )
    .await;
    assert_invalid_client(&other);
}

#[tokio::test]
async fn another_certificate_is_invalid_client() {
    let server = start(mtls_config(Some(ClientCertHeader::XForwardedClientCert))).await;
    for client in ["orders-batch", "orders-batch-dn"] {
        let response = token_with(
            &server,
            &format!("{CC}&client_id={client}"),
            &[("x-forwarded-client-cert", &cert("intruder").xfcc())],
            None,
        )
        .await;
        assert_invalid_client(&response);
        assert_eq!(
            last_audit(&server)["detail"],
            "the client certificate is not the one registered for this client"
        );
    }
    // No certificate at all, and a secret instead of one, are refused too.
    let none = token_with(&server, &format!("{CC}&client_id=orders-batch"), &[], None).await;
    assert_invalid_client(&none);
    assert_eq!(
        last_audit(&server)["detail"],
        "no client certificate presented"
    );
    let secret = token_with(
        &server,
        CC,
        &[("x-forwarded-client-cert", &cert("orders-writer").xfcc())],
        Some(("orders-batch", "guess")),
    )
    .await;
    assert_invalid_client(&secret);
    assert_eq!(
        secret.header("www-authenticate"),
        Some("Basic realm=\"tokengate-issuer\"")
    );
}

#[tokio::test]
async fn certificate_headers_are_ignored_unless_the_config_trusts_them() {
    // Nothing trusted: a secretless client cannot get in with either header.
    let server = start(mtls_config(None)).await;
    let leaf = cert("orders-writer");
    for (name, value) in [
        ("x-forwarded-client-cert", leaf.xfcc()),
        ("client-cert", leaf.client_cert()),
    ] {
        let response = token_with(
            &server,
            &format!("{CC}&client_id=orders-batch"),
            &[(name, &value)],
            None,
        )
        .await;
        assert_invalid_client(&response);
        assert_eq!(
            last_audit(&server)["detail"],
            "no trusted client certificate header is configured"
        );
    }
    // Only the named header counts: with client-cert trusted, an XFCC is just another header.
    let server = start(mtls_config(Some(ClientCertHeader::ClientCert))).await;
    let xfcc_only = token_with(
        &server,
        &format!("{CC}&client_id=orders-batch"),
        &[("x-forwarded-client-cert", &leaf.xfcc())],
        None,
    )
    .await;
    assert_invalid_client(&xfcc_only);
    let rfc9440 = token_with(
        &server,
        &format!("{CC}&client_id=orders-batch"),
        &[("client-cert", &leaf.client_cert())],
        None,
    )
    .await;
    assert_eq!(
        claims_of(&rfc9440)["cnf"]["x5t#S256"],
        json!(leaf.thumbprint())
    );
}

#[tokio::test]
async fn secret_clients_are_unaffected_by_certificates() {
    let leaf = cert("orders-writer");
    for header in [None, Some(ClientCertHeader::XForwardedClientCert)] {
        let server = start(mtls_config(header)).await;
        for extra in [vec![], vec![("x-forwarded-client-cert", leaf.xfcc())]] {
            let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let response = token_with(
                &server,
                CC,
                &extra,
                Some(("orders-reader", "orders-reader-secret")),
            )
            .await;
            let claims = claims_of(&response);
            // A secret client's tokens stay Cognito-shaped: no cnf, whatever came along.
            assert!(claims.get("cnf").is_none(), "{claims}");
            assert!(last_audit(&server).get("x5t#S256").is_none());
        }
        // Even a garbage header does not concern a client that authenticates with a secret.
        let garbage = token_with(
            &server,
            CC,
            &[("x-forwarded-client-cert", "Cert=\"%zz\"")],
            Some(("orders-reader", "orders-reader-secret")),
        )
        .await;
        assert_eq!(garbage.status, 200, "{}", garbage.text());
        let no_secret =
            token_with(&server, &format!("{CC}&client_id=orders-reader"), &[], None).await;
        assert_invalid_client(&no_secret);
    }
}

#[tokio::test]
async fn malformed_certificate_headers_are_invalid_client_never_a_crash() {
    let leaf = cert("orders-writer");
    let big = cert("big");
    let pem = utf8_percent_encode(&leaf.pem, NON_ALPHANUMERIC).to_string();
    let xfcc_cases: Vec<String> = vec![
        String::new(),
        "Cert".into(),
        "Cert=\"".into(),
        format!("Cert=\"{pem}"),
        format!("Cert={pem}\""),
        format!("Cert=\"{pem}\";Cert=\"{pem}\""),
        format!("Cert=\"{pem}\",Cert=\"{pem}\""),
        format!("By=spiffe://proxy; Cert=\"{pem}\""),
        format!("Hash={};Cert=\"{pem}\"", "00".repeat(32)),
        format!("Hash=zz;Cert=\"{pem}\""),
        "Cert=\"%zz\"".into(),
        "Cert=\"-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----\"".into(),
        format!("Cert=\"{}\"", "%41".repeat(20_000)),
        big.xfcc(),
        "URI=spiffe://prod/orders-writer".into(),
        "Subject=\"CN=orders-writer,OU=payments,O=Example\"".into(),
    ];
    let server = start(mtls_config(Some(ClientCertHeader::XForwardedClientCert))).await;
    for value in &xfcc_cases {
        let response = token_with(
            &server,
            &format!("{CC}&client_id=orders-batch"),
            &[("x-forwarded-client-cert", value)],
            None,
        )
        .await;
        assert_invalid_client(&response);
    }
    // Bytes that are not text (HTTP allows obs-text in a field value).
    let mut not_text = b"Cert=\"".to_vec();
    not_text.extend([0xff, 0xfe, b'"']);
    let response = raw_token_request(&server, "x-forwarded-client-cert", &not_text).await;
    assert_invalid_client(&response);

    let server = start(mtls_config(Some(ClientCertHeader::ClientCert))).await;
    let der = STANDARD.encode(&leaf.der);
    for value in [
        String::new(),
        der.clone(),
        format!(":{der}"),
        format!(":{}:", &der[..der.len() / 2]),
        ":!!!!:".into(),
        ":AAAA:".into(),
        big.client_cert(),
    ] {
        let response = token_with(
            &server,
            &format!("{CC}&client_id=orders-batch"),
            &[("client-cert", &value)],
            None,
        )
        .await;
        assert_invalid_client(&response);
    }
    // The same header twice is not one certificate.
    let twice = token_with(
        &server,
        &format!("{CC}&client_id=orders-batch"),
        &[
            ("client-cert", &leaf.client_cert()),
            ("client-cert", &leaf.client_cert()),
        ],
        None,
    )
    .await;
    assert_invalid_client(&twice);
    assert_eq!(
        last_audit(&server)["detail"],
        "the client certificate header is repeated"
    );
    // Still serving.
    let fine = token_with(
        &server,
        &format!("{CC}&client_id=orders-batch"),
        &[("client-cert", &leaf.client_cert())],
        None,
    )
    .await;
    assert_eq!(fine.status, 200, "{}", fine.text());
}

/// A token request whose one extra header has arbitrary bytes (the test client's string API
/// cannot carry them).
async fn raw_token_request(server: &TestServer, name: &str, value: &[u8]) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = format!("{CC}&client_id=orders-batch");
    let mut head = format!(
        "POST /oauth2/token HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n{name}: ",
        server.handle.local_addr(),
        body.len()
    )
    .into_bytes();
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n\r\n");
    head.extend_from_slice(body.as_bytes());
    let mut stream = tokio::net::TcpStream::connect(server.handle.local_addr())
        .await
        .expect("connect");
    stream.write_all(&head).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    HttpResponse {
        status,
        headers: Default::default(),
        body: body.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn certificate_clients_revoke_their_tokens_with_their_certificate() {
    let server = start(mtls_config(Some(ClientCertHeader::XForwardedClientCert))).await;
    let xfcc = cert("orders-writer").xfcc();
    let token = token_with(
        &server,
        &format!("{CC}&client_id=orders-batch"),
        &[("x-forwarded-client-cert", &xfcc)],
        None,
    )
    .await
    .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = |xfcc: String| {
        let token = token.clone();
        let server = &server;
        async move {
            request(
                "POST",
                &server.url("/oauth2/revoke"),
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("x-forwarded-client-cert", &xfcc),
                ],
                format!("token={token}&client_id=orders-batch").as_bytes(),
            )
            .await
        }
    };
    assert_invalid_client(&revoke(cert("intruder").xfcc()).await);
    let revoked = revoke(xfcc).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(last_audit(&server)["result"], "revoked");
}

#[tokio::test]
async fn bound_tokens_pass_the_core_only_with_their_certificate() {
    let server = start(mtls_config(Some(ClientCertHeader::XForwardedClientCert))).await;
    let leaf = cert("orders-writer");
    let response = token_with(
        &server,
        &format!("{CC}&client_id=orders-batch"),
        &[("x-forwarded-client-cert", &leaf.xfcc())],
        None,
    )
    .await;
    let token = response.json()["access_token"].as_str().unwrap().to_owned();
    let policy = Policy::builder(server.issuer.issuer_url(POOL).unwrap())
        .client_ids(["orders-batch"])
        .mtls_binding(MtlsBinding::WhenPresent)
        .build()
        .expect("policy");
    let jwks = server.jwks().await.to_string();
    let mut verifier = Verifier::new(vec![Provider::new(
        policy,
        KeyCache::fixed(KeySet::from_json(jwks.as_bytes(), KeySetLimits::default()).expect("JWKS")),
    )])
    .expect("verifier");
    let own = Peer::from_pem(leaf.pem.as_bytes()).unwrap();
    let other = Peer::from_pem(cert("intruder").pem.as_bytes()).unwrap();
    assert!(verifier
        .verify(&token, &Request::at(NOW).peer(&own))
        .is_ok());
    for request in [Request::at(NOW).peer(&other), Request::at(NOW)] {
        let err = verifier.verify(&token, &request).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BindingMismatch);
    }
}

#[tokio::test]
async fn discovery_lists_the_certificate_methods_only_when_a_header_is_trusted() {
    for (header, mtls) in [
        (None, false),
        (Some(ClientCertHeader::XForwardedClientCert), true),
    ] {
        let server = start(mtls_config(header)).await;
        let document = request(
            "GET",
            &server.url(&format!("/{POOL}/.well-known/openid-configuration")),
            &[],
            b"",
        )
        .await
        .json();
        let mut methods = vec!["client_secret_basic", "client_secret_post"];
        if mtls {
            methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
        }
        assert_eq!(
            document["token_endpoint_auth_methods_supported"],
            json!(methods)
        );
        assert_eq!(
            document["revocation_endpoint_auth_methods_supported"],
            json!(methods)
        );
        assert_eq!(
            document.get("tls_client_certificate_bound_access_tokens"),
            mtls.then_some(&json!(true))
        );
    }
}

#[tokio::test]
async fn certificate_clients_have_no_secrets_to_add() {
    let server = start(mtls_config(Some(ClientCertHeader::XForwardedClientCert))).await;
    let hash = tokengate_issuer::hash_secret("a-secret").unwrap();
    let response = server
        .admin("clients/orders-batch/secrets", &json!({ "add_hash": hash }))
        .await;
    assert_eq!(response.status, 400, "{}", response.text());
}
