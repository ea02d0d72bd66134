//! Checks across keys and of values serde cannot express; each error names the key to fix.

use std::time::Duration;

use super::{Config, ConfigError, DeadLetterKind};
use crate::transform::route::IndexPattern;

/// Smallest dead-letter record size allowed: the headers alone take a few hundred bytes.
const MIN_DEAD_LETTER_BYTES: usize = 4096;
/// librdkafka's upper bound for `message.max.bytes`.
const MAX_MESSAGE_BYTES: usize = 1_000_000_000;

fn required(key: &str, v: &str) -> Result<(), ConfigError> {
    if v.trim().is_empty() {
        Err(ConfigError::key(key, "is required and must not be empty"))
    } else {
        Ok(())
    }
}

fn positive(key: &str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        Err(ConfigError::key(key, "must be greater than 0"))
    } else {
        Ok(())
    }
}

fn nonzero(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        Err(ConfigError::key(key, "must be longer than 0"))
    } else {
        Ok(())
    }
}

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        required("pipeline.name", &self.pipeline.name)?;
        required("kafka.brokers", &self.kafka.brokers)?;
        required("kafka.group_id", &self.kafka.group_id)?;
        if self.kafka.topics.is_empty() {
            return Err(ConfigError::key(
                "kafka.topics",
                "is required: name at least one topic",
            ));
        }
        nonzero("kafka.commit_interval", self.kafka.commit_interval)?;
        nonzero("kafka.session_timeout", self.kafka.session_timeout)?;
        positive("kafka.max_record_bytes", self.kafka.max_record_bytes as u64)?;
        positive("kafka.fetch_batch", self.kafka.fetch_batch as u64)?;
        positive("kafka.queued_max_kbytes", self.kafka.queued_max_kbytes)?;
        if self.elasticsearch.urls.is_empty() {
            return Err(ConfigError::key(
                "elasticsearch.urls",
                "is required: name at least one URL",
            ));
        }
        if self.elasticsearch.password.is_some() && self.elasticsearch.username.is_none() {
            return Err(ConfigError::key(
                "elasticsearch.username",
                "required when a password is set",
            ));
        }
        if self.elasticsearch.api_key.is_some() && self.elasticsearch.username.is_some() {
            return Err(ConfigError::key(
                "elasticsearch.api_key",
                "use either api_key or username/password",
            ));
        }
        nonzero(
            "elasticsearch.request_timeout",
            self.elasticsearch.request_timeout,
        )?;
        positive("process.parallelism", self.process.parallelism as u64)?;
        positive("sink.parallelism", self.sink.parallelism as u64)?;
        positive("sink.in_flight", self.sink.in_flight as u64)?;
        positive("sink.batch_max_docs", self.sink.batch_max_docs as u64)?;
        positive("sink.batch_max_bytes", self.sink.batch_max_bytes as u64)?;
        nonzero("sink.linger", self.sink.linger)?;
        nonzero(
            "sink.retry.initial_backoff",
            self.sink.retry.initial_backoff,
        )?;
        if self.sink.retry.max_backoff < self.sink.retry.initial_backoff {
            return Err(ConfigError::key(
                "sink.retry.max_backoff",
                "must be at least initial_backoff",
            ));
        }
        positive(
            "buffers.process_batches",
            self.buffers.process_batches as u64,
        )?;
        positive("buffers.sink_batches", self.buffers.sink_batches as u64)?;
        required("transform.timestamp.field", &self.transform.timestamp.field)?;
        IndexPattern::parse(&self.index.pattern)
            .map_err(|e| ConfigError::key("index.pattern", e.to_string()))?;
        match self.dead_letter.kind {
            DeadLetterKind::File if self.dead_letter.path.is_none() => {
                return Err(ConfigError::key(
                    "dead_letter.path",
                    "required when dead_letter.kind is `file`",
                ));
            }
            DeadLetterKind::Kafka if self.kafka.topics.contains(&self.dead_letter_topic()) => {
                return Err(ConfigError::key(
                    "dead_letter.topic",
                    "must not be one of kafka.topics",
                ));
            }
            _ => {}
        }
        self.validate_record_limits()?;
        nonzero("control.drain_deadline", self.control.drain_deadline)?;
        nonzero(
            "announce.heartbeat_interval",
            self.announce.heartbeat_interval,
        )?;
        Ok(())
    }

    /// The size limits must agree: a record the consumer accepts fits in one `_bulk` request, and the
    /// dead-letter producer has one limit, room for the headers, and it is within librdkafka's range.
    fn validate_record_limits(&self) -> Result<(), ConfigError> {
        if self.kafka.max_record_bytes > self.sink.batch_max_bytes {
            return Err(ConfigError::key(
                "kafka.max_record_bytes",
                format!(
                    "{} is larger than sink.batch_max_bytes ({}): such a record could never be sent",
                    self.kafka.max_record_bytes, self.sink.batch_max_bytes
                ),
            ));
        }
        let dl = self.dead_letter.max_record_bytes;
        if !(MIN_DEAD_LETTER_BYTES..=MAX_MESSAGE_BYTES).contains(&dl) {
            return Err(ConfigError::key(
                "dead_letter.max_record_bytes",
                format!(
                    "{dl} is outside {MIN_DEAD_LETTER_BYTES}..={MAX_MESSAGE_BYTES} (room for the \
                     dead-letter headers; librdkafka's message.max.bytes range)"
                ),
            ));
        }
        if let Some(v) = self.kafka.properties.get("message.max.bytes")
            && v.parse::<usize>().ok() != Some(dl)
        {
            return Err(ConfigError::key(
                "kafka.properties.message.max.bytes",
                format!(
                    "`{v}` disagrees with dead_letter.max_record_bytes ({dl}), which sets the \
                     dead-letter producer's limit; set that key instead"
                ),
            ));
        }
        Ok(())
    }
}
