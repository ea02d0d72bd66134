//! Parse a record into a JSON document and apply the configured transform. Pure: no I/O.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::config::{IndexConfig, TransformConfig};
use crate::record::{DeadLetter, DeadLetterReason, Document, SourceRecord};
use crate::route::IndexPattern;

/// The transform, compiled once from configuration and shared by the process tasks.
#[derive(Debug, Clone)]
pub struct Transform {
    add: Vec<(String, Value)>,
    drop: Vec<String>,
    rename: Vec<(String, String)>,
    timestamp_field: String,
    timestamp_source: Option<String>,
    index: IndexPattern,
    missing_value: String,
    max_record_bytes: usize,
}

impl Transform {
    pub fn new(
        t: &TransformConfig,
        index: &IndexConfig,
        max_record_bytes: usize,
    ) -> Result<Self, crate::route::PatternError> {
        Ok(Self {
            add: t.add.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
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
        // Boxed: poison records are rare, documents are the common case.
        let reject = |record: SourceRecord, reason: DeadLetterReason, detail: String| {
            Box::new(DeadLetter {
                record,
                reason,
                detail,
            })
        };
        if record.payload.len() > self.max_record_bytes {
            let detail = format!(
                "record is {} bytes, limit is {}",
                record.payload.len(),
                self.max_record_bytes
            );
            return Err(reject(record, DeadLetterReason::Oversized, detail));
        }
        if record.payload.iter().all(u8::is_ascii_whitespace) {
            return Err(reject(
                record,
                DeadLetterReason::EmptyPayload,
                "record has no payload".into(),
            ));
        }
        let mut doc = match serde_json::from_slice::<Value>(&record.payload) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                let detail = format!("expected a JSON object, got {}", kind(&other));
                return Err(reject(record, DeadLetterReason::NotAnObject, detail));
            }
            Err(e) => return Err(reject(record, DeadLetterReason::InvalidJson, e.to_string())),
        };
        for (from, to) in &self.rename {
            if let Some(v) = doc.remove(from) {
                doc.insert(to.clone(), v);
            }
        }
        for f in &self.drop {
            doc.remove(f);
        }
        for (k, v) in &self.add {
            doc.insert(k.clone(), v.clone());
        }
        let time = self.event_time(&doc, record.timestamp_ms);
        doc.insert(
            self.timestamp_field.clone(),
            Value::String(time.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        let index = self.index.render(&doc, time, &self.missing_value);
        let body = serde_json::to_vec(&doc).map_err(|e| {
            Box::new(DeadLetter {
                record: record.clone(),
                reason: DeadLetterReason::InvalidJson,
                detail: e.to_string(),
            })
        })?;
        Ok(Document {
            index,
            id: record.position.doc_id(),
            body,
            source: record,
        })
    }

    fn event_time(&self, doc: &Map<String, Value>, kafka_ms: Option<i64>) -> DateTime<Utc> {
        let from_doc = self
            .timestamp_source
            .as_ref()
            .and_then(|f| doc.get(f))
            .and_then(|v| match v {
                Value::String(s) => DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
                Value::Number(n) => n
                    .as_i64()
                    .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
                _ => None,
            });
        from_doc
            .or_else(|| kafka_ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
            .unwrap_or_else(Utc::now)
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
    use crate::record::Position;
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
        Transform::new(&t, &index, 1024).expect("valid transform")
    }

    fn body(d: &Document) -> Value {
        serde_json::from_slice(&d.body).expect("document body is JSON")
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
        assert_eq!(d.index, "logs-api-2024.05.01");
        assert_eq!(d.id, "app-3-42");
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
        assert_eq!(d.index, "logs-2023.01.02");
        assert_eq!(body(&d)["@timestamp"], "2023-01-02T01:04:05.000Z");
        let d = t.apply(record(r#"{"ts":0}"#)).expect("valid");
        assert_eq!(d.index, "logs-1970.01.01");
        // Unparseable event time falls back to the Kafka timestamp rather than rejecting the record.
        let d = t.apply(record(r#"{"ts":"yesterday"}"#)).expect("valid");
        assert_eq!(d.index, "logs-2024.05.01");
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
