//! `POST /webhooks/engine`: pipeline engine instances register, heartbeat and unregister, so the
//! autoscaler knows when new capacity is really up (see `pipeline-engine/src/announce.rs`).

use axum::{Json, body::Body, extract::State, http::HeaderMap};
use serde::Deserialize;

use super::{Receipt, WebhookState, authorised, parse_json, read_body};
use crate::{api::ApiError, storage::StorageError};

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
    if !authorised(headers, &state.engine_tokens) {
        return Err(ApiError::Unauthorized);
    }
    let body = read_body(body, state.max_body_bytes).await?;
    let announcement: Announcement = parse_json(&body)?;
    if announcement.instance.is_empty() || announcement.instance.len() > 253 {
        return Err(ApiError::MalformedJson(
            "instance: must be 1 to 253 characters".to_owned(),
        ));
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
