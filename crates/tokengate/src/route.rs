//! Route rules: which requests need which token. Ordered; the first match wins. Paths are
//! compared in the normal form of [`crate::target::normal_path`].

use alloc::string::String;
use alloc::vec::Vec;

use crate::policy::{IdentityOverride, Scopes};
use crate::sorted::SortedSet;

/// How a rule matches the request path (query excluded).
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum PathMatch {
    /// The path equals this, or continues it at a segment boundary: `/orders` matches
    /// `/orders`, `/orders/`, `/orders/7`, not `/ordersx`. A prefix ending in `/` matches
    /// anything below it.
    Prefix(String),
    /// The path is this, one trailing `/` on either side ignored (`/admin` matches `/admin/`).
    Exact(String),
}

/// Which methods a rule applies to.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum MethodSet {
    /// Every method.
    Any,
    /// Only these, compared exactly; `HEAD` also matches a list that names `GET`.
    Only(Vec<String>),
}

/// What a matching request needs.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Access {
    /// No token needed; `Authorization` is not read.
    Anonymous,
    /// A valid token, with these scopes when given.
    Token(Option<Scopes>),
}

/// What happens to a request no rule matches.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum DefaultAccess {
    /// Refused: the token's own error without a valid token, 403 `scope_insufficient` with one.
    Deny,
    /// Any valid token passes.
    Authenticated,
}

/// One configured rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Name used in audit records (`rules[i]` unless configured).
    pub name: String,
    /// Path condition.
    pub path: PathMatch,
    /// Compare ASCII letters without case (for origins that fold case).
    pub case_insensitive: bool,
    /// Method condition.
    pub methods: MethodSet,
    /// What the request needs.
    pub access: Access,
    /// When set, only these clients may use the route.
    pub client_ids: Option<SortedSet>,
    /// The route's own certificate pins and/or mode, replacing the provider's.
    pub identities: Option<IdentityOverride>,
}

impl Rule {
    /// Whether the rule applies to `method` and the normalised `path`.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let path_ok = match &self.path {
            PathMatch::Exact(want) => {
                same(trim_slash(want), trim_slash(path), self.case_insensitive)
            }
            PathMatch::Prefix(p) => match strip_prefix(path, p, self.case_insensitive) {
                Some(rest) => p.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
                None => false,
            },
        };
        path_ok
            && match &self.methods {
                MethodSet::Any => true,
                MethodSet::Only(list) => list
                    .iter()
                    .any(|m| m == method || (method == "HEAD" && m == "GET")),
            }
    }

    /// The scopes the rule requires, in configuration order.
    pub fn scopes(&self) -> Option<&Scopes> {
        match &self.access {
            Access::Token(s) => s.as_ref(),
            Access::Anonymous => None,
        }
    }
}

/// The rule list and the default.
#[derive(Clone, Debug)]
pub struct Routes {
    /// Rules, first match wins.
    pub rules: Vec<Rule>,
    /// For requests no rule matches.
    pub default: DefaultAccess,
}

impl Routes {
    /// The index of the first rule matching `method` and the normalised `path`.
    pub fn select(&self, method: &str, path: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.matches(method, path))
    }
}

fn trim_slash(p: &str) -> &str {
    if p.len() > 1 {
        p.strip_suffix('/').unwrap_or(p)
    } else {
        p
    }
}

fn same(a: &str, b: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn strip_prefix<'a>(path: &'a str, prefix: &str, case_insensitive: bool) -> Option<&'a str> {
    let head = path.get(..prefix.len())?;
    if same(head, prefix, case_insensitive) {
        path.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn rule(path: PathMatch, methods: MethodSet, ci: bool) -> Rule {
        Rule {
            name: "r".into(),
            path,
            case_insensitive: ci,
            methods,
            access: Access::Anonymous,
            client_ids: None,
            identities: None,
        }
    }

    #[test]
    fn prefixes_match_at_segment_boundaries() {
        let r = rule(PathMatch::Prefix("/orders".into()), MethodSet::Any, false);
        for p in ["/orders", "/orders/", "/orders/7"] {
            assert!(r.matches("GET", p), "{p}");
        }
        for p in ["/ordersx", "/order", "/Orders", "*"] {
            assert!(!r.matches("GET", p), "{p}");
        }
        let root = rule(PathMatch::Prefix("/".into()), MethodSet::Any, false);
        assert!(root.matches("POST", "/anything"));
        assert!(!root.matches("OPTIONS", "*"));
    }

    #[test]
    fn exact_ignores_one_trailing_slash_and_case_when_asked() {
        let r = rule(PathMatch::Exact("/admin".into()), MethodSet::Any, false);
        assert!(r.matches("GET", "/admin/"));
        assert!(!r.matches("GET", "/admin/x"));
        assert!(!r.matches("GET", "/ADMIN"));
        let ci = rule(PathMatch::Exact("/reports".into()), MethodSet::Any, true);
        assert!(ci.matches("GET", "/REPORTS/"));
        let slash = rule(PathMatch::Exact("/".into()), MethodSet::Any, false);
        assert!(slash.matches("GET", "/"));
        assert!(!slash.matches("GET", "/x"));
    }

    #[test]
    fn head_follows_get() {
        let r = rule(
            PathMatch::Prefix("/".into()),
            MethodSet::Only(vec!["GET".into()]),
            false,
        );
        assert!(r.matches("HEAD", "/a"));
        assert!(!r.matches("POST", "/a"));
        let head_only = rule(
            PathMatch::Prefix("/".into()),
            MethodSet::Only(vec!["HEAD".into()]),
            false,
        );
        assert!(!head_only.matches("GET", "/a"));
    }
}
