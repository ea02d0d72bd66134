//! The manager's loop: one cycle (scrape, store, evaluate, enqueue) every scrape interval.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::every;
use crate::{manager::Manager, scrape::InstantQuery};

pub async fn run<Q: InstantQuery>(
    manager: Manager<Q>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    every(interval, shutdown, || async {
        match manager.cycle(chrono::Utc::now()).await {
            Ok((scraped, evaluated)) => {
                if scraped.failed_queries > 0 {
                    tracing::warn!(
                        queries = scraped.queries,
                        failed = scraped.failed_queries,
                        "scrape finished with failures"
                    );
                }
                if evaluated.enqueued > 0 {
                    tracing::info!(?evaluated, "evaluation enqueued tasks");
                }
            }
            Err(e) => {
                manager.metrics.observe_loop("cycle", Duration::ZERO, false);
                tracing::warn!(error = %e, "manager cycle failed; retrying next interval");
            }
        }
    })
    .await;
}
