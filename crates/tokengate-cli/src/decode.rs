//! `tokengate decode`: show what a token says, without believing any of it.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;
use tokengate::token::{decode_segment, parse_object};

use crate::input::{whitespace_hint, TokenArgs};
use crate::{print_json, warn, Failure};

/// Largest token `decode` reads (the policy limit is at most 1 MiB, so nothing verifiable is
/// longer).
const MAX_DECODE_BYTES: usize = 1 << 20;

/// Arguments of `tokengate decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    #[command(flatten)]
    token: TokenArgs,
}

/// Print `{"unverified": true, "header": …, "claims": …}`; exit 2 when the token cannot be
/// decoded.
pub fn run(args: &DecodeArgs) -> Result<ExitCode, Failure> {
    let token = args.token.read(MAX_DECODE_BYTES + 1)?;
    if token.len() > MAX_DECODE_BYTES {
        return Err(Failure::Config(format!(
            "cannot decode token: longer than {MAX_DECODE_BYTES} bytes"
        )));
    }
    let decoded = decode(&token).map_err(|why| {
        if let Some(hint) = whitespace_hint(&token) {
            warn(&hint);
        }
        Failure::Config(format!("cannot decode token: {why}"))
    })?;
    warn("UNVERIFIED: signature, issuer, expiry and every other check were NOT run; use `tokengate verify` before trusting any of this");
    if decoded.signature_len == 0 {
        warn("the signature segment is empty: this token is unsigned and no verifier accepts it");
    }
    print_json(
        &serde_json::json!({
            "unverified": true,
            "header": decoded.header,
            "claims": decoded.claims,
        }),
        true,
    )?;
    Ok(ExitCode::SUCCESS)
}

struct Decoded {
    header: Value,
    claims: Value,
    signature_len: usize,
}

/// Split and decode with the verifier's own strict rules (tokengate::token), except that an
/// empty signature segment is shown rather than refused: people debug unsigned tokens too.
fn decode(token: &str) -> Result<Decoded, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let dots = token.matches('.').count();
        return Err(format!(
            "a compact JWS has exactly three `.`-separated segments, this has {}",
            dots + 1
        ));
    };
    let header = decode_segment(h, "header").map_err(|e| e.message().to_string())?;
    let payload = decode_segment(p, "payload").map_err(|e| e.message().to_string())?;
    let signature = decode_segment(s, "signature").map_err(|e| e.message().to_string())?;
    let header = parse_object(&header).map_err(|e| format!("header: {e}"))?;
    let claims = parse_object(&payload).map_err(|e| format!("payload: {e}"))?;
    Ok(Decoded {
        header: Value::Object(crate::edge::object_from_core(&header)),
        claims: Value::Object(crate::edge::object_from_core(&claims)),
        signature_len: signature.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_segments_are_required() {
        assert!(decode("e30.e30.YQ").is_ok());
        assert!(decode("e30.e30.").is_ok_and(|d| d.signature_len == 0));
        assert!(decode("e30.e30").is_err());
        assert!(decode("e30.e30.YQ.YQ").is_err());
        assert!(decode("e30=.e30.YQ").is_err());
        assert!(decode("e30.e30.YR").is_err());
        assert!(decode("W10.e30.YQ").is_err(), "header [] is not an object");
    }
}
