//! Operations endpoints, open without a token: liveness, readiness, metrics.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::json;

use super::AppState;
use crate::metrics::{ClusterLabels, DecisionLabels, QuantileLabels, QueueLabels, StatusLabels};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The process can do its work: the database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(2), state.storage.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: database error");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": "the database is unreachable"})),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "unavailable", "reason": "the database did not answer within 2s"}),
            ),
        ),
    }
}

/// Prometheus text format. Gauges that mirror the database are refreshed here, at scrape time.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    refresh_database_gauges(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn refresh_database_gauges(state: &AppState) {
    let metrics = &state.metrics;
    match state.storage.queue_depth().await {
        Ok(depths) => {
            metrics.queue_depth.clear();
            for (status, count) in depths {
                metrics
                    .queue_depth
                    .get_or_create(&QueueLabels { status })
                    .set(count);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not read the queue depth"),
    }
    match state.storage.count_clusters().await {
        Ok(counts) => {
            for (paused, count) in [(false, counts.active), (true, counts.paused)] {
                metrics
                    .clusters
                    .get_or_create(&ClusterLabels { paused })
                    .set(count);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not count clusters"),
    }
    refresh_decision_gauges(state).await;
}

/// The window `autoscaler_decision_time_to_applied_seconds` covers.
const APPLIED_WINDOW_HOURS: i64 = 24;

async fn refresh_decision_gauges(state: &AppState) {
    let metrics = &state.metrics;
    match state.storage.decision_counts().await {
        Ok(counts) => {
            metrics.decisions.clear();
            for count in counts {
                metrics
                    .decisions
                    .get_or_create(&DecisionLabels {
                        status: count.status.as_str(),
                        rule: count.rule,
                    })
                    .set(count.count);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not count decisions"),
    }
    match state.storage.decisions_stalled().await {
        Ok(stalled) => {
            metrics.decision_stalled.clear();
            for (status, seconds) in stalled {
                metrics
                    .decision_stalled
                    .get_or_create(&StatusLabels {
                        status: status.as_str(),
                    })
                    .set(seconds);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not read stalled decisions"),
    }
    let since = chrono::Utc::now() - chrono::Duration::hours(APPLIED_WINDOW_HOURS);
    match state.storage.time_to_applied(since).await {
        Ok(quantiles) => {
            metrics.decision_time_to_applied.clear();
            for (quantile, seconds) in quantiles {
                metrics
                    .decision_time_to_applied
                    .get_or_create(&QuantileLabels { quantile })
                    .set(seconds);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not read the time to applied"),
    }
}
