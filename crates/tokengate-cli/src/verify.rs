//! `tokengate verify`: one provider with the keys of a JWKS file, the policy from flags (or a
//! policy file), one verdict as JSON.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::error::ErrorKind;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use tokengate::{
    Algorithm, CognitoPool, ConfigError, ErrorCode, JwksError, KeySet, KeySetLimits, Policy,
    Provider, Request, Scopes, TokenUse, Verifier,
};

use crate::input::{whitespace_hint, TokenArgs};
use crate::{print_json, warn, Failure};

/// Exit status of a token that was checked and refused.
const EXIT_INVALID: u8 = 1;

/// Arguments of `tokengate verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The issuer's JWK Set, as a file. http(s) URLs are not fetched yet: download the JWKS and
    /// pass the file.
    #[arg(
        long,
        value_name = "FILE_OR_URL",
        required_unless_present = "user_pool_id"
    )]
    jwks: Option<PathBuf>,

    /// Accepted `iss` value, compared byte for byte (repeat for several issuers).
    #[arg(
        long = "issuer",
        value_name = "ISS",
        required_unless_present_any = ["user_pool_id", "policy"]
    )]
    issuers: Vec<String>,

    /// Amazon Cognito user pool id, e.g. eu-west-1_AbCdEf123: accepts both Cognito issuer forms
    /// (cognito-idp and issuer-cognito-idp). Without --jwks it names the pool's JWKS URL.
    #[arg(long, value_name = "POOL")]
    user_pool_id: Option<String>,

    /// Allowed `client_id` (repeat for several app clients). Required unless --any-client.
    #[arg(long = "client-id", value_name = "ID")]
    client_ids: Vec<String>,

    /// DANGER: skip the client_id allow-list, so tokens of every app client of the issuer pass.
    #[arg(long, conflicts_with = "client_ids")]
    any_client: bool,

    /// Scope the token must carry (repeat: every one is required).
    #[arg(long = "scope", value_name = "S")]
    scopes: Vec<String>,

    /// Required `token_use` claim; `none` leaves it unchecked [default: access].
    #[arg(long, value_enum, value_name = "USE")]
    token_use: Option<TokenUseArg>,

    /// Allowed algorithm (repeat for both) [default: RS256].
    #[arg(long = "alg", value_enum, value_name = "ALG")]
    algs: Vec<AlgArg>,

    /// Clock skew allowed on exp, nbf and iat, in seconds (at most 3600) [default: 0].
    #[arg(long, value_name = "SECONDS")]
    leeway: Option<u64>,

    /// Take the whole policy from a JSON file instead of the flags above: the policy object
    /// every tokengate host shares (tests/vectors/README.md).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = [
            "issuers", "user_pool_id", "client_ids", "any_client", "scopes", "token_use", "algs",
            "leeway",
        ]
    )]
    policy: Option<PathBuf>,

    /// Verify as of this time, in seconds since the epoch [default: the system clock].
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<u64>,

    /// base64url SHA-256 thumbprint of the client certificate (RFC 8705 §3.1), for policies
    /// with mtls_binding.
    #[arg(long, value_name = "B64URL")]
    cert_thumbprint: Option<String>,

    /// The client certificate of the connection (PEM or DER file), for client_identities pins
    /// and mtls_binding.
    #[arg(long, value_name = "FILE")]
    peer_cert: Option<PathBuf>,

    #[command(flatten)]
    token: TokenArgs,
}

/// `--token-use` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum TokenUseArg {
    /// `token_use` must be "access".
    Access,
    /// `token_use` must be "id".
    Id,
    /// `token_use` is not checked.
    None,
}

/// `--alg` values: the only two tokengate verifies.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum AlgArg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
}

