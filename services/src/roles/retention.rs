//! Prunes metric samples older than the retention setting.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::every;
use crate::{metrics::Metrics, storage::Storage};

const EVERY: Duration = Duration::from_secs(600);

pub async fn run(
    storage: Storage,
    metrics: Arc<Metrics>,
    retention: Duration,
    shutdown: CancellationToken,
) {
    every(EVERY, shutdown, || async {
        let started = std::time::Instant::now();
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
        let result = storage.prune_samples(cutoff).await;
        metrics.observe_loop("sample_retention", started.elapsed(), result.is_ok());
        match result {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned old metric samples"),
            Err(e) => tracing::warn!(error = %e, "pruning metric samples failed"),
        }
    })
    .await;
}
