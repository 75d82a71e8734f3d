//! A fuzz-style run for CI: a fixed number of mutations of every conformance vector (token and
//! JWKS) go through `verify` and JWKS parsing. Any panic fails the test; any mutated token that
//! is accepted is a failure: strict base64url is injective and the signature covers the header
//! and payload, so a different token string can never carry the same valid signature. Deterministic: the same seed gives the same inputs.
//! `TOKENGATE_FUZZ_ITERATIONS` raises the count for a longer local run.

use std::path::Path;

use tokengate::json;
use tokengate::{KeySet, KeySetLimits, Policy, Provider, Request, Verifier};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \"{}:,\\\x00\xff";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 if at < out.len() => out[at] = ALPHABET[rng.below(ALPHABET.len())],
            2 => out.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            3 if at < out.len() => {
                out.remove(at);
            }
            4 => {
                // Splice a copy of another region (duplicates segments, members, dots).
                let from = rng.below(out.len());
                let len = rng.below(64).min(out.len() - from);
                let chunk: Vec<u8> = out[from..from + len].to_vec();
                out.splice(at..at, chunk);
            }
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn mutated_vectors_never_panic_and_are_never_accepted() {
    let iterations: usize = std::env::var("TOKENGATE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30_000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") && !path.ends_with("size.json") {
            let doc = json::parse(&std::fs::read(&path).unwrap()).unwrap();
            cases.extend(doc["cases"].as_array().unwrap().iter().cloned());
        }
    }
    cases.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut rng = Rng(0x5EED_7015_E6A7_E000);
    let mut accepted_mutants = Vec::new();
    for i in 0..iterations {
        let case = &cases[i % cases.len()];
        let policy = Policy::from_json(&case["policy"]).unwrap();
        let jwks_bytes = case["jwks"].to_json().into_bytes();
        let keys = if rng.below(8) == 0 {
            // Mutate the JWKS too; an unparsable one leaves an empty key set.
            let mutated = mutate(&mut rng, &jwks_bytes);
            let _ = KeySet::from_json(&mutated, KeySetLimits::default());
            json::parse(&mutated)
                .ok()
                .and_then(|v| KeySet::from_value(&v, KeySetLimits::default()).ok())
                .unwrap_or_default()
        } else {
            KeySet::from_value(&case["jwks"], KeySetLimits::default()).unwrap()
        };
        let mut verifier = Verifier::new(vec![Provider::with_fixed_keys(policy, keys)]).unwrap();
        let original = case["token"].as_str().unwrap();
        let mutated = mutate(&mut rng, original.as_bytes());
        let Ok(token) = String::from_utf8(mutated) else {
            continue;
        };
        if token == original {
            continue;
        }
        let now = case["now"].as_u64().unwrap();
        if verifier.verify(&token, &Request::at(now)).is_ok() {
            accepted_mutants.push(format!("{}: {token}", case["name"]));
        }
    }
    eprintln!("fuzz: {iterations} iterations over {} vectors", cases.len());
    assert!(
        accepted_mutants.is_empty(),
        "mutated tokens accepted:\n{}",
        accepted_mutants.join("\n")
    );
}
