//! Reading the specs `apply -f` sends: YAML or JSON (JSON is YAML), one or several documents.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::CliError;

/// One spec to apply, as written; the API validates it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub name: String,
    pub spec: Value,
}

/// The part of a spec the client needs itself: the name, for the cluster's URL.
#[derive(Deserialize)]
struct Named {
    name: String,
}

pub fn read_documents(path: &Path) -> Result<Vec<Document>, CliError> {
    let shown = path.display().to_string();
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| input("(standard input)", e.to_string()))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|e| input(&shown, e.to_string()))?
    };
    parse_documents(&text).map_err(|problem| input(&shown, problem))
}

fn input(path: &str, problem: String) -> CliError {
    CliError::Input {
        path: path.to_owned(),
        problem,
    }
}

/// Every non-empty document of `text`, each with its name.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, String> {
    let mut documents = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let spec = Value::deserialize(document).map_err(|e| format!("document {number}: {e}"))?;
        if spec.is_null() {
            continue;
        }
        if !spec.is_object() {
            return Err(format!("document {number}: a cluster spec is a mapping"));
        }
        let Named { name } =
            Named::deserialize(&spec).map_err(|e| format!("document {number}: name: {e}"))?;
        documents.push(Document { name, spec });
    }
    if documents.is_empty() {
        return Err("no cluster spec in it".to_owned());
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_read_the_same() {
        let yaml = parse_documents("name: orders\npolicy:\n  max_scale: 8\n").expect("a value");
        let json =
            parse_documents(r#"{"name": "orders", "policy": {"max_scale": 8}}"#).expect("a value");
        assert_eq!(yaml, json);
        assert_eq!(yaml[0].name, "orders");
        assert_eq!(yaml[0].spec["policy"]["max_scale"], 8);
    }

    #[test]
    fn several_documents_apply_in_order_and_empty_ones_are_skipped() {
        let docs = parse_documents("---\nname: a\n---\n---\nname: b\n").expect("a value");
        let names: Vec<_> = docs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn problems_name_the_document_and_what_is_wrong() {
        let error = parse_documents("name: a\n---\npolicy: {}\n").expect_err("an error");
        assert!(error.starts_with("document 2: name:"), "{error}");
        let error = parse_documents("name: [unclosed\n").expect_err("an error");
        assert!(error.starts_with("document 1:"), "{error}");
        assert!(
            parse_documents("- a\n- b\n")
                .expect_err("an error")
                .contains("mapping")
        );
        assert_eq!(
            parse_documents("\n").expect_err("an error"),
            "no cluster spec in it"
        );
    }
}
