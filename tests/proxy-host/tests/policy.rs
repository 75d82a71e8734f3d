//! Rate limiting across workers, report mode, RFC 8705 certificate binding, and client
//! certificate pins with Envoy's connection properties.

mod common;

use common::*;
use serde_json::{json, Value};
use tokengate_proxy_host::{Env, Request, Response};

#[test]
fn rate_limit_is_a_token_bucket_per_client_shared_by_workers() {
    let env = Env::at(NOW);
    let cfg = config(json!({"rate_limit": {"per_client_per_s": 1, "burst": 3}}));
    let mut w1 = start(&env, &cfg);
    let mut w2 = start(&env, &cfg);
    let a = token("orders/read");
    let b = key_a().sign(&claims("orders/read", json!({"client_id": "client-b"})));
    assert!(matches!(
        w1.request(Request::get("/orders").bearer(&a)).unwrap(),
        Response::Forwarded(_)
    ));
    assert!(matches!(
        w2.request(Request::get("/orders").bearer(&a)).unwrap(),
        Response::Forwarded(_)
    ));
    assert!(matches!(
        w1.request(Request::get("/orders").bearer(&a)).unwrap(),
        Response::Forwarded(_)
    ));
    let r = w2.request(Request::get("/orders").bearer(&a)).unwrap();
    assert_denied(&r, 429, "rate_limited");
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(r.header("www-authenticate"), None);
    // Another client has its own bucket.
    assert!(matches!(
        w2.request(Request::get("/orders").bearer(&b)).unwrap(),
        Response::Forwarded(_)
    ));
    // Refill at the sustained rate.
    env.advance_ms(1_000);
    w1.tick().unwrap();
    w2.tick().unwrap();
    assert!(matches!(
        w1.request(Request::get("/orders").bearer(&a)).unwrap(),
        Response::Forwarded(_)
    ));
    assert_denied(
        &w1.request(Request::get("/orders").bearer(&a)).unwrap(),
        429,
        "rate_limited",
    );
    w1.tick().unwrap();
    w2.tick().unwrap();
    assert_eq!(env.metric("tokengate_denied_total.code.rate_limited"), 2);
    // Anonymous routes and refused tokens do not draw from any bucket.
    for _ in 0..5 {
        w1.request(Request::get("/health")).unwrap();
    }
}

#[test]
fn slow_rates_ask_clients_to_wait_longer() {
    let env = Env::at(NOW);
    let mut vm = start(
        &env,
        &config(json!({"rate_limit": {"per_client_per_s": 0.2, "burst": 1}})),
    );
    let a = token("orders/read");
    vm.request(Request::get("/orders").bearer(&a)).unwrap();
    let r = vm.request(Request::get("/orders").bearer(&a)).unwrap();
    assert_denied(&r, 429, "rate_limited");
    assert_eq!(r.header("retry-after").as_deref(), Some("5"));
}

#[test]
fn report_mode_decides_logs_and_counts_but_lets_everything_through() {
    let env = Env::at(NOW);
    let mut vm = start(
        &env,
        &config(json!({"mode": "report", "rate_limit": {"per_client_per_s": 1, "burst": 1}})),
    );
    env.clear_filter_states();
    let t = token("orders/read");
    let cases = [
        (Request::get("/orders"), "token_missing", 401),
        (
            Request::get("/orders").bearer("garbage"),
            "token_malformed",
            401,
        ),
        (
            Request::new("POST", "/orders").bearer(&t),
            "scope_insufficient",
            403,
        ),
    ];
    for (req, code, status) in cases {
        let r = vm.request(req).unwrap();
        let Response::Forwarded(headers) = &r else {
            panic!("{code}: {r:?}")
        };
        assert!(
            !headers.iter().any(|(k, _)| k.starts_with("x-tokengate-")),
            "{code}: no claims forwarded for a denied request"
        );
        let last = env.filter_states().pop().unwrap();
        let line: Value = serde_json::from_slice(&last.value).unwrap();
        assert_eq!(line["decision"], "deny", "{code}");
        assert_eq!(line["code"], code);
        assert_eq!(line["status"], status);
        assert_eq!(line["mode"], "report");
        vm.tick().unwrap();
        assert_eq!(
            env.metric(&format!("tokengate_denied_total.code.{code}")),
            1
        );
    }
    // Allowed requests are forwarded with claims as in enforce mode; the rate limit only reports.
    let r = vm.request(Request::get("/orders").bearer(&t)).unwrap();
    assert_eq!(r.header("x-tokengate-client-id").as_deref(), Some(CLIENT));
    let r = vm.request(Request::get("/orders").bearer(&t)).unwrap();
    assert!(matches!(r, Response::Forwarded(_)));
    vm.tick().unwrap();
    assert_eq!(env.metric("tokengate_denied_total.code.rate_limited"), 1);
    assert_eq!(env.metric("tokengate_allowed_total"), 1);
}

fn bound_token(cert: &[u8], scope: &str) -> String {
    key_a().sign(&claims(
        scope,
        json!({"cnf": {"x5t#S256": sha256_b64url(cert)}}),
    ))
}

