//! The units that flow between stages.

use std::sync::Arc;

use bytes::Bytes;

/// Where a record came from. `generation` changes on every (re)assignment of the partition, so that
/// acknowledgements for work started under an earlier assignment cannot move the new one's offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub generation: u64,
}

impl Position {
    /// Deterministic document id: a replay after a crash writes the same id instead of a new document.
    pub fn doc_id(&self) -> String {
        format!("{}-{}-{}", self.topic, self.partition, self.offset)
    }
}

/// A record as consumed, owned so that it outlives the consumer's buffers.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub position: Position,
    /// Kafka timestamp in epoch milliseconds, if the record has one.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Bytes>,
    pub payload: Bytes,
}

/// A document ready for `_bulk`: its action line target and serialized source.
#[derive(Debug, Clone)]
pub struct Document {
    pub index: String,
    pub id: String,
    pub body: Vec<u8>,
    /// Kept so that a document Elasticsearch rejects can be dead-lettered as it arrived.
    pub source: SourceRecord,
}

/// Why a record was dead-lettered; the label of `engine_dead_letters_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    InvalidJson,
    NotAnObject,
    Oversized,
    EmptyPayload,
    MappingError,
    Rejected,
    RetriesExhausted,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::NotAnObject => "not_an_object",
            Self::Oversized => "oversized",
            Self::EmptyPayload => "empty_payload",
            Self::MappingError => "mapping_error",
            Self::Rejected => "rejected",
            Self::RetriesExhausted => "retries_exhausted",
        }
    }
}

/// A record that cannot be indexed, with the reason and a human-readable detail.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub record: SourceRecord,
    pub reason: DeadLetterReason,
    pub detail: String,
}
