//! The manager's loop: scrape, then evaluate, every scrape interval.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{manager::Manager, scrape::InstantQuery};

pub async fn run<Q: InstantQuery>(
    manager: Manager<Q>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    // A slow cycle is not followed by a burst of catch-up cycles.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = chrono::Utc::now();
        match manager.scrape_cycle(now).await {
            Ok(report) if report.failed_queries > 0 => tracing::warn!(
                queries = report.queries,
                failed = report.failed_queries,
                "scrape finished with failures"
            ),
            Ok(_) => {}
            Err(e) => {
                manager
                    .metrics
                    .observe_loop("scrape", Duration::ZERO, false);
                tracing::warn!(error = %e, "scrape could not store its samples");
            }
        }
        match manager.evaluate_cycle(now).await {
            Ok(report) if report.enqueued > 0 => {
                tracing::info!(?report, "evaluation enqueued tasks")
            }
            Ok(report) => tracing::debug!(?report, "evaluation done"),
            Err(e) => {
                manager
                    .metrics
                    .observe_loop("evaluate", Duration::ZERO, false);
                tracing::warn!(error = %e, "evaluation failed");
            }
        }
    }
}
