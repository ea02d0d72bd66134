//! HTTP: `/metrics` (Prometheus text), `GET /status`, and the authenticated `POST /control/rescale`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::stages::Parallelism;
use crate::status::{Status, StatusBoard};

/// Upper bound on a requested parallelism; guards against a typo starting thousands of tasks.
pub const MAX_PARALLELISM: usize = 256;

pub struct RescaleRequest {
    pub target: Parallelism,
    pub reply: oneshot::Sender<Result<Status, String>>,
}

#[derive(Clone)]
pub struct ControlState {
    pub metrics: Arc<Metrics>,
    pub status: Arc<StatusBoard>,
    pub token: Option<Arc<str>>,
    pub rescale: mpsc::Sender<RescaleRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescaleBody {
    pub parallelism: usize,
    #[serde(default)]
    pub sink_parallelism: Option<usize>,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: msg.into() })).into_response()
}

pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }
        }),
    )
}

pub fn control_router(state: ControlState) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/control/rescale", post(rescale))
        .with_state(state)
}

async fn status(State(s): State<ControlState>) -> Json<Status> {
    Json(s.status.snapshot())
}

/// The rejection to send, if the caller is not authorized.
fn unauthorized(token: Option<&str>, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "control calls are disabled: no control.token configured",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        None
    } else {
        Some(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

async fn rescale(
    State(s): State<ControlState>,
    headers: HeaderMap,
    body: Result<Json<RescaleBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(r) = unauthorized(s.token.as_deref(), &headers) {
        return r;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let current = s.status.snapshot();
    let target = Parallelism {
        process: body.parallelism,
        sink: body.sink_parallelism.unwrap_or(current.sink_parallelism),
    };
    for (name, v) in [
        ("parallelism", target.process),
        ("sink_parallelism", target.sink),
    ] {
        if v == 0 || v > MAX_PARALLELISM {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{name} must be between 1 and {MAX_PARALLELISM}"),
            );
        }
    }
    let (reply, rx) = oneshot::channel();
    if s.rescale
        .try_send(RescaleRequest { target, reply })
        .is_err()
    {
        return error(
            StatusCode::CONFLICT,
            "a rescale is already in progress or the engine is stopping",
        );
    }
    match rx.await {
        Ok(Ok(status)) => Json(status).into_response(),
        Ok(Err(msg)) => error(StatusCode::CONFLICT, msg),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "engine is stopping"),
    }
}
