//! Index routing: `logs-{service}-%Y.%m.%d` → `logs-checkout-2024.05.01`.
//!
//! Field values come from untrusted records, so they are reduced to what Elasticsearch accepts in an
//! index name (lowercase, no `\ / * ? " < > | , # :` or spaces) instead of failing the whole document.

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("unclosed `{{` at byte {0}")]
    Unclosed(usize),
    #[error("empty `{{}}` placeholder")]
    EmptyField,
    #[error("invalid date format in `{0}`")]
    BadDate(String),
    #[error("index names must be lowercase; `{0}` is not")]
    Uppercase(String),
    #[error("pattern is empty")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Literal text, possibly with strftime items, expanded with the record's date.
    Date(String),
    Field(String),
}

#[derive(Debug, Clone)]
pub struct IndexPattern {
    segments: Vec<Segment>,
}

/// Longest index name Elasticsearch accepts, in bytes.
const MAX_INDEX_BYTES: usize = 255;

impl IndexPattern {
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError::Empty);
        }
        let mut segments = Vec::new();
        let mut rest = pattern;
        let mut consumed = 0;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                segments.push(date_segment(&rest[..open])?);
            }
            let close = rest[open..]
                .find('}')
                .ok_or(PatternError::Unclosed(consumed + open))?
                + open;
            let field = rest[open + 1..close].trim();
            if field.is_empty() {
                return Err(PatternError::EmptyField);
            }
            segments.push(Segment::Field(field.to_owned()));
            consumed += close + 1;
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            segments.push(date_segment(rest)?);
        }
        Ok(Self { segments })
    }

    /// Renders the index name for a document and its event time.
    pub fn render(&self, doc: &Map<String, Value>, time: DateTime<Utc>, missing: &str) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Date(fmt) => out.push_str(&time.format(fmt).to_string()),
                Segment::Field(name) => {
                    let raw = match doc.get(name) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        Some(Value::Bool(b)) => b.to_string(),
                        _ => String::new(),
                    };
                    let clean = sanitize(&raw);
                    out.push_str(if clean.is_empty() { missing } else { &clean });
                }
            }
        }
        // Names may not start with these characters.
        let trimmed = out.trim_start_matches(['-', '_', '+']);
        let mut name = if trimmed.is_empty() {
            missing.to_owned()
        } else {
            trimmed.to_owned()
        };
        if name.len() > MAX_INDEX_BYTES {
            let mut cut = MAX_INDEX_BYTES;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
        }
        name
    }
}

fn date_segment(text: &str) -> Result<Segment, PatternError> {
    if StrftimeItems::new(text).any(|i| matches!(i, Item::Error)) {
        return Err(PatternError::BadDate(text.to_owned()));
    }
    // Literal parts must already be valid; only strftime output may add digits and punctuation.
    if text.chars().any(|c| c.is_uppercase()) && !text.contains('%') {
        return Err(PatternError::Uppercase(text.to_owned()));
    }
    Ok(Segment::Date(text.to_owned()))
}

fn sanitize(raw: &str) -> String {
    raw.chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if matches!(
                c,
                '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':' | ' '
            ) {
                '_'
            } else {
                c
            }
        })
        .filter(|c| !c.is_control())
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
            .single()
            .expect("valid date")
    }

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn routes_by_field_and_date() {
        let p = IndexPattern::parse("logs-{service}-%Y.%m.%d").expect("valid");
        let d = doc(serde_json::json!({"service": "checkout"}));
        assert_eq!(p.render(&d, time(), "unknown"), "logs-checkout-2024.05.01");
    }

    #[test]
    fn missing_or_structured_field_uses_the_missing_value() {
        let p = IndexPattern::parse("logs-{service}-%Y").expect("valid");
        assert_eq!(
            p.render(&doc(serde_json::json!({})), time(), "unknown"),
            "logs-unknown-2024"
        );
        assert_eq!(
            p.render(
                &doc(serde_json::json!({"service": {"a": 1}})),
                time(),
                "none"
            ),
            "logs-none-2024"
        );
        assert_eq!(
            p.render(&doc(serde_json::json!({"service": 42})), time(), "x"),
            "logs-42-2024"
        );
    }

    #[test]
    fn hostile_field_values_cannot_produce_an_invalid_index_name() {
        let p = IndexPattern::parse("{service}").expect("valid");
        let name = p.render(
            &doc(serde_json::json!({"service": "-Foo/../Bar*?, #:x\u{0}"})),
            time(),
            "u",
        );
        assert_eq!(name, "foo_.._bar______x");
        let long = "a".repeat(1000);
        let name = p.render(&doc(serde_json::json!({"service": long})), time(), "u");
        assert!(name.len() <= MAX_INDEX_BYTES);
        assert_eq!(
            p.render(&doc(serde_json::json!({"service": "---"})), time(), "u"),
            "u"
        );
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert_eq!(
            IndexPattern::parse("logs-{service").map(|_| ()),
            Err(PatternError::Unclosed(5))
        );
        assert_eq!(
            IndexPattern::parse("logs-{}").map(|_| ()),
            Err(PatternError::EmptyField)
        );
        assert!(matches!(
            IndexPattern::parse("logs-%Q"),
            Err(PatternError::BadDate(_))
        ));
        assert!(matches!(
            IndexPattern::parse("Logs"),
            Err(PatternError::Uppercase(_))
        ));
        assert_eq!(
            IndexPattern::parse("").map(|_| ()),
            Err(PatternError::Empty)
        );
    }

    #[test]
    fn static_pattern_renders_as_is() {
        let p = IndexPattern::parse("logs").expect("valid");
        assert_eq!(p.render(&Map::new(), time(), "u"), "logs");
    }
}
