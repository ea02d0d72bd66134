//! Fault injection for the Elasticsearch test server, settable in-process or over `PUT /_test/faults`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The next N `_bulk` requests are refused as a whole with 429 `es_rejected_execution_exception`.
    pub reject_requests: u64,
    /// The next N `_bulk` requests fail as a whole with 503 `unavailable_shards_exception`.
    pub fail_requests: u64,
    /// The next N items (across requests) are rejected with item-level 429: a 429 storm.
    pub reject_items: u64,
    /// Every k-th item is rejected with item-level 429 (0 = off).
    pub reject_item_every: u64,
    /// Every k-th item fails with item-level 503 (0 = off).
    pub fail_item_every: u64,
    /// Added latency before answering, in milliseconds: slow responses.
    pub delay_ms: u64,
    /// The next N requests are processed and then the connection drops before the response completes.
    pub drop_connections: u64,
    /// Capacity: `_bulk` requests beyond this many at once are refused with 429 (0 = unlimited).
    pub max_concurrent_requests: u64,
    /// Capacity: documents accepted per second; items beyond it are rejected with 429 (0 = unlimited).
    pub max_docs_per_second: u64,
    /// Hold every `_bulk` request until un-stalled: Elasticsearch hanging.
    pub stalled: bool,
}
