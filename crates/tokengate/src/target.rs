//! The method and request target of a request, in the normal form route rules are written for.
//!
//! An authorization gate and the origin behind it must agree on which resource a request names.
//! Servers disagree on `;` parameters, dot segments, encoded slashes, backslashes, case and
//! double encoding (the bug classes of Envoy CVE-2019-9901, CVE-2021-29492, CVE-2021-32779 and
//! the `..;` advisories of Tomcat and Spring). So the gate decodes only what every server
//! decodes alike (percent-encoded unreserved characters, RFC 3986 §6.2.2.2) and refuses, with
//! 400 `request_invalid`, every spelling whose meaning depends on the server. The exact rules
//! are in `tests/vectors/http/README.md`.

use alloc::borrow::Cow;
use alloc::string::String;

/// Why a method or target is refused (`request_invalid`). The text is for operators.
pub type Invalid = &'static str;

/// The methods of RFC 9110 §9 and RFC 5789, whose spelling is canonical in upper case.
pub const STANDARD_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Check a method as received.
///
/// # Errors
/// Not a token (RFC 9110 §5.6.2), or a standard method not written in upper case (`get`): some
/// origins fold method case, so the lower-case spelling could escape a `GET` rule.
pub fn check_method(method: &str) -> Result<(), Invalid> {
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err("the method is not an HTTP token");
    }
    let non_canonical = STANDARD_METHODS
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method) && *m != method);
    if non_canonical {
        return Err("a standard method must be written in upper case");
    }
    Ok(())
}

/// The path rules are matched against, from a request target as received: the query is cut
/// off, percent-encoded unreserved characters are decoded and kept escapes are upper-cased. For
/// `OPTIONS *` the result is `*`, which no rule matches.
///
/// # Errors
/// Anything not in normal form, see the module documentation.
pub fn normal_path<'a>(method: &str, target: &'a str) -> Result<Cow<'a, str>, Invalid> {
    let bytes = target.as_bytes();
    if bytes.is_empty() {
        return Err("the request target is empty");
    }
    if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err("the request target holds a space, a control character or a non-ASCII byte");
    }
    if bytes.contains(&b'#') {
        return Err("the request target holds a fragment (#)");
    }
    if target == "*" {
        return if method == "OPTIONS" {
            Ok(Cow::Borrowed("*"))
        } else {
            Err("the target * is only for OPTIONS")
        };
    }
    if bytes.first() != Some(&b'/') {
        return Err(
            "the request target is not a path starting with / (absolute or authority form)",
        );
    }
    let path = match target.find('?') {
        Some(at) => target.get(..at).unwrap_or(target),
        None => target,
    };
    let normal = decode(path)?;
    check_segments(&normal)?;
    Ok(normal)
}

/// Whether a rule's path is itself in normal form (a rule that could never match, or that
/// names a spelling requests are refused for, is a configuration mistake).
pub fn is_normal_rule_path(path: &str) -> bool {
    matches!(normal_path("GET", path), Ok(Cow::Borrowed(p)) if p == path)
}

fn decode(path: &str) -> Result<Cow<'_, str>, Invalid> {
    let p = path.as_bytes();
    // Written only once an escape changes: most paths come back borrowed.
    let mut out: Option<String> = None;
    let mut i = 0;
    while let Some(&b) = p.get(i) {
        if b != b'%' {
            if !is_path_byte(b) {
                return Err(match b {
                    b';' => "the path holds a ; parameter",
                    b'\\' => "the path holds a backslash",
                    _ => "the path holds a character that must be percent-encoded",
                });
            }
            if let Some(o) = out.as_mut() {
                o.push(char::from(b));
            }
            i += 1;
            continue;
        }
        let (Some(h), Some(l)) = (
            p.get(i + 1).copied().and_then(hex),
            p.get(i + 2).copied().and_then(hex),
        ) else {
            return Err("a % in the path is not followed by two hex digits");
        };
        let octet = h << 4 | l;
        match octet {
            b'.' | b'/' | b'\\' | b';' | b'%' => {
                return Err("the path holds an encoded . / \\ ; or %");
            }
            0x00..=0x1f | 0x7f => return Err("the path holds an encoded control character"),
            0x80..=0xff => return Err("the path holds an encoded non-ASCII byte"),
            _ => {}
        }
        let written = p.get(i..i + 3).unwrap_or(&[]);
        let upper_hex = written.iter().skip(1).all(|c| !c.is_ascii_lowercase());
        if is_unreserved(octet) {
            out.get_or_insert_with(|| prefix(path, i))
                .push(char::from(octet));
        } else if !upper_hex {
            let o = out.get_or_insert_with(|| prefix(path, i));
            push_escape(o, octet);
        } else if let Some(o) = out.as_mut() {
            push_escape(o, octet);
        }
        i += 3;
    }
    Ok(out.map_or(Cow::Borrowed(path), Cow::Owned))
}

