//! `/ui/clusters/{name}`: lag, throughput and scale over a chosen window with each decision marked, the
//! rules' verdicts right now, the decisions of the window and the policy.

use axum::{
    Extension,
    extract::{Path, Query, State},
};
use chrono::{DateTime, Duration, Utc};
use maud::{Markup, PreEscaped, html};
use plotters::style::{BLACK, BLUE, GREEN, RED, RGBColor};
use serde::Deserialize;

use super::{UiError, chart, clusters::urlencode, format, layout};
use crate::storage::{DecisionStatus, StorageError};
use crate::{api::AppState, tenancy::Principal};

/// The windows a person can choose, and the default.
const WINDOWS: [(&str, i64); 4] = [("1h", 1), ("6h", 6), ("24h", 24), ("7d", 168)];
const DEFAULT_WINDOW: &str = "6h";
/// Points per chart at most; samples are aggregated into buckets to stay under it.
const POINTS: i64 = 240;
const MAX_DECISIONS: u32 = 200;

#[derive(Debug, Deserialize)]
pub struct WindowQuery {
    window: Option<String>,
}

fn mark_color(status: DecisionStatus) -> RGBColor {
    match status {
        DecisionStatus::Applied => RGBColor(26, 127, 55),
        DecisionStatus::Failed | DecisionStatus::Rejected => RGBColor(198, 40, 40),
        _ => RGBColor(110, 118, 129),
    }
}

