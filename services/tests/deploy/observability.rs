//! `deploy/grafana/` and `deploy/prometheus/alerts.yaml`: the alert rules pass `promtool check rules` and
//! their unit tests (`promtool test rules`), and every metric a dashboard, a rule or a rule test names is
//! one the autoscaler or the engine exports, under the name Prometheus sees (`_total` on counters,
//! `_bucket`/`_sum`/`_count` on histograms).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use crate::manifests::{read, root};

const RULES: &str = "deploy/prometheus/alerts.yaml";
const RULE_TESTS: &str = "deploy/prometheus/alerts.test.yaml";
const DASHBOARDS: [&str; 2] = [
    "deploy/grafana/autoscaler.json",
    "deploy/grafana/pipeline-engine.json",
];

/// Debian's prometheus package puts promtool in /usr/bin; PROMTOOL overrides.
fn promtool() -> PathBuf {
    std::env::var_os("PROMTOOL").map_or_else(|| PathBuf::from("promtool"), PathBuf::from)
}

fn run_promtool(args: &[&str]) {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(root())
        .output()
        .expect("promtool runs (scripts/setup.sh installs the prometheus package)");
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    run_promtool(&["check", "rules", RULES]);
    run_promtool(&["test", "rules", RULE_TESTS]);
}

/// The series names a registry's text exposition gives Prometheus, from its `# TYPE` lines.
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// Every metric of ours named in a PromQL expression: identifiers with our prefixes, outside quotes.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let mut unquoted = String::new();
    let mut quote = None;
    for c in expr.chars() {
        match (quote, c) {
            (None, '"' | '\'' | '`') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) => unquoted.push(c),
            _ => {}
        }
    }
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| token.starts_with("autoscaler_") || token.starts_with("engine_"))
        .map(str::to_owned)
        .collect()
}

/// Every string under a key named `expr`, `query` or `definition`, anywhere in a dashboard.
fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                        out.push(s.clone());
                    }
                    _ => dashboard_queries(inner, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| dashboard_queries(i, out)),
        _ => {}
    }
}

fn rule_queries() -> Vec<(String, String)> {
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&read(Path::new(RULES))).expect("alerts.yaml is YAML");
    let mut out = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .unwrap_or("?");
            out.push((
                format!("{RULES} {name}"),
                rule["expr"].as_str().expect("expr").to_owned(),
            ));
        }
    }
    let tests: serde_yaml::Value =
        serde_yaml::from_str(&read(Path::new(RULE_TESTS))).expect("alerts.test.yaml is YAML");
    for test in tests["tests"].as_sequence().expect("tests") {
        for series in test["input_series"].as_sequence().into_iter().flatten() {
            out.push((
                RULE_TESTS.to_owned(),
                series["series"].as_str().expect("series").to_owned(),
            ));
        }
    }
    out
}

/// The autoscaler's exposition with one series in every family (an empty family is not written at all).
fn autoscaler_exposition() -> String {
    use autoscaler::metrics::*;
    let m = Metrics::default();
    let (method, route, status) = ("GET".to_owned(), "/x".to_owned(), "s".to_owned());
    m.http_requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status: 200,
        })
        .inc();
    m.http_request_duration
        .get_or_create(&RouteLabels { method, route })
        .observe(0.1);
    m.observe_loop("x", std::time::Duration::from_millis(1), false);
    m.queue_depth
        .get_or_create(&QueueLabels {
            status: status.clone(),
        })
        .set(1);
    m.clusters
        .get_or_create(&ClusterLabels { paused: false })
        .set(1);
    m.scrape_queries
        .get_or_create(&OutcomeLabels { outcome: "ok" })
        .inc();
    m.metric_missing
        .get_or_create(&MetricLabels {
            metric: "lag_seconds",
        })
        .inc();
    m.worker_tasks
        .get_or_create(&OutcomeLabels { outcome: "applied" })
        .inc();
    m.webhook_deliveries
        .get_or_create(&DeliveryLabels {
            source: "github",
            outcome: "recorded",
        })
        .inc();
    m.decisions
        .get_or_create(&DecisionLabels {
            status: "applied",
            rule: status,
        })
        .set(1);
    m.decision_stalled
        .get_or_create(&StatusLabels { status: "pending" })
        .set(1.0);
    m.decision_time_to_applied
        .get_or_create(&QuantileLabels { quantile: "0.5" })
        .set(1.0);
    m.encode()
}

/// The engine's exposition with one series in every family.
fn engine_exposition() -> String {
    use pipeline_engine::metrics::*;
    let m = Metrics::new("p", "i");
    let partition = PartitionLabels {
        topic: "t".to_owned(),
        partition: "0".to_owned(),
    };
    m.lag_records.get_or_create(&partition).set(1);
    m.lag_seconds.get_or_create(&partition).set(1.0);
    m.buffer_fill
        .get_or_create(&StageLabels { stage: "sink" })
        .set(0.5);
    m.retries.get_or_create(&ReasonLabels { reason: "r" }).inc();
    m.dead_letters
        .get_or_create(&ReasonLabels { reason: "r" })
        .inc();
    m.encode()
}

#[test]
fn every_metric_the_dashboards_and_rules_use_is_one_the_code_exports() {
    let mut known = exported(&autoscaler_exposition());
    known.extend(exported(&engine_exposition()));
    assert!(known.contains("autoscaler_decisions"), "{known:?}");
    assert!(known.contains("engine_records_in_total"), "{known:?}");

    let mut uses: Vec<(String, String)> = rule_queries();
    for path in DASHBOARDS {
        let dashboard: serde_json::Value =
            serde_json::from_str(&read(Path::new(path))).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            dashboard["uid"].is_string() && dashboard["title"].is_string(),
            "{path}: uid and title"
        );
        let mut queries = Vec::new();
        dashboard_queries(&dashboard, &mut queries);
        assert!(queries.len() >= 10, "{path}: {} queries", queries.len());
        uses.extend(queries.into_iter().map(|q| (path.to_owned(), q)));
    }

    let mut used = BTreeSet::new();
    let mut unknown = Vec::new();
    for (place, expr) in &uses {
        for metric in metrics_in(expr) {
            if !known.contains(&metric) {
                unknown.push(format!("{place}: {metric} in {expr}"));
            }
            used.insert(metric);
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics no code exports:\n{}",
        unknown.join("\n")
    );
    // The issue's list: each of these is on a dashboard or in a rule.
    for wanted in [
        "autoscaler_decisions",
        "autoscaler_decision_stalled_seconds",
        "autoscaler_decision_time_to_applied_seconds",
        "autoscaler_queue_depth",
        "autoscaler_scrape_queries_total",
        "autoscaler_webhook_deliveries_total",
        "engine_records_in_total",
        "engine_consumer_lag_seconds",
        "engine_bulk_request_duration_seconds_bucket",
        "engine_retries_total",
        "engine_dead_letters_total",
        "engine_buffer_fill",
    ] {
        assert!(
            used.contains(wanted),
            "{wanted} is on no dashboard and in no rule"
        );
    }
}

#[test]
fn metric_names_are_read_outside_quotes_only() {
    let names = metrics_in(
        r#"sum by (x) (rate(autoscaler_a_total{status="engine_not_a_metric"}[5m])) / engine_b"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["autoscaler_a_total".to_owned(), "engine_b".to_owned()])
    );
}
