//! `/api/v1/clusters`: subscribe, read, replace, pause, resume, unsubscribe, and the decision history.

use axum::{
    Extension, Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    AppState,
    access::{actor, allow, no_cluster, visible_cluster},
    error::ApiError,
    error::ErrorBody,
    json::ApiJson,
};
use crate::{
    cluster::{ClusterSpec, FieldProblem},
    decide::Evaluation,
    storage::{ClusterRecord, DecisionRecord, StorageError},
    tenancy::Principal,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/clusters", post(subscribe).get(list))
        .route(
            "/clusters/{name}",
            get(read).put(replace).delete(unsubscribe),
        )
        .route("/clusters/{name}/pause", post(pause))
        .route("/clusters/{name}/resume", post(resume))
        .route("/clusters/{name}/decisions", get(decisions))
        .route("/decisions/{id}", get(decision))
        .route("/clusters/{name}/evaluate", post(evaluate))
}

/// A subscribed cluster: its spec with every default filled in, and its state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    pub name: String,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub spec: ClusterSpec,
}

impl From<ClusterRecord> for ClusterView {
    fn from(record: ClusterRecord) -> Self {
        Self {
            name: record.spec.name.clone(),
            paused: record.paused,
            created_at: record.created_at,
            updated_at: record.updated_at,
            spec: record.spec,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterPage {
    pub items: Vec<ClusterView>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionPage {
    pub items: Vec<DecisionRecord>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

const DEFAULT_PAGE: u32 = 50;
/// The largest page; the document states it on every `limit` (a test ties the two).
pub(super) const MAX_PAGE: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClusterPageQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Only clusters whose name sorts after this one.
    after: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DecisionPageQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Only decisions older than this id.
    before: Option<i64>,
}

/// A query parameter that holds a NUL character, which names nothing that can be stored.
pub(super) fn no_nul(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    if value.is_some_and(|v| v.contains('\0')) {
        return Err(ApiError::InvalidQuery(FieldProblem::new(
            field,
            "must not contain a NUL character",
        )));
    }
    Ok(())
}

pub(super) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(ApiError::InvalidQuery(FieldProblem::new(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ))),
    }
}

pub(super) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|rejection| {
        ApiError::InvalidQuery(FieldProblem::new("(query)", rejection.body_text()))
    })
}

/// The spec checked for `team`, whose secret store its references must stay in.
fn validated(state: &AppState, team: &str, spec: ClusterSpec) -> Result<ClusterSpec, ApiError> {
    let context = state.validation.for_team(team);
    spec.validate(&context).map_err(|problems| {
        if problems
            .iter()
            .any(|p| p.problem.contains(crate::cluster::OUTSIDE_STORE))
        {
            state.metrics.refused("secret_outside_store");
        }
        ApiError::Validation(problems)
    })?;
    Ok(spec.with_resolved_defaults())
}

fn unknown_cluster(name: &str) -> impl Fn(StorageError) -> ApiError + '_ {
    move |e| match e {
        StorageError::NotFound => no_cluster(name),
        other => other.into(),
    }
}

/// Subscribe a cluster.
///
/// Role: editor or admin of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    post, path = "/api/v1/clusters", tag = "clusters",
    request_body = ClusterSpec,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Subscribed", body = ClusterView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "The token is a viewer's", body = ErrorBody), (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "A cluster with this name exists", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid spec; `fields` names each problem", body = ErrorBody),
    )
)]
pub async fn subscribe(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(spec): ApiJson<ClusterSpec>,
) -> Result<impl IntoResponse, ApiError> {
    allow(&state, principal.may_write())?;
    let spec = validated(&state, &principal.team, spec)?;
    let record = state
        .storage
        .insert_cluster(&spec, actor(&principal))
        .await
        .map_err(|e| match e {
            StorageError::Conflict => ApiError::Conflict(format!(
                "a cluster named {:?} is already subscribed",
                spec.name
            )),
            other => other.into(),
        })?;
    tracing::info!(cluster = %spec.name, team = %record.team, token = %principal.name, "cluster subscribed");
    let location = format!("/api/v1/clusters/{}", spec.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(ClusterView::from(record)),
    ))
}

/// List subscribed clusters, by name.
///
/// Role: any (viewer, editor, admin) of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    get, path = "/api/v1/clusters", tag = "clusters",
    params(ClusterPageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ClusterPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    page: Result<Query<ClusterPageQuery>, QueryRejection>,
) -> Result<Json<ClusterPage>, ApiError> {
    let page = query(page)?;
    let limit = page_limit(page.limit)?;
    no_nul("after", page.after.as_deref())?;
    let mut records = state
        .storage
        .list_clusters(principal.scope(), page.after.as_deref(), limit + 1)
        .await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_after = more
        .then(|| records.last().map(|r| r.spec.name.clone()))
        .flatten();
    Ok(Json(ClusterPage {
        items: records.into_iter().map(ClusterView::from).collect(),
        next_after,
    }))
}

/// Read one cluster.
///
/// Role: any (viewer, editor, admin) of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    get, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ClusterView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn read(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<ClusterView>, ApiError> {
    let record = visible_cluster(&state, &principal, &name).await?;
    Ok(Json(record.into()))
}

