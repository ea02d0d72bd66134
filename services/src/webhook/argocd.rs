//! `POST /webhooks/argocd`: the body the `autoscaler-sync-event` template in `deploy/argocd/` sends on
//! sync succeeded, sync failed and health degraded. Payloads are not signed (argocd-notifications cannot
//! sign), so they are authenticated by a static token and treated as a hint: the decision is found by the
//! sync's `infos`, or by the applied revision, and the worker re-reads Argo CD before acting.

use axum::{Json, body::Body, extract::State, http::HeaderMap};
use serde::Deserialize;
use serde_json::json;

use super::{Receipt, WebhookState, authorised, parse_json, read_body};
use crate::{
    api::ApiError,
    queue::ScalingTask,
    storage::{DecisionStatus, DeliverySource, StorageError, Transition},
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    app: String,
    #[serde(default)]
    trigger: Option<String>,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    health_status: Option<String>,
    #[serde(default)]
    sync_status: Option<String>,
    #[serde(default)]
    message: Option<String>,
    /// `status.operationState.syncResult.revision`: what was applied.
    #[serde(default)]
    revision: Option<String>,
    /// `autoscaler.decision` from the sync's infos; empty for syncs the autoscaler did not start.
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    finished_at: Option<String>,
}

pub(super) async fn receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let result = accept(&state, &headers, body).await;
    super::count(&state, "argocd", &result);
    result
}

async fn accept(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    if !authorised(headers, &state.argocd_tokens) {
        tracing::warn!("Argo CD notification with a missing or wrong token refused");
        return Err(ApiError::Unauthorized);
    }
    let body = read_body(body, state.max_body_bytes).await?;
    let notification: Notification = parse_json(&body)?;
    let decision_id = match notification.decision.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            ApiError::MalformedJson(format!("decision: {text:?} is not a decision id"))
        })?),
    };
    let revision = notification.revision.as_deref().filter(|r| !r.is_empty());
    let phase = notification.phase.as_deref().unwrap_or("");
    let health = notification.health_status.as_deref().unwrap_or("");
    // There is no delivery id: (app, revision, phase, health) is what oncePer deduplicates on too.
    let delivery = format!(
        "{}|{}|{phase}|{health}|{}",
        notification.app,
        revision.unwrap_or(""),
        decision_id.map(|d| d.to_string()).unwrap_or_default()
    );
    if state
        .storage
        .delivery_seen(DeliverySource::ArgoCd, &delivery)
        .await?
    {
        return Ok(Receipt::duplicate());
    }
    if !state.storage.application_known(&notification.app).await? {
        tracing::info!(application = %notification.app, "notification for an application no cluster uses; ignored");
        return Ok(Receipt::ignored(format!(
            "no subscribed cluster is deployed by application {:?}",
            notification.app
        )));
    }
    let Some(decision) = state
        .storage
        .notified_decision(&notification.app, revision, decision_id)
        .await?
    else {
        tracing::info!(application = %notification.app, ?revision, ?decision_id, "notification matches no decision; ignored");
        return Ok(Receipt::ignored("no decision carries this revision"));
    };
    let detail = json!({
        "trigger": notification.trigger,
        "phase": phase,
        "health": health,
        "sync_status": notification.sync_status,
        "revision": revision,
        "message": notification.message,
        "finished_at": notification.finished_at,
    });
    // A failed sync matters more than the health it left behind.
    let outcome = if matches!(phase, "Failed" | "Error") {
        state
            .storage
            .add_step(decision.id, "argocd_sync_failed", &detail)
            .await?;
        // Only a sync still in the works is failed by a notification: a decision the worker saw
        // applied (synced, applied) or ended keeps its status, and a race with the worker is lost by
        // whoever writes second, never overwritten.
        if matches!(
            decision.status,
            DecisionStatus::Committed | DecisionStatus::Merged | DecisionStatus::Syncing
        ) {
            let reason = format!(
                "Argo CD reported the sync {phase}: {}",
                notification.message.as_deref().unwrap_or("no message")
            );
            let failed = Transition::new(decision.status, DecisionStatus::Failed).reason(&reason);
            match state.storage.transition(decision.id, &failed).await {
                Ok(()) => "the sync failed; the decision is failed",
                Err(StorageError::LostRace { found, .. }) => {
                    tracing::info!(decision = decision.id, %found, "the decision moved on before the failed sync was recorded");
                    "the sync failed; the decision had already moved on and keeps its status"
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            "the sync failed; recorded on a decision that is past its sync"
        }
    } else if health == "Degraded" {
        state
            .storage
            .add_step(decision.id, "argocd_health_degraded", &detail)
            .await?;
        tracing::warn!(cluster = %decision.cluster_name, decision = decision.id, message = ?notification.message, "the application is degraded after the sync");
        "the application is degraded; recorded"
    } else if phase == "Succeeded" {
        state
            .storage
            .add_step(decision.id, "argocd_sync_succeeded", &detail)
            .await?;
        if decision.status.is_final() {
            "recorded"
        } else {
            // The worker confirms against Argo CD, then restarts non-reactive targets and marks it applied.
            state
                .queue
                .push(ScalingTask {
                    decision_id: decision.id,
                    cluster: decision.cluster_name.clone(),
                })
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
            "the sync succeeded; a worker applies it"
        }
    } else {
        return Ok(Receipt::ignored(format!(
            "phase {phase:?} and health {health:?} need nothing"
        )));
    };
    state
        .storage
        .record_delivery(
            DeliverySource::ArgoCd,
            &delivery,
            notification.trigger.as_deref().unwrap_or(phase),
            Some(decision.id),
        )
        .await?;
    tracing::info!(cluster = %decision.cluster_name, decision = decision.id, phase, health, outcome, "Argo CD notification recorded");
    Ok(Receipt::recorded(decision.id, outcome))
}
