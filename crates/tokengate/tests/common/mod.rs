//! Shared by the integration tests: the catch-all configuration of the HTTP path vectors
//! (inline TEST keys) with a token valid in it.

use std::path::Path;

use serde_json::Value;

/// `(configuration, "Bearer …" value, the second it is valid at)` from
/// `tests/vectors/http/paths.json`, case `root_path_with_token_catchall`.
pub fn catchall() -> (Value, String, u64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/http/paths.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "root_path_with_token_catchall")
        .unwrap()
        .clone();
    (
        doc["configs"]["catchall"].clone(),
        case["request"]["authorization"][0]
            .as_str()
            .unwrap()
            .to_owned(),
        case["now"].as_u64().unwrap(),
    )
}
