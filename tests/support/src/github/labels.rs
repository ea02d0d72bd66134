//! `/repos/{owner}/{repo}/issues/{number}/labels`: list, add, replace and remove a pull request's
//! labels. Unknown labels are created in the repository, as GitHub does.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::errors::{DOCS_LABELS, GhError, error, not_found, not_supplied, problems_parsing_json};
use super::model::LabelRecord;
use super::pulls::parse_number;
use super::render;
use super::{Shared, State as ServerState, now};

/// GitHub's color for labels created implicitly by adding them to an issue.
const DEFAULT_COLOR: &str = "ededed";

/// Accepts `{"labels": ["a"]}`, `["a"]` and `{"labels": [{"name": "a"}]}`, as GitHub does.
fn label_names(body: &[u8]) -> Result<Vec<String>, GhError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| problems_parsing_json(DOCS_LABELS))?;
    let list = match &value {
        Value::Array(items) => items,
        Value::Object(map) => match map.get("labels") {
            Some(Value::Array(items)) => items,
            _ => return Err(not_supplied("labels", DOCS_LABELS)),
        },
        _ => return Err(problems_parsing_json(DOCS_LABELS)),
    };
    Ok(list
        .iter()
        .filter_map(|item| match item {
            Value::String(name) => Some(name.clone()),
            Value::Object(obj) => obj.get("name").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .collect())
}

/// Applies `change` to the label list and answers with its labels (200), or 404.
fn with_labels(
    shared: &Shared,
    owner: &str,
    repo: &str,
    number: &str,
    change: impl FnOnce(&mut ServerState, &str, u64) -> Result<(), GhError>,
) -> Response {
    let mut state = shared.lock();
    let Some(number) = parse_number(number) else {
        return not_found(DOCS_LABELS).into_response();
    };
    let exists = state
        .repo(owner, repo)
        .is_some_and(|r| r.pulls.contains_key(&number));
    if !exists {
        return not_found(DOCS_LABELS).into_response();
    }
    if let Err(e) = change(&mut state, &format!("{owner}/{repo}"), number) {
        return e.into_response();
    }
    let Some(repo_rec) = state.repo(owner, repo) else {
        return not_found(DOCS_LABELS).into_response();
    };
    let Some(pull) = repo_rec.pulls.get(&number) else {
        return not_found(DOCS_LABELS).into_response();
    };
    Json(render::labels_of(&shared.ctx(), repo_rec, pull)).into_response()
}

/// Adds `names` to the pull request (once each, case-insensitively), creating missing repo labels.
fn add_names(state: &mut ServerState, full: &str, number: u64, names: &[String]) {
    for name in names {
        let id = state.next_id();
        let Some((owner, repo)) = full.split_once('/') else {
            return;
        };
        let Some(repo_rec) = state.repo_mut(owner, repo) else {
            return;
        };
        let key = name.to_lowercase();
        let canonical = repo_rec
            .labels
            .entry(key)
            .or_insert_with(|| LabelRecord {
                id,
                name: name.clone(),
                color: DEFAULT_COLOR.to_owned(),
            })
            .name
            .clone();
        if let Some(pull) = repo_rec.pulls.get_mut(&number)
            && !pull
                .labels
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&canonical))
        {
            pull.labels.push(canonical);
            pull.updated_at = now();
        }
    }
}

fn clear_names(state: &mut ServerState, full: &str, number: u64) {
    if let Some((owner, repo)) = full.split_once('/')
        && let Some(pull) = state
            .repo_mut(owner, repo)
            .and_then(|r| r.pulls.get_mut(&number))
    {
        pull.labels.clear();
        pull.updated_at = now();
    }
}

pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, String)>,
) -> Response {
    with_labels(&shared, &owner, &repo, &number, |_, _, _| Ok(()))
}

pub(crate) async fn add(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let names = match label_names(&body) {
        Ok(names) => names,
        Err(e) => return e.into_response(),
    };
    with_labels(&shared, &owner, &repo, &number, |state, full, n| {
        add_names(state, full, n, &names);
        Ok(())
    })
}

pub(crate) async fn replace(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let names = match label_names(&body) {
        Ok(names) => names,
        Err(e) => return e.into_response(),
    };
    with_labels(&shared, &owner, &repo, &number, |state, full, n| {
        clear_names(state, full, n);
        add_names(state, full, n, &names);
        Ok(())
    })
}

pub(crate) async fn remove(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, number, name)): Path<(String, String, String, String)>,
) -> Response {
    with_labels(&shared, &owner, &repo, &number, |state, full, n| {
        let pull = full
            .split_once('/')
            .and_then(|(o, r)| state.repo_mut(o, r))
            .and_then(|r| r.pulls.get_mut(&n));
        let Some(pull) = pull else {
            return Err(not_found(DOCS_LABELS));
        };
        let before = pull.labels.len();
        pull.labels.retain(|l| !l.eq_ignore_ascii_case(&name));
        if pull.labels.len() == before {
            return Err(error(
                StatusCode::NOT_FOUND,
                "Label does not exist",
                DOCS_LABELS,
            ));
        }
        pull.updated_at = now();
        Ok(())
    })
}
