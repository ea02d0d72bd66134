//! `POST /webhooks/github`: a merged autoscaler pull request is handed to a worker to sync; one closed
//! without merging is rejected, and the cluster keeps its scale.

use axum::{Json, body::Body, extract::State, http::HeaderMap};
use serde::Deserialize;

use sha2::{Digest, Sha256};

use super::{Receipt, WebhookState, parse_json, read_body, refuse_stale, seen_before};
use crate::{
    api::ApiError,
    storage::{
        DecisionRecord, DecisionStatus, Delivery, DeliveryEffect, DeliveryOutcome, DeliverySource,
        Merge, Transition,
    },
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
    /// When it was closed: how old the event is.
    #[serde(default)]
    closed_at: Option<String>,
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
        return Err(ApiError::BadSignature(
            "no GitHub webhook secret is configured (AUTOSCALER_GITHUB_WEBHOOK_SECRET): every GitHub delivery is refused".to_owned(),
        ));
    };
    if !verifier.verify(signature, &body) {
        tracing::warn!(
            present = signature.is_some(),
            "GitHub delivery with a missing or wrong signature refused"
        );
        return Err(ApiError::BadSignature(
            "X-Hub-Signature-256 is missing or is not the HMAC-SHA256 of the body with the configured secret".to_owned(),
        ));
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::MalformedJson(format!("the {name} header is missing")))
    };
    let event = header("x-github-event")?;
    let delivery_id = header("x-github-delivery")?;
    let body_sha256: [u8; 32] = Sha256::digest(&body).into();
    let mut delivery = Delivery {
        source: DeliverySource::GitHub,
        id: &delivery_id,
        event: &event,
        decision_id: None,
        body_sha256: Some(body_sha256),
    };
    if event != "pull_request" {
        let outcome = state
            .storage
            .take_delivery(&delivery, &DeliveryEffect::Nothing)
            .await?;
        if let Some(answer) = seen_before(&outcome) {
            return answer;
        }
        return Ok(Receipt::ignored(format!("{event} events are not used")));
    }
    let payload: PullRequestEvent = parse_json(&body)?;
    if payload.action == "closed" {
        let closed_at = payload.pull_request.closed_at.as_deref().ok_or_else(|| {
            ApiError::MalformedJson(
                "pull_request.closed_at: missing on a closed pull request".to_owned(),
            )
        })?;
        refuse_stale("pull_request.closed_at", closed_at, state.max_age)?;
    }
    let event = format!("pull_request.{}", payload.action);
    delivery.event = &event;
    let plan = plan(state, &payload).await?;
    let (decision, effect) = match &plan {
        Plan::Ignore(_) => (None, DeliveryEffect::Nothing),
        Plan::Merge {
            decision,
            merge_commit,
            merged_by,
        } => (
            Some(decision),
            DeliveryEffect::Merge(Merge {
                decision_id: decision.id,
                cluster_id: decision.cluster_id.unwrap_or_default(),
                cluster_name: &decision.cluster_name,
                merge_commit,
                merged_by,
            }),
        ),
        Plan::Reject { decision, reason } => (
            Some(decision),
            DeliveryEffect::Transition {
                decision_id: decision.id,
                change: Transition::new(DecisionStatus::PrOpen, DecisionStatus::Rejected)
                    .reason(reason),
            },
        ),
    };
    delivery.decision_id = decision.map(|d| d.id);
    let outcome = state.storage.take_delivery(&delivery, &effect).await?;
    if let Some(answer) = seen_before(&outcome) {
        return answer;
    }
    match (&plan, outcome) {
        (Plan::Ignore(why), _) => Ok(Receipt::ignored(why.clone())),
        (
            Plan::Merge { decision, .. } | Plan::Reject { decision, .. },
            DeliveryOutcome::LostRace { found },
        ) => Ok(Receipt::ignored_for(
            decision.id,
            format!(
                "decision {} is {found} now; the {} changes nothing",
                decision.id,
                if matches!(plan, Plan::Merge { .. }) {
                    "merge"
                } else {
                    "close"
                }
            ),
        )),
        (
            Plan::Merge {
                decision,
                merged_by,
                ..
            },
            _,
        ) => {
            tracing::info!(
                cluster = %decision.cluster_name,
                decision = decision.id,
                pull_request = payload.number,
                by = %merged_by,
                "pull request merged; sync enqueued"
            );
            Ok(Receipt::recorded(
                decision.id,
                "merged; a worker syncs Argo CD",
            ))
        }
        (Plan::Reject { decision, reason }, _) => {
            tracing::info!(cluster = %decision.cluster_name, decision = decision.id, pull_request = payload.number, "pull request rejected");
            Ok(Receipt::recorded(decision.id, reason.clone()))
        }
    }
}

/// What a pull request event asks for, decided before anything is written.
enum Plan {
    Ignore(String),
    Merge {
        decision: DecisionRecord,
        merge_commit: String,
        merged_by: String,
    },
    Reject {
        decision: DecisionRecord,
        reason: String,
    },
}

async fn plan(state: &WebhookState, payload: &PullRequestEvent) -> Result<Plan, ApiError> {
    if payload.action != "closed" {
        return Ok(Plan::Ignore(format!(
            "pull request {} events are not used",
            payload.action
        )));
    }
    let branch = &payload.pull_request.head.name;
    if !branch.starts_with("autoscaler/") {
        return Ok(Plan::Ignore("not an autoscaler pull request".to_owned()));
    }
    let Some(decision) = state
        .storage
        .pull_request_decision(branch, payload.number)
        .await?
    else {
        return Ok(Plan::Ignore(format!(
            "no decision is waiting in pull request #{}",
            payload.number
        )));
    };
    let write_back = decision.write_back.as_ref().map(|w| &w.0);
    let repository = write_back
        .and_then(|w| w.get("github_repository"))
        .and_then(|r| r.as_str())
        .unwrap_or_default();
    // Branch names repeat across repositories: the event must come from the decision's repository.
    if !repository.eq_ignore_ascii_case(&payload.repository.full_name) {
        return Ok(Plan::Ignore(format!(
            "pull request #{} of {} is not the autoscaler's",
            payload.number, payload.repository.full_name
        )));
    }
    let by = payload
        .sender
        .as_ref()
        .map_or("someone", |s| s.login.as_str());
    if payload.pull_request.merged == Some(true) {
        let Some(merge_commit) = payload.pull_request.merge_commit_sha.clone() else {
            return Err(ApiError::MalformedJson(
                "pull_request.merge_commit_sha: missing on a merged pull request".to_owned(),
            ));
        };
        Ok(Plan::Merge {
            decision,
            merge_commit,
            merged_by: by.to_owned(),
        })
    } else {
        let reason = format!(
            "pull request #{} closed without merging by {by}; the cluster keeps its scale",
            payload.number
        );
        Ok(Plan::Reject { decision, reason })
    }
}
