//! `filter_path` response filtering: comma-separated dotted paths with `*` segments. Objects and
//! arrays left empty by the filter disappear, as in Elasticsearch.

use serde_json::{Map, Value};

pub fn parse(spec: &str) -> Vec<Vec<String>> {
    spec.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.split('.').map(String::from).collect())
        .collect()
}

fn matches(pattern: &str, key: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == key,
        Some((pre, post)) => {
            key.len() >= pre.len() + post.len() && key.starts_with(pre) && key.ends_with(post)
        }
    }
}

pub fn apply(v: Value, paths: &[Vec<String>]) -> Value {
    if paths.is_empty() {
        return v;
    }
    let refs: Vec<&[String]> = paths.iter().map(Vec::as_slice).collect();
    filter(v, &refs).unwrap_or_else(|| Value::Object(Map::new()))
}

fn filter(v: Value, paths: &[&[String]]) -> Option<Value> {
    if paths.iter().any(|p| p.is_empty()) {
        return Some(v);
    }
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m {
                let sub: Vec<&[String]> = paths
                    .iter()
                    .filter(|p| matches(&p[0], &k))
                    .map(|p| &p[1..])
                    .collect();
                if !sub.is_empty()
                    && let Some(c) = filter(child, &sub)
                {
                    out.insert(k, c);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(a) => {
            let items: Vec<Value> = a.into_iter().filter_map(|x| filter(x, paths)).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_positions_when_status_is_kept() {
        let v = json!({"took":1,"errors":true,"items":[
            {"create":{"_id":"a","status":201}},
            {"create":{"_id":"b","status":400,"error":{"type":"t","reason":"r","index":"i"}}}]});
        let out = apply(
            v.clone(),
            &parse("errors,items.*.status,items.*.error.type"),
        );
        assert_eq!(
            out,
            json!({"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":400,"error":{"type":"t"}}}]})
        );
    }

    #[test]
    fn error_only_filter_drops_successful_items() {
        let v = json!({"errors":true,"items":[{"index":{"status":201}},{"index":{"status":400,"error":{"type":"t"}}}]});
        assert_eq!(
            apply(v.clone(), &parse("items.*.error")),
            json!({"items":[{"index":{"error":{"type":"t"}}}]})
        );
        assert_eq!(apply(json!({"a":1}), &parse("b")), json!({}));
    }
}
