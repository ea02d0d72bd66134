//! Kafka → Elasticsearch pipeline engine, at least once, with back pressure.
//!
//! consume (one thread, consumer group) → bounded buffer → process (N tasks) → bounded buffer →
//! sink (M tasks, K `_bulk` requests in flight each). Offsets are committed per partition only below
//! the lowest record not yet acknowledged by Elasticsearch or dead-lettered.
//!
//! The folders are the stages: `source` (consume, offsets, completion), `transform` (records, parse,
//! transform, route, the process tasks), `sink` (bulk wire format, retry, HTTP client, the sink tasks,
//! dead letters). At the top: the supervisor that builds and runs them, the stages as one restartable
//! unit, the control and metrics endpoints, status, announcements and configuration.

pub mod announce;
pub mod config;
pub mod control;
pub mod metrics;
pub mod sink;
pub mod source;
pub mod stages;
pub mod status;
pub mod supervisor;
pub mod transform;