/// `%XY` with upper-case hex digits.
fn push_escape(out: &mut String, octet: u8) {
    out.push('%');
    for nibble in [octet >> 4, octet & 0x0f] {
        out.push(char::from_digit(u32::from(nibble), 16).map_or('0', |c| c.to_ascii_uppercase()));
    }
}

fn check_segments(path: &str) -> Result<(), Invalid> {
    // The first element is the empty string before the leading '/'.
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        match segment {
            "." | ".." => return Err("the path holds a dot segment"),
            "" if segments.peek().is_some() => return Err("the path holds an empty segment (//)"),
            _ => {}
        }
    }
    Ok(())
}

fn prefix(path: &str, end: usize) -> String {
    String::from(path.get(..end).unwrap_or(""))
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3, without `.`: an encoded dot is refused, never decoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~')
}

/// `pchar` and `/` of RFC 3986 §3.3 written raw, less `;` (path parameters) and `%` (escapes
/// are handled apart).
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

/// RFC 9110 §5.6.2 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(target: &str) -> String {
        match normal_path("GET", target) {
            Ok(p) => String::from(p),
            Err(e) => panic!("{target}: {e}"),
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_upper_cased() {
        assert_eq!(ok("/%61dmin"), "/admin");
        assert_eq!(ok("/orders/a%3fb?x=%zz"), "/orders/a%3Fb");
        assert_eq!(ok("/orders/a%3Fb"), "/orders/a%3Fb");
        assert_eq!(ok("/%7e/x%2Dy"), "/~/x-y");
        assert_eq!(ok("/orders/"), "/orders/");
        assert_eq!(ok("/"), "/");
        assert!(matches!(
            normal_path("GET", "/plain/path"),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn every_server_dependent_spelling_is_refused() {
        for t in [
            "",
            "admin",
            "http://x/admin",
            "x:443",
            "*",
            "/admin;x=1",
            "/health/..;/admin",
            "/health/../admin",
            "/./admin",
            "/admin/.",
            "/..",
            "//admin",
            "/a//b",
            "/health\\..\\admin",
            "/health%5c..",
            "/health%2fadmin",
            "/%2e%2e/admin",
            "/.%2E/x",
            "/%3B",
            "/%2561dmin",
            "/admin%00",
            "/admin%0A",
            "/admin%7f",
            "/caf%C3%A9",
            "/%c0%ae",
            "/admin%",
            "/admin%4",
            "/admin%zz",
            "/admin#x",
            "/admin x",
            "/admin\u{0}",
            "/café",
            "/a\"b",
            "/a<b",
            "/a{b",
            "/a|b",
            "/a^b",
            "/a`b",
            "/a[b]",
            "/admin\t",
        ] {
            assert!(normal_path("GET", t).is_err(), "{t:?} must be refused");
        }
        assert_eq!(normal_path("OPTIONS", "*"), Ok(Cow::Borrowed("*")));
    }

    #[test]
    fn methods_are_tokens_and_standard_ones_upper_case() {
        for m in ["GET", "HEAD", "PURGE", "PROPFIND", "custom-x"] {
            assert_eq!(check_method(m), Ok(()), "{m}");
        }
        for m in ["get", "Get", "pOST", "", "GE T", "GET\u{0}", "GET/"] {
            assert!(check_method(m).is_err(), "{m:?}");
        }
    }

    #[test]
    fn rule_paths_must_be_normal() {
        assert!(is_normal_rule_path("/orders"));
        assert!(is_normal_rule_path("/"));
        assert!(!is_normal_rule_path("/%61dmin"));
        assert!(!is_normal_rule_path("/a/../b"));
        assert!(!is_normal_rule_path("/a?b"));
        assert!(!is_normal_rule_path("*"));
    }
}
