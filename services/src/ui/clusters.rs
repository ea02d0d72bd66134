//! `/ui`: every cluster at a glance, a page at a time: scale, last decision, lag, load, scrape health and
//! the lag over the last six hours.

use axum::{
    Extension,
    extract::{Query, State},
};
use chrono::{Duration, Utc};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::{UiError, chart, format, layout};
use crate::storage::{ClusterOverview, Sample};
use crate::{api::AppState, tenancy::Principal};

/// Clusters per page: a few sparkline queries' worth, fast on a list of thousands.
const PAGE: u32 = 100;
const SPARKLINE_HOURS: i64 = 6;
const SPARKLINE_BUCKET_SECONDS: u32 = 600;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    after: Option<String>,
}

/// How the newest sample stands: fresh with every metric, some missing, old, or none at all.
fn scrape_health(latest: Option<&Sample>, now: chrono::DateTime<Utc>, interval: u32) -> Markup {
    let Some(sample) = latest else {
        return html! { span.muted { "no samples" } };
    };
    let age = (now - sample.sampled_at).num_seconds();
    if age > 3 * i64::from(interval.max(1)) {
        return html! { span.bad title=(format::time(sample.sampled_at)) { "stale, " (format::ago(sample.sampled_at, now)) } };
    }
    let missing: Vec<&str> = [
        ("cpu_load", sample.cpu_load),
        ("lag_records", sample.lag_records),
        ("lag_seconds", sample.lag_seconds),
        ("records_in", sample.records_in),
        ("records_out", sample.records_out),
        ("scale", sample.scale),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_none())
    .map(|(name, _)| name)
    .collect();
    if missing.is_empty() {
        html! { "ok" }
    } else {
        html! { span.bad title=(missing.join(", ")) { (missing.len()) " missing" } }
    }
}

fn row(
    cluster: &ClusterOverview,
    sparkline: Option<&str>,
    now: chrono::DateTime<Utc>,
    interval: u32,
) -> Markup {
    let name = &cluster.spec.name;
    let latest = cluster.latest.as_ref();
    html! {
        tr data-cluster=(name) {
            td { a href=(format!("/ui/clusters/{}", urlencode(name))) { (name) } }
            td { (cluster.spec.target.kind.as_str()) }
            td.num { (format::reading(latest.and_then(|s| s.scale), format::quantity)) " / " (cluster.spec.policy.max_scale) }
            td {
                @if let Some(d) = &cluster.last_decision {
                    a href=(format!("/ui/decisions/{}", d.id)) { "#" (d.id) } " "
                    (format::status(d.status)) " "
                    span.muted { (d.rule) " " (format::scale_change(d.from_scale, d.to_scale)) ", " (format::ago(d.created_at, now)) }
                } @else {
                    span.muted { "none" }
                }
            }
            td.num { (format::reading(latest.and_then(|s| s.lag_seconds), format::duration)) }
            td.num { (format::reading(latest.and_then(|s| s.lag_records), format::quantity)) }
            td.num { (format::reading(latest.and_then(|s| s.cpu_load), |v| format!("{:.0}%", v * 100.0))) }
            td.num { (format::reading(latest.and_then(|s| s.records_in), format::quantity)) }
            td { (scrape_health(latest, now, interval)) }
            td { @if cluster.paused { span.paused { "paused" } } @else { span.muted { "no" } } }
            td.spark { @if let Some(svg) = sparkline { (PreEscaped(svg)) } }
        }
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

pub async fn page(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<ListQuery>,
) -> Result<Markup, UiError> {
    if query.after.as_deref().is_some_and(|a| a.contains('\0')) {
        return Err(UiError::BadRequest(
            "after must not contain a NUL character".to_owned(),
        ));
    }
    let now = Utc::now();
    let mut clusters = state
        .storage
        .cluster_overviews(principal.scope(), query.after.as_deref(), PAGE + 1)
        .await?;
    let more = clusters.len() > PAGE as usize;
    clusters.truncate(PAGE as usize);
    let since = now - Duration::hours(SPARKLINE_HOURS);
    let ids: Vec<i64> = clusters.iter().map(|c| c.id).collect();
    let lines = state
        .storage
        .lag_sparklines(&ids, since, SPARKLINE_BUCKET_SECONDS)
        .await?;
    let interval = state.evaluator.scrape_interval_seconds;
    let rows: Vec<Markup> = clusters
        .iter()
        .map(|cluster| {
            let svg = lines
                .get(&cluster.id)
                .and_then(|points| chart::sparkline(points, since, now).ok());
            row(cluster, svg.as_deref(), now, interval)
        })
        .collect();
    let next = more
        .then(|| clusters.last().map(|c| c.spec.name.clone()))
        .flatten();
    Ok(layout::page(
        "Clusters",
        Some(30),
        html! {
            h1 { "Clusters" }
            @if clusters.is_empty() {
                p.muted { "No cluster is subscribed yet. Subscribe one with "
                    code { "autoscaler cluster apply -f spec.yaml" } " or " code { "POST /api/v1/clusters" } "." }
            } @else {
                table #clusters {
                    thead { tr {
                        th { "Cluster" } th { "Kind" } th.num { "Scale / max" } th { "Last decision" }
                        th.num { "Lag" } th.num { "Lag, records" } th.num { "CPU" } th.num { "In, rec/s" }
                        th { "Scrape" } th { "Paused" } th { "Lag, " (SPARKLINE_HOURS) " h" }
                    } }
                    tbody { @for row in &rows { (row) } }
                }
                @if let Some(next) = next {
                    p.pager { a rel="next" href=(format!("/ui?after={}", urlencode(&next))) { "Next page" } }
                }
            }
        },
    ))
}
