//! The real Prometheus server, scraping every engine slot once a second.

use std::path::Path;
use std::time::Duration;

pub use test_support::prometheus::Prometheus;
use test_support::prometheus::ScrapeJob;

/// Starts Prometheus scraping `engine_targets` (`host:port`) every second.
pub async fn start(dir: &Path, engine_targets: &[String]) -> anyhow::Result<Prometheus> {
    Prometheus::start(
        dir,
        &[ScrapeJob {
            name: "engine".to_owned(),
            targets: engine_targets.to_vec(),
            labels: Vec::new(),
            targets_file: None,
            interval: Duration::from_secs(1),
        }],
    )
    .await
}
