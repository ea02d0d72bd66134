//! The webhook role: closes the loop after Git and Argo CD did their part. Argo CD notifications and
//! GitHub pull request events are matched to decisions and recorded; whatever must happen next (a sync
//! after a merge, a restart after a sync) is handed to a worker through the queue, so every side effect
//! keeps the worker's retries, lock and resumable steps. Engine instances announce themselves here too.
//!
//! Every receiver authenticates before it parses anything, reads at most the configured body size,
//! deduplicates replays, and answers unknown events with 200 and `"ignored"`.

mod argocd;
mod engine;
mod github;
mod signature;

use std::sync::Arc;

use axum::{
    Json, Router,
    body::{Body, Bytes},
    http::{HeaderMap, header},
    routing::post,
};
use base64::Engine as _;
use serde::Serialize;

pub use signature::GitHubSignature;

use crate::{
    api::{ApiError, ApiTokens},
    metrics::{DeliveryLabels, Metrics},
    outbound::OutboundPolicy,
    queue::TaskQueue,
    storage::{DeliveryOutcome, Storage},
};

/// What the receivers need.
#[derive(Clone)]
pub struct WebhookState {
    pub storage: Storage,
    pub queue: TaskQueue,
    /// Bearer tokens, or `user:password` pairs for basic auth, that Argo CD notifications present.
    pub argocd_tokens: Arc<ApiTokens>,
    /// The secret GitHub signs deliveries with; `None` refuses every GitHub delivery.
    pub github: Option<Arc<GitHubSignature>>,
    /// The tokens engine instances present when they announce themselves: the engine tokens of the
    /// token file (each scoped to its team, or to listed clusters) and the plain ones of the default team.
    pub engine_tokens: Arc<crate::tenancy::TokenStore>,
    /// Where an announced engine control URL may point (the worker calls it with the control token).
    pub outbound: Arc<OutboundPolicy>,
    pub max_body_bytes: usize,
    /// Deliveries about events older than this are refused (see `refuse_stale`).
    pub max_age: std::time::Duration,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/webhooks/argocd", post(argocd::receive))
        .route("/webhooks/github", post(github::receive))
        .route("/webhooks/engine", post(engine::receive))
        .with_state(state)
}

/// The answer to every accepted delivery.
#[derive(Debug, Serialize)]
struct Receipt {
    /// `recorded`, `duplicate` or `ignored`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl Receipt {
    fn recorded(decision: i64, detail: impl Into<String>) -> Json<Self> {
        Json(Self {
            status: "recorded",
            decision: Some(decision),
            detail: Some(detail.into()),
        })
    }

    fn duplicate() -> Json<Self> {
        Json(Self {
            status: "duplicate",
            decision: None,
            detail: None,
        })
    }

    /// Nothing to do about a decision that the delivery did concern.
    fn ignored_for(decision: i64, why: impl Into<String>) -> Json<Self> {
        Json(Self {
            status: "ignored",
            decision: Some(decision),
            detail: Some(why.into()),
        })
    }

    fn ignored(why: impl Into<String>) -> Json<Self> {
        Json(Self {
            status: "ignored",
            decision: None,
            detail: Some(why.into()),
        })
    }
}

/// Counts every delivery by source and outcome, refusals included.
fn count(state: &WebhookState, source: &'static str, result: &Result<Json<Receipt>, ApiError>) {
    let outcome = match result {
        Ok(receipt) => receipt.status,
        Err(ApiError::Unauthorized) => "unauthorized",
        Err(ApiError::BadSignature(_)) => "bad_signature",
        Err(ApiError::StaleDelivery(_)) => "stale",
        Err(ApiError::ReplayedDelivery(_)) => "replayed",
        Err(ApiError::MalformedJson(_)) => "malformed",
        Err(ApiError::PayloadTooLarge { .. }) => "too_large",
        Err(ApiError::NotFound(_)) => "unknown_cluster",
        Err(_) => "error",
    };
    state
        .metrics
        .webhook_deliveries
        .get_or_create(&DeliveryLabels { source, outcome })
        .inc();
}

/// The raw body, at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })
}

/// The API's parser, which names the field at fault; a body of the wrong shape is answered 400
/// `malformed_json` here (senders such as GitHub and Argo CD treat every 4xx alike) rather than 422.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    crate::api::parse_json_body(bytes).map_err(|e| match e {
        ApiError::InvalidBody(problem) => {
            ApiError::MalformedJson(format!("{}: {}", problem.field, problem.problem))
        }
        other => other,
    })
}

/// Refuses a delivery about an event that happened more than `max_age` ago. Its record would have been
/// pruned by then (the window is shorter than the deliveries' retention), so dedup alone could not tell
/// a captured, replayed delivery from a new one.
fn refuse_stale(
    field: &str,
    happened_at: &str,
    max_age: std::time::Duration,
) -> Result<(), ApiError> {
    let at = chrono::DateTime::parse_from_rfc3339(happened_at).map_err(|_| {
        ApiError::MalformedJson(format!("{field}: {happened_at:?} is not an RFC 3339 time"))
    })?;
    let age = chrono::Utc::now().signed_duration_since(at);
    if age.to_std().is_ok_and(|age| age > max_age) {
        return Err(ApiError::StaleDelivery(format!(
            "{field} is {happened_at}, older than the accepted {}; a delivery this old is refused as a possible replay",
            humantime::format_duration(max_age)
        )));
    }
    Ok(())
}

/// The answer for a delivery storage found handled already.
fn seen_before(outcome: &DeliveryOutcome) -> Option<Result<Json<Receipt>, ApiError>> {
    match outcome {
        DeliveryOutcome::Duplicate => Some(Ok(Receipt::duplicate())),
        DeliveryOutcome::Replay { of } => Some(Err(ApiError::ReplayedDelivery(format!(
            "this body was delivered before as {of}; a replay under another delivery id is refused"
        )))),
        DeliveryOutcome::Applied | DeliveryOutcome::LostRace { .. } => None,
    }
}

/// `Bearer <token>` or `Basic <base64 user:password>`, checked against `tokens` in constant time.
fn authorised(headers: &HeaderMap, tokens: &ApiTokens) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return tokens.accepts(token.trim());
    }
    if let Some(encoded) = value.strip_prefix("Basic ") {
        return base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|pair| String::from_utf8(pair).ok())
            .is_some_and(|pair| tokens.accepts(&pair));
    }
    false
}
