//! A cluster's recorded history: `GET /api/v1/clusters/{name}/samples` exports the stored samples (what
//! `autoscaler simulate --history` replays), and `POST /api/v1/clusters/{name}/tune` replays them through
//! the service's own policy with each setting of a small grid and proposes the cheapest within the lag
//! bound (`simulate::tune`). Both are reads: applying a proposal is a normal spec update.

use axum::{
    Extension, Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::Semaphore;
use utoipa::IntoParams;

use super::{
    AppState,
    access::visible_cluster,
    clusters::{no_nul, query},
    error::{ApiError, ErrorBody},
};
use crate::{
    cluster::FieldProblem,
    simulate::{
        history::History,
        tune::{self, Proposal},
    },
    tenancy::Principal,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/clusters/{name}/samples", get(samples))
        .route("/clusters/{name}/tune", post(tune))
}

/// The most samples one export holds: a week at the default 30 s scrape is 20 160. A `since` that
/// reaches further back is refused (422 naming `since`), never cut short silently.
pub const MAX_EXPORT_SAMPLES: usize = 50_000;
/// The most samples one tuning replays, and the longest span: a week. Every setting of the grid (at
/// most 80) is replayed second by second, so the span bounds the work.
pub const MAX_TUNE_SAMPLES: usize = 25_000;
pub const MAX_TUNE_SECONDS: i64 = 7 * 86_400;
const DEFAULT_EXPORT_SINCE: &str = "24h";
const DEFAULT_TUNE_SINCE: &str = "3d";

/// One tuning at a time per process: a second one is answered 429 rather than sharing the cores.
static TUNING: Semaphore = Semaphore::const_new(1);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SinceQuery {
    /// The samples taken after this: an RFC 3339 instant (`2026-12-01T00:00:00Z`) or a duration back
    /// from now (`24h`, `3d`). Default: `24h` for the samples, `3d` for a tuning.
    since: Option<String>,
}

/// `since` as an instant: RFC 3339, or a humantime duration back from `now`.
fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let problem = |p: String| ApiError::InvalidQuery(FieldProblem::new("since", p));
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let back = humantime::parse_duration(text).map_err(|e| {
        problem(format!(
            "must be an RFC 3339 instant or a duration such as 24h, got {text:?}: {e}"
        ))
    })?;
    chrono::Duration::from_std(back)
        .ok()
        .and_then(|back| now.checked_sub_signed(back))
        .ok_or_else(|| problem(format!("{text:?} reaches too far back")))
}

/// The visible cluster's samples since the query's `since`, at most `max`.
async fn history(
    state: &AppState,
    principal: &Principal,
    name: &str,
    since: Result<Query<SinceQuery>, QueryRejection>,
    default_since: &str,
    max: usize,
) -> Result<History, ApiError> {
    // Another team's cluster is answered as a missing one before the query is judged.
    let cluster = visible_cluster(state, principal, name).await?;
    let since = query(since)?.since;
    no_nul("since", since.as_deref())?;
    let now = Utc::now();
    let since = parse_since(since.as_deref().unwrap_or(default_since), now)?;
    let limit = i64::try_from(max + 1).unwrap_or(i64::MAX);
    let samples = state
        .storage
        .cluster_samples_page(cluster.id, since, limit)
        .await?;
    if samples.len() > max {
        return Err(ApiError::Validation(vec![FieldProblem::new(
            "since",
            format!(
                "more than {max} samples were taken since {}; ask for a shorter history",
                since.to_rfc3339()
            ),
        )]));
    }
    Ok(History {
        cluster: cluster.spec.name,
        policy: cluster.spec.policy,
        since,
        until: now,
        samples,
    })
}

/// A cluster's recorded samples, oldest first, with its policy: the history `autoscaler simulate
/// --history` replays.
///
/// At most 50000 samples: a `since` that reaches further back is refused with 422 naming `since`.
///
/// Role: any (viewer, editor, admin) of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    get, path = "/api/v1/clusters/{name}/samples", tag = "clusters",
    params(("name" = String, Path), SinceQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = History),
        (status = 400, description = "`since` is neither an RFC 3339 instant nor a duration", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "More than 50000 samples since `since`", body = ErrorBody),
    )
)]
pub async fn samples(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    since: Result<Query<SinceQuery>, QueryRejection>,
) -> Result<Json<History>, ApiError> {
    let history = history(
        &state,
        &principal,
        &name,
        since,
        DEFAULT_EXPORT_SINCE,
        MAX_EXPORT_SAMPLES,
    )
    .await?;
    Ok(Json(history))
}

/// Tune from history: the policy settings that would have cost the fewest replica-hours on the cluster's
/// recorded load, with no more minutes of lag above `lag_seconds_high` than its current settings.
///
/// The samples since `since` (default 3 days) are replayed through the service's own decision core with
/// each of at most 80 settings of `target_utilization`, `scale_down_window_seconds` and
/// `cooldown_seconds`, on a job model fitted to the samples. Nothing is changed: apply a proposal with a
/// normal spec update (`autoscaler tune --apply` does). At most 25000 samples spanning at most 7 days
/// (422 naming `since`); one tuning at a time per server (429).
///
/// Role: any (viewer, editor, admin) of the cluster's team, or an admin of the default team. Another team's cluster is answered 404, as a missing one.
#[utoipa::path(
    post, path = "/api/v1/clusters/{name}/tune", tag = "clusters",
    params(("name" = String, Path), SinceQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Proposal),
        (status = 400, description = "`since` is neither an RFC 3339 instant nor a duration", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "The history is too long (more than 25000 samples or 7 days), too short, or shows no capacity; `fields` names `since` or `history`", body = ErrorBody),
        (status = 429, description = "Another tuning is running on this server", body = ErrorBody),
    )
)]
pub async fn tune(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    since: Result<Query<SinceQuery>, QueryRejection>,
) -> Result<Json<Proposal>, ApiError> {
    let history = history(
        &state,
        &principal,
        &name,
        since,
        DEFAULT_TUNE_SINCE,
        MAX_TUNE_SAMPLES,
    )
    .await?;
    if let (Some(first), Some(last)) = (history.samples.first(), history.samples.last())
        && (last.sampled_at - first.sampled_at).num_seconds() > MAX_TUNE_SECONDS
    {
        return Err(ApiError::Validation(vec![FieldProblem::new(
            "since",
            format!(
                "the samples span more than {} days; a tuning replays at most that",
                MAX_TUNE_SECONDS / 86_400
            ),
        )]));
    }
    let permit = TUNING.try_acquire().map_err(|_| {
        ApiError::Busy("another tuning is running on this server; try again in a minute".to_owned())
    })?;
    let tuning = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        tune::propose(&history)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| ApiError::Validation(vec![FieldProblem::new("history", e.to_string())]))?;
    tracing::info!(cluster = %name, token = %principal.name, changes = tuning.proposal.changes.len(), "tuned from history");
    Ok(Json(tuning.proposal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_an_instant_or_a_duration_back_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
            .expect("an instant")
            .with_timezone(&Utc);
        let at = |text: &str| parse_since(text, now).map(|t| t.to_rfc3339());
        assert_eq!(at("24h").expect("24h"), "2026-12-01T12:00:00+00:00");
        assert_eq!(at("3d").expect("3d"), "2026-11-29T12:00:00+00:00");
        assert_eq!(
            at("2026-12-01T06:30:00+01:00").expect("rfc 3339"),
            "2026-12-01T05:30:00+00:00"
        );
        assert!(matches!(at("yesterday"), Err(ApiError::InvalidQuery(p)) if p.field == "since"));
    }
}