/// Verify and print `{"valid":true,"claims":…}` (exit 0) or
/// `{"valid":false,"error":…,"status":…,"message":…}` (exit 1).
pub fn run(args: &VerifyArgs) -> Result<ExitCode, Failure> {
    let policy = match &args.policy {
        Some(path) => policy_from_file(path)?,
        None => policy_from_flags(args)?,
    };
    if policy.client_ids().is_none() {
        warn(
            "WARNING: client_id is not checked (--any-client, or client_ids null in the policy): \
             tokens of every app client of the issuer pass",
        );
    }
    let jwks_path = jwks_path(args)?;
    let keys = load_jwks(jwks_path, policy.min_rsa_bits())?;
    let max_token_bytes = policy.max_token_bytes();
    // One-shot process: the verified-token cache would never be hit.
    let mut verifier = Verifier::new(vec![Provider::with_fixed_keys(policy, keys)])
        .map_err(|e| Failure::Config(format!("invalid configuration: {e}")))?
        .with_token_cache(0, 0);
    // A few bytes over the limit: enough for the newline that may be dropped, and a longer
    // input still reads as longer than the limit, so the core answers token_too_large.
    let token = args.token.read(max_token_bytes.saturating_add(3))?;
    let now = match args.now {
        Some(now) => now,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| {
                Failure::Config("the system clock is before 1970; pass --now UNIX_SECONDS".into())
            })?
            .as_secs(),
    };
    let peer = args
        .peer_cert
        .as_deref()
        .map(crate::check::peer_cert_file)
        .transpose()?;
    let mut request = Request::at(now);
    if let Some(p) = peer.as_ref() {
        request = request.peer(p);
    }
    if let Some(thumbprint) = &args.cert_thumbprint {
        request = request.cert_thumbprint(thumbprint);
    }
    let (verdict, status) = match verifier.verify(&token, &request) {
        Ok(verified) => (
            json!({"valid": true, "claims": Value::Object(crate::edge::object_from_core(verified.claims.as_map()))}),
            ExitCode::SUCCESS,
        ),
        Err(e) => {
            if e.code() == ErrorCode::TokenMalformed {
                if let Some(hint) = whitespace_hint(&token) {
                    warn(&hint);
                }
            }
            (
                json!({
                    "valid": false,
                    "error": e.code().as_str(),
                    "status": e.code().http_status(),
                    "message": e.message(),
                }),
                ExitCode::from(EXIT_INVALID),
            )
        }
    };
    print_json(&verdict, false)?;
    Ok(status)
}

fn policy_from_flags(args: &VerifyArgs) -> Result<Policy, Failure> {
    if args.client_ids.is_empty() && !args.any_client {
        return Err(Failure::usage(
            "verify",
            ErrorKind::MissingRequiredArgument,
            "--client-id <ID> is required (repeat it for several app clients); \
             --any-client accepts every client of the issuer instead",
        ));
    }
    let (mut builder, more_issuers) = match (&args.user_pool_id, args.issuers.split_first()) {
        (Some(pool), _) => (
            Policy::cognito(pool).map_err(flag_error)?,
            args.issuers.as_slice(),
        ),
        (None, Some((first, rest))) => (Policy::builder(first.as_str()), rest),
        (None, None) => {
            return Err(Failure::usage(
                "verify",
                ErrorKind::MissingRequiredArgument,
                "--issuer <ISS> or --user-pool-id <POOL> is required",
            ))
        }
    };
    for issuer in more_issuers {
        builder = builder.also_issuer(issuer.as_str());
    }
    if !args.algs.is_empty() {
        builder = builder.algorithms(args.algs.iter().map(|alg| match alg {
            AlgArg::Rs256 => Algorithm::Rs256,
            AlgArg::Es256 => Algorithm::Es256,
        }));
    }
    builder = builder.token_use(match args.token_use.unwrap_or(TokenUseArg::Access) {
        TokenUseArg::Access => Some(TokenUse::Access),
        TokenUseArg::Id => Some(TokenUse::Id),
        TokenUseArg::None => None,
    });
    builder = if args.any_client {
        builder.danger_accept_any_client_id()
    } else {
        builder.client_ids(args.client_ids.iter().map(String::as_str))
    };
    if !args.scopes.is_empty() {
        // Through the policy object's parser so that `--scope "a b"` is refused like
        // `{"all": ["a b"]}` is, instead of making every token scope_insufficient.
        let scopes = Scopes::from_json(
            "scopes",
            &crate::edge::to_core(&json!({ "all": args.scopes })),
        )
        .map_err(flag_error)?;
        builder = builder.require_scopes(scopes);
    }
    if let Some(leeway) = args.leeway {
        builder = builder.leeway_s(leeway);
    }
    builder.build().map_err(flag_error)
}