#[test]
fn mtls_binding_compares_cnf_with_the_peer_certificate() {
    let env = Env::at(NOW);
    let cert_a = b"DER bytes of client certificate A";
    let cert_b = b"DER bytes of client certificate B";
    let bound = bound_token(cert_a, "orders/read");
    let plain = token("orders/read");

    let mut vm = start(&env, &config(json!({"mtls_binding": "when_present"})));
    let with = |req: Request, cert: &[u8]| req.peer_certificate_sha256(&sha256_hex(cert));
    let r = vm
        .request(with(Request::get("/orders").bearer(&bound), cert_a))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "{r:?}");
    let r = vm
        .request(with(Request::get("/orders").bearer(&bound), cert_b))
        .unwrap();
    assert_denied(&r, 401, "binding_mismatch");
    let r = vm.request(Request::get("/orders").bearer(&bound)).unwrap();
    assert_denied(&r, 401, "binding_mismatch");
    let r = vm.request(Request::get("/orders").bearer(&plain)).unwrap();
    assert!(
        matches!(r, Response::Forwarded(_)),
        "when_present: unbound tokens pass"
    );
    // A malformed digest property counts as no certificate.
    let r = vm
        .request(
            Request::get("/orders")
                .bearer(&bound)
                .peer_certificate_sha256("zz"),
        )
        .unwrap();
    assert_denied(&r, 401, "binding_mismatch");

    let mut vm = start(&env, &config(json!({"mtls_binding": "required"})));
    let r = vm
        .request(with(Request::get("/orders").bearer(&plain), cert_a))
        .unwrap();
    assert_denied(&r, 401, "binding_mismatch");
    let r = vm
        .request(with(Request::get("/orders").bearer(&bound), cert_a))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)));

    let mut vm = start(&env, &config(json!({"mtls_binding": "off"})));
    let r = vm
        .request(with(Request::get("/orders").bearer(&bound), cert_b))
        .unwrap();
    assert!(matches!(r, Response::Forwarded(_)), "off: cnf ignored");
}

#[test]
fn pins_are_checked_against_envoys_connection_properties() {
    let env = Env::at(NOW);
    let cert = b"DER bytes of the orders workload's certificate";
    let hex = sha256_hex(cert);
    let workload = |req: Request, uri: &str| {
        req.peer_certificate(
            Some(&hex),
            Some("CN=orders,OU=payments,O=Example"),
            &[uri],
            &["orders.internal"],
        )
    };
    let read = || Request::get("/orders").bearer(&token("orders/read"));
    let pins = [
        json!({"uri_san": "spiffe://prod/orders"}),
        json!({"uri_san": "spiffe://prod/*"}),
        json!({"dns_san": "ORDERS.internal"}),
        json!({"subject": "CN=orders, OU=payments, O=Example"}),
        json!({"sha256": hex.to_ascii_uppercase()}),
        json!({"sha256": sha256_b64url(cert)}),
    ];
    for pin in pins {
        let mut c: Value = serde_json::from_str(&config(json!({}))).unwrap();
        c["providers"][0]["client_identities"] = json!({ CLIENT: [pin.clone()] });
        let mut vm = start(&env, &c.to_string());
        let r = vm
            .request(workload(read(), "spiffe://prod/orders"))
            .unwrap();
        assert!(matches!(r, Response::Forwarded(_)), "{pin}: {r:?}");
        let r = vm.request(read()).unwrap();
        assert_denied(&r, 401, "identity_missing");
        assert_eq!(
            r.header("www-authenticate").as_deref(),
            Some(r#"Bearer realm="tokengate", error="invalid_token""#)
        );
        // Another workload of the same CA: other SAN, subject and digest.
        let other = read().peer_certificate(
            Some(&sha256_hex(b"another certificate")),
            Some("CN=intruder,O=Example"),
            &["spiffe://staging/intruder"],
            &["intruder.internal"],
        );
        assert_denied(&vm.request(other).unwrap(), 401, "identity_mismatch");
    }
}

#[test]
fn certificate_headers_never_reach_the_origin_from_a_client() {
    let env = Env::at(NOW);
    let forged = |req: Request| {
        req.header("Client-Cert", ":MIIBforged=:")
            .header("Client-Cert-Chain", ":MIIBforged=:")
            .header(
                "X-Amzn-Mtls-Clientcert-Leaf",
                "-----BEGIN%20CERTIFICATE-----",
            )
            .header("X-Amzn-Mtls-Clientcert-Subject", "CN=admin")
            .header("X-Amzn-Mtls-Clientcert", "forged")
    };
    let cert_headers = |r: &Response| -> Vec<String> {
        let Response::Forwarded(h) = r else {
            panic!("{r:?}")
        };
        h.iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k.starts_with("client-cert") || k.starts_with("x-amzn-mtls-clientcert"))
            .collect()
    };
    // A configuration that never looks at certificates still removes them: the origin (or a
    // filter after this one) might.
    let mut vm = start(&env, &config(json!({})));
    for req in [
        forged(Request::get("/health")),
        forged(Request::get("/orders").bearer(&token("orders/read"))),
    ] {
        let r = vm.request(req).unwrap();
        assert_eq!(cert_headers(&r), Vec::<String>::new());
    }
    // A trusted source keeps its own family (the trusted proxy wrote it) and removes the other.
    for (source, kept) in [
        (
            "client_cert_header",
            &["client-cert", "client-cert-chain"][..],
        ),
        (
            "alb",
            &[
                "x-amzn-mtls-clientcert-leaf",
                "x-amzn-mtls-clientcert-subject",
                "x-amzn-mtls-clientcert",
            ][..],
        ),
    ] {
        let mut vm = start(
            &env,
            &config(json!({"client_certificate": {"source": source}})),
        );
        let r = vm.request(forged(Request::get("/health"))).unwrap();
        assert_eq!(cert_headers(&r), kept, "source {source}");
    }
}
