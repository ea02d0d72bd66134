//! Parse a record and apply the configured transform, writing the document's two `_bulk` lines
//! (action and source) straight into a buffer. Pure: no I/O.
//!
//! The record is parsed into its top-level fields with values kept as raw JSON text (`crate::transform::parse`),
//! so a document costs one validation pass and one copy, not a tree of allocations. Only the event
//! time and the routing fields are decoded.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Timelike, Utc};
use serde_json::Value;

use crate::config::{BulkAction, IndexConfig, TransformConfig};
use crate::transform::parse::{self, Fields};
use crate::transform::record::{DeadLetter, DeadLetterReason, Document, SourceRecord};
use crate::transform::route::IndexPattern;

/// The transform, compiled once from configuration and shared by the process tasks.
#[derive(Debug, Clone)]
pub struct Transform {
    action: BulkAction,
    /// Field name and its value as JSON text.
    add: Vec<(String, String)>,
    drop: Vec<String>,
    rename: Vec<(String, String)>,
    timestamp_field: String,
    timestamp_source: Option<String>,
    index: IndexPattern,
    missing_value: String,
    max_record_bytes: usize,
    /// Some configured field name needs JSON escaping (names from records that needed it are known
    /// by being unescaped copies, `Cow::Owned`).
    escape_names: bool,
}

/// A field value in the output document: raw JSON text from the record or the configuration, or the
/// event time (written as an RFC 3339 string).
#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Raw(&'a str),
    Time,
}

/// Why a record cannot become a document.
pub type Rejection = (DeadLetterReason, String);

impl Transform {
    pub fn new(
        t: &TransformConfig,
        index: &IndexConfig,
        max_record_bytes: usize,
        action: BulkAction,
    ) -> Result<Self, crate::transform::route::PatternError> {
        let needs_escape = |name: &str| name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
        let escape_names = t.add.keys().any(|k| needs_escape(k))
            || t.rename.values().any(|k| needs_escape(k))
            || needs_escape(&t.timestamp.field);
        Ok(Self {
            escape_names,
            action,
            add: t
                .add
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
            drop: t.drop.clone(),
            rename: t
                .rename
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            timestamp_field: t.timestamp.field.clone(),
            timestamp_source: t.timestamp.source.clone(),
            index: IndexPattern::parse(&index.pattern)?,
            missing_value: index.missing_value.clone(),
            max_record_bytes,
        })
    }

    /// Turns one record into a document, or says why it must be dead-lettered.
    pub fn apply(&self, record: SourceRecord) -> Result<Document, Box<DeadLetter>> {
        let mut out = Vec::new();
        match self.encode(&record, &mut out) {
            Ok(()) => Ok(Document {
                lines: out.into(),
                source: record,
            }),
            // Boxed: poison records are rare, documents are the common case.
            Err((reason, detail)) => Err(Box::new(DeadLetter {
                record,
                reason,
                detail,
            })),
        }
    }

    /// Appends the record's `_bulk` action and source lines to `out`. On `Err`, `out` is unchanged.
    pub fn encode(&self, record: &SourceRecord, out: &mut Vec<u8>) -> Result<(), Rejection> {
        let start = out.len();
        let result = self.encode_inner(record, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_inner(&self, record: &SourceRecord, out: &mut Vec<u8>) -> Result<(), Rejection> {
        let payload = &record.payload[..];
        if payload.len() > self.max_record_bytes {
            let detail = format!(
                "record is {} bytes, limit is {}",
                payload.len(),
                self.max_record_bytes
            );
            return Err((DeadLetterReason::Oversized, detail));
        }
        let Some(first) = payload.iter().find(|b| !b.is_ascii_whitespace()) else {
            return Err((
                DeadLetterReason::EmptyPayload,
                "record has no payload".into(),
            ));
        };
        if *first != b'{' {
            return Err(not_an_object(payload));
        }
        let text = std::str::from_utf8(payload)
            .map_err(|e| (DeadLetterReason::InvalidJson, e.to_string()))?;
        let fields =
            Fields::parse(text).map_err(|e| (DeadLetterReason::InvalidJson, e.to_string()))?;
        let mut doc: Vec<(Cow<'_, str>, Val<'_>)> = fields
            .pairs
            .into_iter()
            .map(|(k, v)| (k, Val::Raw(v)))
            .collect();
        for (from, to) in &self.rename {
            if let Some(v) = remove(&mut doc, from) {
                set(&mut doc, to, v);
            }
        }
        for f in &self.drop {
            remove(&mut doc, f);
        }
        for (k, v) in &self.add {
            set(&mut doc, k, Val::Raw(v));
        }
        let time = self.event_time(&doc, record.timestamp_ms);
        set(&mut doc, &self.timestamp_field, Val::Time);

        // Action line.
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(self.action.as_str().as_bytes());
        out.extend_from_slice(b"\":{\"_index\":\"");
        let lookup = |name: &str| -> Option<Cow<'_, str>> {
            let (_, v) = doc.iter().find(|(k, _)| k.as_ref() == name)?;
            Some(match *v {
                Val::Raw(raw) => route_value(raw)?,
                Val::Time => Cow::Owned(time.to_rfc3339_opts(SecondsFormat::Millis, true)),
            })
        };
        self.index
            .render_into(lookup, time, &self.missing_value, out);
        out.extend_from_slice(b"\",\"_id\":\"");
        let p = &record.position;
        parse::write_str_content(out, &p.topic);
        // itoa rather than `write!`: the formatting machinery cost more per record than the digits.
        let mut digits = itoa::Buffer::new();
        out.push(b'-');
        out.extend_from_slice(digits.format(p.partition).as_bytes());
        out.push(b'-');
        out.extend_from_slice(digits.format(p.offset).as_bytes());
        out.extend_from_slice(b"\"}}\n");

        // Source line.
        out.push(b'{');
        for (i, (k, v)) in doc.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match k {
                // Valid JSON input: a name without escapes has no character that needs one.
                Cow::Borrowed(name) if !self.escape_names => {
                    out.push(b'"');
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"\":");
                }
                _ => {
                    parse::write_key(out, k);
                    out.push(b':');
                }
            }
            match v {
                Val::Raw(raw) => out.extend_from_slice(raw.as_bytes()),
                Val::Time => write_time(out, time),
            }
        }
        out.extend_from_slice(b"}\n");
        Ok(())
    }

    fn event_time(&self, doc: &[(Cow<'_, str>, Val<'_>)], kafka_ms: Option<i64>) -> DateTime<Utc> {
        let from_doc = self
            .timestamp_source
            .as_ref()
            .and_then(|f| doc.iter().find(|(k, _)| k.as_ref() == f.as_str()))
            .and_then(|(_, v)| match v {
                Val::Raw(raw) => parse_time(raw),
                Val::Time => None,
            });
        from_doc
            .or_else(|| kafka_ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
            .unwrap_or_else(Utc::now)
    }
}

