//! The manager against a real Prometheus holding recorded series and the real Postgres: samples stored,
//! rules firing where they should and nowhere else, one pending task per cluster under concurrent managers,
//! and failures (unreachable server, bad query, NaN, absent series) recorded as missing, never acted on.

#[path = "../common/database.rs"]
mod database;
#[path = "../api/harness.rs"]
#[expect(
    dead_code,
    reason = "the manager tests use only part of the API harness"
)]
mod harness;
mod prometheus;

use std::{sync::Arc, time::Duration as StdDuration};

use autoscaler::{
    cluster::ClusterSpec,
    manager::Manager,
    metrics::Metrics,
    scrape::PrometheusClient,
    storage::{DecisionStatus, Storage},
};
use chrono::{DateTime, Duration, Utc};
use harness::{TestDatabase, spec};
use prometheus::{Prometheus, Recorded, free_port};
use serde_json::{Value, json};

const STEP: i64 = 15;

/// The load a pipeline shows, as a function of seconds since the recording started.
struct Profile {
    cpu: fn(f64) -> f64,
    lag_records: fn(f64) -> f64,
    lag_seconds: fn(f64) -> f64,
    rate: f64,
}

const LAGGING: Profile = Profile {
    cpu: |_| 0.6,
    lag_records: |t| 200_000.0 + 500.0 * t,
    lag_seconds: |t| 400.0 + t / 10.0,
    rate: 1000.0,
};
const HEALTHY: Profile = Profile {
    cpu: |t| 0.5 + 0.05 * (t / 45.0).sin(),
    lag_records: |t| 100.0 + 20.0 * (t / 30.0).sin(),
    lag_seconds: |_| 2.0,
    rate: 1000.0,
};
/// Healthy but for one lag spike 30 s before the end.
const SPIKE: Profile = Profile {
    cpu: |_| 0.5,
    lag_records: |_| 100.0,
    lag_seconds: |t| {
        if (1170.0..1185.0).contains(&t) {
            900.0
        } else {
            2.0
        }
    },
    rate: 1000.0,
};

