//! Which queries one scrape runs, and how their series map back to clusters. Pure.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
};

use url::Url;

use super::{
    Metric, Series,
    presets::{label_value, preset},
};
use crate::{cluster::TargetKind, storage::ClusterRecord};

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedQuery {
    pub server: Url,
    pub promql: String,
    pub metric: Metric,
    pub targets: QueryTargets,
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryTargets {
    /// A preset query covering many clusters: each is the series whose `labels` carry its values, both
    /// compared as `kind`'s exporter writes label values (`presets::label_value`).
    Grouped {
        kind: TargetKind,
        labels: Vec<String>,
        clusters: Vec<(i64, Vec<String>)>,
    },
    /// A cluster's own query: it must return exactly one series.
    Single(i64),
}

impl QueryTargets {
    pub fn len(&self) -> usize {
        match self {
            QueryTargets::Grouped { clusters, .. } => clusters.len(),
            QueryTargets::Single(_) => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each target cluster with its value, or `None` when no series (or, for a single query, not exactly
    /// one series) answered for it.
    pub fn match_series(&self, series: &[Series]) -> Vec<(i64, Option<f64>)> {
        match self {
            QueryTargets::Single(id) => match series {
                [one] => vec![(*id, Some(one.value))],
                _ => vec![(*id, None)],
            },
            QueryTargets::Grouped {
                kind,
                labels,
                clusters,
            } => {
                let mut by_values: HashMap<Vec<Cow<str>>, f64> =
                    HashMap::with_capacity(series.len());
                for s in series {
                    let key: Option<Vec<Cow<str>>> = labels
                        .iter()
                        .map(|l| s.labels.get(l).map(|v| label_value(*kind, v)))
                        .collect();
                    if let Some(key) = key {
                        by_values.entry(key).or_insert(s.value);
                    }
                }
                clusters
                    .iter()
                    .map(|(id, values)| {
                        let key: Vec<Cow<str>> =
                            values.iter().map(|v| Cow::Borrowed(v.as_str())).collect();
                        (*id, by_values.get(&key).copied())
                    })
                    .collect()
            }
        }
    }
}

/// Clusters that one preset query covers.
struct Group {
    server: Url,
    kind: TargetKind,
    labels: Vec<String>,
    metric: Metric,
    clusters: Vec<(i64, Vec<String>)>,
}

/// One query per (server, kind, selector labels, metric) for preset metrics, plus one per override.
pub fn plan_queries(clusters: &[ClusterRecord]) -> Vec<PlannedQuery> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut planned = Vec::new();

    for cluster in clusters {
        let metrics = &cluster.spec.metrics;
        let overrides = metrics.queries.entries();
        for (metric, (_, custom)) in Metric::ALL.into_iter().zip(overrides) {
            if let Some(promql) = custom {
                planned.push(PlannedQuery {
                    server: metrics.prometheus_url.clone(),
                    promql: promql.to_owned(),
                    metric,
                    targets: QueryTargets::Single(cluster.id),
                });
                continue;
            }
            let Some(selector) = &metrics.selector else {
                continue;
            };
            let kind = cluster.spec.target.kind;
            let labels: Vec<String> = selector.keys().cloned().collect();
            let values: Vec<String> = selector
                .values()
                .map(|v| label_value(kind, v).into_owned())
                .collect();
            let key = format!(
                "{}|{}|{}|{}",
                metrics.prometheus_url,
                kind.as_str(),
                labels.join(","),
                metric.name()
            );
            groups
                .entry(key)
                .or_insert_with(|| Group {
                    server: metrics.prometheus_url.clone(),
                    kind,
                    labels,
                    metric,
                    clusters: Vec::new(),
                })
                .clusters
                .push((cluster.id, values));
        }
    }

    for group in groups.into_values() {
        let Some(promql) = preset(group.kind, group.metric, &group.labels) else {
            continue;
        };
        planned.push(PlannedQuery {
            server: group.server,
            promql,
            metric: group.metric,
            targets: QueryTargets::Grouped {
                kind: group.kind,
                labels: group.labels,
                clusters: group.clusters,
            },
        });
    }
    planned
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::cluster::ClusterSpec;

    fn cluster(id: i64, name: &str, server: &str, extra: serde_json::Value) -> ClusterRecord {
        let mut spec = json!({
            "name": name,
            "target": {"kind": "engine"},
            "metrics": {"prometheus_url": server, "selector": {"pipeline": name}},
            "git": {"repository": "file:///r", "path": "v.yaml", "key": "replicas"},
            "argocd": {"server": "http://argocd", "application": name},
            "policy": {"max_scale": 4}
        });
        if let Some(queries) = extra.get("queries") {
            spec["metrics"]["queries"] = queries.clone();
        }
        for field in ["target", "metrics/selector"] {
            if let Some(value) = extra.pointer(&format!("/{field}")) {
                *spec.pointer_mut(&format!("/{field}")).expect("field") = value.clone();
            }
        }
        let spec: ClusterSpec = serde_json::from_value(spec).expect("spec");
        ClusterRecord {
            team: crate::tenancy::DEFAULT_TEAM.to_owned(),
            id,
            spec,
            paused: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn preset_clusters_on_one_server_share_one_query_per_metric() {
        let clusters: Vec<ClusterRecord> = (0..1000)
            .map(|i| cluster(i, &format!("p{i}"), "http://prom-a:9090", json!({})))
            .collect();
        let planned = plan_queries(&clusters);
        assert_eq!(planned.len(), 6);
        assert!(planned.iter().all(|q| q.targets.len() == 1000));
    }

    #[test]
    fn each_server_gets_its_own_queries_and_overrides_cost_one_each() {
        let clusters = vec![
            cluster(1, "a", "http://prom-a:9090", json!({})),
            cluster(2, "b", "http://prom-b:9090", json!({})),
            cluster(
                3,
                "c",
                "http://prom-a:9090",
                json!({"queries": {"cpu_load": "vector(0.5)"}}),
            ),
        ];
        let planned = plan_queries(&clusters);
        // prom-a: 6 preset queries (a, and c for five metrics), prom-b: 6, plus c's override.
        assert_eq!(planned.len(), 13);
        let custom: Vec<_> = planned
            .iter()
            .filter(|q| q.targets == QueryTargets::Single(3))
            .collect();
        assert_eq!(custom.len(), 1);
        assert_eq!(custom[0].promql, "vector(0.5)");
    }

    #[test]
    fn series_map_back_to_clusters_by_their_label_values() {
        let targets = QueryTargets::Grouped {
            kind: TargetKind::Engine,
            labels: vec!["pipeline".to_owned()],
            clusters: vec![(1, vec!["a".to_owned()]), (2, vec!["b".to_owned()])],
        };
        let series = vec![
            Series {
                labels: HashMap::from([("pipeline".to_owned(), "b".to_owned())]),
                value: 7.0,
            },
            Series {
                labels: HashMap::from([("pipeline".to_owned(), "z".to_owned())]),
                value: 9.0,
            },
        ];
        assert_eq!(
            targets.match_series(&series),
            vec![(1, None), (2, Some(7.0))]
        );
        let two = vec![series[0].clone(), series[1].clone()];
        assert_eq!(QueryTargets::Single(5).match_series(&two), vec![(5, None)]);
        assert_eq!(
            QueryTargets::Single(5).match_series(&two[..1]),
            vec![(5, Some(7.0))]
        );
    }

    #[test]
    fn flink_selectors_match_the_reporters_rewritten_values_and_untouched_target_labels() {
        let flink = json!({
            "target": {"kind": "flink", "reactive": true,
                       "scale_unit": {"unit": "parallelism"}},
            "metrics": {"selector": {"job_name": "orders-a", "namespace": "team-a"}},
        });
        let planned = plan_queries(&[cluster(1, "orders-a", "http://prom:9090", flink)]);
        assert_eq!(planned.len(), 6);
        let scale = planned
            .iter()
            .find(|q| q.metric == Metric::Scale)
            .expect("scale");
        assert!(
            scale.promql.starts_with("max by (job_name, namespace) "),
            "{}",
            scale.promql
        );
        let series = |job: &str, namespace: &str, value: f64| Series {
            labels: HashMap::from([
                ("job_name".to_owned(), job.to_owned()),
                ("namespace".to_owned(), namespace.to_owned()),
            ]),
            value,
        };
        // Flink wrote `orders_a`; the namespace came from the scrape target as it is.
        let answer = [
            series("orders_b", "team-a", 1.0),
            series("orders_a", "team-a", 3.0),
        ];
        assert_eq!(scale.targets.match_series(&answer), vec![(1, Some(3.0))]);
    }
}