pub async fn page(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    Query(query): Query<WindowQuery>,
) -> Result<Markup, UiError> {
    let window = query.window.as_deref().unwrap_or(DEFAULT_WINDOW);
    let hours = WINDOWS
        .iter()
        .find(|(label, _)| *label == window)
        .map(|(_, hours)| *hours)
        .ok_or_else(|| {
            UiError::BadRequest(format!(
                "window must be one of 1h, 6h, 24h, 7d, not {window:?}"
            ))
        })?;
    let cluster = state
        .storage
        .get_cluster(&name)
        .await
        .map_err(|e| match e {
            StorageError::NotFound => UiError::NotFound(format!("no cluster named {name:?}")),
            other => other.into(),
        })?;
    super::hide_other_team(&state, &principal, &cluster.team, || {
        UiError::NotFound(format!("no cluster named {name:?}"))
    })?;
    let end = Utc::now();
    let start = end - Duration::hours(hours);
    let interval = state.evaluator.scrape_interval_seconds.max(1);
    let bucket =
        u32::try_from((hours * 3600 / POINTS).max(i64::from(interval))).unwrap_or(u32::MAX);
    let samples = state
        .storage
        .sample_buckets(cluster.id, start, bucket)
        .await?;
    let decisions = state
        .storage
        .decisions_since(cluster.id, start, MAX_DECISIONS)
        .await?;
    let evaluation = state.evaluator.evaluate_now(&cluster, end).await;

    let marks: Vec<chart::Mark> = decisions
        .iter()
        .map(|d| chart::Mark {
            at: d.created_at,
            id: d.id,
            color: mark_color(d.status),
        })
        .collect();
    let points =
        |f: fn(&crate::decide::Sample) -> Option<f64>| -> Vec<(DateTime<Utc>, Option<f64>)> {
            samples.iter().map(|s| (s.sampled_at, f(s))).collect()
        };
    let policy = &cluster.spec.policy;
    let charts = [
        chart::Chart {
            title: "Lag",
            unit: "seconds",
            start,
            end,
            series: vec![chart::Series::new(
                "lag, seconds",
                RED,
                points(|s| s.lag_seconds),
            )],
            references: vec![
                (policy.lag_seconds_high, RED),
                (policy.lag_seconds_low, GREEN),
            ],
            marks: &marks,
        },
        chart::Chart {
            title: "Throughput",
            unit: "records/s",
            start,
            end,
            series: vec![
                chart::Series::new("in (load)", BLUE, points(|s| s.records_in)),
                chart::Series::new("out", GREEN, points(|s| s.records_out)),
            ],
            references: Vec::new(),
            marks: &marks,
        },
        chart::Chart {
            title: "Scale",
            unit: "scale",
            start,
            end,
            series: vec![chart::Series::new("scale", BLACK, points(|s| s.scale)).stepped()],
            references: vec![
                (f64::from(policy.min_scale), BLACK),
                (f64::from(policy.max_scale), BLACK),
            ],
            marks: &marks,
        },
    ];
    let svgs: Vec<String> = charts
        .iter()
        .map(|c| {
            chart::draw(c)
                .map_err(|e| UiError::Internal(anyhow::anyhow!("drawing {}: {e}", c.title)))
        })
        .collect::<Result<_, _>>()?;
    let policy_fields = serde_json::to_value(policy)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();

    Ok(layout::page(
        &name,
        Some(30),
        html! {
            h1 {
                "Cluster " (name)
                @if cluster.paused { " " span.paused { "paused" } }
            }
            dl.facts {
                dt { "Kind" } dd { (cluster.spec.target.kind.as_str()) }
                dt { "Git" } dd { (cluster.spec.git.repository) " " span.muted { (cluster.spec.git.branch) ":" (cluster.spec.git.path) " → " (cluster.spec.git.key) } }
                dt { "Argo CD application" } dd { (cluster.spec.argocd.application) " " span.muted { "on " (cluster.spec.argocd.server) } }
                dt { "Samples in the window" } dd { (samples.len()) " points of " (bucket) " s" }
            }
            p.windows {
                "Window: "
                @for (label, _) in WINDOWS {
                    a class=[(label == window).then_some("current")]
                      href=(format!("/ui/clusters/{}?window={label}", urlencode(&name))) { (label) }
                }
            }
            section.charts #charts { @for svg in &svgs { (PreEscaped(svg)) } }

            h2 { "The rules right now" }
            @match &evaluation {
                Ok(e) => {
                    p #verdict {
                        @if let Some(fired) = &e.fired {
                            "Fired: " strong { (fired.rule) }
                            @if let Some(blocked) = &e.blocked_by { " — blocked: " (blocked) }
                            @else { " — a scaling task would be enqueued" }
                        } @else {
                            "No rule fires."
                        }
                    }
                    table #verdicts {
                        thead { tr { th { "Rule" } th { "Direction" } th { "Outcome" } th { "Why" } } }
                        tbody {
                            @for v in &e.verdicts {
                                tr { td { (v.rule) } td { (format!("{:?}", v.direction).to_lowercase()) }
                                     td { (serde_json::to_value(v.outcome).ok().and_then(|o| o.as_str().map(str::to_owned)).unwrap_or_default()) }
                                     td { (v.reason) } }
                            }
                        }
                    }
                }
                Err(error) => { p.error { "The rules could not be evaluated: " (error) } }
            }

            h2 { "Decisions in the window" }
            @if decisions.is_empty() {
                p.muted { "None." }
            } @else {
                table #decisions {
                    thead { tr { th { "Decision" } th { "Status" } th { "Rule" } th { "Scale" } th { "Taken" } th { "Reason" } } }
                    tbody {
                        @for d in decisions.iter().rev() {
                            tr {
                                td { a href=(format!("/ui/decisions/{}", d.id)) { "#" (d.id) } }
                                td { (format::status(d.status)) (format::repeats(d.repeats)) }
                                td { (d.rule) }
                                td { (format::scale_change(d.from_scale, d.to_scale)) }
                                td { (format::time(d.created_at)) }
                                td { (d.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }

            h2 { "Policy" }
            dl.facts #policy {
                @for (key, value) in &policy_fields {
                    dt { (key) } dd { (if value.is_null() { "-".to_owned() } else { value.to_string() }) }
                }
            }
        },
    ))
}
