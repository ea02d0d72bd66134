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

/// A Flink job's `scale` metric is its parallelism (preset or override); the stored sample holds the
/// spec's unit, as Git does.
fn in_scale_units(clusters: &[ClusterRecord], samples: &mut HashMap<i64, Sample>) {
    for cluster in clusters {
        if let Some(unit) = cluster.spec.target.scale_unit
            && let Some(sample) = samples.get_mut(&cluster.id)
        {
            sample.scale = sample.scale.map(|p| unit.from_parallelism(p));
        }
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
    in_scale_units(clusters, &mut samples);
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::ClusterSpec;

    /// Answers every query with one series per job: parallelism 6 for `scale`, 0.5 otherwise.
    struct SixSubtasks;

    impl InstantQuery for SixSubtasks {
        async fn query(
            &self,
            _server: &url::Url,
            promql: &str,
            _at: DateTime<Utc>,
        ) -> Result<Vec<Series>, QueryError> {
            let value = if promql.contains("count by") {
                6.0
            } else {
                0.5
            };
            Ok(["orders_a", "orders_b"]
                .into_iter()
                .map(|job| Series {
                    labels: HashMap::from([("job_name".to_owned(), job.to_owned())]),
                    value,
                })
                .collect())
        }
    }

    fn flink(id: i64, job: &str, unit: serde_json::Value) -> ClusterRecord {
        let spec: ClusterSpec = serde_json::from_value(json!({
            "name": job,
            "target": {"kind": "flink", "reactive": true, "scale_unit": unit},
            "metrics": {"prometheus_url": "http://prom:9090", "selector": {"job_name": job}},
            "git": {"repository": "file:///r", "path": "v.yaml", "key": "replicas"},
            "argocd": {"server": "http://argocd", "application": job},
            "policy": {"max_scale": 8}
        }))
        .expect("spec");
        ClusterRecord {
            team: crate::tenancy::DEFAULT_TEAM.to_owned(),
            id,
            spec,
            paused: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_flink_jobs_parallelism_is_stored_in_its_specs_unit() {
        let clusters = [
            flink(1, "orders-a", json!({"unit": "parallelism"})),
            flink(
                2,
                "orders-b",
                json!({"unit": "task_managers", "slots_per_task_manager": 4}),
            ),
        ];
        let (samples, report) = scrape(&SixSubtasks, &clusters, Utc::now()).await;
        assert!(report.missing.is_empty(), "{report:?}");
        let scale_of = |id: i64| {
            samples
                .iter()
                .find(|(c, _)| *c == id)
                .and_then(|(_, s)| s.scale)
        };
        assert_eq!(scale_of(1), Some(6.0));
        // Six subtasks on four-slot TaskManagers: one and a half TaskManagers' worth.
        assert_eq!(scale_of(2), Some(1.5));
        let cpu = samples.iter().map(|(_, s)| s.cpu_load).collect::<Vec<_>>();
        assert_eq!(cpu, [Some(0.5), Some(0.5)], "other metrics are untouched");
    }
}