fn policy_from_file(path: &Path) -> Result<Policy, Failure> {
    let text = std::fs::read(path)
        .map_err(|e| Failure::Config(format!("cannot read policy file {}: {e}", path.display())))?;
    let value: Value = serde_json::from_slice(&text)
        .map_err(|e| Failure::Config(format!("policy file {} is not JSON: {e}", path.display())))?;
    Policy::from_json(&crate::edge::to_core(&value))
        .map_err(|e| Failure::Config(format!("policy file {}: {e}", path.display())))
}

/// The JWKS file to read; a URL (given, or the pool's) is refused with what to do instead.
fn jwks_path(args: &VerifyArgs) -> Result<&Path, Failure> {
    let url = match &args.jwks {
        Some(path) => match path.to_str() {
            Some(s) if is_http_url(s) => s.to_string(),
            _ => return Ok(path),
        },
        None => match &args.user_pool_id {
            Some(pool) => CognitoPool::parse(pool).map_err(flag_error)?.jwks_url(),
            None => {
                return Err(Failure::usage(
                    "verify",
                    ErrorKind::MissingRequiredArgument,
                    "--jwks <FILE_OR_URL> is required",
                ))
            }
        },
    };
    Err(Failure::Config(format!(
        "fetching a JWKS URL is not supported yet; download it and pass the file: \
         curl -fsS -o jwks.json '{url}' and then --jwks jwks.json"
    )))
}

pub(crate) fn is_http_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Parse the JWKS file as a key cache parses a fetched body (KeySet::from_json). A document
/// that is too large, not a key set, or holds no key usable at the policy's min_rsa_bits is a
/// configuration error: no token could pass, so there is no verdict to give.
fn load_jwks(path: &Path, min_rsa_bits: usize) -> Result<KeySet, Failure> {
    let limits = KeySetLimits::default();
    let read_error = |e: std::io::Error| {
        Failure::Config(format!("cannot read JWKS file {}: {e}", path.display()))
    };
    let mut body = Vec::new();
    File::open(path)
        .map_err(read_error)?
        // One byte over the limit is enough for from_json to say "too large".
        .take(
            u64::try_from(limits.max_bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        )
        .read_to_end(&mut body)
        .map_err(read_error)?;
    let jwks_error = |e: JwksError| Failure::Config(format!("JWKS file {}: {e}", path.display()));
    let keys = match KeySet::from_json(&body, limits) {
        Ok(keys) => keys,
        // from_json counts usable keys at the default minimum RSA size; the policy's own
        // minimum decides below, in both directions.
        Err(JwksError::NoUsableKeys) => {
            let doc: Value =
                serde_json::from_slice(&body).map_err(|_| jwks_error(JwksError::NotAKeySet))?;
            KeySet::from_value(&crate::edge::to_core(&doc), limits).map_err(jwks_error)?
        }
        Err(e) => return Err(jwks_error(e)),
    };
    if keys.usable_count(min_rsa_bits) == 0 {
        return Err(jwks_error(JwksError::NoUsableKeys));
    }
    Ok(keys)
}

/// A policy mistake in terms of the flag the user typed.
fn flag_error(e: ConfigError) -> Failure {
    let base = e.field.split(['[', '.']).next().unwrap_or_default();
    let flag = match base {
        "issuers" => "--issuer",
        "user_pool_id" => "--user-pool-id",
        "client_ids" => "--client-id",
        "scopes" => "--scope",
        "algorithms" => "--alg",
        "leeway_s" => "--leeway",
        "token_use" => "--token-use",
        _ => return Failure::Config(format!("invalid policy: {e}")),
    };
    Failure::Config(format!("invalid {flag} ({}): {}", e.field, e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_recognised_case_insensitively() {
        assert!(is_http_url("https://example.com/jwks.json"));
        assert!(is_http_url("HTTP://example.com/jwks.json"));
        assert!(!is_http_url("jwks.json"));
        assert!(!is_http_url("./https:/x"));
        assert!(!is_http_url("http"));
    }
}
