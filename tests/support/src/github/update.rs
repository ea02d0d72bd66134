//! `PATCH /repos/{owner}/{repo}/pulls/{number}`, with GitHub's refusals to reopen.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::branches::refresh_open_pulls;
use super::errors::{
    DOCS_UPDATE_PULL, GhError, custom, invalid_field, not_found, validation_failed,
};
use super::pulls::{
    bool_field, parse_number, parse_object, render_one, repo_location, string_field,
};
use super::{Shared, now};
use crate::git;

/// `PATCH /repos/{o}/{r}/pulls/{n}`: title, body, state ("open" | "closed"), base, maintainer_can_modify.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let Some(number) = parse_number(&number) else {
        return not_found(DOCS_UPDATE_PULL).into_response();
    };
    let Some((bare, _)) = repo_location(&shared, &owner, &repo) else {
        return not_found(DOCS_UPDATE_PULL).into_response();
    };
    let map = match parse_object(&body, DOCS_UPDATE_PULL) {
        Ok(map) => map,
        Err(e) => return e.into_response(),
    };
    let new_state = string_field(&map, "state");
    if new_state
        .as_deref()
        .is_some_and(|s| s != "open" && s != "closed")
    {
        return validation_failed(
            vec![invalid_field("PullRequest", "state")],
            DOCS_UPDATE_PULL,
        )
        .into_response();
    }
    let new_base = string_field(&map, "base");
    let (head_ref, base_ref) = {
        let state = shared.lock();
        match state.repo(&owner, &repo).and_then(|r| r.pulls.get(&number)) {
            Some(p) => (
                p.head_ref.clone(),
                new_base.clone().unwrap_or_else(|| p.base_ref.clone()),
            ),
            None => return not_found(DOCS_UPDATE_PULL).into_response(),
        }
    };
    let (head_ok, base_ok) = tokio::task::spawn_blocking(move || {
        (
            git::branch_exists(&bare, &head_ref),
            git::branch_exists(&bare, &base_ref),
        )
    })
    .await
    .unwrap_or((false, false));
    if !base_ok {
        return validation_failed(vec![invalid_field("PullRequest", "base")], DOCS_UPDATE_PULL)
            .into_response();
    }
    if let Err(e) = apply_update(&shared, &owner, &repo, number, &map, head_ok) {
        return e.into_response();
    }
    refresh_open_pulls(&shared, &owner, &repo).await;
    render_one(&shared, &owner, &repo, Some(number), DOCS_UPDATE_PULL)
}

fn apply_update(
    shared: &Shared,
    owner: &str,
    repo: &str,
    number: u64,
    map: &Map<String, Value>,
    head_exists: bool,
) -> Result<(), GhError> {
    let mut state = shared.lock();
    let repo_rec = state
        .repo_mut(owner, repo)
        .ok_or_else(|| not_found(DOCS_UPDATE_PULL))?;
    let repo_owner = repo_rec.owner.clone();
    let (head_ref, base_ref, open, merged) = {
        let p = repo_rec
            .pulls
            .get(&number)
            .ok_or_else(|| not_found(DOCS_UPDATE_PULL))?;
        let base = string_field(map, "base").unwrap_or_else(|| p.base_ref.clone());
        (p.head_ref.clone(), base, p.open, p.merged)
    };
    let reopening = string_field(map, "state").as_deref() == Some("open") && !open;
    if reopening {
        // GitHub refuses to reopen a merged pull request, one whose head branch is gone, or a
        // second open one for the same branches. (Messages are close to, not verified against, GitHub's.)
        let refusal = if merged {
            Some("state cannot be changed. The pull request cannot be reopened because it was merged.".to_owned())
        } else if !head_exists {
            Some(format!(
                "state cannot be changed. The {head_ref} branch has been deleted."
            ))
        } else if repo_rec.open_pull_for(&head_ref, &base_ref).is_some() {
            Some(format!(
                "A pull request already exists for {repo_owner}:{head_ref}."
            ))
        } else {
            None
        };
        if let Some(message) = refusal {
            return Err(validation_failed(
                vec![custom("PullRequest", &message)],
                DOCS_UPDATE_PULL,
            ));
        }
    }
    let pull = repo_rec
        .pulls
        .get_mut(&number)
        .ok_or_else(|| not_found(DOCS_UPDATE_PULL))?;
    if let Some(title) = string_field(map, "title") {
        pull.title = title;
    }
    if map.contains_key("body") {
        pull.body = string_field(map, "body");
    }
    if let Some(mcm) = bool_field(map, "maintainer_can_modify") {
        pull.maintainer_can_modify = mcm;
    }
    pull.base_ref = base_ref;
    let at = now();
    match string_field(map, "state").as_deref() {
        Some("closed") if pull.open => {
            pull.open = false;
            pull.closed_at = Some(at.clone());
        }
        Some("open") if !pull.open => {
            pull.open = true;
            pull.closed_at = None;
        }
        _ => {}
    }
    pull.updated_at = at;
    Ok(())
}
