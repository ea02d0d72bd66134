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
    /// (The process stage writes the same text straight into the action line.)
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

/// A document ready for `_bulk`: its action line and source line, each ending in `\n`, exactly as
/// they are sent. The process stage writes a whole batch into one buffer; each document is a slice of
/// it, so documents cost no allocation of their own.
#[derive(Debug, Clone)]
pub struct Document {
    pub lines: Bytes,
    /// Kept so that a document Elasticsearch rejects can be dead-lettered as it arrived.
    pub source: SourceRecord,
}

impl Document {
    /// Builds the lines from parts (for tests and tools; the process stage writes them directly).
    pub fn new(action: &str, index: &str, id: &str, body: &[u8], source: SourceRecord) -> Self {
        let mut lines = Vec::with_capacity(body.len() + index.len() + id.len() + 40);
        lines.extend_from_slice(b"{\"");
        lines.extend_from_slice(action.as_bytes());
        lines.extend_from_slice(b"\":{\"_index\":");
        crate::transform::parse::write_str(&mut lines, index);
        lines.extend_from_slice(b",\"_id\":");
        crate::transform::parse::write_str(&mut lines, id);
        lines.extend_from_slice(b"}}\n");
        lines.extend_from_slice(body);
        lines.push(b'\n');
        Self {
            lines: lines.into(),
            source,
        }
    }

    fn action_line(&self) -> Option<serde_json::Value> {
        let end = self.lines.iter().position(|&b| b == b'\n')?;
        serde_json::from_slice(&self.lines[..end]).ok()
    }

    fn target(&self, key: &str) -> Option<String> {
        let action = self.action_line()?;
        let (_, target) = action.as_object()?.iter().next()?;
        target.get(key)?.as_str().map(str::to_owned)
    }

    /// The target index, read back from the action line.
    pub fn index(&self) -> Option<String> {
        self.target("_index")
    }

    /// The document id, read back from the action line.
    pub fn id(&self) -> Option<String> {
        self.target("_id")
    }

    /// The source line, without its newline.
    pub fn body(&self) -> &[u8] {
        let start = self
            .lines
            .iter()
            .position(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = self.lines.len().saturating_sub(1).max(start);
        &self.lines[start..end]
    }
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
