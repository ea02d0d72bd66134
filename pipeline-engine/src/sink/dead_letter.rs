//! Dead-letter destinations: a Kafka topic (default) or a JSON-lines file. Each entry carries the
//! original record, its source position and the error. A record counts as done only after its entry
//! was written, so a failing destination holds the commit point back instead of losing the record.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures::future::BoxFuture;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use crate::transform::record::DeadLetter;

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead-letter producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("dead-letter file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub trait DeadLetterSink: Send + Sync + 'static {
    /// Writes all entries durably, or fails (the caller retries; duplicates in the destination are
    /// possible, losses are not).
    fn write<'a>(&'a self, entries: &'a [DeadLetter])
    -> BoxFuture<'a, Result<(), DeadLetterError>>;
}

/// Header names on dead-letter Kafka records; the value is the original payload, the key the original key.
pub mod headers {
    pub const TOPIC: &str = "dead_letter.topic";
    pub const PARTITION: &str = "dead_letter.partition";
    pub const OFFSET: &str = "dead_letter.offset";
    pub const REASON: &str = "dead_letter.reason";
    pub const ERROR: &str = "dead_letter.error";
    pub const PIPELINE: &str = "dead_letter.pipeline";
    /// Size in bytes of the original payload, always present.
    pub const ORIGINAL_SIZE: &str = "dead_letter.original_size";
    /// `true` when the value is only a prefix of the original payload (it did not fit the producer's
    /// `message.max.bytes`), else `false`.
    pub const TRUNCATED: &str = "dead_letter.truncated";
}

/// Bytes a dead-letter record may spend on its value, given the producer's `message.max.bytes`, the
/// key and the headers. The margin covers librdkafka's per-record and per-batch framing.
fn value_budget(max_message_bytes: usize, key: usize, headers: usize) -> usize {
    const FRAMING: usize = 512;
    max_message_bytes.saturating_sub(key + headers + FRAMING)
}

pub struct KafkaDeadLetter {
    producer: FutureProducer,
    topic: String,
    pipeline: String,
    /// The producer's `message.max.bytes`: larger values are written truncated instead of refused.
    max_message_bytes: usize,
}

impl KafkaDeadLetter {
    pub fn new(
        brokers: &str,
        topic: String,
        pipeline: String,
        max_message_bytes: usize,
        extra: &[(String, String)],
    ) -> Result<Self, DeadLetterError> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "5");
        for (k, v) in extra {
            cfg.set(k, v);
        }
        // After the extra properties: the configuration check makes sure they agree with it.
        cfg.set("message.max.bytes", max_message_bytes.to_string());
        Ok(Self {
            producer: cfg.create()?,
            topic,
            pipeline,
            max_message_bytes,
        })
    }

    /// Sends one entry. A value over the budget is cut to a prefix; a broker that still refuses the
    /// size (its own limit may be lower) gets ever shorter prefixes down to an empty value, so a
    /// record that cannot be written whole never holds its partition back.
    async fn send(&self, e: &DeadLetter) -> Result<(), DeadLetterError> {
        let p = &e.record.position;
        let (partition, offset) = (p.partition.to_string(), p.offset.to_string());
        let original_size = e.record.payload.len().to_string();
        let key = e.record.key.as_deref().unwrap_or_default();
        let fixed = [
            (headers::TOPIC, p.topic.as_bytes()),
            (headers::PARTITION, partition.as_bytes()),
            (headers::OFFSET, offset.as_bytes()),
            (headers::REASON, e.reason.as_str().as_bytes()),
            (headers::ERROR, e.detail.as_bytes()),
            (headers::PIPELINE, self.pipeline.as_bytes()),
            (headers::ORIGINAL_SIZE, original_size.as_bytes()),
        ];
        let header_bytes: usize = fixed
            .iter()
            .map(|(k, v)| k.len() + v.len() + 16)
            .sum::<usize>()
            + headers::TRUNCATED.len()
            + 24;
        // A key too large to leave room for the headers is cut as well (rare: keys are small).
        let key = &key[..key.len().min(self.max_message_bytes / 4)];
        let mut budget = value_budget(self.max_message_bytes, key.len(), header_bytes);
        loop {
            let value = &e.record.payload[..e.record.payload.len().min(budget)];
            let truncated = value.len() < e.record.payload.len()
                || key.len() < e.record.key.as_ref().map_or(0, |k| k.len());
            let mut hdrs = OwnedHeaders::new_with_capacity(fixed.len() + 1);
            for (k, v) in fixed {
                hdrs = hdrs.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            hdrs = hdrs.insert(Header {
                key: headers::TRUNCATED,
                value: Some(if truncated {
                    &b"true"[..]
                } else {
                    &b"false"[..]
                }),
            });
            let mut rec: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.topic).payload(value).headers(hdrs);
            if e.record.key.is_some() {
                rec = rec.key(key);
            }
            match self.producer.send(rec, Duration::from_secs(30)).await {
                Ok(_) => return Ok(()),
                Err((err, _))
                    if err.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge)
                        && budget > 0 =>
                {
                    tracing::warn!(
                        topic = %p.topic, partition = p.partition, offset = p.offset, bytes = value.len(),
                        "dead-letter record refused as too large; writing a shorter prefix"
                    );
                    budget = value.len() / 2;
                }
                Err((err, _)) => return Err(err.into()),
            }
        }
    }
}

