//! Times RS256 verification of the Cognito accept vector through tokengate's precomputed
//! Montgomery path and through jwt-compact's stock rsa 0.9 path, in one process. Built for
//! wasm32-wasip1 by `scripts/bench.sh` and run under Node's WASI, it gives the wasm figure;
//! `cargo run --release --example rs256_compare -p tokengate` gives the native one.

use std::time::Instant;

use jwt_compact::alg::{Rsa, RsaPublicKey};
use jwt_compact::{AlgorithmExt as _, UntrustedToken};
use serde_json::Value;
use tokengate::{KeySet, KeySetLimits, Policy, Provider, Request, Verifier};

const ACCEPT: &str = include_str!("../../../tests/vectors/accept.json");

#[derive(serde::Deserialize)]
struct CognitoClaims {
    #[allow(dead_code)]
    client_id: String,
}

fn per_op_us(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

fn main() {
    let doc: Value = serde_json::from_str(ACCEPT).expect("vectors");
    let case = doc["cases"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["name"] == "cognito_rs256_access_token_is_accepted")
        })
        .expect("accept vector");
    let token = case["token"].as_str().expect("token");
    let now = case["now"].as_u64().expect("now");
    let policy = Policy::from_json(&case["policy"]).expect("policy");
    let keys = KeySet::from_value(&case["jwks"], KeySetLimits::default()).expect("jwks");
    let mut verifier = Verifier::new(vec![Provider::with_fixed_keys(policy, keys)])
        .expect("verifier")
        .with_token_cache(0, 0);
    let req = Request::at(now);

    let jwk = &case["jwks"]["keys"][0];
    let n = tokengate::token::decode_segment(jwk["n"].as_str().expect("n"), "n").expect("n");
    let e = tokengate::token::decode_segment(jwk["e"].as_str().expect("e"), "e").expect("e");
    let stock_key = RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .expect("rsa key");
    let rs256 = Rsa::rs256();

    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let ours = per_op_us(iterations, || {
        assert!(verifier.verify(token, &req).is_ok());
    });
    let stock = per_op_us(iterations, || {
        let untrusted = UntrustedToken::new(token).expect("token");
        assert!(rs256
            .validator::<CognitoClaims>(&stock_key)
            .validate(&untrusted)
            .is_ok());
    });
    let target = if cfg!(target_family = "wasm") {
        "wasm32"
    } else {
        "native"
    };
    println!("| {target} | RS256 uncached, tokengate precomputed | {ours:.1} µs | 1.00 |");
    println!(
        "| {target} | RS256 uncached, jwt-compact + rsa 0.9 | {stock:.1} µs | {:.2} |",
        stock / ours
    );
    println!(
        "{target}: tokengate is {:.1}x faster than the stock rsa 0.9 path",
        stock / ours
    );
}
