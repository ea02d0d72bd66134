//! The service's roles. Each is thin orchestration over storage, the API and the loops; `run` starts all
//! of them in one process.

mod manager;
mod retention;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, ApiTokens, AppState},
    cluster::ValidationContext,
    config::{CommonConfig, Role},
    manager::Manager,
    metrics::Metrics,
    scrape::PrometheusClient,
    storage::Storage,
};

/// Starts the role and runs it until `shutdown` is cancelled.
pub async fn run(
    role: Role,
    config: CommonConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let storage = Storage::connect(&config.database_url)
        .await
        .context("cannot connect to the database (DATABASE_URL)")?;
    storage
        .migrate()
        .await
        .context("cannot apply the database migrations")?;
    tracing::info!("database ready");
    if role == Role::Migrate {
        return Ok(());
    }

    let metrics = Arc::new(Metrics::default());
    let prometheus = PrometheusClient::new(config.prometheus_timeout)
        .context("cannot build the Prometheus HTTP client")?;
    let scrape_interval_seconds =
        u32::try_from(config.scrape_interval.as_secs()).unwrap_or(u32::MAX);
    let manager = Manager::new(
        storage.clone(),
        prometheus,
        metrics.clone(),
        scrape_interval_seconds,
    );
    let state = AppState {
        storage: storage.clone(),
        tokens: Arc::new(ApiTokens::new(&config.api_tokens)),
        validation: ValidationContext {
            secrets_dir_configured: config.secrets_dir.is_some(),
        },
        metrics,
        max_body_bytes: config.max_body_bytes,
        evaluator: manager.evaluator.clone(),
    };

    let mut tasks = JoinSet::new();
    if matches!(role, Role::Run | Role::Manager) {
        tasks.spawn(retention::run(
            storage.clone(),
            state.metrics.clone(),
            config.sample_retention,
            shutdown.clone(),
        ));
        tasks.spawn(manager::run(
            manager,
            config.scrape_interval,
            shutdown.clone(),
        ));
    }

    let router = match role {
        Role::Run | Role::Manager => api::router(state),
        // The worker and webhook roles serve operations endpoints only, until their own work lands.
        Role::Worker | Role::Webhook | Role::Migrate => api::ops_router(state),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (AUTOSCALER_LISTEN)", config.listen))?;
    tracing::info!(role = ?role, address = %listener.local_addr()?, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("the HTTP server failed")?;

    drain(tasks, config.shutdown_timeout).await;
    tracing::info!("stopped");
    Ok(())
}

/// Runs `iteration` at every tick of `interval` until `shutdown`; an iteration in progress finishes first.
async fn every<F, Fut>(interval: Duration, shutdown: CancellationToken, mut iteration: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    // A slow iteration is not followed by a burst of catch-up iterations.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        iteration().await;
    }
}

/// Waits for background loops to finish their current iteration, up to the shutdown timeout.
async fn drain(mut tasks: JoinSet<()>, timeout: Duration) {
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(timeout, all_done).await.is_err() {
        tracing::warn!(
            ?timeout,
            "background work did not finish in time; abandoning it"
        );
    }
}
