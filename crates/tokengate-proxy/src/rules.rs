//! Route rules: which requests need which token. Ordered; the first match wins.

use std::collections::BTreeSet;

use tokengate::Scopes;

/// How a rule matches the request path (query string excluded).
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum PathMatch {
    /// The path equals this, or continues it at a segment boundary: `/orders` matches `/orders`,
    /// `/orders/7`, but not `/ordersx`. A prefix ending in `/` matches anything below it.
    Prefix(String),
    /// The path is exactly this.
    Exact(String),
}

/// Which methods a rule applies to.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum MethodSet {
    /// Every method.
    Any,
    /// Only these (exact, upper case).
    Only(Vec<String>),
}

/// What a matching request needs.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Access {
    /// No token needed.
    Anonymous,
    /// A valid token, with these scopes when given.
    Token(Option<Scopes>),
}

/// One configured rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Name used in audit lines (`rules[i]` unless configured).
    pub name: String,
    /// Path condition.
    pub path: PathMatch,
    /// Method condition.
    pub methods: MethodSet,
    /// What the request needs.
    pub access: Access,
    /// When set, only these clients may use the route (checked after the core's own checks).
    pub client_ids: Option<BTreeSet<String>>,
}

impl Rule {
    /// Whether the rule applies to `method` and `path` (path without query).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let path_ok = match &self.path {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => match path.strip_prefix(p.as_str()) {
                Some(rest) => p.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
                None => false,
            },
        };
        path_ok
            && match &self.methods {
                MethodSet::Any => true,
                MethodSet::Only(list) => list.iter().any(|m| m == method),
            }
    }

    /// The scopes required, for the `scope="…"` challenge attribute.
    pub fn listed_scopes(&self) -> Vec<&str> {
        match &self.access {
            Access::Token(Some(s)) => s.listed().iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// The request path without its query string or fragment.
pub fn path_of(raw: &str) -> &str {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    raw.get(..end).unwrap_or(raw)
}

/// Whether a path is in the normal form rules are written for. A path with dot segments, empty
/// segments, backslashes or encoded `.`, `/`, `\` may mean a different resource upstream than
/// its prefix suggests (`/health/../admin`), so it matches no rule and gets the default.
/// Envoy's `normalize_path` and `merge_slashes` make such requests rare.
pub fn is_normalized(path: &str) -> bool {
    if !path.starts_with('/') || path.contains("//") || path.contains('\\') {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2e") || lower.contains("%2f") || lower.contains("%5c") {
        return false;
    }
    !path.split('/').any(|seg| seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: PathMatch, methods: MethodSet) -> Rule {
        Rule {
            name: "r".into(),
            path,
            methods,
            access: Access::Anonymous,
            client_ids: None,
        }
    }

    #[test]
    fn prefixes_match_at_segment_boundaries() {
        let r = rule(PathMatch::Prefix("/orders".into()), MethodSet::Any);
        assert!(r.matches("GET", "/orders"));
        assert!(r.matches("GET", "/orders/7"));
        assert!(!r.matches("GET", "/ordersx"));
        assert!(!r.matches("GET", "/order"));
        let root = rule(PathMatch::Prefix("/".into()), MethodSet::Any);
        assert!(root.matches("POST", "/anything"));
    }

    #[test]
    fn exact_and_methods() {
        let r = rule(
            PathMatch::Exact("/a".into()),
            MethodSet::Only(vec!["GET".into(), "HEAD".into()]),
        );
        assert!(r.matches("HEAD", "/a"));
        assert!(!r.matches("POST", "/a"));
        assert!(!r.matches("GET", "/a/"));
    }

    #[test]
    fn query_is_not_part_of_the_path_and_odd_paths_are_not_normal() {
        assert_eq!(path_of("/a/b?x=/c#f"), "/a/b");
        assert!(is_normalized("/orders/7"));
        for p in [
            "/health/../admin",
            "/a//b",
            "/a/./b",
            "/a%2fb",
            "/a%2E%2E/b",
            "a",
            "/a\\b",
            "/..",
        ] {
            assert!(!is_normalized(p), "{p}");
        }
    }
}