fn remove<'a>(doc: &mut Vec<(Cow<'_, str>, Val<'a>)>, name: &str) -> Option<Val<'a>> {
    let i = doc.iter().position(|(k, _)| k.as_ref() == name)?;
    Some(doc.remove(i).1)
}

/// Sets a field in place, or appends it.
fn set<'a>(doc: &mut Vec<(Cow<'a, str>, Val<'a>)>, name: &'a str, v: Val<'a>) {
    match doc.iter_mut().find(|(k, _)| k.as_ref() == name) {
        Some(slot) => slot.1 = v,
        None => doc.push((Cow::Borrowed(name), v)),
    }
}

/// A scalar field value as text for index routing (`None` for objects, arrays and null).
fn route_value(raw: &str) -> Option<Cow<'_, str>> {
    match raw.as_bytes().first()? {
        b'"' => parse::raw_str(raw),
        b't' | b'f' => Some(Cow::Borrowed(raw)),
        b'-' | b'0'..=b'9' => match serde_json::from_str::<Value>(raw).ok()? {
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        },
        _ => None,
    }
}

/// Event time from a raw field value: an RFC 3339 string or epoch milliseconds.
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    if raw.starts_with('"') {
        let s = parse::raw_str(raw)?;
        parse_canonical(&s).or_else(|| {
            DateTime::parse_from_rfc3339(&s)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
    } else {
        let ms = match serde_json::from_str::<Value>(raw).ok()? {
            Value::Number(n) => n.as_i64()?,
            _ => return None,
        };
        Utc.timestamp_millis_opt(ms).single()
    }
}

/// Fast path for the most common form, `YYYY-MM-DDTHH:MM:SS.mmmZ`; anything else goes to chrono.
fn parse_canonical(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 24 || b[23] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let seps = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if seps.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let year = i32::try_from(num(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)?;
    let time = date.and_hms_milli_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?)?;
    Some(Utc.from_utc_datetime(&time))
}

/// Writes `"YYYY-MM-DDTHH:MM:SS.mmmZ"` (what chrono's RFC 3339 with milliseconds gives for years
/// 0..=9999; other years go through chrono).
fn write_time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    let year = t.year();
    if !(0..=9999).contains(&year) || t.nanosecond() >= 1_000_000_000 {
        out.push(b'"');
        out.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::Millis, true).as_bytes());
        out.push(b'"');
        return;
    }
    let mut buf = *b"\"0000-00-00T00:00:00.000Z\"";
    let put = |buf: &mut [u8; 26], at: usize, width: usize, mut v: u32| {
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf, 1, 4, year.unsigned_abs());
    put(&mut buf, 6, 2, t.month());
    put(&mut buf, 9, 2, t.day());
    put(&mut buf, 12, 2, t.hour());
    put(&mut buf, 15, 2, t.minute());
    put(&mut buf, 18, 2, t.second());
    put(&mut buf, 21, 3, t.nanosecond() / 1_000_000);
    out.extend_from_slice(&buf);
}