/// Replace a cluster's spec. The name in the body must be the one in the path.
///
/// The body's `name` must equal the path's `{name}`; another name is refused with 422 and the field `name`
/// (a cluster cannot be renamed: unsubscribe it and subscribe the new name).
///
/// Role: editor or admin of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    put, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path, description = "The cluster's name. The body's `name` must equal it: a cluster cannot be renamed, and a different name is a 422 naming `name`.")),
    request_body = ClusterSpec,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ClusterView),
        (status = 400, body = ErrorBody), (status = 403, description = "The token is a viewer's", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    ApiJson(spec): ApiJson<ClusterSpec>,
) -> Result<Json<ClusterView>, ApiError> {
    allow(&state, principal.may_write())?;
    // Another team's cluster is answered as a missing one before the body is judged.
    let current = visible_cluster(&state, &principal, &name).await?;
    if spec.name != name {
        return Err(ApiError::Validation(vec![FieldProblem::new(
            "name",
            format!(
                "must match the cluster in the path ({name:?}); a cluster cannot be renamed, got {:?}",
                spec.name
            ),
        )]));
    }
    let spec = validated(&state, &current.team, spec)?;
    let record = state
        .storage
        .replace_cluster(&spec, actor(&principal))
        .await
        .map_err(unknown_cluster(&name))?;
    tracing::info!(cluster = %name, token = %principal.name, "cluster spec replaced");
    Ok(Json(record.into()))
}

/// Unsubscribe a cluster. Its samples go; its decisions stay in the audit trail.
///
/// Role: editor or admin of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    delete, path = "/api/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204, description = "Unsubscribed"), (status = 403, description = "The token is a viewer's", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    allow(&state, principal.may_write())?;
    visible_cluster(&state, &principal, &name).await?;
    state
        .storage
        .delete_cluster(&name, actor(&principal))
        .await
        .map_err(unknown_cluster(&name))?;
    tracing::info!(cluster = %name, token = %principal.name, "cluster unsubscribed");
    Ok(StatusCode::NO_CONTENT)
}

/// Pause: the autoscaler takes no action for this cluster until it is resumed.
///
/// Role: editor or admin of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    post, path = "/api/v1/clusters/{name}/pause", tag = "clusters",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ClusterView), (status = 403, description = "The token is a viewer's", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn pause(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<ClusterView>, ApiError> {
    set_paused(state, principal, name, true).await
}

/// Resume a paused cluster.
///
/// Role: editor or admin of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    post, path = "/api/v1/clusters/{name}/resume", tag = "clusters",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ClusterView), (status = 403, description = "The token is a viewer's", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn resume(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<ClusterView>, ApiError> {
    set_paused(state, principal, name, false).await
}

async fn set_paused(
    state: AppState,
    principal: Principal,
    name: String,
    paused: bool,
) -> Result<Json<ClusterView>, ApiError> {
    allow(&state, principal.may_write())?;
    visible_cluster(&state, &principal, &name).await?;
    let record = state
        .storage
        .set_cluster_paused(&name, paused, actor(&principal))
        .await
        .map_err(unknown_cluster(&name))?;
    tracing::info!(cluster = %name, paused, token = %principal.name, "cluster pause state set");
    Ok(Json(record.into()))
}

/// A cluster's decisions, newest first.
///
/// Role: any (viewer, editor, admin) of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    get, path = "/api/v1/clusters/{name}/decisions", tag = "clusters",
    params(("name" = String, Path), DecisionPageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DecisionPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub async fn decisions(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    page: Result<Query<DecisionPageQuery>, QueryRejection>,
) -> Result<Json<DecisionPage>, ApiError> {
    let cluster = visible_cluster(&state, &principal, &name).await?;
    let page = query(page)?;
    let limit = page_limit(page.limit)?;
    let mut items = state
        .storage
        .list_decisions(cluster.id, page.before, limit + 1)
        .await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_before = more.then(|| items.last().map(|d| d.id)).flatten();
    Ok(Json(DecisionPage { items, next_before }))
}

/// One decision, with every step the worker took.
///
/// Role: any (viewer, editor, admin) of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    get, path = "/api/v1/decisions/{id}", tag = "clusters",
    params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DecisionRecord),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
pub async fn decision(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<DecisionRecord>, ApiError> {
    // Ids are numbers; anything else names no decision.
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no decision {id:?}")))?;
    match state.storage.get_decision(id).await {
        Ok(record) if principal.may_see(&record.team).is_ok() => Ok(Json(record)),
        Ok(_) => {
            state
                .metrics
                .refused(crate::tenancy::Denied::OtherTeam.reason());
            Err(ApiError::NotFound(format!("no decision {id}")))
        }
        Err(StorageError::NotFound) => Err(ApiError::NotFound(format!("no decision {id}"))),
        Err(e) => Err(e.into()),
    }
}

/// Dry run: what the rules and safeguards say right now, and why, without enqueueing anything.
///
/// Role: any (viewer, editor, admin) of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    post, path = "/api/v1/clusters/{name}/evaluate", tag = "clusters",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Evaluation), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn evaluate(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<Evaluation>, ApiError> {
    let cluster = visible_cluster(&state, &principal, &name).await?;
    let evaluation = state.evaluator.evaluate_now(&cluster, Utc::now()).await?;
    Ok(Json(evaluation))
}
