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

#[cfg(test)]
mod tests {
    use super::*;

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
