//! `/repos/{owner}/{repo}/pulls…`: list (with GitHub's filters and pagination), create (with its
//! 422s), get, update, and the merged check.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header::{LINK, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::branches::branch_state;
use super::errors::{
    DOCS_CHECK_MERGED, DOCS_CREATE_PULL, DOCS_GET_PULL, DOCS_LIST_PULLS, DOCS_UPDATE_PULL, GhError,
    custom, invalid_field, not_found, not_supplied, problems_parsing_json, validation_failed,
};
use super::model::{PullRecord, RepoRecord};
use super::render::{self, Detail};
use super::{Shared, now};
use crate::git;

/// Re-reads the open pull requests' branches from the bare repository, as GitHub follows pushes.
/// A pull request whose head branch was deleted is closed, as on GitHub. Returns false for an
/// unknown repository.
pub(crate) async fn refresh_open_pulls(shared: &Shared, owner: &str, repo: &str) -> bool {
    let (bare, open) = {
        let state = shared.lock();
        let Some(repo) = state.repo(owner, repo) else {
            return false;
        };
        let open: Vec<(u64, String, String)> = repo
            .pulls
            .values()
            .filter(|p| p.open)
            .map(|p| (p.number, p.head_ref.clone(), p.base_ref.clone()))
            .collect();
        (repo.bare.clone(), open)
    };
    if open.is_empty() {
        return true;
    }
    let observed = tokio::task::spawn_blocking(move || {
        open.into_iter()
            .map(|(number, head, base)| {
                let head_exists = git::branch_exists(&bare, &head);
                (number, head_exists, branch_state(&bare, &head, &base))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut state = shared.lock();
    let Some(repo) = state.repo_mut(owner, repo) else {
        return false;
    };
    for (number, head_exists, branches) in observed {
        let Some(pull) = repo.pulls.get_mut(&number).filter(|p| p.open) else {
            continue;
        };
        match branches {
            Some(branches) => {
                if branches.head_sha != pull.branches.head_sha {
                    pull.updated_at = now();
                }
                pull.branches = branches;
            }
            None if !head_exists => {
                let at = now();
                pull.open = false;
                pull.closed_at = Some(at.clone());
                pull.updated_at = at;
            }
            None => {}
        }
    }
    true
}

fn parse_number(raw: &str) -> Option<u64> {
    raw.parse().ok()
}

pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
) -> Response {
    if !refresh_open_pulls(&shared, &owner, &repo).await {
        return not_found(DOCS_LIST_PULLS).into_response();
    }
    let state = shared.lock();
    let Some(repo_rec) = state.repo(&owner, &repo) else {
        return not_found(DOCS_LIST_PULLS).into_response();
    };
    let wanted_state = query.get("state").map(String::as_str).unwrap_or("open");
    // GitHub only filters on `head` given as `user:ref`; a bare branch name is silently ignored.
    let head_filter = query
        .get("head")
        .and_then(|h| h.split_once(':'))
        .filter(|(o, b)| !o.is_empty() && !b.is_empty());
    let base_filter = query.get("base");
    let mut matching: Vec<&PullRecord> = repo_rec
        .pulls
        .values()
        .filter(|p| match wanted_state {
            "closed" => !p.open,
            "all" => true,
            _ => p.open,
        })
        .filter(|p| {
            head_filter
                .is_none_or(|(o, b)| o.eq_ignore_ascii_case(&repo_rec.owner) && p.head_ref == *b)
        })
        .filter(|p| base_filter.is_none_or(|b| &p.base_ref == b))
        .collect();
    sort(&mut matching, &query);
    let per_page = query
        .get("per_page")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last_page = matching.len().div_ceil(per_page).max(1);
    let ctx = shared.ctx();
    let items: Vec<Value> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|p| render::pull_request(&ctx, repo_rec, p, Detail::Simple))
        .collect();
    let mut response = Json(items).into_response();
    let base = format!("{}/repos/{}/pulls", shared.base_url, repo_rec.full_name());
    if let Some(link) = link_header(&base, raw_query.as_deref(), page, last_page)
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        response.headers_mut().insert(LINK, value);
    }
    response
}

/// `sort` = created (default) | updated | popularity | long-running; `direction` defaults to desc
/// for created, asc otherwise.
fn sort(pulls: &mut [&PullRecord], query: &HashMap<String, String>) {
    let by = query.get("sort").map(String::as_str).unwrap_or("created");
    let default_direction = if by == "created" { "desc" } else { "asc" };
    let descending = query
        .get("direction")
        .map(String::as_str)
        .unwrap_or(default_direction)
        == "desc";
    match by {
        "updated" => {
            pulls.sort_by(|a, b| (&a.updated_at, a.number).cmp(&(&b.updated_at, b.number)))
        }
        _ => pulls.sort_by_key(|p| p.number),
    }
    if descending {
        pulls.reverse();
    }
}

/// RFC 8288 `Link` with next/last and first/prev, as GitHub paginates; `None` for a single page.
fn link_header(base: &str, raw_query: Option<&str>, page: usize, last: usize) -> Option<String> {
    if last <= 1 {
        return None;
    }
    let kept: Vec<&str> = raw_query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("page="))
        .collect();
    let url = |n: usize| {
        let mut params = kept.clone();
        let page_param = format!("page={n}");
        params.push(&page_param);
        format!("<{base}?{}>", params.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    if page < last {
        links.push(format!("{}; rel=\"next\"", url(page + 1)));
        links.push(format!("{}; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", url(1)));
    }
    Some(links.join(", "))
}

fn parse_object(body: &[u8], docs: &'static str) -> Result<Map<String, Value>, GhError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(problems_parsing_json(docs)),
    }
}

fn string_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn bool_field(map: &Map<String, Value>, key: &str) -> Option<bool> {
    map.get(key).and_then(Value::as_bool)
}

fn repo_location(shared: &Shared, owner: &str, repo: &str) -> Option<(std::path::PathBuf, String)> {
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
    let at = now();
    let pull = PullRecord {
        number,
        id,
        title,
        body: string_field(&map, "body"),
        head_ref,
        base_ref: base,
        branches,
        open: true,
        draft: bool_field(&map, "draft").unwrap_or(false),
        maintainer_can_modify: bool_field(&map, "maintainer_can_modify").unwrap_or(false),
        labels: Vec::new(),
        merged: false,
        merged_at: None,
        merge_commit_sha: None,
        closed_at: None,
        created_at: at.clone(),
        updated_at: at,
    };
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
fn render_one(
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