impl DeadLetterSink for KafkaDeadLetter {
    fn write<'a>(
        &'a self,
        entries: &'a [DeadLetter],
    ) -> BoxFuture<'a, Result<(), DeadLetterError>> {
        Box::pin(async move {
            for result in futures::future::join_all(entries.iter().map(|e| self.send(e))).await {
                result?;
            }
            Ok(())
        })
    }
}

/// One line of the dead-letter file.
#[derive(Debug, Serialize)]
pub struct FileEntry<'a> {
    pub pipeline: &'a str,
    pub time: String,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub reason: &'a str,
    pub error: &'a str,
    /// The original payload when it is UTF-8 ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<&'a str>,
    /// ... otherwise base64 of its bytes, so nothing is altered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
}

pub struct FileDeadLetter {
    path: PathBuf,
    pipeline: String,
    file: Arc<Mutex<std::fs::File>>,
}

impl FileDeadLetter {
    pub fn open(path: PathBuf, pipeline: String) -> Result<Self, DeadLetterError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| DeadLetterError::File {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            path,
            pipeline,
            file: Arc::new(Mutex::new(file)),
        })
    }
}

pub fn file_line(pipeline: &str, e: &DeadLetter) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = std::str::from_utf8(&e.record.payload).ok();
    let entry = FileEntry {
        pipeline,
        time: chrono::Utc::now().to_rfc3339(),
        topic: &e.record.position.topic,
        partition: e.record.position.partition,
        offset: e.record.position.offset,
        timestamp_ms: e.record.timestamp_ms,
        reason: e.reason.as_str(),
        error: &e.detail,
        record: text,
        record_base64: text.is_none().then(|| b64.encode(&e.record.payload)),
        key_base64: e.record.key.as_ref().map(|k| b64.encode(k)),
    };
    let mut line = serde_json::to_vec(&entry).expect("serializing plain data cannot fail");
    line.push(b'\n');
    line
}

impl DeadLetterSink for FileDeadLetter {
    fn write<'a>(
        &'a self,
        entries: &'a [DeadLetter],
    ) -> BoxFuture<'a, Result<(), DeadLetterError>> {
        let mut buf = Vec::new();
        for e in entries {
            buf.extend_from_slice(&file_line(&self.pipeline, e));
        }
        let file = self.file.clone();
        let path = self.path.clone();
        Box::pin(async move {
            let res = tokio::task::spawn_blocking(move || {
                let mut f = file
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                f.write_all(&buf)?;
                // Durable before the offsets behind it may be committed.
                f.sync_data()
            })
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join)));
            res.map_err(|source| DeadLetterError::File { path, source })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::record::{DeadLetterReason, Position, SourceRecord};
    use bytes::Bytes;

    fn entry(payload: &'static [u8]) -> DeadLetter {
        DeadLetter {
            record: SourceRecord {
                position: Position {
                    topic: "app".into(),
                    partition: 2,
                    offset: 7,
                    generation: 1,
                },
                timestamp_ms: Some(5),
                key: Some(Bytes::from_static(b"k")),
                payload: Bytes::from_static(payload),
            },
            reason: DeadLetterReason::InvalidJson,
            detail: "expected value at line 1".into(),
        }
    }

    #[tokio::test]
    async fn file_entries_carry_record_position_and_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dlq.jsonl");
        let sink = FileDeadLetter::open(path.clone(), "logs".into()).expect("open");
        sink.write(&[entry(b"{oops"), entry(b"\xff\xfe")])
            .await
            .expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["record"], "{oops");
        assert_eq!(lines[0]["topic"], "app");
        assert_eq!(lines[0]["partition"], 2);
        assert_eq!(lines[0]["offset"], 7);
        assert_eq!(lines[0]["reason"], "invalid_json");
        assert_eq!(lines[0]["error"], "expected value at line 1");
        assert_eq!(lines[0]["key_base64"], "aw==");
        assert!(lines[1].get("record").is_none());
        assert_eq!(lines[1]["record_base64"], "//4=");
    }

    #[test]
    fn value_budget_leaves_room_for_key_headers_and_framing() {
        assert_eq!(value_budget(1_000_000, 10, 300), 1_000_000 - 10 - 300 - 512);
        assert_eq!(value_budget(100, 10, 300), 0, "never negative");
    }

    #[tokio::test]
    async fn unwritable_file_is_an_error_naming_the_path() {
        let err = FileDeadLetter::open(PathBuf::from("/nonexistent/dir/dlq.jsonl"), "p".into())
            .err()
            .expect("fails");
        assert!(err.to_string().contains("/nonexistent/dir/dlq.jsonl"));
    }
}
