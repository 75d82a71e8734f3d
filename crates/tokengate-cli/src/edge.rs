//! The CLI reads and prints JSON with `serde_json`; the core takes and gives its own
//! `tokengate::json` values. These convert between the two, value for value (number kinds and
//! float bits kept; both sort object members by name).

use serde_json::Value;
use tokengate::json::{self, Number};

/// A `serde_json` value as the core's.
pub fn to_core(v: &Value) -> json::Value {
    match v {
        Value::Null => json::Value::Null,
        Value::Bool(b) => json::Value::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => json::Value::from(u),
            (None, Some(i), _) => json::Value::from(i),
            (None, None, f) => {
                // serde_json numbers are finite.
                f.and_then(Number::from_f64)
                    .map_or(json::Value::Null, json::Value::Number)
            }
        },
        Value::String(s) => json::Value::String(s.clone()),
        Value::Array(items) => json::Value::Array(items.iter().map(to_core).collect()),
        Value::Object(m) => {
            json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_core(v))).collect())
        }
    }
}

/// The core's JSON value as a `serde_json` one.
pub fn from_core(v: &json::Value) -> Value {
    match v {
        json::Value::Null => Value::Null,
        json::Value::Bool(b) => Value::Bool(*b),
        json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (None, Some(i), _) => Value::from(i),
            (None, None, f) => f
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
        },
        json::Value::String(s) => Value::String(s.clone()),
        json::Value::Array(items) => Value::Array(items.iter().map(from_core).collect()),
        json::Value::Object(o) => Value::Object(object_from_core(o)),
    }
}

/// The core's JSON object as a `serde_json` map.
pub fn object_from_core(o: &json::Object) -> serde_json::Map<String, Value> {
    o.iter().map(|(k, v)| (k.clone(), from_core(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_both_ways() {
        let text = r#"{"a":[1,-2,1.5,-0.0,1e300,18446744073709551615,-9223372036854775808],
            "b":{"z":null,"y":true,"x":"é\n"},"c":1.0}"#;
        let serde: Value = serde_json::from_str(text).unwrap();
        let core = json::parse(text.as_bytes()).unwrap();
        assert_eq!(to_core(&serde), core);
        assert_eq!(from_core(&core), serde);
        assert_eq!(core.to_json(), serde.to_string());
    }
}
