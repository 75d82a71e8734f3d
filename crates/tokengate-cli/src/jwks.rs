//! `tokengate jwks`: what the verifier makes of each entry of a JWK Set.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::{json, Map, Value};
use tokengate::{Algorithm, KeySet, KeySetLimits, PublicKey};

use crate::{print_json, Failure};

/// Arguments of `tokengate jwks`.
#[derive(Debug, Args)]
pub struct JwksArgs {
    /// JWK Set file.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Smallest RSA modulus counted as usable, as in the policy's min_rsa_bits.
    #[arg(long, value_name = "BITS", default_value_t = 2048)]
    min_rsa_bits: usize,
}

/// Print `{"keys": [...], "usable_keys": n, "accepted": bool[, "error": ...]}`.
pub fn run(args: &JwksArgs) -> Result<ExitCode, Failure> {
    let path = args.file.display();
    let body = std::fs::read(&args.file)
        .map_err(|e| Failure::Config(format!("cannot read JWKS file {path}: {e}")))?;
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| Failure::Config(format!("JWKS file {path} is not JSON: {e}")))?;
    let limits = KeySetLimits::default();
    let set = KeySet::from_value(&crate::edge::to_core(&doc), limits)
        .map_err(|e| Failure::Config(format!("JWKS file {path}: {e}")))?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let listed: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, jwk)| describe(&set, jwk, i < limits.max_keys, args.min_rsa_bits))
        .collect();
    // Counted from the listing, not KeySet::usable_count: entries sharing a kid count there,
    // but select refuses them.
    let usable = listed
        .iter()
        .filter(|k| k.get("usable") == Some(&Value::Bool(true)))
        .count();
    // What `verify` (and a key cache) would say about this file as a whole.
    let accepted = KeySet::from_json(&body, limits).map(|_| ());
    let mut out = Map::new();
    out.insert("keys".into(), Value::Array(listed));
    out.insert("usable_keys".into(), json!(usable));
    out.insert("accepted".into(), json!(accepted.is_ok() && usable > 0));
    if let Err(e) = accepted {
        out.insert("error".into(), json!(e.to_string()));
    } else if usable == 0 {
        out.insert(
            "error".into(),
            json!(format!(
                "no key is usable with RSA keys of at least {} bits",
                args.min_rsa_bits
            )),
        );
    }
    print_json(&Value::Object(out), true)?;
    Ok(if usable > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One entry: its identifying members, and the algorithms it can verify or why none.
fn describe(set: &KeySet, jwk: &Value, within_limit: bool, min_rsa_bits: usize) -> Value {
    let member = |name: &str| jwk.get(name).cloned().unwrap_or(Value::Null);
    let mut out = Map::new();
    for name in ["kid", "kty", "alg", "use", "crv"] {
        if jwk.get(name).is_some() {
            out.insert(name.into(), member(name));
        }
    }
    let verdict = match jwk.get("kid").and_then(Value::as_str) {
        _ if !within_limit => Err("ignored: beyond the key limit of the JWKS parser".to_string()),
        _ if !jwk.is_object() => Err("not a JSON object".to_string()),
        None => {
            Err("no string kid: keys are only ever selected by kid, so it is never used".into())
        }
        Some(kid) => usable_algorithms(set, kid, jwk, min_rsa_bits, &mut out),
    };
    match verdict {
        Ok(algs) => {
            out.insert("usable".into(), json!(true));
            out.insert("algorithms".into(), json!(algs));
        }
        Err(reason) => {
            out.insert("usable".into(), json!(false));
            out.insert("reason".into(), json!(reason));
        }
    }
    Value::Object(out)
}

/// The algorithms `kid` verifies, through the same `select` the verifier runs at step 7.
fn usable_algorithms(
    set: &KeySet,
    kid: &str,
    jwk: &Value,
    min_rsa_bits: usize,
    out: &mut Map<String, Value>,
) -> Result<Vec<&'static str>, String> {
    let mut usable = Vec::new();
    let mut first_error = None;
    // Try the algorithm the key type suggests first, so its error is the one reported.
    let order = match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => [Algorithm::Es256, Algorithm::Rs256],
        _ => [Algorithm::Rs256, Algorithm::Es256],
    };
    for alg in order {
        // With no size floor the key itself comes back, which tells its RSA size.
        if let Ok(PublicKey::Rsa(key)) = set.select(kid, alg, 0) {
            out.insert("bits".into(), json!(key.bits()));
        }
        match set.select(kid, alg, min_rsa_bits) {
            Ok(_) => usable.push(alg.as_str()),
            Err(e) => {
                first_error.get_or_insert_with(|| e.message().to_string());
            }
        }
    }
    if usable.is_empty() {
        Err(first_error.unwrap_or_else(|| "not usable".into()))
    } else {
        Ok(usable)
    }
}
