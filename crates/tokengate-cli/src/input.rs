//! Where the token comes from: a file read verbatim, or an argument / stdin with the one trailing
//! newline a shell or `echo` adds removed.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use clap::Args;

use crate::Failure;

/// The token to work on: exactly one of TOKEN (`-` = stdin) or `--token-file`.
#[derive(Debug, Args)]
#[group(id = "token_source", required = true, multiple = false)]
pub struct TokenArgs {
    /// The token, or `-` to read it from stdin. One trailing newline ("\n" or "\r\n") is
    /// dropped; nothing else is trimmed.
    #[arg(value_name = "TOKEN")]
    pub token: Option<OsString>,

    /// Read the token from PATH exactly as stored: nothing is trimmed, so a trailing newline
    /// makes the token malformed, as it would be in an Authorization header.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token text. At most `limit` bytes are read from a file or stdin: callers pick a
    /// limit above the largest token they accept, so a longer input still reads as too long.
    pub fn read(&self, limit: usize) -> Result<String, Failure> {
        // `take` wants u64; a usize always fits on supported targets, else read without cap.
        let cap = u64::try_from(limit).unwrap_or(u64::MAX);
        let bytes = match (&self.token_file, &self.token) {
            (Some(path), _) => {
                let file = File::open(path).map_err(|e| {
                    Failure::Config(format!("cannot read token file {}: {e}", path.display()))
                })?;
                read_capped(file, cap).map_err(|e| {
                    Failure::Config(format!("cannot read token file {}: {e}", path.display()))
                })?
            }
            (None, Some(arg)) if arg == "-" => {
                let bytes = read_capped(io::stdin().lock(), cap).map_err(|e| {
                    Failure::Config(format!("cannot read the token from stdin: {e}"))
                })?;
                strip_one_newline(bytes)
            }
            (None, Some(arg)) => strip_one_newline(arg.as_encoded_bytes().to_vec()),
            // clap's group makes one of the two required; keep a clear answer anyway.
            (None, None) => {
                return Err(Failure::Config(
                    "no token: pass TOKEN, `-` for stdin, or --token-file PATH".into(),
                ))
            }
        };
        Ok(token_text(bytes))
    }
}

/// A hint for a token refused as malformed because of trailing whitespace, the usual
/// copy-paste and `echo >file` mistake.
pub fn whitespace_hint(token: &str) -> Option<String> {
    let last = token
        .chars()
        .next_back()
        .filter(|c| c.is_ascii_whitespace())?;
    Some(format!(
        "hint: the token ends with {last:?}; --token-file reads the file verbatim, \
         like an Authorization header (a TOKEN argument or `-` drops one trailing newline)"
    ))
}

/// Drop exactly one trailing "\n" or "\r\n".
pub fn strip_one_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
    bytes
}

/// The token as text, byte length and `.` positions unchanged.
///
/// A real token is ASCII. Non-UTF-8 input still gets a verdict from the core rather than a CLI
/// error: each non-ASCII byte becomes DEL, which is neither base64url nor `.`, so the core
/// answers exactly as it would for the raw bytes (`token_too_large` before `token_malformed`).
fn token_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| {
        e.into_bytes()
            .into_iter()
            .map(|b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    '\u{7f}'
                }
            })
            .collect()
    })
}

fn read_capped(reader: impl Read, cap: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_trailing_newline_is_dropped() {
        assert_eq!(strip_one_newline(b"a.b.c\n".to_vec()), b"a.b.c");
        assert_eq!(strip_one_newline(b"a.b.c\r\n".to_vec()), b"a.b.c");
        assert_eq!(strip_one_newline(b"a.b.c\n\n".to_vec()), b"a.b.c\n");
        assert_eq!(strip_one_newline(b"a.b.c\r".to_vec()), b"a.b.c\r");
        assert_eq!(strip_one_newline(b" a.b.c ".to_vec()), b" a.b.c ");
        assert_eq!(strip_one_newline(Vec::new()), b"");
    }

    #[test]
    fn non_utf8_keeps_length_and_dots() {
        let text = token_text(b"e30.\xff\xfe.YQ".to_vec());
        assert_eq!(text.len(), 9);
        assert_eq!(text.matches('.').count(), 2);
        assert_eq!(token_text(b"e30.e30.YQ".to_vec()), "e30.e30.YQ");
    }
}
