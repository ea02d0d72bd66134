//! Test doubles shared by the engine's tests, the end-to-end tests and the benchmark:
//! - [`es`]: a contract-faithful Elasticsearch `_bulk` test server with fault injection;
//! - [`kafka`]: the librdkafka mock-cluster broker as a separate process, plus produce/consume helpers;
//! - [`argocd`]: a contract-faithful Argo CD API test server (applications, sync, operations);
//! - [`github`]: a contract-faithful GitHub REST test server for a bot's pull requests;
//! - [`flink`]: a contract-faithful Flink REST test server for stop-with-savepoint, resubmission and
//!   the adaptive scheduler's resource requirements;
//! - [`flink_cluster`]: a real Apache Flink 2.3 cluster as JVM processes on loopback (session or
//!   application mode, default/adaptive/reactive scheduler, TaskManagers started and stopped one by one);
//! - [`prometheus`]: the real Prometheus server, scraping what a test names;
//! - [`postgres`]: a Postgres server of the test's own, which it may crash and restart;
//! - [`process`]: child processes that log to a file and are killed when dropped;
//! - [`flink_probe`]: the probe job (`tests/flink-probe/`): its jar, arguments, rate schedule and
//!   the ground truth it gives (records produced at any instant, and what the sink wrote);
//! - [`binaries`]: the workspace's binaries, found next to whichever executable is running;
//! - [`git`]: the git CLI helpers those servers use, and that tests use to make bare repositories.

pub mod argocd;
pub mod binaries;
pub mod es;
pub mod flink;
pub mod flink_cluster;
pub mod flink_probe;
pub mod git;
pub mod github;
pub mod kafka;
pub mod postgres;
pub mod process;
pub mod prometheus;
mod serve;
pub mod wait;

/// The outbound allow-list (`AUTOSCALER_OUTBOUND_ALLOW`) for tests: their servers listen on loopback and
/// their Git remotes are bare repositories on disk, both refused by default.
pub const OUTBOUND_ALLOW_LOCAL: &str = "*,127.0.0.0/8,::1,file";
