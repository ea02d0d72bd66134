//! The manager's scrape: for every subscribed cluster, one sample of each metric from its Prometheus.
//! Clusters on a preset share one query per metric per Prometheus server (grouped by their selector's
//! labels); only per-cluster overrides cost a query each.

mod plan;
mod presets;
mod prometheus;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};

pub use plan::{PlannedQuery, QueryTargets, plan_queries};
pub use prometheus::{PrometheusClient, QueryError, Series};

use crate::storage::{ClusterRecord, Sample};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    CpuLoad,
    LagRecords,
    LagSeconds,
    RecordsIn,
    RecordsOut,
    Scale,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::CpuLoad,
        Metric::LagRecords,
        Metric::LagSeconds,
        Metric::RecordsIn,
        Metric::RecordsOut,
        Metric::Scale,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::CpuLoad => "cpu_load",
            Metric::LagRecords => "lag_records",
            Metric::LagSeconds => "lag_seconds",
            Metric::RecordsIn => "records_in",
            Metric::RecordsOut => "records_out",
            Metric::Scale => "scale",
        }
    }

    fn set(self, sample: &mut Sample, value: f64) {
        let slot = match self {
            Metric::CpuLoad => &mut sample.cpu_load,
            Metric::LagRecords => &mut sample.lag_records,
            Metric::LagSeconds => &mut sample.lag_seconds,
            Metric::RecordsIn => &mut sample.records_in,
            Metric::RecordsOut => &mut sample.records_out,
            Metric::Scale => &mut sample.scale,
        };
        *slot = Some(value);
    }
}

/// Runs instant queries against a Prometheus server.
pub trait InstantQuery: Sync {
    fn query(
        &self,
        server: &url::Url,
        promql: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Series>, QueryError>> + Send;
}

/// What one scrape did, for logs and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScrapeReport {
    pub queries: usize,
    pub failed_queries: usize,
    /// (metric, clusters without a value for it)
    pub missing: Vec<(&'static str, usize)>,
}

const CONCURRENT_QUERIES: usize = 8;

/// One sample per cluster at `at`. A metric that failed, was absent, NaN or infinite stays `None`.
pub async fn scrape(
    prometheus: &impl InstantQuery,
    clusters: &[ClusterRecord],
    at: DateTime<Utc>,
) -> (Vec<(i64, Sample)>, ScrapeReport) {
    let planned = plan_queries(clusters);
    let mut report = ScrapeReport {
        queries: planned.len(),
        ..ScrapeReport::default()
    };
    let results: Vec<(PlannedQuery, Result<Vec<Series>, QueryError>)> = stream::iter(planned)
        .map(|query| async move {
            let result = prometheus.query(&query.server, &query.promql, at).await;
            (query, result)
        })
        .buffer_unordered(CONCURRENT_QUERIES)
        .collect()
        .await;

    let mut samples: HashMap<i64, Sample> =
        clusters.iter().map(|c| (c.id, Sample::empty(at))).collect();
    let mut missing: HashMap<&'static str, Vec<&str>> = HashMap::new();
    let names: HashMap<i64, &str> = clusters
        .iter()
        .map(|c| (c.id, c.spec.name.as_str()))
        .collect();
    for (query, result) in results {
        let series = match result {
            Ok(series) => series,
            Err(e) => {
                report.failed_queries += 1;
                tracing::warn!(
                    server = %query.server, query = %query.promql, metric = query.metric.name(),
                    clusters = query.targets.len(), error = %e,
                    "scrape query failed; the metric is recorded as missing"
                );
                Vec::new()
            }
        };
        for (cluster_id, value) in query.targets.match_series(&series) {
            match value.filter(|v| v.is_finite()) {
                Some(value) => {
                    if let Some(sample) = samples.get_mut(&cluster_id) {
                        query.metric.set(sample, value);
                    }
                }
                None => missing
                    .entry(query.metric.name())
                    .or_default()
                    .push(names.get(&cluster_id).copied().unwrap_or("?")),
            }
        }
    }
    for (metric, clusters) in &missing {
        let shown: Vec<&str> = clusters.iter().take(20).copied().collect();
        tracing::info!(
            metric, count = clusters.len(), clusters = ?shown,
            "no value for these clusters (absent, NaN or failed query)"
        );
        report.missing.push((metric, clusters.len()));
    }
    report.missing.sort();
    (samples.into_iter().collect(), report)
}
