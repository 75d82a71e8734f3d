//! Bearer credentials from `Authorization` field values (RFC 6750 §2.1, RFC 9110 §11.6.2):
//! one function, so that every host reads the same header the same way.

use crate::error::{Error, ErrorCode};

/// The token of the request's one `Authorization: Bearer <token68>` value.
///
/// `values` are every `Authorization` field value in the order received. Leading and trailing
/// spaces and tabs are dropped (they are not part of a field value) and values left empty are
/// ignored; the scheme is matched
/// without ASCII case; one or more spaces separate it from the credential, which must be
/// `token68`. A credential longer than `max_len` is refused before it is scanned.
///
/// # Errors
/// - `token_missing` (RFC 6750 §3.1, a challenge without `error`): no non-empty value, another
///   scheme, or `Bearer` without a credential.
/// - `token_malformed`: several values, a tab after `Bearer`, or a credential that is not
///   `token68` (a comma list, a quoted string, inner spaces, non-ASCII bytes).
/// - `token_too_large`: a credential longer than `max_len`.
pub fn bearer<'a>(values: &[&'a [u8]], max_len: usize) -> Result<&'a str, Error> {
    // Empty values carry nothing; HTTP stacks that merge repeated fields (Envoy) drop them, so
    // every host leaves them out alike.
    let mut present = values.iter().map(|v| trim(v)).filter(|v| !v.is_empty());
    let value = match (present.next(), present.next()) {
        (None, _) => {
            return Err(Error::new(
                ErrorCode::TokenMissing,
                "the request carries no access token",
            ))
        }
        (Some(one), None) => one,
        (Some(_), Some(_)) => {
            return Err(Error::new(
                ErrorCode::TokenMalformed,
                "the request carries several Authorization headers",
            ))
        }
    };
    let scheme_end = value
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if value.is_empty() || !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(Error::new(
            ErrorCode::TokenMissing,
            "the request carries no Bearer token",
        ));
    }
    if rest.is_empty() {
        return Err(Error::new(
            ErrorCode::TokenMissing,
            "the Bearer credential is empty",
        ));
    }
    let credential = match rest.iter().position(|&b| b != b' ') {
        Some(0) => {
            return Err(Error::new(
                ErrorCode::TokenMalformed,
                "Bearer must be followed by spaces, not a tab",
            ))
        }
        Some(at) => rest.get(at..).unwrap_or(&[]),
        // Unreachable after the trim; fail closed all the same.
        None => {
            return Err(Error::new(
                ErrorCode::TokenMissing,
                "the Bearer credential is empty",
            ))
        }
    };
    if credential.len() > max_len {
        return Err(Error::new(
            ErrorCode::TokenTooLarge,
            "the token is larger than the limit",
        ));
    }
    // A credential that is not token68 (a comma list, inner spaces, quotes, non-ASCII) is
    // `token_malformed`. The pipeline's strict syntax step refuses every such byte with that
    // same code (base64url and `.` are a subset of token68), and the verified-token cache only
    // holds well-formed tokens, so the credential is not scanned twice on the hot path; only
    // bytes that are not text are refused here.
    core::str::from_utf8(credential).map_err(|_| {
        Error::new(
            ErrorCode::TokenMalformed,
            "the Bearer credential is not a single token68 value",
        )
    })
}

fn trim(v: &[u8]) -> &[u8] {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !ws(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(values: &[&str]) -> Result<&'static str, ErrorCode> {
        let owned: alloc::vec::Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        match bearer(&owned, 64) {
            Ok(t) => Ok(if t == "a.b.c" { "a.b.c" } else { "other" }),
            Err(e) => Err(e.code()),
        }
    }

    #[test]
    fn one_bearer_value_with_spaces_before_the_token() {
        for v in [
            "Bearer a.b.c",
            "bearer a.b.c",
            "BEARER  a.b.c",
            " Bearer a.b.c\t",
        ] {
            assert_eq!(code(&[v]), Ok("a.b.c"), "{v:?}");
        }
    }

    #[test]
    fn missing_or_other_schemes_get_a_bare_challenge() {
        for v in [
            &[][..],
            &[""],
            &["Bearer"],
            &["Bearer  "],
            &["Basic dXNlcg=="],
            &["Bearerabc"],
        ] {
            assert_eq!(code(v), Err(ErrorCode::TokenMissing), "{v:?}");
        }
    }

    #[test]
    fn lists_tabs_and_odd_credentials_are_malformed() {
        for v in [&["Bearer a.b.c", "Bearer a.b.c"][..], &["Bearer\ta.b.c"]] {
            assert_eq!(code(v), Err(ErrorCode::TokenMalformed), "{v:?}");
        }
        // Not token68 either: the pipeline's syntax step refuses these with the same code.
        for v in [
            "Bearer a=b",
            "Bearer =",
            "Bearer é",
            "Bearer a.b.c, Basic x",
        ] {
            let values = [v.as_bytes()];
            let token = bearer(&values, 64).unwrap_or("a.b.c");
            assert!(
                crate::token::Jws::parse(token, 64)
                    .is_err_and(|e| e.code() == ErrorCode::TokenMalformed),
                "{v:?}"
            );
        }
        assert_eq!(
            code(&["Bearer a.b.c=="]),
            Ok("other"),
            "token68, refused by the pipeline"
        );
        let long = alloc::format!("Bearer {}", "a".repeat(65));
        assert_eq!(code(&[&long]), Err(ErrorCode::TokenTooLarge));
    }
}
