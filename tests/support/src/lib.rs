//! Test doubles shared by the engine's tests, the end-to-end tests and the benchmark:
//! - [`es`]: a contract-faithful Elasticsearch `_bulk` test server with fault injection;
//! - [`kafka`]: the librdkafka mock-cluster broker as a separate process, plus produce/consume helpers.

pub mod es;
pub mod kafka;
pub mod wait;
