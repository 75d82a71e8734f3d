//! `tokengate-issuer`: a local Amazon Cognito stand-in for M2M tokens. Development and tests only.

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokengate_issuer::{hash_secret, Config, Issuer, DEFAULT_LISTEN, SAMPLE_CONFIG};

const ABOUT: &str = "Local Amazon Cognito stand-in for machine-to-machine (client_credentials) \
access tokens. FOR DEVELOPMENT AND TESTS ONLY: not a production identity provider.";

const LONG_ABOUT: &str = "Local Amazon Cognito stand-in for machine-to-machine (client_credentials) \
access tokens.

FOR DEVELOPMENT AND TESTS ONLY. It lets demos and tests get real RS256 tokens shaped like Cognito's \
on one machine with no cloud account. It is not a production identity provider: it has no \
persistence, no hardening beyond rate limits, and listens on loopback addresses only unless told \
otherwise.

Endpoints: POST /oauth2/token and /{poolId}/oauth2/token, POST /oauth2/revoke and \
/{poolId}/oauth2/revoke (RFC 7009), GET /{poolId}/.well-known/jwks.json, \
GET /{poolId}/.well-known/openid-configuration, GET /{poolId}/edge-policy.json (the edges' policy \
feed) and /{poolId}/edge-policy-keys.json, and with an admin token POST /admin/{poolId}/rotate, \
/mint, /revoke-client, /revoke-issued-before, /edge-clients and /clients/{clientId}/secrets.";

#[derive(Parser)]
#[command(name = "tokengate-issuer", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the token and revocation endpoints, JWKS, discovery and the edge policy feed
    /// (development and tests only).
    ///
    /// Prints "listening on http://ADDR" on stdout when ready, then one JSON audit line per
    /// token request, revocation and admin change on stdout. Stops on SIGINT or SIGTERM.
    Serve {
        /// Config file, TOML or JSON (see `tokengate-issuer sample-config`).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Address to listen on; port 0 picks a free port [default: server.listen from the
        /// config, else 127.0.0.1:9000].
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Allow listening on an address other than loopback. This is a development tool: think
        /// twice.
        #[arg(long)]
        allow_non_loopback: bool,
    },
    /// Read a client secret from stdin and print its argon2id hash for `client_secret_hash`.
    ///
    /// One trailing newline is removed, so `echo -n` is not needed. Parameters: argon2id v19,
    /// m=19456 KiB, t=2, p=1, random 16-byte salt.
    HashSecret,
    /// Print a commented example config with demo clients (demo secrets included: never use it
    /// beyond a laptop).
    SampleConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve {
            config,
            listen,
            allow_non_loopback,
        } => serve(&config, listen, allow_non_loopback),
        Command::HashSecret => print_secret_hash(),
        Command::SampleConfig => {
            print_stdout(SAMPLE_CONFIG);
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tokengate-issuer: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    config_path: &std::path::Path,
    listen: Option<SocketAddr>,
    allow_non_loopback: bool,
) -> Result<(), String> {
    let config = Config::load(config_path).map_err(|error| error.to_string())?;
    let listen = match listen.or(config.server.listen) {
        Some(listen) => listen,
        None => DEFAULT_LISTEN
            .parse()
            .map_err(|error| format!("{DEFAULT_LISTEN}: {error}"))?,
    };
    if !listen.ip().is_loopback() {
        if !allow_non_loopback {
            return Err(format!(
                "refusing to listen on {listen}: not a loopback address. This issuer is for \
                 development and tests; pass --allow-non-loopback to override"
            ));
        }
        eprintln!(
            "tokengate-issuer: warning: listening on non-loopback address {listen}; \
             this issuer is for development and tests only"
        );
    }
    let issuer = Issuer::from_config(config).map_err(|error| error.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
        let handle = issuer
            .serve_with_shutdown(listener, shutdown_signal())
            .map_err(|error| error.to_string())?;
        for pool in issuer.pool_ids() {
            let describe = || -> Result<String, tokengate_issuer::Error> {
                Ok(format!(
                    "pool {pool}: issuer {} jwks {} token endpoint {} edge policy {}/{pool}/edge-policy.json{}",
                    issuer.issuer_url(&pool)?,
                    issuer.jwks_uri(&pool)?,
                    issuer.token_endpoint(&pool)?,
                    issuer.base_url(),
                    if issuer.edge_policy(&pool)?.signed {
                        " (signed)"
                    } else {
                        ""
                    }
                ))
            };
            if let Ok(line) = describe() {
                eprintln!("{line}");
            }
        }
        // Scripts and tests wait for exactly this line.
        print_stdout(&format!("listening on {}\n", handle.url()));
        handle
            .wait()
            .await
            .map_err(|error| format!("server failed: {error}"))?;
        eprintln!("tokengate-issuer: stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_secret_hash() -> Result<(), String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Type the client secret, then Enter and Ctrl-D:");
    }
    let mut secret = String::new();
    stdin
        .read_to_string(&mut secret)
        .map_err(|error| format!("cannot read the secret from stdin: {error}"))?;
    let secret = secret
        .strip_suffix("\r\n")
        .or_else(|| secret.strip_suffix('\n'))
        .unwrap_or(&secret);
    if secret.is_empty() {
        return Err("empty secret on stdin".to_owned());
    }
    let hash = hash_secret(secret).map_err(|error| error.to_string())?;
    print_stdout(&format!("{hash}\n"));
    Ok(())
}

/// Write and flush; a closed stdout (e.g. `| head`) is not worth a panic.
fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