fn engine_series(pipeline: &str, profile: &Profile, start: i64, end: i64) -> Vec<Recorded> {
    let times: Vec<i64> = (start..=end).step_by(STEP as usize).collect();
    let at = |f: &dyn Fn(f64) -> f64| -> Vec<(i64, f64)> {
        times.iter().map(|t| (*t, f((t - start) as f64))).collect()
    };
    let labels = |extra: &[(&'static str, &str)]| {
        let mut l = vec![("pipeline", pipeline.to_owned())];
        l.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        l
    };
    let mut series = Vec::new();
    for instance in ["0", "1"] {
        series.push(Recorded {
            name: "engine_cpu_load",
            kind: "gauge",
            labels: labels(&[("instance", instance)]),
            points: at(&|t| (profile.cpu)(t)),
        });
    }
    series.push(Recorded {
        name: "engine_consumer_lag_records",
        kind: "gauge",
        labels: labels(&[("partition", "0")]),
        points: at(&|t| (profile.lag_records)(t)),
    });
    series.push(Recorded {
        name: "engine_consumer_lag_seconds",
        kind: "gauge",
        labels: labels(&[("partition", "0")]),
        points: at(&|t| (profile.lag_seconds)(t)),
    });
    let rate = profile.rate;
    series.push(Recorded {
        name: "engine_records_in_total",
        kind: "counter",
        labels: labels(&[]),
        points: at(&|t| rate * t),
    });
    series.push(Recorded {
        name: "engine_records_out_total",
        kind: "counter",
        labels: labels(&[]),
        points: at(&|t| rate * t),
    });
    series
}

/// Series grouped by family, as OpenMetrics requires.
fn by_family(mut series: Vec<Recorded>) -> Vec<Recorded> {
    series.sort_by_key(|s| s.name);
    series
}

fn cluster_spec(name: &str, prometheus_url: &str, queries: Option<Value>) -> ClusterSpec {
    let mut value = spec(name);
    value["metrics"]["prometheus_url"] = json!(prometheus_url);
    if let Some(queries) = queries {
        value["target"]["kind"] = json!("generic");
        value["metrics"]["queries"] = queries;
        value["metrics"]
            .as_object_mut()
            .expect("object")
            .remove("selector");
    }
    let spec: ClusterSpec = serde_json::from_value(value).expect("spec");
    spec.with_resolved_defaults()
}

struct Setup {
    storage: Storage,
    now: DateTime<Utc>,
    _prometheus: Prometheus,
    _database: TestDatabase,
}

/// Records 20 minutes of series, subscribes the clusters, and scrapes the last 10 minutes every 30 s.
async fn setup() -> Setup {
    let now = Utc::now() - Duration::seconds(10);
    let end = now.timestamp();
    let start = end - 1200;
    let mut series = engine_series("lagging", &LAGGING, start, end);
    series.extend(engine_series("paused", &LAGGING, start, end));
    series.extend(engine_series("healthy", &HEALTHY, start, end));
    series.extend(engine_series("spike", &SPIKE, start, end));
    let prometheus = Prometheus::start(&by_family(series)).await;

    let database = TestDatabase::new();
    let storage = Storage::connect(&database.url).await.expect("connect");
    storage.migrate().await.expect("migrate");
    let down = format!("http://127.0.0.1:{}", free_port());
    let specs = [
        cluster_spec("lagging", &prometheus.url, None),
        cluster_spec("paused", &prometheus.url, None),
        cluster_spec("healthy", &prometheus.url, None),
        cluster_spec("spike", &prometheus.url, None),
        // Subscribed, but Prometheus has no series for it.
        cluster_spec("absent", &prometheus.url, None),
        // Its Prometheus is down.
        cluster_spec("unreachable", &down, None),
        // Its own queries: one is not PromQL, one is NaN, the rest are fine and quiet.
        cluster_spec(
            "custom",
            &prometheus.url,
            Some(json!({
                "cpu_load": "this is not promql(",
                "lag_records": "scalar(vector(0) / 0)",
                "lag_seconds": "vector(5)",
                "records_in": "vector(10)",
                "records_out": "vector(10)",
                "scale": "vector(2)"
            })),
        ),
    ];
    for spec in &specs {
        storage
            .insert_cluster(spec, autoscaler::storage::Actor::OPERATOR)
            .await
            .expect("subscribe");
    }
    storage
        .set_cluster_paused("paused", true, autoscaler::storage::Actor::OPERATOR)
        .await
        .expect("pause");

    let manager = manager(&storage);
    for k in 0..=20 {
        let at = now - Duration::seconds(600 - 30 * k);
        manager
            .scrape_cycle(at)
            .await
            .expect("scrape stores its samples");
    }
    Setup {
        storage,
        now,
        _prometheus: prometheus,
        _database: database,
    }
}

fn manager(storage: &Storage) -> Manager<PrometheusClient> {
    let client = PrometheusClient::new(
        StdDuration::from_secs(5),
        &std::sync::Arc::new(
            test_support::OUTBOUND_ALLOW_LOCAL
                .parse()
                .expect("allow-list"),
        ),
    )
    .expect("client");
    Manager::new(storage.clone(), client, Arc::new(Metrics::default()), 30)
}

async fn decisions_of(storage: &Storage, name: &str) -> Vec<autoscaler::storage::DecisionRecord> {
    let cluster = storage.get_cluster(name).await.expect("cluster");
    storage
        .list_decisions(cluster.id, None, 100)
        .await
        .expect("decisions")
}

async fn samples_of(
    storage: &Storage,
    name: &str,
    since: DateTime<Utc>,
) -> Vec<autoscaler::storage::Sample> {
    let cluster = storage.get_cluster(name).await.expect("cluster");
    storage
        .cluster_samples_since(cluster.id, since)
        .await
        .expect("samples")
}

#[tokio::test]
async fn scraped_samples_are_stored_and_missing_metrics_are_null_never_zero() {
    let setup = setup().await;
    let since = setup.now - Duration::seconds(3600);

    let healthy = samples_of(&setup.storage, "healthy", since).await;
    assert_eq!(healthy.len(), 21);
    let last = healthy.last().expect("a sample");
    assert!((last.cpu_load.expect("cpu") - 0.5).abs() < 0.06, "{last:?}");
    assert_eq!(last.scale, Some(2.0), "two engine instances report");
    assert_eq!(last.lag_seconds, Some(2.0));
    assert!(
        (last.records_in.expect("rate") - 1000.0).abs() < 1.0,
        "{last:?}"
    );

    for name in ["absent", "unreachable"] {
        let samples = samples_of(&setup.storage, name, since).await;
        assert_eq!(
            samples.len(),
            21,
            "{name}: a row per scrape, to show the gap"
        );
        assert!(
            samples
                .iter()
                .all(|s| s.cpu_load.is_none() && s.lag_seconds.is_none() && s.scale.is_none()),
            "{name}: {samples:?}"
        );
    }

    let custom = samples_of(&setup.storage, "custom", since).await;
    let last = custom.last().expect("a sample");
    assert_eq!(last.cpu_load, None, "a refused query is missing");
    assert_eq!(last.lag_records, None, "NaN is missing");
    assert_eq!(last.lag_seconds, Some(5.0));
    assert_eq!(last.scale, Some(2.0));
}

#[tokio::test]
async fn a_lagging_cluster_gets_exactly_one_pending_task_even_with_concurrent_managers() {
    let setup = setup().await;
    let managers: Vec<_> = (0..4).map(|_| manager(&setup.storage)).collect();

    let reports =
        futures::future::join_all(managers.iter().map(|m| m.evaluate_cycle(setup.now))).await;

    let enqueued: usize = reports
        .into_iter()
        .map(|r| r.expect("evaluated").enqueued)
        .sum();
    assert_eq!(enqueued, 1, "one task across four managers");
    let decisions = decisions_of(&setup.storage, "lagging").await;
    assert_eq!(decisions.len(), 1);
    let decision = &decisions[0];
    assert_eq!(decision.status, DecisionStatus::Pending);
    assert_eq!(decision.rule, "lag_above_threshold");
    assert_eq!(decision.from_scale, Some(2));
    let window = &decision.inputs.0["window"];
    assert_eq!(
        window["samples"].as_array().map(Vec::len),
        Some(10),
        "the 300 s window at 30 s"
    );
    assert_eq!(decision.inputs.0["direction"], "up");

    let (jobs,): (i64,) = sqlx::query_as("select count(*) from apalis.jobs")
        .fetch_one(setup.storage.pool())
        .await
        .expect("count jobs");
    assert_eq!(jobs, 1);

    // The next cycle sees the decision in flight and adds nothing.
    let again = managers[0]
        .evaluate_cycle(setup.now)
        .await
        .expect("evaluated");
    assert_eq!(again.enqueued, 0);
    assert_eq!(decisions_of(&setup.storage, "lagging").await.len(), 1);
}

#[tokio::test]
async fn healthy_paused_spiky_absent_unreachable_and_broken_clusters_get_nothing() {
    let setup = setup().await;

    manager(&setup.storage)
        .evaluate_cycle(setup.now)
        .await
        .expect("evaluated");

    for name in [
        "healthy",
        "paused",
        "spike",
        "absent",
        "unreachable",
        "custom",
    ] {
        let decisions = decisions_of(&setup.storage, name).await;
        assert!(decisions.is_empty(), "{name}: {decisions:?}");
    }
    let manager = manager(&setup.storage);
    let custom = setup.storage.get_cluster("custom").await.expect("cluster");
    let evaluation = manager
        .evaluator
        .evaluate_now(&custom, setup.now)
        .await
        .expect("dry run");
    // CPU and lag in records are missing for this cluster: their rules have no data, whatever else holds.
    let paused = setup.storage.get_cluster("paused").await.expect("cluster");
    let paused_eval = manager
        .evaluator
        .evaluate_now(&paused, setup.now)
        .await
        .expect("dry run");
    assert_eq!(
        paused_eval.blocked_by.as_deref(),
        Some("the cluster is paused")
    );
    assert!(!paused_eval.act);
    assert!(evaluation.verdicts.iter().any(
        |v| v.rule == "cpu_above_threshold" && v.outcome == autoscaler::rules::Outcome::NoData
    ));
}

#[tokio::test]
async fn a_prometheus_that_never_answers_times_out_and_leaves_the_metrics_missing() {
    // Accepts connections and never replies, like a server stuck under load.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let database = TestDatabase::new();
    let storage = Storage::connect(&database.url).await.expect("connect");
    storage.migrate().await.expect("migrate");
    storage
        .insert_cluster(
            &cluster_spec("stuck", &url, None),
            autoscaler::storage::Actor::OPERATOR,
        )
        .await
        .expect("subscribe");
    let client = PrometheusClient::new(
        StdDuration::from_millis(500),
        &std::sync::Arc::new(
            test_support::OUTBOUND_ALLOW_LOCAL
                .parse()
                .expect("allow-list"),
        ),
    )
    .expect("client");
    let manager = Manager::new(storage.clone(), client, Arc::new(Metrics::default()), 30);

    // Without the query timeout this would never return.
    let report = manager
        .scrape_cycle(Utc::now())
        .await
        .expect("scrape stores its samples");

    assert_eq!((report.queries, report.failed_queries), (6, 6));
    let samples = samples_of(&storage, "stuck", Utc::now() - Duration::seconds(60)).await;
    assert_eq!(samples.len(), 1);
    assert_eq!(
        samples[0],
        autoscaler::storage::Sample::empty(samples[0].sampled_at)
    );
}

#[tokio::test]
async fn a_decision_and_its_task_are_recorded_together_or_not_at_all() {
    let setup = setup().await;
    let manager = manager(&setup.storage);
    // The queue cannot take a task: the decision must not be left behind without one.
    sqlx::query("alter table apalis.jobs add constraint refuse_tasks check (false) not valid")
        .execute(setup.storage.pool())
        .await
        .expect("constraint");

    let report = manager.evaluate_cycle(setup.now).await.expect("evaluated");

    assert_eq!(report.enqueued, 0);
    assert!(
        decisions_of(&setup.storage, "lagging").await.is_empty(),
        "no decision without its task"
    );
    sqlx::query("alter table apalis.jobs drop constraint refuse_tasks")
        .execute(setup.storage.pool())
        .await
        .expect("constraint dropped");
    let report = manager.evaluate_cycle(setup.now).await.expect("evaluated");
    assert_eq!(report.enqueued, 1);
    let decisions = decisions_of(&setup.storage, "lagging").await;
    assert_eq!(decisions.len(), 1);
    let (jobs,): (i64,) = sqlx::query_as(
        "select count(*) from apalis.jobs \
         where convert_from(job, 'UTF8')::jsonb->>'decision_id' = $1::text",
    )
    .bind(decisions[0].id)
    .fetch_one(setup.storage.pool())
    .await
    .expect("count jobs");
    assert_eq!(jobs, 1);
}
