//! `GET /repos/{owner}/{repo}/pulls`: GitHub's filters (`state`, `head` as `owner:branch`, `base`),
//! sorting and pagination with a `Link` header.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::HeaderValue;
use axum::http::header::LINK;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Shared;
use super::branches::refresh_open_pulls;
use super::errors::{DOCS_LIST_PULLS, not_found};
use super::model::PullRecord;
use super::render::{self, Detail};

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
    let ctx = shared.ctx();
    let base = format!("{}/repos/{}/pulls", shared.base_url, repo_rec.full_name());
    paginated(&query, raw_query.as_deref(), &base, &matching, |p| {
        render::pull_request(&ctx, repo_rec, p, Detail::Simple)
    })
}

/// One page of `items` (GitHub's `per_page`, 30 by default and at most 100, and `page` from 1),
/// rendered, with the `Link` header that leads to the others. `base` is the list's URL without query.
pub(crate) fn paginated<T>(
    query: &HashMap<String, String>,
    raw_query: Option<&str>,
    base: &str,
    items: &[T],
    render: impl Fn(&T) -> Value,
) -> Response {
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
    let last_page = items.len().div_ceil(per_page).max(1);
    let rendered: Vec<Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(render)
        .collect();
    let mut response = Json(rendered).into_response();
    if let Some(link) = link_header(base, raw_query, page, last_page)
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
