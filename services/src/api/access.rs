//! The tenancy's answers turned into API errors, each refusal counted: a role that may not is `403`, another
//! team's cluster is the same `404` as a cluster that does not exist.

use super::{AppState, error::ApiError};
use crate::{
    storage::{Actor, ClusterRecord, StorageError},
    tenancy::{Denied, Principal},
};

/// `Ok` when allowed; otherwise the refusal, counted.
pub fn allow(state: &AppState, decision: Result<(), Denied>) -> Result<(), ApiError> {
    decision.map_err(|denied| {
        state.metrics.refused(denied.reason());
        match denied {
            Denied::Role => ApiError::Forbidden(
                "this token's role does not allow this request (viewer: read; editor: change; admin: audit)"
                    .to_owned(),
            ),
            // Unreachable for clusters (see `visible_cluster`), kept for a uniform answer.
            Denied::OtherTeam => ApiError::NotFound("not found".to_owned()),
        }
    })
}

pub fn no_cluster(name: &str) -> ApiError {
    ApiError::NotFound(format!("no cluster named {name:?}"))
}

/// The cluster named `name` if the principal may see it; another team's is answered as a missing one.
pub async fn visible_cluster(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<ClusterRecord, ApiError> {
    let record = state.storage.get_cluster(name).await.map_err(|e| match e {
        StorageError::NotFound => no_cluster(name),
        other => other.into(),
    })?;
    if principal.may_see(&record.team).is_err() {
        state.metrics.refused(Denied::OtherTeam.reason());
        return Err(no_cluster(name));
    }
    Ok(record)
}

/// The principal as the storage's actor: its team, its token's name, the teams it may change.
pub fn actor(principal: &Principal) -> Actor<'_> {
    Actor {
        team: &principal.team,
        token_name: &principal.name,
        scope: principal.scope(),
    }
}
