//! The HTTP API: the subscription resources under `/api/v1`, the OpenAPI document, and operations
//! endpoints.

mod access;
mod audit;
mod auth;
mod clusters;
mod error;
mod history;
mod json;
mod openapi;
mod ops;

use std::{sync::Arc, time::Instant};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use audit::AuditPage;
pub use auth::{ApiTokens, bearer};
pub use clusters::{ClusterPage, ClusterView, DecisionPage};
pub use error::{ApiError, ErrorBody};
pub use history::{MAX_EXPORT_SAMPLES, MAX_TUNE_SAMPLES, MAX_TUNE_SECONDS};
pub(crate) use json::parse as parse_json_body;
pub use openapi::ApiDoc;

use crate::{
    cluster::ValidationContext,
    manager::Evaluator,
    metrics::{Metrics, RequestLabels, RouteLabels},
    storage::Storage,
    tenancy::TokenStore,
};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub storage: Storage,
    /// The API's tokens, each of a team with a role; read again from the token file when it changes.
    pub tokens: Arc<TokenStore>,
    pub validation: ValidationContext,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub evaluator: Arc<Evaluator>,
    /// The service's address for users (AUTOSCALER_PUBLIC_URL): an https one makes the status page's
    /// session cookie `Secure`.
    pub public_url: Option<url::Url>,
}

/// The whole HTTP surface of the manager role.
pub fn router(state: AppState) -> Router {
    let api = clusters::router()
        .merge(history::router())
        .merge(audit::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_bearer_token,
        ));
    Router::new()
        .nest("/api/v1", api)
        .route("/api/openapi.json", get(openapi_document))
        .merge(crate::ui::router(state.clone()))
        .merge(ops::router())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Only the operations endpoints: for roles that serve no API.
pub fn ops_router(state: AppState) -> Router {
    ops::router()
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn openapi_document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn no_route() -> ApiError {
    ApiError::NotFound("no such endpoint".to_owned())
}

async fn method_not_allowed() -> Response {
    let body = ErrorBody {
        error: "method_not_allowed",
        message: "this endpoint does not accept that method".to_owned(),
        fields: Vec::new(),
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// Counts and times every request by its route template.
async fn record_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state
        .metrics
        .http_request_duration
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .http_requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
