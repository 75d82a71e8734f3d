//! `cargo bench -p tokengate`: the verifier's costs, with the stock RS256 path (jwt-compact over
//! rsa 0.9, which recomputes Montgomery constants inside `modpow` on every call) measured in the
//! same run for comparison.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jwt_compact::alg::{Es256, Rsa, RsaPublicKey};
use jwt_compact::{AlgorithmExt as _, UntrustedToken};
use serde_json::Value;
use tokengate::{
    Algorithm, KeySet, KeySetLimits, Policy, Provider, PureRust, Request, SignatureBackend,
    Verifier,
};

struct Case {
    token: String,
    jwks: Value,
    policy: Value,
    now: u64,
}

fn case(file: &str, name: &str) -> Case {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(file);
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let c = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("vector {name}"));
    Case {
        token: c["token"].as_str().unwrap().to_owned(),
        jwks: c["jwks"].clone(),
        policy: c["policy"].clone(),
        now: c["now"].as_u64().unwrap(),
    }
}

fn verifier(c: &Case, cache: usize) -> Verifier {
    let policy = Policy::from_json(&core_json(&c.policy)).unwrap();
    let keys = KeySet::from_value(&core_json(&c.jwks), KeySetLimits::default()).unwrap();
    Verifier::new(vec![Provider::with_fixed_keys(policy, keys)])
        .unwrap()
        .with_token_cache(cache, 600)
}

#[derive(serde::Deserialize)]
struct CognitoClaims {
    #[allow(dead_code)]
    client_id: String,
}

