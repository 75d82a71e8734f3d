//! Times RS256 and ES256 verification of the accept vectors through tokengate (the whole
//! uncached verifier, and the signature step alone) and through jwt-compact's stock paths (rsa
//! 0.9, p256), in one process. `cargo run --release --example rs256_compare -p tokengate` gives
//! the native figures; built for wasm32-wasip1 (with or without `+simd128`) and run under Node's
//! WASI it gives the wasm ones: `scripts/lib/bench-crypto.mjs` runs it that way, interleaved with
//! node:crypto, and `scripts/bench.sh` prints the table.
//!
//! Arguments: `[MS]` milliseconds per measurement (default 300); `--json` prints one JSON object
//! of microseconds per operation instead of table rows.

use std::time::{Duration, Instant};

use jwt_compact::alg::{Es256, Rsa, RsaPublicKey};
use jwt_compact::{AlgorithmExt as _, UntrustedToken};
use serde_json::Value;
use tokengate::{
    Algorithm, KeySet, KeySetLimits, Policy, Provider, PureRust, Request, SignatureBackend,
    Verifier,
};

const ACCEPT: &str = include_str!("../../../tests/vectors/accept.json");

#[derive(serde::Deserialize)]
struct AnyClaims {}

/// Microseconds per call of `f`: warm up for a third of `budget` (so V8 tiers the wasm up),
/// then run batches until `budget` has passed.
fn per_op_us(budget: Duration, mut f: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < budget / 3 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u32;
    while n == 0 || start.elapsed() < budget {
        for _ in 0..8 {
            f();
        }
        n += 8;
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

struct Case {
    token: String,
    now: u64,
    policy: Value,
    jwks: Value,
}

impl Case {
    fn find(doc: &Value, pick: impl Fn(&Value) -> bool) -> Case {
        let c = doc["cases"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| pick(c)))
            .expect("accept vector");
        Case {
            token: c["token"].as_str().expect("token").to_owned(),
            now: c["now"].as_u64().expect("now"),
            policy: c["policy"].clone(),
            jwks: c["jwks"].clone(),
        }
    }

    fn keys(&self) -> KeySet {
        KeySet::from_value(&core_json(&self.jwks), KeySetLimits::default()).expect("jwks")
    }

    fn verifier(&self) -> Verifier {
        let policy = Policy::from_json(&core_json(&self.policy)).expect("policy");
        Verifier::new(vec![Provider::with_fixed_keys(policy, self.keys())])
            .expect("verifier")
            .with_token_cache(0, 0)
    }

    /// Signing input, signature octets and the key the token names.
    fn parts(&self, alg: Algorithm) -> (&[u8], Vec<u8>, tokengate::PublicKey) {
        let dot = self.token.rfind('.').expect("signature");
        let sig = tokengate::token::decode_segment(&self.token[dot + 1..], "signature")
            .expect("signature");
        let header = tokengate::token::decode_segment(
            self.token.split('.').next().expect("header"),
            "header",
        )
        .expect("header");
        let header: Value = serde_json::from_slice(&header).expect("header");
        let kid = header["kid"].as_str().expect("kid");
        let key = self.keys().select(kid, alg, 0).expect("key").clone();
        (&self.token.as_bytes()[..dot], sig, key)
    }

    fn jwk(&self) -> &Value {
        &self.jwks["keys"][0]
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let budget = Duration::from_millis(args.iter().find_map(|a| a.parse().ok()).unwrap_or(300));
    let doc: Value = serde_json::from_str(ACCEPT).expect("vectors");
    let rs = Case::find(&doc, |c| {
        c["name"] == "cognito_rs256_access_token_is_accepted"
    });
    let es = Case::find(&doc, |c| {
        c["expect"] == "accept" && c["policy"]["algorithms"] == serde_json::json!(["ES256"])
    });

    let mut results: Vec<(&str, &str, f64)> = Vec::new();

    let mut verifier = rs.verifier();
    let req = Request::at(rs.now);
    results.push((
        "rs256_verify",
        "RS256 uncached verification, tokengate",
        per_op_us(budget, || assert!(verifier.verify(&rs.token, &req).is_ok())),
    ));
    let (input, sig, key) = rs.parts(Algorithm::Rs256);
    results.push((
        "rs256_signature",
        "RS256 signature step only, tokengate",
        per_op_us(budget, || {
            assert!(PureRust.verify(&key, Algorithm::Rs256, input, &sig))
        }),
    ));
    let decode = |field: &'static str| {
        tokengate::token::decode_segment(rs.jwk()[field].as_str().expect("jwk"), field)
            .expect("jwk")
    };
    let stock_key = RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&decode("n")),
        rsa::BigUint::from_bytes_be(&decode("e")),
    )
    .expect("rsa key");
    let rs256 = Rsa::rs256();
    results.push((
        "rs256_jwt_compact",
        "RS256, jwt-compact + rsa 0.9 (signature + parse)",
        per_op_us(budget, || {
            let untrusted = UntrustedToken::new(&rs.token).expect("token");
            assert!(rs256
                .validator::<AnyClaims>(&stock_key)
                .validate(&untrusted)
                .is_ok());
        }),
    ));

    let mut verifier = es.verifier();
    let req = Request::at(es.now);
    results.push((
        "es256_verify",
        "ES256 uncached verification, tokengate",
        per_op_us(budget, || assert!(verifier.verify(&es.token, &req).is_ok())),
    ));
    let (input, sig, key) = es.parts(Algorithm::Es256);
    results.push((
        "es256_signature",
        "ES256 signature step only, tokengate",
        per_op_us(budget, || {
            assert!(PureRust.verify(&key, Algorithm::Es256, input, &sig))
        }),
    ));
    let tokengate::PublicKey::Ec(ec) = &key else {
        panic!("ES256 vector without an EC key")
    };
    let stock_key = *ec.verifying_key();
    results.push((
        "es256_jwt_compact",
        "ES256, jwt-compact + p256 (signature + parse)",
        per_op_us(budget, || {
            let untrusted = UntrustedToken::new(&es.token).expect("token");
            assert!(Es256
                .validator::<AnyClaims>(&stock_key)
                .validate(&untrusted)
                .is_ok());
        }),
    ));

    // Key set parsing: RSA keys get R² mod n, P-256 keys their comb tables (once per JWKS).
    results.push((
        "rs256_jwks_parse",
        "RS256 JWKS parse (2 keys: Montgomery constants)",
        per_op_us(budget, || drop(rs.keys())),
    ));
    results.push((
        "es256_jwks_parse",
        "ES256 JWKS parse (2 keys: comb tables)",
        per_op_us(budget, || drop(es.keys())),
    ));

    if json {
        let obj: serde_json::Map<String, Value> = results
            .iter()
            .map(|(k, _, us)| ((*k).to_owned(), Value::from(*us)))
            .collect();
        println!("{}", Value::Object(obj));
        return;
    }
    let target = if cfg!(all(target_family = "wasm", target_feature = "simd128")) {
        "wasm32+simd128"
    } else if cfg!(target_family = "wasm") {
        "wasm32"
    } else {
        "native"
    };
    for (_, what, us) in &results {
        println!("| {target} | {what} | {us:.1} µs |");
    }
}

/// A `serde_json` value as the core's JSON value (through its text).
fn core_json(v: &Value) -> tokengate::json::Value {
    tokengate::json::parse(v.to_string().as_bytes()).expect("JSON")
}
