//! `GET /api/v1/audit`: the changes made through the API, for admins.

use axum::{
    Extension, Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    AppState,
    access::allow,
    clusters::{no_nul, page_limit, query},
    error::{ApiError, ErrorBody},
};
use crate::{storage::AuditEntry, tenancy::Principal};

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Only entries older than this id.
    before: Option<i64>,
    /// Only changes of this cluster.
    cluster: Option<String>,
}

/// The audit log, newest first: every subscription, replacement, pause, resume and deletion made through
/// the API, with the token's team and name (never the token) and the spec before and after, anything
/// secret-looking redacted.
///
/// Role: admin. A team's admin reads its team's entries; an admin of the default team reads every team's.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, description = "Bad query parameter", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The token is not an admin's", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    page: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    allow(&state, principal.may_read_audit())?;
    let page = query(page)?;
    let limit = page_limit(page.limit)?;
    no_nul("cluster", page.cluster.as_deref())?;
    let mut items = state
        .storage
        .list_audit(
            principal.scope(),
            page.cluster.as_deref(),
            page.before,
            limit + 1,
        )
        .await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_before = more.then(|| items.last().map(|e| e.id)).flatten();
    Ok(Json(AuditPage { items, next_before }))
}
