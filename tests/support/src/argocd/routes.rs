//! The HTTP surface: bearer authentication, `GET /api/v1/applications/{name}` and
//! `POST /api/v1/applications/{name}/sync`, with Argo CD's refusal rules and error shapes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use super::Shared;
use super::app::{API_USERNAME, AppRecord};
use super::errors::{ApiError, GrpcCode};
use super::operation::{Initiator, Operation};
use crate::git;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/applications/{name}", get(get_application))
        .route("/api/v1/applications/{name}/sync", post(sync_application))
        // Authentication is a gRPC interceptor in Argo CD, so only matched routes reach it;
        // grpc-gateway answers unmatched ones itself.
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_bearer,
        ))
        .fallback(|| async { ApiError::new(GrpcCode::NotFound, "Not Found") })
        .with_state(shared)
}

async fn require_bearer(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match header.map(|v| v.strip_prefix("Bearer ")) {
        None => ApiError::new(GrpcCode::Unauthenticated, "no session information").into_response(),
        Some(Some(token)) if token == shared.token => next.run(req).await,
        Some(_) => ApiError::new(
            GrpcCode::Unauthenticated,
            "invalid session: token signature is invalid",
        )
        .into_response(),
    }
}

/// The project guard of `getAppEnforceRBAC`: without a `project` a missing app is indistinguishable
/// from a forbidden one (403); with one, a missing app is 404 and an app of another project is 403.
fn find_app<'a>(
    apps: &'a mut std::collections::BTreeMap<String, AppRecord>,
    name: &str,
    project: Option<&str>,
) -> Result<&'a mut AppRecord, ApiError> {
    let project = project.filter(|p| !p.is_empty());
    match (apps.get_mut(name), project) {
        (None, Some(_)) => Err(ApiError::app_not_found(name)),
        (None, None) => Err(ApiError::permission_denied()),
        (Some(rec), Some(p)) if rec.spec.project != p => Err(ApiError::permission_denied()),
        (Some(rec), _) => Ok(rec),
    }
}

fn project_param(query: &HashMap<String, String>) -> Option<&str> {
    query
        .get("project")
        .or_else(|| query.get("projects"))
        .map(String::as_str)
}

/// Resolves like the repo-server with `NoRevisionCache`: always against the repository as it is now.
async fn resolve(repo: PathBuf, revision: String) -> Option<String> {
    tokio::task::spawn_blocking(move || git::rev_parse(&repo, &revision))
        .await
        .ok()
        .flatten()
}

async fn get_application(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let project = project_param(&query);
    // Any non-empty value counts as a refresh; "hard" only differs in bypassing a cache we don't have.
    let refresh = query.get("refresh").is_some_and(|v| !v.is_empty());
    let (repo, target) = {
        let mut state = shared.lock();
        let rec = find_app(&mut state.apps, &name, project)?;
        (rec.spec.repo.clone(), rec.spec.target_revision.clone())
    };
    let resolved = if refresh {
        Some(resolve(repo, target).await)
    } else {
        None
    };
    let (body, applied) = {
        let mut state = shared.lock();
        let rec = find_app(&mut state.apps, &name, project)?;
        let mut applied: Vec<_> = rec.observe_get().into_iter().collect();
        if let Some(resolved) = resolved {
            rec.refresh(resolved);
        }
        let body = rec.to_json();
        applied.extend(rec.complete_if_immediate());
        (body, applied)
    };
    shared.notify(applied);
    Ok(Json(body))
}

/// `ApplicationSyncRequest`. grpc-gateway's JSON decoding accepts both the lowerCamel JSON names and
/// the proto field names, ignores unknown fields, and reads `null` as the default.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SyncRequest {
    revision: Option<String>,
    #[serde(alias = "dry_run")]
    dry_run: Option<bool>,
    prune: Option<bool>,
    strategy: Option<Value>,
    resources: Option<Vec<Value>>,
    infos: Option<Vec<Value>>,
    #[serde(alias = "retry_strategy")]
    retry_strategy: Option<Value>,
    #[serde(alias = "sync_options")]
    sync_options: Option<SyncOptions>,
    project: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SyncOptions {
    items: Option<Vec<String>>,
}

/// Decodes the body; an empty body is an empty request, as grpc-gateway treats EOF.
fn parse_sync_request(body: &[u8]) -> Result<(Value, SyncRequest), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Value::Object(Default::default()), SyncRequest::default()));
    }
    let invalid = |e: serde_json::Error| ApiError::new(GrpcCode::InvalidArgument, e.to_string());
    let raw: Value = serde_json::from_slice(body).map_err(invalid)?;
    let request = SyncRequest::deserialize(&raw).map_err(invalid)?;
    Ok((raw, request))
}

async fn sync_application(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (raw, request) = parse_sync_request(&body)?;
    let project = request.project.clone();
    let requested = request.revision.clone().unwrap_or_default();
    let dry_run = request.dry_run.unwrap_or(false);
    let (repo, target) = {
        let mut state = shared.lock();
        let rec = find_app(&mut state.apps, &name, project.as_deref())?;
        rec.sync_requests.push(raw);
        if rec.sync_window_closed {
            return Err(ApiError::new(
                GrpcCode::PermissionDenied,
                "cannot sync: blocked by sync window",
            ));
        }
        let target = rec.spec.target_revision.clone();
        if rec.spec.auto_sync && !dry_run && !requested.is_empty() && requested != target {
            return Err(ApiError::new(
                GrpcCode::FailedPrecondition,
                format!("Cannot sync to {requested}: auto-sync currently set to {target}"),
            ));
        }
        (rec.spec.repo.clone(), target)
    };
    let wanted = if requested.is_empty() {
        target
    } else {
        requested
    };
    let resolved = resolve(repo, wanted.clone()).await;
    let (body, applied) = {
        let mut state = shared.lock();
        let rec = find_app(&mut state.apps, &name, project.as_deref())?;
        let Some(revision) = resolved else {
            // Not a gRPC status in Argo CD, so grpc-gateway reports code Unknown (HTTP 500).
            return Err(ApiError::new(
                GrpcCode::Unknown,
                format!(
                    "error resolving repo revision: unable to resolve '{wanted}' to a commit SHA"
                ),
            ));
        };
        if rec.operation_in_progress() {
            return Err(ApiError::new(
                GrpcCode::FailedPrecondition,
                "error setting app operation: another operation is already in progress",
            ));
        }
        rec.set_operation(operation_from(request, revision));
        let body = rec.to_json();
        (body, rec.complete_if_immediate())
    };
    shared.notify(applied.into_iter().collect());
    Ok(Json(body))
}

fn operation_from(request: SyncRequest, revision: String) -> Operation {
    Operation {
        revision,
        initiated_by: Initiator::User(API_USERNAME.into()),
        dry_run: request.dry_run.unwrap_or(false),
        prune: request.prune.unwrap_or(false),
        strategy: request.strategy,
        sync_options: request
            .sync_options
            .and_then(|o| o.items)
            .unwrap_or_default(),
        resources: request.resources.unwrap_or_default(),
        info: request.infos.unwrap_or_default(),
        retry: request.retry_strategy,
    }
}
