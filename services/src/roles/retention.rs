//! Prunes metric samples, webhook deliveries, finished scaling tasks and final decisions older than
//! their retention settings.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::every;
use crate::{
    metrics::Metrics,
    storage::{RetentionCutoffs, Storage},
};

const EVERY: Duration = Duration::from_secs(600);

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub samples: Duration,
    pub deliveries: Duration,
    pub tasks: Duration,
    pub decisions: Duration,
}

pub async fn run(
    storage: Storage,
    metrics: Arc<Metrics>,
    retention: Retention,
    shutdown: CancellationToken,
) {
    every(EVERY, shutdown, || async {
        let started = std::time::Instant::now();
        let now = chrono::Utc::now();
        let before = |keep: Duration| {
            now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(7))
        };
        let result = storage.prune_samples(before(retention.samples)).await;
        metrics.observe_loop("sample_retention", started.elapsed(), result.is_ok());
        match result {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned old metric samples"),
            Err(e) => tracing::warn!(error = %e, "pruning metric samples failed"),
        }
        let started = std::time::Instant::now();
        let cutoffs = RetentionCutoffs {
            deliveries: before(retention.deliveries),
            tasks: before(retention.tasks),
            decisions: before(retention.decisions),
        };
        let result = storage.prune_history(&cutoffs).await;
        metrics.observe_loop("history_retention", started.elapsed(), result.is_ok());
        match result {
            Ok(pruned) if pruned == Default::default() => {}
            Ok(pruned) => tracing::info!(?pruned, "pruned old deliveries, tasks and decisions"),
            Err(e) => tracing::warn!(error = %e, "pruning history failed"),
        }
    })
    .await;
}
