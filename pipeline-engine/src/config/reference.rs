//! The README's configuration reference is checked against the types: every key the types have is
//! documented with its default, and every documented key exists.

use std::collections::BTreeMap;

use super::Config;

const README: &str = include_str!("../../README.md");

/// Leaf keys of the default configuration with their values as the README writes them.
fn keys_of_the_types() -> BTreeMap<String, serde_json::Value> {
    fn walk(prefix: &str, v: serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
        match v {
            serde_json::Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            leaf => {
                out.insert(prefix.to_owned(), leaf);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        "",
        serde_json::to_value(Config::default()).expect("serializable"),
        &mut out,
    );
    out
}

/// `(key, default)` of every row of the README's configuration table.
fn documented_keys() -> Vec<(String, String)> {
    let section = README
        .split("\n## Configuration\n")
        .nth(1)
        .expect("a Configuration section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
        })
        .collect()
}

fn rendered(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("`{s}`"),
        serde_json::Value::Array(a) if a.is_empty() => "`[]`".into(),
        serde_json::Value::Object(m) if m.is_empty() => "`{}`".into(),
        other => other.to_string(),
    }
}

#[test]
fn readme_configuration_reference_matches_the_types() {
    let types = keys_of_the_types();
    let documented = documented_keys();
    let documented_names: Vec<&str> = documented.iter().map(|(k, _)| k.as_str()).collect();
    let undocumented: Vec<&String> = types
        .keys()
        .filter(|k| !documented_names.contains(&k.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in the README: {undocumented:?}"
    );
    for (key, default) in &documented {
        let Some(value) = types.get(key) else {
            panic!("the README documents `{key}`, which the configuration does not have");
        };
        let empty = matches!(value, serde_json::Value::String(s) if s.is_empty())
            || matches!(value, serde_json::Value::Array(a) if a.is_empty());
        match default.as_str() {
            "required" => assert!(empty, "`{key}` is documented as required: {value}"),
            "none" => assert!(
                value.is_null(),
                "`{key}` is documented without a default: {value}"
            ),
            computed if computed.starts_with("`<") => {
                assert!(value.is_null(), "`{key}` is computed at start-up: {value}")
            }
            written => assert_eq!(written, rendered(value), "default of `{key}`"),
        }
    }
}
