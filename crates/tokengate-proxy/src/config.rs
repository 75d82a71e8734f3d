//! The filter's side of the configuration: the core parses and validates the whole document
//! ([`tokengate::Config`]); this module only checks that what the filter must fetch can be
//! fetched from Envoy (through a cluster).

use tokengate::{Config, ConfigError};

/// Parse the plugin configuration and check the filter can serve it.
///
/// # Errors
/// The core's error for the first mistake, or a provider JWKS or policy feed with no cluster to
/// be fetched from.
pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
    let config = Config::from_json(bytes)?;
    for (i, p) in config.providers.iter().enumerate() {
        if let Some(source) = &p.source {
            if source.cluster.is_none() {
                return Err(ConfigError {
                    field: format!("providers[{i}].jwks.cluster"),
                    message: String::from(
                        "is required: the Envoy filter fetches a JWKS through a cluster \
                         (\"cluster\" and \"path\"; \"uri\" is for hosts with fetch)",
                    ),
                });
            }
        }
    }
    if let Some(feed) = &config.feed {
        if feed.source.cluster.is_none() {
            return Err(ConfigError {
                field: String::from("feed.cluster"),
                message: String::from(
                    "is required: the Envoy filter fetches the policy feed through a cluster \
                     (\"cluster\" and \"path\"; \"uri\" is for hosts with fetch)",
                ),
            });
        }
    }
    Ok(config)
}

/// The RFC 8705 §3.1 thumbprint (base64url SHA-256 of the DER certificate) from Envoy's
/// `connection.sha256_peer_certificate_digest` property (lower-case hex). `None` when no
/// certificate was presented or the value is not 32 hex-encoded bytes.
pub fn thumbprint_from_hex(hex: &[u8]) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let bytes = hex
        .chunks(2)
        .map(|pair| match pair {
            [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_convert_from_hex() {
        let hex = "62976581a35bd26828b72cda3a1551044b9bdb9c189111e340da85d49c312bda";
        assert_eq!(
            thumbprint_from_hex(hex.as_bytes()).as_deref(),
            Some("YpdlgaNb0mgotyzaOhVRBEub25wYkRHjQNqF1JwxK9o")
        );
        assert_eq!(thumbprint_from_hex(b""), None);
        assert_eq!(thumbprint_from_hex(&[b'g'; 64]), None);
    }

    #[test]
    fn a_remote_jwks_needs_a_cluster_here() {
        let e = parse(
            br#"{"providers": [{"issuer": "https://i", "client_ids": ["a"],
                 "jwks": {"uri": "https://i/jwks"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "providers[0].jwks.cluster");
        let cognito = parse(
            br#"{"providers": [{"cognito_user_pool_id": "eu-west-1_AbC1", "client_ids": ["a"],
                 "jwks": {"cluster": "cognito"}}]}"#,
        )
        .unwrap();
        let cluster = cognito.providers[0]
            .source
            .as_ref()
            .unwrap()
            .cluster
            .as_ref()
            .unwrap();
        assert_eq!(cluster.path, "/eu-west-1_AbC1/.well-known/jwks.json");
        assert!(parse(
            br#"{"providers": [{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}]}"#
        )
        .is_ok());
    }

    #[test]
    fn a_policy_feed_needs_a_cluster_here() {
        let provider = r#"{"issuer": "i", "client_ids": ["a"], "jwks": {"keys": []}}"#;
        let e = parse(
            format!(
                r#"{{"providers": [{provider}], "feed": {{"uri": "https://feed.example/p.json",
                     "unsigned": true}}}}"#
            )
            .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.field, "feed.cluster");
        let ok = parse(
            format!(
                r#"{{"providers": [{provider}], "feed": {{"cluster": "policy", "path": "/p.json",
                     "uri": "https://feed.example/p.json", "unsigned": true}}}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        let cluster = ok.feed.unwrap().source.cluster.unwrap();
        assert_eq!(
            (
                cluster.name.as_str(),
                cluster.path.as_str(),
                cluster.authority.as_str()
            ),
            ("policy", "/p.json", "policy")
        );
    }
}
