//! `POST /webhooks/github`: a merged autoscaler pull request is handed to a worker to sync; one closed
//! without merging is rejected, and the cluster keeps its scale.

use axum::{Json, body::Body, extract::State, http::HeaderMap};
use serde::Deserialize;

use super::{Receipt, WebhookState, parse_json, read_body};
use crate::{
    api::ApiError,
    storage::{DecisionStatus, DeliverySource, Merge, StorageError, Transition},
};

#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    number: u64,
    pull_request: PullRequest,
    repository: Repository,
    #[serde(default)]
    sender: Option<User>,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    head: Branch,
}

#[derive(Debug, Deserialize)]
struct Branch {
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
}

pub(super) async fn receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let result = accept(&state, &headers, body).await;
    super::count(&state, "github", &result);
    result
}

async fn accept(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let body = read_body(body, state.max_body_bytes).await?;
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let Some(verifier) = &state.github else {
        tracing::warn!("GitHub delivery refused: AUTOSCALER_GITHUB_WEBHOOK_SECRET is not set");
        return Err(ApiError::Unauthorized);
    };
    if !verifier.verify(signature, &body) {
        tracing::warn!("GitHub delivery with a missing or wrong signature refused");
        return Err(ApiError::Unauthorized);
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::MalformedJson(format!("the {name} header is missing")))
    };
    let event = header("x-github-event")?;
    let delivery = header("x-github-delivery")?;
    if state
        .storage
        .delivery_seen(DeliverySource::GitHub, &delivery)
        .await?
    {
        return Ok(Receipt::duplicate());
    }
    if event != "pull_request" {
        state
            .storage
            .record_delivery(DeliverySource::GitHub, &delivery, &event, None)
            .await?;
        return Ok(Receipt::ignored(format!("{event} events are not used")));
    }
    let payload: PullRequestEvent = parse_json(&body)?;
    let (receipt, decision) = handle(state, &payload).await?;
    let event = format!("pull_request.{}", payload.action);
    if !state
        .storage
        .record_delivery(DeliverySource::GitHub, &delivery, &event, decision)
        .await?
    {
        return Ok(Receipt::duplicate());
    }
    Ok(receipt)
}

async fn handle(
    state: &WebhookState,
    payload: &PullRequestEvent,
) -> Result<(Json<Receipt>, Option<i64>), ApiError> {
    if payload.action != "closed" {
        return Ok((
            Receipt::ignored(format!(
                "pull request {} events are not used",
                payload.action
            )),
            None,
        ));
    }
    let branch = &payload.pull_request.head.name;
    if !branch.starts_with("autoscaler/") {
        return Ok((Receipt::ignored("not an autoscaler pull request"), None));
    }
    let Some(decision) = state
        .storage
        .pull_request_decision(branch, payload.number)
        .await?
    else {
        return Ok((
            Receipt::ignored(format!(
                "no decision is waiting in pull request #{}",
                payload.number
            )),
            None,
        ));
    };
    let write_back = decision.write_back.as_ref().map(|w| &w.0);
    let repository = write_back
        .and_then(|w| w.get("github_repository"))
        .and_then(|r| r.as_str())
        .unwrap_or_default();
    // Branch names repeat across repositories: the event must come from the decision's repository.
    if !repository.eq_ignore_ascii_case(&payload.repository.full_name) {
        return Ok((
            Receipt::ignored(format!(
                "pull request #{} of {} is not the autoscaler's",
                payload.number, payload.repository.full_name
            )),
            None,
        ));
    }
    let by = payload
        .sender
        .as_ref()
        .map_or("someone", |s| s.login.as_str());
    if payload.pull_request.merged == Some(true) {
        let Some(merge_commit) = payload.pull_request.merge_commit_sha.as_deref() else {
            return Err(ApiError::MalformedJson(
                "pull_request.merge_commit_sha: missing on a merged pull request".to_owned(),
            ));
        };
        let cluster_id = decision.cluster_id.unwrap_or_default();
        let merged = state
            .storage
            .merge_pull_request_decision(&Merge {
                decision_id: decision.id,
                cluster_id,
                cluster_name: &decision.cluster_name,
                merge_commit,
                merged_by: by,
            })
            .await;
        match merged {
            Ok(()) => {}
            Err(StorageError::LostRace { found, .. }) => {
                return Ok((
                    Receipt::ignored(format!(
                        "decision {} is {found} now; the merge changes nothing",
                        decision.id
                    )),
                    Some(decision.id),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(
            pull_request = payload.number,
            by,
            "pull request merged; sync enqueued"
        );
        Ok((
            Receipt::recorded(decision.id, "merged; a worker syncs Argo CD"),
            Some(decision.id),
        ))
    } else {
        let reason = format!(
            "pull request #{} closed without merging by {by}; the cluster keeps its scale",
            payload.number
        );
        let rejected =
            Transition::new(DecisionStatus::PrOpen, DecisionStatus::Rejected).reason(&reason);
        match state.storage.transition(decision.id, &rejected).await {
            Ok(()) => {}
            Err(StorageError::LostRace { found, .. }) => {
                return Ok((
                    Receipt::ignored(format!(
                        "decision {} is {found} now; the close changes nothing",
                        decision.id
                    )),
                    Some(decision.id),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(cluster = %decision.cluster_name, decision = decision.id, pull_request = payload.number, by, "pull request rejected");
        Ok((Receipt::recorded(decision.id, reason), Some(decision.id)))
    }
}