fn not_an_object(payload: &[u8]) -> Rejection {
    match serde_json::from_slice::<Value>(payload) {
        Ok(other) => (
            DeadLetterReason::NotAnObject,
            format!("expected a JSON object, got {}", kind(&other)),
        ),
        Err(e) => (DeadLetterReason::InvalidJson, e.to_string()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimestampConfig;
    use crate::transform::record::Position;
    use bytes::Bytes;
    use serde_json::json;

    fn record(payload: &str) -> SourceRecord {
        SourceRecord {
            position: Position {
                topic: "app".into(),
                partition: 3,
                offset: 42,
                generation: 1,
            },
            timestamp_ms: Some(1_714_564_800_000), // 2024-05-01T12:00:00Z
            key: None,
            payload: Bytes::from(payload.to_owned()),
        }
    }

    fn transform(t: TransformConfig, pattern: &str) -> Transform {
        let index = IndexConfig {
            pattern: pattern.into(),
            missing_value: "unknown".into(),
        };
        Transform::new(&t, &index, 1024, BulkAction::Create).expect("valid transform")
    }

    fn body(d: &Document) -> Value {
        serde_json::from_slice(d.body()).expect("document body is JSON")
    }

    #[test]
    fn adds_drops_renames_and_stamps() {
        let cfg = TransformConfig {
            add: [("env".to_string(), json!("prod"))].into(),
            drop: vec!["password".into()],
            rename: [("msg".to_string(), "message".to_string())].into(),
            timestamp: TimestampConfig::default(),
        };
        let d = transform(cfg, "logs-{service}-%Y.%m.%d")
            .apply(record(r#"{"service":"api","msg":"hi","password":"x"}"#))
            .expect("valid");
        assert_eq!(
            body(&d),
            json!({"service":"api","message":"hi","env":"prod","@timestamp":"2024-05-01T12:00:00.000Z"})
        );
        assert_eq!(d.index().as_deref(), Some("logs-api-2024.05.01"));
        assert_eq!(d.id().as_deref(), Some("app-3-42"));
    }

    #[test]
    fn event_time_comes_from_the_configured_field_when_parseable() {
        let cfg = TransformConfig {
            timestamp: TimestampConfig {
                field: "@timestamp".into(),
                source: Some("ts".into()),
            },
            ..Default::default()
        };
        let t = transform(cfg, "logs-%Y.%m.%d");
        let d = t
            .apply(record(r#"{"ts":"2023-01-02T03:04:05+02:00"}"#))
            .expect("valid");
        assert_eq!(d.index().as_deref(), Some("logs-2023.01.02"));
        assert_eq!(body(&d)["@timestamp"], "2023-01-02T01:04:05.000Z");
        let d = t.apply(record(r#"{"ts":0}"#)).expect("valid");
        assert_eq!(d.index().as_deref(), Some("logs-1970.01.01"));
        // Unparseable event time falls back to the Kafka timestamp rather than rejecting the record.
        let d = t.apply(record(r#"{"ts":"yesterday"}"#)).expect("valid");
        assert_eq!(d.index().as_deref(), Some("logs-2024.05.01"));
    }

    #[test]
    fn poison_records_are_dead_lettered_with_reasons() {
        let t = transform(TransformConfig::default(), "logs");
        let cases = [
            ("{not json", DeadLetterReason::InvalidJson),
            ("[1,2]", DeadLetterReason::NotAnObject),
            ("\"str\"", DeadLetterReason::NotAnObject),
            ("  ", DeadLetterReason::EmptyPayload),
            ("{\"a\":1} trailing", DeadLetterReason::InvalidJson),
        ];
        for (payload, reason) in cases {
            let dl = t.apply(record(payload)).expect_err(payload);
            assert_eq!(dl.reason, reason, "{payload}");
            assert!(!dl.detail.is_empty());
            assert_eq!(
                dl.record.payload,
                Bytes::from(payload.to_owned()),
                "original record kept"
            );
        }
    }

    #[test]
    fn field_names_needing_escapes_stay_valid_json() {
        let cfg = TransformConfig {
            add: [("a\"b".to_string(), json!(1))].into(),
            ..Default::default()
        };
        let d = transform(cfg, "logs")
            .apply(record(r#"{"q\u0022x":"\n","plain":true}"#))
            .expect("valid");
        let b = body(&d);
        assert_eq!(b["q\"x"], "\n");
        assert_eq!(b["a\"b"], 1);
        assert_eq!(b["plain"], true);
    }

    #[test]
    fn oversized_records_are_dead_lettered_before_parsing() {
        let t = transform(TransformConfig::default(), "logs");
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(2000));
        let dl = t.apply(record(&big)).expect_err("too big");
        assert_eq!(dl.reason, DeadLetterReason::Oversized);
    }

    #[test]
    fn invalid_utf8_is_invalid_json() {
        let t = transform(TransformConfig::default(), "logs");
        let mut r = record("");
        r.payload = Bytes::from_static(b"{\"a\":\"\xff\"}");
        assert_eq!(
            t.apply(r).expect_err("bad utf8").reason,
            DeadLetterReason::InvalidJson
        );
    }
}
