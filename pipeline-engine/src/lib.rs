//! Kafka → Elasticsearch pipeline engine, at least once, with back pressure.
//!
//! consume (one thread, consumer group) → bounded buffer → process (N tasks) → bounded buffer →
//! sink (M tasks, K `_bulk` requests in flight each). Offsets are committed per partition only below
//! the lowest record not yet acknowledged by Elasticsearch or dead-lettered.

pub mod announce;
pub mod bulk;
pub mod completion;
pub mod config;
pub mod consume;
pub mod control;
pub mod deadletter;
pub mod engine;
pub mod json;
pub mod metrics;
pub mod offsets;
pub mod process;
pub mod record;
pub mod route;
pub mod sink;
pub mod stages;
pub mod status;
pub mod transform;
