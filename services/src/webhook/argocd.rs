//! `POST /webhooks/argocd`: the body the `autoscaler-sync-event` template in `deploy/argocd/` sends on
//! sync succeeded, sync failed and health degraded. Payloads are not signed (argocd-notifications cannot
//! sign), so they are authenticated by a static token and treated as a hint: the decision is found by the
//! sync's `infos`, or by the applied revision, and the worker re-reads Argo CD before acting.

use axum::{Json, body::Body, extract::State, http::HeaderMap};
use serde::Deserialize;
use serde_json::json;

use super::{Receipt, WebhookState, authorised, parse_json, read_body, refuse_stale, seen_before};
use crate::{
    api::ApiError,
    queue::ScalingTask,
    storage::{
        AfterStep, DecisionStatus, Delivery, DeliveryEffect, DeliveryOutcome, DeliverySource,
        Transition,
    },
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
    if let Some(finished_at) = notification
        .finished_at
        .as_deref()
        .filter(|f| !f.is_empty())
    {
        refuse_stale("finishedAt", finished_at, state.max_age)?;
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
    let failed_reason = format!(
        "Argo CD reported the sync {phase}: {}",
        notification.message.as_deref().unwrap_or("no message")
    );
    // A failed sync matters more than the health it left behind.
    let (step, then, outcome) = if matches!(phase, "Failed" | "Error") {
        // Only a sync still in the works is failed by a notification: a decision the worker saw
        // applied (synced, applied) or ended keeps its status, and a race with the worker is lost by
        // whoever writes second, never overwritten.
        if matches!(
            decision.status,
            DecisionStatus::Committed | DecisionStatus::Merged | DecisionStatus::Syncing
        ) {
            (
                "argocd_sync_failed",
                Some(AfterStep::Transition(
                    Transition::new(decision.status, DecisionStatus::Failed).reason(&failed_reason),
                )),
                "the sync failed; the decision is failed",
            )
        } else {
            (
                "argocd_sync_failed",
                None,
                "the sync failed; recorded on a decision that is past its sync",
            )
        }
    } else if health == "Degraded" {
        tracing::warn!(cluster = %decision.cluster_name, decision = decision.id, message = ?notification.message, "the application is degraded after the sync");
        (
            "argocd_health_degraded",
            None,
            "the application is degraded; recorded",
        )
    } else if phase == "Succeeded" {
        if decision.status.is_final() {
            ("argocd_sync_succeeded", None, "recorded")
        } else {
            // The worker confirms against Argo CD, then restarts non-reactive targets and marks it applied.
            (
                "argocd_sync_succeeded",
                Some(AfterStep::Task(ScalingTask {
                    decision_id: decision.id,
                    cluster: decision.cluster_name.clone(),
                })),
                "the sync succeeded; a worker applies it",
            )
        }
    } else {
        return Ok(Receipt::ignored(format!(
            "phase {phase:?} and health {health:?} need nothing"
        )));
    };
    let delivery = Delivery {
        source: DeliverySource::ArgoCd,
        id: &delivery,
        event: notification.trigger.as_deref().unwrap_or(phase),
        decision_id: Some(decision.id),
        // Not signed: the key above is derived from the content already.
        body_sha256: None,
    };
    let effect = DeliveryEffect::Step {
        decision_id: decision.id,
        name: step,
        detail: &detail,
        then,
    };
    let outcome = match state.storage.take_delivery(&delivery, &effect).await? {
        DeliveryOutcome::Applied => outcome,
        DeliveryOutcome::LostRace { found } => {
            tracing::info!(decision = decision.id, %found, "the decision moved on before the failed sync was recorded");
            "the sync failed; the decision had already moved on and keeps its status"
        }
        seen => {
            return seen_before(&seen).unwrap_or_else(|| Ok(Receipt::duplicate()));
        }
    };
    tracing::info!(cluster = %decision.cluster_name, decision = decision.id, phase, health, outcome, "Argo CD notification recorded");
    Ok(Receipt::recorded(decision.id, outcome))
}
