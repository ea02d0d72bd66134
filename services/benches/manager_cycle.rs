//! One manager cycle (scrape + evaluate) over 10,000 subscribed preset clusters against a real Prometheus
//! holding their series, with 30 minutes of stored history per cluster. Reports wall time, queries made
//! and this process's CPU time. Run: `cargo bench -p autoscaler --bench manager_cycle`
//! (CLUSTERS=n to change the count).

#[path = "../tests/manager/prometheus.rs"]
mod prometheus;

use std::{sync::Arc, time::Instant};

use autoscaler::{
    cluster::ClusterSpec,
    manager::Manager,
    metrics::Metrics,
    scrape::PrometheusClient,
    storage::{Sample, Storage},
};
use chrono::{Duration, Utc};
use prometheus::{Prometheus, Recorded};
use serde_json::json;

/// User plus system CPU seconds of this process, from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

#[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clusters: usize = std::env::var("CLUSTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let now = Utc::now() - Duration::seconds(5);
    let end = now.timestamp();
    let times: Vec<i64> = (end - 300..=end).step_by(15).collect();
    let families = [
        ("engine_cpu_load", "gauge"),
        ("engine_consumer_lag_records", "gauge"),
        ("engine_consumer_lag_seconds", "gauge"),
        ("engine_records_in_total", "counter"),
        ("engine_records_out_total", "counter"),
    ];
    let mut series = Vec::new();
    for (name, kind) in families {
        for i in 0..clusters {
            let points = times
                .iter()
                .map(|t| {
                    (
                        *t,
                        if kind == "counter" {
                            100.0 * (t - end + 300) as f64
                        } else {
                            0.5
                        },
                    )
                })
                .collect();
            series.push(Recorded {
                name,
                kind,
                labels: vec![("pipeline", format!("p{i}"))],
                points,
            });
        }
    }
    let started = Instant::now();
    let prometheus = Prometheus::start(&series).await;
    eprintln!(
        "prometheus loaded {} series in {:.1?}",
        series.len(),
        started.elapsed()
    );
    drop(series);

    let database = format!("autoscaler_bench_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
    let storage = Storage::connect(&url).await?;
    storage.migrate().await?;
    let mut ids = Vec::with_capacity(clusters);
    for i in 0..clusters {
        let name = format!("p{i}");
        let spec: ClusterSpec = serde_json::from_value(json!({
            "name": name,
            "target": {"kind": "engine"},
            "metrics": {"prometheus_url": prometheus.url, "selector": {"pipeline": name}},
            "git": {"repository": "file:///srv/git/gitops.git", "path": "values.yaml", "key": format!("pipelines.{name}.replicas")},
            "argocd": {"server": "http://argocd", "application": name},
            "policy": {"max_scale": 16}
        }))?;
        ids.push(
            storage
                .insert_cluster(
                    &spec.with_resolved_defaults(),
                    autoscaler::storage::Actor::OPERATOR,
                )
                .await?
                .id,
        );
    }
    // 30 minutes of history at 30 s, as the steady state holds.
    for k in 1..=60 {
        let at = now - Duration::seconds(30 * k);
        let batch: Vec<(i64, Sample)> = ids
            .iter()
            .map(|id| {
                let mut s = Sample::empty(at);
                (s.cpu_load, s.lag_records, s.lag_seconds) = (Some(0.5), Some(10.0), Some(1.0));
                (s.records_in, s.records_out, s.scale) = (Some(100.0), Some(100.0), Some(1.0));
                (*id, s)
            })
            .collect();
        storage.insert_samples(&batch).await?;
    }
    eprintln!("subscribed {clusters} clusters with history");

    let client = PrometheusClient::new(
        std::time::Duration::from_secs(20),
        &std::sync::Arc::new(
            test_support::OUTBOUND_ALLOW_LOCAL
                .parse()
                .expect("allow-list"),
        ),
    )?;
    let manager = Manager::new(storage.clone(), client, Arc::new(Metrics::default()), 30);
    for round in 0..3 {
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let (scrape, evaluate) = manager.cycle(now).await?;
        let (wall, cpu) = (wall0.elapsed(), cpu_seconds() - cpu0);
        let missing: usize = scrape.missing.iter().map(|(_, n)| n).sum();
        println!(
            "round {round}: {clusters} clusters, {} queries ({} failed, {missing} values missing), \
             cycle {:.2}s wall, {cpu:.2} CPU s = {:.1} % of a core at a 30 s interval, {} fired",
            scrape.queries,
            scrape.failed_queries,
            wall.as_secs_f64(),
            100.0 * cpu / 30.0,
            evaluate.fired,
        );
    }
    drop(storage);
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {database} with (force)"
    )))
    .execute(&admin)
    .await?;
    Ok(())
}