fn bench(c: &mut Criterion) {
    let rs = case("accept.json", "cognito_rs256_access_token_is_accepted");
    let es = first_es256_accept();

    let mut v = verifier(&rs, 0);
    let req = Request::at(rs.now);
    assert!(v.verify(&rs.token, &req).is_ok());
    c.bench_function("rs256_verify_uncached/tokengate", |b| {
        b.iter(|| v.verify(black_box(&rs.token), &req).unwrap())
    });

    // The same token through jwt-compact's stock RS256 (signature + parse only: it does less
    // policy work than tokengate, so the comparison favours it).
    let jwk = &rs.jwks["keys"][0];
    let n = tokengate::token::decode_segment(jwk["n"].as_str().unwrap(), "n").unwrap();
    let e = tokengate::token::decode_segment(jwk["e"].as_str().unwrap(), "e").unwrap();
    let stock_key = RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .unwrap();
    let rs256 = Rsa::rs256();
    c.bench_function("rs256_verify_uncached/jwt-compact_rsa0.9", |b| {
        b.iter(|| {
            let untrusted = UntrustedToken::new(black_box(&rs.token)).unwrap();
            rs256
                .validator::<CognitoClaims>(&stock_key)
                .validate(&untrusted)
                .unwrap()
        })
    });

    // The signature step alone (hash + RSA public operation), as the proxy filter runs it.
    let (input, sig, key) = signature_parts(&rs, Algorithm::Rs256);
    c.bench_function("rs256_signature/tokengate", |b| {
        b.iter(|| assert!(PureRust.verify(&key, Algorithm::Rs256, black_box(input), &sig)))
    });

    let mut v = verifier(&es, 0);
    let es_req = Request::at(es.now);
    assert!(v.verify(&es.token, &es_req).is_ok());
    c.bench_function("es256_verify_uncached/tokengate", |b| {
        b.iter(|| v.verify(black_box(&es.token), &es_req).unwrap())
    });
    let (input, sig, key) = signature_parts(&es, Algorithm::Es256);
    c.bench_function("es256_signature/tokengate", |b| {
        b.iter(|| assert!(PureRust.verify(&key, Algorithm::Es256, black_box(input), &sig)))
    });
    // The same ES256 token through jwt-compact (p256's constant-time scalar multiplications).
    let tokengate::PublicKey::Ec(ec) = &key else {
        panic!("ES256 vector without an EC key")
    };
    let stock_es = *ec.verifying_key();
    c.bench_function("es256_verify_uncached/jwt-compact_p256", |b| {
        b.iter(|| {
            let untrusted = UntrustedToken::new(black_box(&es.token)).unwrap();
            Es256
                .validator::<serde_json::Map<String, Value>>(&stock_es)
                .validate(&untrusted)
                .unwrap()
        })
    });

    let mut v = verifier(&rs, 1024);
    assert!(v.verify(&rs.token, &req).is_ok());
    c.bench_function("rs256_cache_hit/tokengate", |b| {
        b.iter(|| {
            let ok = v.verify(black_box(&rs.token), &req).unwrap();
            debug_assert!(ok.cached);
            ok
        })
    });

    // The whole request around the same cached token: method and path rules, route choice,
    // bearer parsing, the answer and forwarded claims (an HTTP vector's gate configuration).
    let http = http_case("paths.json", "catchall", "root_path_with_token_catchall");
    let mut gate = tokengate::Gate::from_json(http.config.as_bytes(), http.now, 1).unwrap();
    let values = [http.authorization.as_bytes()];
    let facts = |target| tokengate::RequestFacts {
        method: "GET",
        target,
        authorization: &values,
        peer: None,
        client_cert: &[],
        scopes: None,
        clock: tokengate::Clock::At(http.now),
        audit: false,
    };
    assert!(matches!(
        gate.decide(&facts("/")),
        tokengate::Outcome::Allow(_)
    ));
    c.bench_function("gate_decide_cache_hit/tokengate", |b| {
        b.iter(|| gate.decide(black_box(&facts("/orders/7?x=1"))))
    });
    // The same request with a policy feed in force: 10,000 revoked token ids, 1,000 revoked
    // clients and an allow-list of 1,000 clients (the token's among them).
    let mut fed_config: Value = serde_json::from_str(&http.config).unwrap();
    fed_config["feed"] = serde_json::json!({"uri": "https://feed.example/p.json", "unsigned": true,
                                            "max_entries": 100_000});
    let mut fed =
        tokengate::Gate::from_json(fed_config.to_string().as_bytes(), http.now, 1).unwrap();
    let issuer = fed_config["providers"][0]["issuer"].clone();
    let mut allowed: Vec<Value> = (0..999)
        .map(|i| Value::from(format!("client-{i}")))
        .collect();
    allowed.push(Value::from("3q9f1k7c2m8v4n6b0x5z1l2h7d"));
    let doc = serde_json::json!({"format": 1, "version": 1, "issued_at": 0, "providers": {
        issuer.as_str().unwrap(): {
            "client_ids": allowed,
            "revoke": {
                "jti": (0..10_000).map(|i| format!("jti-{i}")).collect::<Vec<_>>(),
                "client_ids": (0..1_000).map(|i| format!("gone-{i}")).collect::<Vec<_>>(),
            }
        }
    }});
    fed.poll_feed(http.now);
    fed.on_feed_response(http.now, 200, None, None, doc.to_string().as_bytes())
        .unwrap();
    assert!(matches!(
        fed.decide(&facts("/")),
        tokengate::Outcome::Allow(_)
    ));
    c.bench_function("gate_decide_cache_hit_with_feed/tokengate", |b| {
        b.iter(|| fed.decide(black_box(&facts("/orders/7?x=1"))))
    });
    // The same request from a client pinned to its SPIFFE ID: the connection's certificate
    // facts from the host, or the whole certificate from a trusted Client-Cert header (read
    // from DER on every request).
    let pem = std::fs::read(format!(
        "{}/../../tests/vectors/keys/certs/orders-writer.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let peer = tokengate::peer::Peer::from_pem(&pem).unwrap();
    let pinned = http_case("identity.json", "connection", "conn_uri_san_exact_match");
    let mut pinned_gate =
        tokengate::Gate::from_json(pinned.config.as_bytes(), pinned.now, 1).unwrap();
    let pinned_values = [pinned.authorization.as_bytes()];
    let der: String = String::from_utf8(pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let header = format!(":{der}:");
    let header_values = [header.as_bytes()];
    let pinned_facts = |peer, client_cert| tokengate::RequestFacts {
        method: "GET",
        target: "/api/orders",
        authorization: &pinned_values,
        peer,
        client_cert,
        scopes: None,
        clock: tokengate::Clock::At(pinned.now),
        audit: false,
    };
    assert!(matches!(
        pinned_gate.decide(&pinned_facts(Some(&peer), &[])),
        tokengate::Outcome::Allow(_)
    ));
    c.bench_function("gate_decide_cache_hit_pinned_peer/tokengate", |b| {
        b.iter(|| pinned_gate.decide(black_box(&pinned_facts(Some(&peer), &[]))))
    });
    let by_header = http_case("identity.json", "client_cert_header", "header_match");
    let mut header_gate =
        tokengate::Gate::from_json(by_header.config.as_bytes(), by_header.now, 1).unwrap();
    assert!(matches!(
        header_gate.decide(&pinned_facts(None, &header_values)),
        tokengate::Outcome::Allow(_)
    ));
    c.bench_function(
        "gate_decide_cache_hit_pinned_client_cert_header/tokengate",
        |b| b.iter(|| header_gate.decide(black_box(&pinned_facts(None, &header_values)))),
    );
    c.bench_function("gate_refuse_path/tokengate", |b| {
        b.iter(|| gate.decide(black_box(&facts("/health/..;/admin"))))
    });

    let mut v = verifier(&rs, 0);
    let malformed = rs.token.replacen('.', "!", 1);
    c.bench_function("reject_malformed/tokengate", |b| {
        b.iter(|| v.verify(black_box(&malformed), &req).unwrap_err())
    });
    let unknown = case("header.json", "kid_not_in_jwks_is_unknown");
    let mut vu = verifier(&unknown, 0);
    let ureq = Request::at(unknown.now);
    assert_eq!(
        vu.verify(&unknown.token, &ureq)
            .unwrap_err()
            .code()
            .as_str(),
        "kid_unknown"
    );
    c.bench_function("reject_unknown_kid/tokengate", |b| {
        b.iter(|| vu.verify(black_box(&unknown.token), &ureq).unwrap_err())
    });
    let huge = "A".repeat(1 << 20);
    c.bench_function("reject_1mib_token/tokengate", |b| {
        b.iter(|| v.verify(black_box(&huge), &req).unwrap_err())
    });
}

/// Signing input, signature octets and the selected key of a vector's token.
fn signature_parts(c: &Case, alg: Algorithm) -> (&[u8], Vec<u8>, tokengate::PublicKey) {
    let dot = c.token.rfind('.').unwrap();
    let sig = tokengate::token::decode_segment(&c.token[dot + 1..], "signature").unwrap();
    let header =
        tokengate::token::decode_segment(c.token.split('.').next().unwrap(), "header").unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    let keys = KeySet::from_value(&core_json(&c.jwks), KeySetLimits::default()).unwrap();
    let key = keys
        .select(header["kid"].as_str().unwrap(), alg, 0)
        .unwrap()
        .clone();
    (&c.token.as_bytes()[..dot], sig, key)
}

fn first_es256_accept() -> Case {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/accept.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let c = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["expect"] == "accept" && c["policy"]["algorithms"] == serde_json::json!(["ES256"])
        })
        .expect("an ES256 accept vector");
    Case {
        token: c["token"].as_str().unwrap().to_owned(),
        jwks: c["jwks"].clone(),
        policy: c["policy"].clone(),
        now: c["now"].as_u64().unwrap(),
    }
}

struct HttpCase {
    config: String,
    authorization: String,
    now: u64,
}

fn http_case(file: &str, config: &str, name: &str) -> HttpCase {
    let path = format!(
        "{}/../../tests/vectors/http/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let c = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    HttpCase {
        config: doc["configs"][config].to_string(),
        authorization: c["request"]["authorization"][0]
            .as_str()
            .unwrap()
            .to_owned(),
        now: c["now"].as_u64().unwrap(),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);

/// A `serde_json` value as the core's JSON value (through its text).
fn core_json(v: &Value) -> tokengate::json::Value {
    tokengate::json::parse(v.to_string().as_bytes()).expect("JSON")
}
