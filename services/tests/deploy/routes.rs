//! The real HTTP routers, in process, to ask whether a path a manifest names is one the process serves.
//! No database is needed: the pool connects lazily to a closed port, so a handler that needs the
//! database answers 503 or logs an error, which still shows the route exists.

use std::{sync::Arc, time::Duration};

use autoscaler::{
    api::{self, ApiTokens, AppState},
    cluster::ValidationContext,
    config::Role,
    manager::Evaluator,
    metrics::Metrics,
    queue::TaskQueue,
    storage::Storage,
    webhook::{self, WebhookState},
};
use axum::{Router, body::Body};
use http::{Method, Request, StatusCode};
use pipeline_engine::{
    control::{ControlState, RescaleRequest, control_router, metrics_router},
    metrics::Metrics as EngineMetrics,
    status::{State, Status, StatusBoard},
};
use tower::ServiceExt;

const TOKEN: &str = "deploy-test-token-0123456789";

/// The router the autoscaler serves in `role`: the same choice `autoscaler::roles::run` makes (it builds
/// the router inside, so the mapping is repeated here).
pub fn autoscaler_router(role: Role) -> Router {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy("postgres://deploy-test@127.0.0.1:1/none")
        .expect("a lazy pool");
    let storage = Storage::from_pool(pool);
    let metrics = Arc::new(Metrics::default());
    let tokens = Arc::new(
        autoscaler::tenancy::TokenStore::new(&[TOKEN.to_owned()], &[TOKEN.to_owned()], None)
            .expect("tokens"),
    );
    let state = AppState {
        storage: storage.clone(),
        tokens: tokens.clone(),
        validation: ValidationContext::default(),
        metrics: metrics.clone(),
        max_body_bytes: 64 * 1024,
        evaluator: Arc::new(Evaluator {
            storage: storage.clone(),
            scrape_interval_seconds: 30,
        }),
        public_url: None,
    };
    let webhooks = WebhookState {
        storage: storage.clone(),
        queue: TaskQueue::new(storage.pool()),
        argocd_tokens: Arc::new(ApiTokens::new(&[TOKEN])),
        github: None,
        engine_tokens: tokens,
        outbound: Arc::default(),
        max_body_bytes: 64 * 1024,
        max_age: std::time::Duration::from_secs(3 * 24 * 3600),
        metrics,
    };
    match role {
        Role::Run => api::router(state).merge(webhook::router(webhooks)),
        Role::Manager => api::router(state),
        Role::Webhook => api::ops_router(state).merge(webhook::router(webhooks)),
        Role::Worker | Role::Migrate => api::ops_router(state),
    }
}

/// Which of the engine's listeners a port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineListener {
    Metrics,
    Control,
    /// `metrics.listen` equal to `control.listen`: one listener serves both routers.
    Both,
}

/// The router the engine serves on one of its listeners.
pub fn engine_router(listener: EngineListener) -> Router {
    let metrics = Arc::new(EngineMetrics::new("deploy-test", "deploy-test-0"));
    let status = Arc::new(StatusBoard::new(Status {
        pipeline: "deploy-test".to_owned(),
        instance_id: "deploy-test-0".to_owned(),
        state: State::Running,
        parallelism: 1,
        sink_parallelism: 1,
        in_flight_per_sink: 1,
        assigned_partitions: Vec::new(),
    }));
    let (rescale, _requests) = tokio::sync::mpsc::channel::<RescaleRequest>(1);
    let control = || {
        control_router(ControlState {
            metrics: metrics.clone(),
            status: status.clone(),
            token: None,
            rescale: rescale.clone(),
        })
    };
    match listener {
        EngineListener::Metrics => metrics_router(metrics.clone()),
        EngineListener::Control => control(),
        EngineListener::Both => metrics_router(metrics.clone()).merge(control()),
    }
}

/// The status `router` answers a bodiless request with, no credentials.
pub async fn answer(router: &Router, method: Method, path: &str) -> StatusCode {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("a request");
    router
        .clone()
        .oneshot(request)
        .await
        .expect("routers do not fail")
        .status()
}

/// Whether `router` has a route for `method` and `path`: anything but 404 (no such path) and 405 (the
/// path, another method). Unauthenticated calls answer 401 and database-backed ones 503: both routed.
pub async fn serves(router: &Router, method: Method, path: &str) -> bool {
    let status = answer(router, method, path).await;
    status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED
}
