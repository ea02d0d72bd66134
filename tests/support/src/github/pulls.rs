//! `/repos/{owner}/{repo}/pulls…`: create (with its 422s), get and the merged check, plus the
//! request-parsing helpers the other pull request routes share.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::Shared;
use super::branches::{branch_state, refresh_open_pulls};
use super::errors::{
    DOCS_CHECK_MERGED, DOCS_CREATE_PULL, DOCS_GET_PULL, GhError, custom, invalid_field, not_found,
    not_supplied, problems_parsing_json, validation_failed,
};
use super::model::{NewPull, PullRecord, RepoRecord};
use super::render::{self, Detail};
use crate::git;

pub(crate) fn parse_number(raw: &str) -> Option<u64> {
    raw.parse().ok()
}
pub(crate) fn parse_object(body: &[u8], docs: &'static str) -> Result<Map<String, Value>, GhError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(problems_parsing_json(docs)),
    }
}

pub(crate) fn string_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub(crate) fn bool_field(map: &Map<String, Value>, key: &str) -> Option<bool> {
    map.get(key).and_then(Value::as_bool)
}

pub(crate) fn repo_location(
    shared: &Shared,
    owner: &str,
    repo: &str,
) -> Option<(std::path::PathBuf, String)> {
    let state = shared.lock();
    state
        .repo(owner, repo)
        .map(|r| (r.bare.clone(), r.owner.clone()))
}
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some((bare, repo_owner)) = repo_location(&shared, &owner, &repo) else {
        return not_found(DOCS_CREATE_PULL).into_response();
    };
    let map = match parse_object(&body, DOCS_CREATE_PULL) {
        Ok(map) => map,
        Err(e) => return e.into_response(),
    };
    let (Some(head), Some(base)) = (string_field(&map, "head"), string_field(&map, "base")) else {
        let missing = if map.contains_key("head") {
            "base"
        } else {
            "head"
        };
        return not_supplied(missing, DOCS_CREATE_PULL).into_response();
    };
    let Some(title) = string_field(&map, "title") else {
        return not_supplied("title", DOCS_CREATE_PULL).into_response();
    };
    // `head` is `branch` or `owner:branch`; another owner would mean a fork, which does not exist here.
    let head_ref = match head.split_once(':') {
        None => Some(head.clone()),
        Some((o, b)) if o.eq_ignore_ascii_case(&repo_owner) => Some(b.to_owned()),
        Some(_) => None,
    };
    let checked = {
        let (bare, head_ref, base) = (bare.clone(), head_ref.clone(), base.clone());
        tokio::task::spawn_blocking(move || {
            let base_ok = git::branch_exists(&bare, &base);
            let head_ok = head_ref
                .as_deref()
                .is_some_and(|h| git::branch_exists(&bare, h));
            let branches = head_ref
                .as_deref()
                .and_then(|h| branch_state(&bare, h, &base));
            (base_ok, head_ok, branches)
        })
        .await
    };
    let Ok((base_ok, head_ok, branches)) = checked else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "git check failed").into_response();
    };
    let mut invalid = Vec::new();
    if !base_ok {
        invalid.push(invalid_field("PullRequest", "base"));
    }
    if !head_ok {
        invalid.push(invalid_field("PullRequest", "head"));
    }
    let (Some(head_ref), Some(branches), true) = (head_ref, branches, invalid.is_empty()) else {
        return validation_failed(invalid, DOCS_CREATE_PULL).into_response();
    };

    let mut state = shared.lock();
    let id = state.next_id();
    let Some(repo_rec) = state.repo_mut(&owner, &repo) else {
        return not_found(DOCS_CREATE_PULL).into_response();
    };
    if repo_rec.open_pull_for(&head_ref, &base).is_some() {
        let message = format!(
            "A pull request already exists for {}:{head_ref}.",
            repo_rec.owner
        );
        return validation_failed(vec![custom("PullRequest", &message)], DOCS_CREATE_PULL)
            .into_response();
    }
    if branches.stats.commits == 0 {
        let message = format!("No commits between {base} and {head_ref}");
        return validation_failed(vec![custom("PullRequest", &message)], DOCS_CREATE_PULL)
            .into_response();
    }
    let number = repo_rec.next_number;
    repo_rec.next_number += 1;
    let pull = PullRecord::opened(NewPull {
        number,
        id,
        title,
        body: string_field(&map, "body"),
        head_ref,
        base_ref: base,
        author: shared.ctx().bot_login.to_owned(),
        branches,
        draft: bool_field(&map, "draft").unwrap_or(false),
        maintainer_can_modify: bool_field(&map, "maintainer_can_modify").unwrap_or(false),
    });
    repo_rec.pulls.insert(number, pull);
    let repo_rec: &RepoRecord = repo_rec;
    let Some(pull) = repo_rec.pulls.get(&number) else {
        return not_found(DOCS_CREATE_PULL).into_response();
    };
    let json = render::pull_request(&shared.ctx(), repo_rec, pull, Detail::Full);
    let location = format!(
        "{}/repos/{}/pulls/{number}",
        shared.base_url,
        repo_rec.full_name()
    );
    let mut response = (StatusCode::CREATED, Json(json)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}
/// Renders one pull request in full, or GitHub's 404.
pub(crate) fn render_one(
    shared: &Shared,
    owner: &str,
    repo: &str,
    number: Option<u64>,
    docs: &'static str,
) -> Response {
    let state = shared.lock();
    let found = state
        .repo(owner, repo)
        .and_then(|r| number.and_then(|n| r.pulls.get(&n)).map(|p| (r, p)));
    match found {
        Some((repo_rec, pull)) => Json(render::pull_request(
            &shared.ctx(),
            repo_rec,
            pull,
            Detail::Full,
        ))
        .into_response(),
        None => not_found(docs).into_response(),
    }
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, String)>,
) -> Response {
    refresh_open_pulls(&shared, &owner, &repo).await;
    render_one(&shared, &owner, &repo, parse_number(&number), DOCS_GET_PULL)
}

pub(crate) async fn check_merged(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, String)>,
) -> Response {
    let state = shared.lock();
    let merged = state
        .repo(&owner, &repo)
        .and_then(|r| parse_number(&number).and_then(|n| r.pulls.get(&n)))
        .is_some_and(|p| p.merged);
    if merged {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found(DOCS_CHECK_MERGED).into_response()
    }
}
