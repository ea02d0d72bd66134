//! Index routing: `logs-{service}-%Y.%m.%d` → `logs-checkout-2024.05.01`.
//!
//! Field values come from untrusted records, so they are reduced to what Elasticsearch accepts in an
//! index name (lowercase, no `\ / * ? " < > | , # :` or spaces) instead of failing the whole document.

use std::borrow::Cow;

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
    Literal(String),
    /// strftime items, expanded with the record's date.
    Date(Vec<Item<'static>>),
    /// The same, when every item is a literal or a zero-padded number this module formats itself
    /// (`%Y %m %d %H %M %S`): the common index patterns, without chrono's formatting machinery.
    FastDate(Vec<DatePart>),
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
        let lookup = |name: &str| -> Option<Cow<'_, str>> {
            match doc.get(name)? {
                Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                Value::Number(n) => Some(Cow::Owned(n.to_string())),
                Value::Bool(b) => Some(Cow::Owned(b.to_string())),
                _ => None,
            }
        };
        let mut out = Vec::new();
        self.render_into(lookup, time, missing, &mut out);
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends the index name to `out`, JSON-string-escaped (so it can sit inside an action line).
    /// `lookup` gives a field's scalar value as text (`None` if missing or not a scalar).
    pub fn render_into<'d>(
        &self,
        lookup: impl Fn(&str) -> Option<Cow<'d, str>>,
        time: DateTime<Utc>,
        missing: &str,
        out: &mut Vec<u8>,
    ) {
        use std::io::Write as _;
        let start = out.len();
        for seg in &self.segments {
            match seg {
                Segment::Literal(text) => out.extend_from_slice(text.as_bytes()),
                Segment::Date(items) => {
                    // Writing to a Vec cannot fail.
                    let _ = write!(out, "{}", time.format_with_items(items.iter()));
                }
                Segment::FastDate(parts) => write_date(parts, time, out),
                Segment::Field(name) => {
                    let before = out.len();
                    if let Some(raw) = lookup(name) {
                        sanitize_into(&raw, out);
                    }
                    if out.len() == before {
                        out.extend_from_slice(missing.as_bytes());
                    }
                }
            }
        }
        // Names may not start with these characters.
        let lead = out[start..]
            .iter()
            .take_while(|b| matches!(b, b'-' | b'_' | b'+'))
            .count();
        out.drain(start..start + lead);
        if out.len() == start {
            out.extend_from_slice(missing.as_bytes());
        }
        if out.len() - start > MAX_INDEX_BYTES {
            let mut cut = start + MAX_INDEX_BYTES;
            // Back to a UTF-8 character boundary.
            while cut > start && (out[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            out.truncate(cut);
        }
        // Literal text and the missing value come from the configuration: escape them if needed.
        if out[start..]
            .iter()
            .any(|&b| b == b'"' || b == b'\\' || b < 0x20)
        {
            let name = String::from_utf8_lossy(&out[start..]).into_owned();
            out.truncate(start);
            crate::transform::parse::write_str_content(out, &name);
        }
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
    if !text.contains('%') {
        return Ok(Segment::Literal(text.to_owned()));
    }
    let items = StrftimeItems::new(text)
        .parse_to_owned()
        .map_err(|_| PatternError::BadDate(text.to_owned()))?;
    match items.iter().map(DatePart::of).collect::<Option<Vec<_>>>() {
        Some(parts) => Ok(Segment::FastDate(parts)),
        None => Ok(Segment::Date(items)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DatePart {
    Literal(String),
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl DatePart {
    fn of(item: &Item<'static>) -> Option<Self> {
        use chrono::format::{Numeric, Pad};
        Some(match item {
            Item::Literal(s) | Item::Space(s) => Self::Literal((*s).to_owned()),
            Item::OwnedLiteral(s) | Item::OwnedSpace(s) => Self::Literal(s.to_string()),
            Item::Numeric(n, Pad::Zero) => match n {
                Numeric::Year => Self::Year,
                Numeric::Month => Self::Month,
                Numeric::Day => Self::Day,
                Numeric::Hour => Self::Hour,
                Numeric::Minute => Self::Minute,
                Numeric::Second => Self::Second,
                _ => return None,
            },
            _ => return None,
        })
    }
}

fn write_date(parts: &[DatePart], time: DateTime<Utc>, out: &mut Vec<u8>) {
    use chrono::{Datelike, Timelike};
    let two = |out: &mut Vec<u8>, v: u32| {
        out.push(b'0' + (v / 10 % 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    for p in parts {
        match p {
            DatePart::Literal(s) => out.extend_from_slice(s.as_bytes()),
            DatePart::Year => match u32::try_from(time.year()) {
                // chrono pads years to four digits and signs those beyond 9999.
                Ok(y) if y <= 9999 => {
                    two(out, y / 100);
                    two(out, y % 100);
                }
                _ => {
                    use std::io::Write as _;
                    let _ = write!(out, "{}", time.format("%Y"));
                }
            },
            DatePart::Month => two(out, time.month()),
            DatePart::Day => two(out, time.day()),
            DatePart::Hour => two(out, time.hour()),
            DatePart::Minute => two(out, time.minute()),
            DatePart::Second => two(out, time.second().min(59)),
        }
    }
}

/// Appends a field value reduced to what an index name may contain: lowercase, forbidden characters
/// replaced by `_`, control characters removed, at most 100 characters.
fn sanitize_into(raw: &str, out: &mut Vec<u8>) {
    // Common case: already a valid lowercase ASCII name part.
    if raw.len() <= 100
        && raw.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
    {
        out.extend_from_slice(raw.as_bytes());
        return;
    }
    let clean: String = raw
        .chars()
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
        .collect();
    out.extend_from_slice(clean.as_bytes());
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
    fn fast_date_formatting_matches_chrono() {
        let fast = IndexPattern::parse("x-%Y.%m.%d-%H.%M.%S").expect("valid");
        assert!(matches!(fast.segments[0], Segment::FastDate(_)));
        for (y, mo, d, h, mi, s) in [(2024, 5, 1, 12, 0, 0), (7, 12, 31, 23, 59, 59)] {
            let t = Utc
                .with_ymd_and_hms(y, mo, d, h, mi, s)
                .single()
                .expect("valid date");
            assert_eq!(
                fast.render(&Map::new(), t, "u"),
                t.format("x-%Y.%m.%d-%H.%M.%S").to_string()
            );
        }
        let slow = IndexPattern::parse("x-%b-%j").expect("valid");
        assert!(matches!(slow.segments[0], Segment::Date(_)));
        assert_eq!(
            slow.render(&Map::new(), time(), "u"),
            time().format("x-%b-%j").to_string()
        );
    }

    #[test]
    fn static_pattern_renders_as_is() {
        let p = IndexPattern::parse("logs").expect("valid");
        assert_eq!(p.render(&Map::new(), time(), "u"), "logs");
    }
}
