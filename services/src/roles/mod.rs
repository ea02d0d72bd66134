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
    argocd::FollowSettings,
    cluster::ValidationContext,
    config::{CommonConfig, Role},
    github::RateLimitSettings,
    manager::{Manager, Reconciler},
    metrics::Metrics,
    queue::TaskQueue,
    rescale::RescaleSettings,
    scrape::PrometheusClient,
    storage::Storage,
    tenancy::TokenStore,
    webhook::{self, GitHubSignature, WebhookState},
    worker::{RetrySettings, SecretResolver, Worker, WorkerSettings, run_queue},
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
    let outbound = Arc::new(config.outbound_allow.clone().unwrap_or_default());
    let prometheus = PrometheusClient::new(config.prometheus_timeout, &outbound)
        .context("cannot build the Prometheus HTTP client")?;
    let scrape_interval_seconds =
        u32::try_from(config.scrape_interval.as_secs()).unwrap_or(u32::MAX);
    let manager = Manager::new(
        storage.clone(),
        prometheus,
        metrics.clone(),
        scrape_interval_seconds,
    );
    let tokens = Arc::new(
        TokenStore::new(
            &config.api_tokens,
            &config.engine_tokens,
            config.api_tokens_file.clone(),
        )
        .context("cannot read the token file (AUTOSCALER_API_TOKENS_FILE)")?,
    );
    if !config.api_tokens.is_empty() || !config.engine_tokens.is_empty() {
        tracing::warn!(
            "plain tokens in AUTOSCALER_API_TOKENS or AUTOSCALER_ENGINE_TOKENS are for local use: they sit in \
             the environment in clear and all belong to the default team; use AUTOSCALER_API_TOKENS_FILE"
        );
    }
    let state = AppState {
        storage: storage.clone(),
        tokens: tokens.clone(),
        validation: ValidationContext {
            secrets_dir_configured: config.secrets_dir.is_some(),
            outbound: outbound.clone(),
            secret_env_prefix: Some(config.team_secret_env_prefix.clone()),
            team: None,
        },
        metrics,
        max_body_bytes: config.max_body_bytes,
        evaluator: manager.evaluator.clone(),
        public_url: config.public_url.clone(),
    };

    let mut tasks = JoinSet::new();
    if matches!(role, Role::Run | Role::Manager) {
        tasks.spawn(retention::run(
            storage.clone(),
            state.metrics.clone(),
            retention::Retention {
                samples: config.sample_retention,
                deliveries: config.delivery_retention,
                tasks: config.task_retention,
                decisions: config.decision_retention,
            },
            shutdown.clone(),
        ));
        tasks.spawn(
            Reconciler {
                storage: storage.clone(),
                metrics: state.metrics.clone(),
                settings: config.reconcile(),
            }
            .run(shutdown.clone()),
        );
        tasks.spawn(manager::run(
            manager,
            config.scrape_interval,
            shutdown.clone(),
        ));
    }

    if matches!(role, Role::Run | Role::Worker) {
        let worker = Worker::new(
            storage.clone(),
            state.metrics.clone(),
            SecretResolver::new(
                config.secrets_dir.clone(),
                Some(config.team_secret_env_prefix.clone()),
            ),
            WorkerSettings {
                workdir: config
                    .work_dir
                    .clone()
                    .unwrap_or_else(|| std::env::temp_dir().join("autoscaler-git")),
                argocd: FollowSettings {
                    poll_interval: config.argocd_poll_interval,
                    timeout: config.argocd_sync_timeout,
                },
                github: RateLimitSettings {
                    secondary_wait: config.github_secondary_wait,
                    ..RateLimitSettings::default()
                },
                public_url: config.public_url.clone(),
                heartbeat_timeout: config.engine_heartbeat_timeout,
                rescale: RescaleSettings::default(),
                outbound: outbound.clone(),
                lease_ttl: config.worker_lease_ttl,
            },
        )
        .context("cannot set up the worker")?;
        let pool = storage.pool().clone();
        let name = format!("worker-{}-{}", hostname(), std::process::id());
        let retry = RetrySettings {
            attempts: config.worker_attempts,
            backoff: config.worker_backoff,
        };
        let concurrency = config.worker_concurrency;
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = run_queue(worker, pool, name, concurrency, retry, shutdown).await {
                tracing::error!(error = %e, "the worker stopped");
            }
        });
    }

    let webhooks = WebhookState {
        storage: storage.clone(),
        queue: TaskQueue::new(storage.pool()),
        argocd_tokens: Arc::new(ApiTokens::new(&config.argocd_webhook_tokens)),
        github: config
            .github_webhook_secret
            .as_deref()
            .map(|secret| Arc::new(GitHubSignature::new(secret.trim()))),
        engine_tokens: tokens,
        outbound: outbound.clone(),
        max_body_bytes: config.max_body_bytes,
        max_age: config.webhook_max_age,
        metrics: state.metrics.clone(),
    };
    let router = match role {
        Role::Run => api::router(state).merge(webhook::router(webhooks)),
        Role::Manager => api::router(state),
        Role::Webhook => api::ops_router(state).merge(webhook::router(webhooks)),
        Role::Worker | Role::Migrate => api::ops_router(state),
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

/// This host's name for the worker's name in the queue, so operators can tell workers apart.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
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
