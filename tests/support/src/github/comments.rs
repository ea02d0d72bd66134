//! `/repos/{owner}/{repo}/issues/{number}/comments`: a pull request's conversation. List (oldest first,
//! `since` keeps those updated at or after it, paginated) and create (201 with `Location`; 422
//! Validation Failed for a missing or blank `body`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::errors::{DOCS_CREATE_COMMENT, DOCS_LIST_COMMENTS, not_a, not_found, validation_failed};
use super::list::paginated;
use super::model::CommentRecord;
use super::pulls::{parse_number, parse_object};
use super::render;
use super::{BOT_LOGIN, Shared, now};

pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    RawQuery(raw_query): RawQuery,
) -> Response {
    let since = match query.get("since") {
        None => None,
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            // GitHub checks `since` against its ISO 8601 format before anything else.
            Err(_) => {
                return not_a("since", &json!(text), "date-time", DOCS_LIST_COMMENTS)
                    .into_response();
            }
        },
    };
    let state = shared.lock();
    let found = state.repo(&owner, &repo).and_then(|r| {
        let number = parse_number(&number).filter(|n| r.pulls.contains_key(n))?;
        Some((r, number))
    });
    let Some((repo_rec, number)) = found else {
        return not_found(DOCS_LIST_COMMENTS).into_response();
    };
    let comments: Vec<&CommentRecord> = repo_rec
        .comments
        .get(&number)
        .into_iter()
        .flatten()
        .filter(|c| since.is_none_or(|since| updated_at(c) >= Some(since)))
        .collect();
    let ctx = shared.ctx();
    let base = format!(
        "{}/repos/{}/issues/{number}/comments",
        shared.base_url,
        repo_rec.full_name()
    );
    paginated(&query, raw_query.as_deref(), &base, &comments, |c| {
        render::comment(&ctx, repo_rec, number, c)
    })
}

fn updated_at(comment: &CommentRecord) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&comment.updated_at)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let exists = {
        let state = shared.lock();
        state
            .repo(&owner, &repo)
            .zip(parse_number(&number))
            .is_some_and(|(r, n)| r.pulls.contains_key(&n))
    };
    if !exists {
        return not_found(DOCS_CREATE_COMMENT).into_response();
    }
    let map = match parse_object(&body, DOCS_CREATE_COMMENT) {
        Ok(map) => map,
        Err(e) => return e.into_response(),
    };
    let text = match map.get("body") {
        None | Some(Value::Null) => {
            let missing =
                json!({"resource": "IssueComment", "code": "missing_field", "field": "body"});
            return validation_failed(vec![missing], DOCS_CREATE_COMMENT).into_response();
        }
        Some(Value::String(text)) if text.trim().is_empty() => {
            let blank = json!({"resource": "IssueComment", "code": "custom", "field": "body", "message": "body cannot be blank"});
            return validation_failed(vec![blank], DOCS_CREATE_COMMENT).into_response();
        }
        Some(Value::String(text)) => text.clone(),
        Some(other) => {
            return not_a("properties/body", other, "string", DOCS_CREATE_COMMENT).into_response();
        }
    };
    match add(&shared, &owner, &repo, number_of(&number), BOT_LOGIN, &text) {
        Some((json, location)) => {
            let mut response = (StatusCode::CREATED, Json(json)).into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(LOCATION, value);
            }
            response
        }
        None => not_found(DOCS_CREATE_COMMENT).into_response(),
    }
}

fn number_of(raw: &str) -> u64 {
    parse_number(raw).unwrap_or_default()
}

/// Adds a comment by `author` to the pull request `number`; its JSON and API URL, or `None` when there
/// is no such pull request.
pub(crate) fn add(
    shared: &Shared,
    owner: &str,
    repo: &str,
    number: u64,
    author: &str,
    body: &str,
) -> Option<(Value, String)> {
    let mut state = shared.lock();
    let id = state.next_id();
    let repo_rec = state.repo_mut(owner, repo)?;
    let pull = repo_rec.pulls.get_mut(&number)?;
    let at = now();
    pull.updated_at = at.clone();
    let comment = CommentRecord {
        id,
        body: body.to_owned(),
        author: author.to_owned(),
        created_at: at.clone(),
        updated_at: at,
    };
    repo_rec
        .comments
        .entry(number)
        .or_default()
        .push(comment.clone());
    let json = render::comment(&shared.ctx(), repo_rec, number, &comment);
    let location = format!(
        "{}/repos/{}/issues/comments/{id}",
        shared.base_url,
        repo_rec.full_name()
    );
    Some((json, location))
}
