//! `/ui/decisions/{id}`: one decision as a reviewer reads it: what fired and why, the estimate and its
//! fit, every step with its time, the commit and the pull request, the Argo CD operation, the reason it
//! ended as it did.

use axum::{
    Extension,
    extract::{Path, State},
};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::{UiError, clusters::urlencode, format, layout};
use crate::storage::StorageError;
use crate::{api::AppState, tenancy::Principal};

/// What the worker stores as `write_back`, read for the links it gives.
#[derive(Debug, Default, Deserialize)]
struct WriteBackRecord {
    mode: Option<String>,
    repository: Option<String>,
    branch: Option<String>,
    path: Option<String>,
    commit: Option<String>,
    github_repository: Option<String>,
    pull_request: Option<u64>,
    url: Option<String>,
}

/// Only web links: a stored value that is not http(s) is shown as text, never made a link.
fn web_link(url: &str) -> Option<&str> {
    let parsed = url::Url::parse(url).ok()?;
    matches!(parsed.scheme(), "http" | "https").then_some(url)
}

/// A link to a commit when the repository is on a host whose commit pages we know the shape of.
fn commit_link(record: &WriteBackRecord) -> Option<String> {
    let commit = record.commit.as_deref()?;
    if !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    if let Some(repo) = &record.github_repository {
        return Some(format!("https://github.com/{repo}/commit/{commit}"));
    }
    let repository = record.repository.as_deref()?;
    let base = repository.strip_suffix(".git").unwrap_or(repository);
    let url = url::Url::parse(base).ok()?;
    (url.scheme() == "https" && url.host_str() == Some("github.com"))
        .then(|| format!("{base}/commit/{commit}"))
}

/// A JSON object's leaves as `path = value` rows: the estimate, the sync, a step's detail.
fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, inner, rows);
            }
        }
        Value::Null => rows.push((prefix.to_owned(), "-".to_owned())),
        Value::String(s) => rows.push((prefix.to_owned(), s.clone())),
        Value::Number(n) => rows.push((
            prefix.to_owned(),
            n.as_f64()
                .filter(|f| f.fract() != 0.0)
                .map_or_else(|| n.to_string(), |f| format!("{f:.4}")),
        )),
        other => rows.push((prefix.to_owned(), other.to_string())),
    }
}

