//! `POST /webhooks/engine`: pipeline engine instances register, heartbeat and unregister, so the
//! autoscaler knows when new capacity is really up (see `pipeline-engine/src/announce.rs`).

use axum::{Json, body::Body, extract::State, http::HeaderMap};
use serde::Deserialize;

use super::{Receipt, WebhookState, parse_json, read_body};
use crate::{api::ApiError, storage::StorageError, tenancy::Role};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Announcement {
    cluster: String,
    instance: String,
    event: Event,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Event {
    Register,
    Heartbeat,
    Unregister,
}

pub(super) async fn receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let result = accept(&state, &headers, body).await;
    super::count(&state, "engine", &result);
    result
}

async fn accept(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let principal = crate::api::bearer(headers)
        .and_then(|token| state.engine_tokens.authenticate(token))
        .map(|(principal, _)| principal)
        .filter(|principal| principal.role == Role::Engine);
    let Some(principal) = principal else {
        state.metrics.refused("unauthenticated");
        return Err(ApiError::Unauthorized);
    };
    let body = read_body(body, state.max_body_bytes).await?;
    let announcement: Announcement = parse_json(&body)?;
    if announcement.instance.is_empty()
        || announcement.instance.len() > 253
        || announcement.instance.contains('\0')
    {
        return Err(ApiError::MalformedJson(
            "instance: must be 1 to 253 characters, without NUL".to_owned(),
        ));
    }
    // A cluster outside the token's scope is answered as a missing one, so a token cannot tell which
    // names other teams use, and nothing is recorded.
    let unknown = || {
        ApiError::NotFound(format!(
            "no subscribed cluster is named {:?}",
            announcement.cluster
        ))
    };
    match state.storage.get_cluster(&announcement.cluster).await {
        Ok(cluster) => {
            if principal
                .may_announce(&announcement.cluster, &cluster.team)
                .is_err()
            {
                state.metrics.refused("engine_scope");
                tracing::warn!(token = %principal.name, cluster = %announcement.cluster, "an engine token announced for a cluster outside its scope");
                return Err(unknown());
            }
        }
        Err(StorageError::NotFound) => return Err(unknown()),
        Err(e) => return Err(e.into()),
    }
    let result = match announcement.event {
        Event::Register | Event::Heartbeat => {
            state
                .storage
                .engine_heartbeat(&announcement.cluster, &announcement.instance)
                .await
        }
        Event::Unregister => {
            state
                .storage
                .engine_unregister(&announcement.cluster, &announcement.instance)
                .await
        }
    };
    match result {
        Ok(()) => Ok(Json(Receipt {
            status: "recorded",
            decision: None,
            detail: None,
        })),
        Err(StorageError::NotFound) => Err(ApiError::NotFound(format!(
            "no subscribed cluster is named {:?}",
            announcement.cluster
        ))),
        Err(e) => Err(e.into()),
    }
}
