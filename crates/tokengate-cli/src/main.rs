#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod check;
mod decode;
mod edge;
mod input;
mod jwks;
mod vectors;
mod verify;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Decode and verify OAuth2 access tokens (Amazon Cognito or other OIDC issuers), and answer
/// HTTP requests from a gate configuration, with the same checks and error codes as every
/// tokengate host.
#[derive(Debug, Parser)]
#[command(name = "tokengate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a token's header and claims WITHOUT verifying anything.
    ///
    /// Exit status: 0 decoded, 2 not a decodable compact JWS.
    Decode(decode::DecodeArgs),
    /// Verify a token against a JWKS file and a policy; print one JSON verdict.
    ///
    /// Exit status: 0 valid, 1 invalid, 2 usage or configuration error.
    Verify(Box<verify::VerifyArgs>),
    /// List the keys of a JWKS file and whether tokengate can use each one.
    ///
    /// Exit status: 0 at least one usable key, 1 none usable, 2 unreadable or not a JWK Set.
    Jwks(jwks::JwksArgs),
    /// Answer one HTTP request from a gate configuration file, as every tokengate host would;
    /// or replay HTTP vector files (--vectors).
    ///
    /// Exit status: 0 allowed (or every vector passed), 1 denied (or a vector failed), 2 usage
    /// or configuration error.
    #[command(
        override_usage = "tokengate check --config <FILE> [--jwks <[N=]FILE>]... --method <METHOD> \
                      --target <TARGET> [--authorization <VALUE>]... [-H <'NAME: VALUE'>]... \
                      [--peer-cert <FILE> | --peer <FACTS>] [--now <UNIX_SECONDS>] [--json]\n       \
                      tokengate check --vectors <DIR_OR_FILE> [--jwks <[N=]FILE>]... [--json]"
    )]
    Check(Box<check::CheckArgs>),
}

/// Why a command could not reach an answer; always exit status 2.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad command line; clap prints it with the usage line.
    Usage(clap::Error),
    /// A file, policy or key set that cannot be used, or I/O that failed.
    Config(String),
}

impl Failure {
    /// A usage error in clap's format (`error: …` + usage + hint), for checks clap cannot
    /// express declaratively.
    pub(crate) fn usage(
        subcommand: &str,
        kind: clap::error::ErrorKind,
        message: impl std::fmt::Display,
    ) -> Failure {
        use clap::CommandFactory as _;
        let mut cli = Cli::command();
        cli.build();
        let mut cmd = cli.find_subcommand_mut(subcommand).cloned().unwrap_or(cli);
        Failure::Usage(cmd.error(kind, message))
    }
}

/// Status for usage and configuration errors.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Jwks(args) => jwks::run(&args),
        Command::Check(args) => check::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            // clap writes the message and usage; it exits 2 for errors.
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Config(message)) => {
            warn(&message);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Write one `tokengate: …` line on stderr. A closed stderr is not worth failing for.
pub(crate) fn warn(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "tokengate: {message}");
}

/// Write `text` on stdout, with the same broken-pipe rule as [`print_json`].
pub(crate) fn print_text(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Config(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// Write `value` and a newline on stdout. A reader that went away (`| head`) is not an error:
/// the exit status still carries the answer. Other write failures are, never a panic.
pub(crate) fn print_json(value: &serde_json::Value, pretty: bool) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = if pretty {
        serde_json::to_writer_pretty(&mut out, value)
    } else {
        serde_json::to_writer(&mut out, value)
    };
    match written
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Config(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}
