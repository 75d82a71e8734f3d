//! Error codes are API: the docs and every host's type definitions must list exactly the
//! codes the core has.

use std::collections::BTreeSet;
use std::path::Path;

use tokengate::ErrorCode;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn codes() -> BTreeSet<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

/// Every `snake_case` word in backticks or quotes that looks like a code.
fn mentioned(text: &str, quote: char) -> BTreeSet<String> {
    text.split(quote)
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_core_readme_error_table_lists_every_code() {
    let readme = std::fs::read_to_string(root().join("crates/tokengate/README.md")).unwrap();
    let table = readme
        .split("## Error codes")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("an Error codes section");
    let listed = mentioned(table, '`');
    for code in codes() {
        assert!(listed.contains(code), "README error table lacks {code}");
    }
}

#[test]
fn the_codes_are_unique_snake_case_words() {
    assert_eq!(codes().len(), ErrorCode::ALL.len());
    for code in codes() {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
    }
}