fn facts(id: &str, value: Option<&Value>) -> Markup {
    let mut rows = Vec::new();
    if let Some(value) = value {
        flatten("", value, &mut rows);
    }
    html! {
        @if rows.is_empty() {
            p.muted { "None recorded." }
        } @else {
            dl.facts id=(id) { @for (key, value) in &rows { dt { (key) } dd { (value) } } }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Step {
    at: chrono::DateTime<chrono::Utc>,
    step: String,
    #[serde(default)]
    detail: Value,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Markup, UiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| UiError::NotFound(format!("no decision {id:?}")))?;
    let decision = state.storage.get_decision(id).await.map_err(|e| match e {
        StorageError::NotFound => UiError::NotFound(format!("no decision {id}")),
        other => other.into(),
    })?;
    super::hide_other_team(&state, &principal, &decision.team, || {
        UiError::NotFound(format!("no decision {id}"))
    })?;
    let write_back: WriteBackRecord = decision
        .write_back
        .as_ref()
        .and_then(|w| WriteBackRecord::deserialize(&w.0).ok())
        .unwrap_or_default();
    let steps: Vec<Step> = Vec::<Step>::deserialize(&decision.steps.0).unwrap_or_default();
    let commit_url = commit_link(&write_back);
    let pull_url = write_back.url.as_deref().and_then(web_link);

    Ok(layout::page(
        &format!("Decision {id}"),
        (!decision.status.is_final()).then_some(10),
        html! {
            h1 { "Decision #" (id) " " (format::status(decision.status)) }
            dl.facts #summary {
                dt { "Cluster" }
                dd {
                    @if decision.cluster_id.is_some() {
                        a href=(format!("/ui/clusters/{}", urlencode(&decision.cluster_name))) { (decision.cluster_name) }
                    } @else {
                        (decision.cluster_name) " " span.muted { "(unsubscribed)" }
                    }
                }
                dt { "Rule" } dd { (decision.rule) }
                dt { "Scale" } dd { (format::scale_change(decision.from_scale, decision.to_scale)) }
                dt { "Taken" } dd { (format::time(decision.created_at)) }
                @if decision.repeats > 1 {
                    dt { "Repeated" }
                    dd #repeats { (decision.repeats) " identical skips, the first "
                        (decision.first_at.map_or_else(|| "-".to_owned(), format::time)) }
                }
                dt { "Last change" } dd { (format::time(decision.updated_at)) }
                @if let Some(finished) = decision.finished_at {
                    dt { "Ended" } dd { (format::time(finished)) " "
                        span.muted { "after " (format::duration((finished - decision.created_at).num_milliseconds() as f64 / 1000.0)) } }
                }
                @if let Some(reason) = &decision.reason {
                    dt { "Reason" } dd #reason { (reason) }
                }
            }

            h2 { "Write-back" }
            @if decision.write_back.is_some() {
                dl.facts #write-back {
                    dt { "Mode" } dd { (write_back.mode.as_deref().unwrap_or("-")) }
                    dt { "Repository" } dd { (write_back.repository.as_deref().unwrap_or("-")) }
                    dt { "Branch, file" } dd { (write_back.branch.as_deref().unwrap_or("-")) ":" (write_back.path.as_deref().unwrap_or("-")) }
                    @if let Some(commit) = &write_back.commit {
                        dt { "Commit" }
                        dd { @if let Some(url) = &commit_url { a #commit href=(url) { code { (commit) } } } @else { code #commit { (commit) } } }
                    }
                    @if let Some(number) = write_back.pull_request {
                        dt { "Pull request" }
                        dd {
                            @if let Some(url) = pull_url { a #pull-request href=(url) { "#" (number) } }
                            @else { "#" (number) }
                            @if let Some(repo) = &write_back.github_repository { " " span.muted { (repo) } }
                        }
                    }
                }
            } @else {
                p.muted { "Nothing written to Git yet." }
            }

            h2 { "Steps" }
            @if steps.is_empty() {
                p.muted { "No step yet." }
            } @else {
                table #steps {
                    thead { tr { th { "At" } th.num { "After" } th { "Step" } th { "Detail" } } }
                    tbody {
                        @for step in &steps {
                            tr {
                                td { (format::time(step.at)) }
                                td.num { (format::duration((step.at - decision.created_at).num_milliseconds() as f64 / 1000.0)) }
                                td { (step.step) }
                                td { (facts("", Some(&step.detail))) }
                            }
                        }
                    }
                }
            }

            h2 { "Estimate and fit" }
            (facts("estimate", decision.estimate.as_ref().map(|e| &e.0)))
            h2 { "Argo CD operation" }
            (facts("sync", decision.sync.as_ref().map(|s| &s.0)))
            h2 { "What the rule saw" }
            (facts("inputs", Some(&decision.inputs.0)))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_addresses_become_links() {
        assert_eq!(
            web_link("https://github.com/o/r/pull/1"),
            Some("https://github.com/o/r/pull/1")
        );
        assert_eq!(web_link("javascript:alert(1)"), None);
        assert_eq!(web_link("data:text/html,x"), None);
        let record = WriteBackRecord {
            repository: Some("https://github.com/platform/gitops.git".to_owned()),
            commit: Some("0123abcd".to_owned()),
            ..WriteBackRecord::default()
        };
        assert_eq!(
            commit_link(&record).as_deref(),
            Some("https://github.com/platform/gitops/commit/0123abcd")
        );
        let elsewhere = WriteBackRecord {
            repository: Some("https://git.example.com/platform/gitops.git".to_owned()),
            ..record
        };
        assert_eq!(commit_link(&elsewhere), None);
    }

    #[test]
    fn nested_details_read_as_paths() {
        let mut rows = Vec::new();
        flatten(
            "",
            &serde_json::json!({"fit": {"r2": 0.98765, "samples": 40}, "method": "regression"}),
            &mut rows,
        );
        assert_eq!(
            rows,
            [
                ("fit.r2".to_owned(), "0.9877".to_owned()),
                ("fit.samples".to_owned(), "40".to_owned()),
                ("method".to_owned(), "regression".to_owned())
            ]
        );
    }
}
