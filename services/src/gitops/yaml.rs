//! Reads and replaces one number in a YAML file, leaving every other byte as it was: comments, order,
//! quoting, indentation and line endings. Only block mappings are walked (the layout of a values file);
//! a key path through a list or a flow mapping is refused rather than guessed.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlEditError {
    #[error("key path {0:?} is not in the file")]
    KeyMissing(String),
    #[error("key path {0:?} appears more than once in the file")]
    Ambiguous(String),
    #[error("the value at {key:?} is {value:?}, not a whole number")]
    NotANumber { key: String, value: String },
}

/// Where the value of the key path sits in the text.
struct Located {
    start: usize,
    end: usize,
    quote: Option<char>,
}

/// The whole number at `key` (dot-separated).
pub fn read_scale(text: &str, key: &str) -> Result<u64, YamlEditError> {
    let found = locate(text, key)?;
    parse_number(&text[found.start..found.end], key)
}

/// `text` with the number at `key` replaced by `scale`, keeping its quotes if it had any.
pub fn set_scale(text: &str, key: &str, scale: u64) -> Result<String, YamlEditError> {
    let found = locate(text, key)?;
    parse_number(&text[found.start..found.end], key)?;
    let replacement = match found.quote {
        Some(q) => format!("{q}{scale}{q}"),
        None => scale.to_string(),
    };
    let mut out = String::with_capacity(text.len() + 4);
    out.push_str(&text[..found.start]);
    out.push_str(&replacement);
    out.push_str(&text[found.end..]);
    Ok(out)
}

fn parse_number(token: &str, key: &str) -> Result<u64, YamlEditError> {
    let unquoted = token.trim_matches(|c| c == '"' || c == '\'');
    unquoted.parse().map_err(|_| YamlEditError::NotANumber {
        key: key.to_owned(),
        value: token.to_owned(),
    })
}

fn locate(text: &str, key: &str) -> Result<Located, YamlEditError> {
    let target: Vec<&str> = key.split('.').collect();
    // (indent, key) of the mappings the current line is nested in.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut found: Option<Located> = None;
    let mut offset = 0;
    for raw_line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if content.starts_with("---") || content.starts_with("...") {
            stack.clear();
            continue;
        }
        let indent = line.len() - content.len();
        stack.retain(|(level, _)| *level < indent);
        let Some((name, rest_at)) = mapping_key(content) else {
            continue;
        };
        let depth = stack.len();
        let on_path = depth < target.len()
            && stack.iter().zip(&target).all(|((_, k), t)| k == t)
            && name == target[depth];
        if on_path && depth + 1 == target.len() {
            let value_start = line_start + indent + rest_at;
            let located = value_span(text, value_start, line_start + line.len());
            if found.replace(located).is_some() {
                return Err(YamlEditError::Ambiguous(key.to_owned()));
            }
        }
        stack.push((indent, name));
    }
    found.ok_or_else(|| YamlEditError::KeyMissing(key.to_owned()))
}

/// The key of a `key: value` or `key:` line, and where the text after the colon starts.
fn mapping_key(content: &str) -> Option<(String, usize)> {
    let (name, after_key) = match content.chars().next()? {
        quote @ ('"' | '\'') => {
            let close = content[1..].find(quote)? + 1;
            (content[1..close].to_owned(), close + 1)
        }
        '-' | '[' | '{' => return None,
        _ => {
            let colon = content.find(": ").or_else(|| {
                content
                    .strip_suffix(':')
                    .map(|k| k.len())
                    .or_else(|| content.find(":\t"))
            })?;
            (content[..colon].trim_end().to_owned(), colon)
        }
    };
    content[after_key..]
        .starts_with(':')
        .then_some((name, after_key + 1))
}

/// The scalar after the colon: skips spaces, stops before a ` #` comment or the line end.
fn value_span(text: &str, from: usize, line_end: usize) -> Located {
    let rest = &text[from..line_end];
    let skipped = rest.len() - rest.trim_start().len();
    let start = from + skipped;
    let value = &text[start..line_end];
    if let Some(quote @ ('"' | '\'')) = value.chars().next()
        && let Some(close) = value[1..].find(quote)
    {
        return Located {
            start,
            end: start + close + 2,
            quote: Some(quote),
        };
    }
    let end = value.find(" #").map_or(value.trim_end().len(), |comment| {
        value[..comment].trim_end().len()
    });
    Located {
        start,
        end: start + end,
        quote: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: &str = "\
# Scale of the logs pipeline. Changed by the autoscaler; review in the PR.
engine:
  image: registry.example.com/engine:1.4.2   # pinned
  replicas: 3 # workers
  resources:
    limits: {cpu: \"2\", memory: 1Gi}
  'quoted key': \"7\"
other:
  replicas: 9
";

    #[test]
    fn changes_only_the_value_at_the_key_path() {
        let changed = set_scale(VALUES, "engine.replicas", 12).expect("edited");
        assert_eq!(
            changed,
            VALUES.replace("replicas: 3 # workers", "replicas: 12 # workers")
        );
        assert_eq!(read_scale(&changed, "engine.replicas"), Ok(12));
        assert_eq!(read_scale(&changed, "other.replicas"), Ok(9));
    }

    #[test]
    fn a_yaml_parser_sees_the_same_document_but_for_the_one_value() {
        let before: serde_yaml::Value = serde_yaml::from_str(VALUES).expect("parses");
        let changed = set_scale(VALUES, "engine.replicas", 12).expect("edited");
        let mut after: serde_yaml::Value = serde_yaml::from_str(&changed).expect("still parses");
        assert_eq!(after["engine"]["replicas"], serde_yaml::Value::from(12));
        after["engine"]["replicas"] = serde_yaml::Value::from(3);
        assert_eq!(after, before);
    }

    #[test]
    fn keeps_quotes_and_reads_quoted_keys() {
        assert_eq!(read_scale(VALUES, "engine.quoted key"), Ok(7));
        let changed = set_scale(VALUES, "engine.quoted key", 8).expect("edited");
        assert!(changed.contains("'quoted key': \"8\"\n"), "{changed}");
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let crlf = "engine:\r\n  replicas: 3\r\n";
        assert_eq!(
            set_scale(crlf, "engine.replicas", 4),
            Ok("engine:\r\n  replicas: 4\r\n".to_owned())
        );
    }

    #[test]
    fn refuses_a_missing_key_or_a_value_that_is_not_a_number() {
        assert_eq!(
            set_scale(VALUES, "engine.parallelism", 2),
            Err(YamlEditError::KeyMissing("engine.parallelism".to_owned()))
        );
        assert!(matches!(
            set_scale(VALUES, "engine.image", 2),
            Err(YamlEditError::NotANumber { .. })
        ));
        assert!(matches!(
            set_scale(VALUES, "engine.resources", 2),
            Err(YamlEditError::NotANumber { .. })
        ));
        assert_eq!(
            read_scale("a:\n  b: 1\na:\n  b: 2\n", "a.b"),
            Err(YamlEditError::Ambiguous("a.b".to_owned()))
        );
    }

    #[test]
    fn a_key_nested_elsewhere_does_not_match() {
        let text = "other:\n  engine:\n    replicas: 5\n";
        assert_eq!(
            read_scale(text, "engine.replicas"),
            Err(YamlEditError::KeyMissing("engine.replicas".to_owned()))
        );
        assert_eq!(read_scale(text, "other.engine.replicas"), Ok(5));
    }
}
