//! The capacity memory: what one decision learned about the cluster's capacity, the next starts from.

use autoscaler::{
    decide::history_seconds,
    estimate::{self, CapacityMemory, Method},
    storage::{Actor, DecisionStatus, Sample},
    worker::Progress,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::world::World;

/// Ten minutes at `scale` ending at `end`, a sample every 15 s, a backlog waiting, 1000 records/s per
/// worker moved.
fn saturated_at(cluster_id: i64, scale: f64, end: DateTime<Utc>) -> Vec<(i64, Sample)> {
    (0..40)
        .map(|i| {
            let sample = Sample {
                sampled_at: end - Duration::seconds(15 * (39 - i)),
                cpu_load: Some(0.97),
                lag_records: Some(600_000.0),
                lag_seconds: Some(600.0),
                records_in: Some(1000.0 * scale),
                records_out: Some(1000.0 * scale + (i % 3) as f64),
                scale: Some(scale),
            };
            (cluster_id, sample)
        })
        .collect()
}

/// Fifteen minutes at 20 workers ending at `end`, a backlog waiting, moving only what 14 did before
/// (a sink at its limit).
fn capped_at_20(cluster_id: i64, end: DateTime<Utc>) -> Vec<(i64, Sample)> {
    saturated_at(cluster_id, 20.0, end)
        .into_iter()
        .map(|(id, sample)| {
            let moved = 14_000.0 + sample.records_out.unwrap_or_default() - 20_000.0;
            let sample = Sample {
                cpu_load: Some(0.7),
                records_in: Some(14_000.0),
                records_out: Some(moved),
                ..sample
            };
            (id, sample)
        })
        .collect()
}

#[tokio::test]
async fn the_worker_gives_back_the_workers_past_a_sink_limit_and_remembers_the_limit() {
    let world = World::with_spec(|spec| {
        spec["write_back"] = json!({"mode": "recommend"});
        spec["policy"]["max_scale"] = json!(24);
    })
    .await;
    let worker = world.worker("host-a");
    let now = Utc::now();
    let mut batch = saturated_at(world.cluster_id, 10.0, now - Duration::minutes(10));
    batch.extend(capped_at_20(world.cluster_id, now));
    world.storage.insert_samples(&batch).await.expect("samples");

    // A scale-down with 600 s of lag waiting: only the knee of the capacity ceiling lets it through.
    let trim = world.pending("down", now).await;
    assert_eq!(
        worker.run_task(trim, World::retry()).await,
        Progress::Reached(DecisionStatus::Recommended)
    );
    let decision = world.decision(trim).await;
    assert_eq!(decision.to_scale, Some(14), "{decision:?}");
    let estimate = &decision.estimate.expect("estimate").0;
    let ceiling = &estimate["plan"]["estimate"]["ceiling"];
    assert_eq!(
        (&ceiling["scale"], &ceiling["shown_at"]),
        (&json!(14), &json!(20)),
        "{estimate}"
    );
    // The point past the knee is remembered, so the limit outlasts this history.
    let memory = world
        .storage
        .capacity_memory(world.cluster_id)
        .await
        .expect("memory");
    assert!(memory.points.iter().any(|p| p.scale == 20), "{memory:?}");
}

#[tokio::test]
async fn a_second_decision_starts_from_what_the_first_learned() {
    let world = World::with_spec(|spec| {
        spec["write_back"] = json!({"mode": "recommend"});
    })
    .await;
    let worker = world.worker("host-a");
    // The first decision saw the job at 2 workers, then at 4.
    let now = Utc::now();
    let mut batch = saturated_at(world.cluster_id, 2.0, now - Duration::minutes(10));
    batch.extend(saturated_at(world.cluster_id, 4.0, now));
    world.storage.insert_samples(&batch).await.expect("samples");
    let first = world.pending("up", now).await;
    assert_eq!(
        worker.run_task(first, World::retry()).await,
        Progress::Reached(DecisionStatus::Recommended)
    );
    let estimate = &world.decision(first).await.estimate.expect("estimate").0;
    assert_eq!(
        estimate["plan"]["estimate"]["method"]["method"], "regression",
        "{estimate}"
    );
    let memory = world
        .storage
        .capacity_memory(world.cluster_id)
        .await
        .expect("memory");
    let scales: Vec<u32> = memory.points.iter().map(|p| p.scale).collect();
    assert_eq!(scales, [2, 4], "{memory:?}");

    // Later the history holds 4 workers only: alone, that is a proportional estimate.
    world
        .storage
        .prune_samples(Utc::now() + Duration::hours(1))
        .await
        .expect("prune");
    let now = Utc::now();
    world
        .storage
        .insert_samples(&saturated_at(world.cluster_id, 4.0, now))
        .await
        .expect("samples");
    let spec = world
        .storage
        .get_cluster("logs")
        .await
        .expect("cluster")
        .spec;
    let since = now - Duration::seconds(i64::from(history_seconds(&spec.policy)));
    let history = world
        .storage
        .cluster_samples_since(world.cluster_id, since)
        .await
        .expect("history");
    let alone =
        estimate::estimate(&history, &spec.policy, &CapacityMemory::default(), now).expect("alone");
    assert!(
        matches!(alone.method, Method::Proportional { .. }),
        "{alone:?}"
    );
    // The worker's second decision fits a line through what it sees and what it remembers.
    let second = world.pending("up", now).await;
    assert_eq!(
        worker.run_task(second, World::retry()).await,
        Progress::Reached(DecisionStatus::Recommended)
    );
    let estimate = &world.decision(second).await.estimate.expect("estimate").0;
    let model = &estimate["plan"]["estimate"];
    assert_eq!(model["method"]["method"], "regression", "{estimate}");
    assert_eq!(model["method"]["fit"]["points"], 2, "{estimate}");
    assert_eq!(model["remembered_scales"], 1, "{estimate}");

    // A deleted cluster's memory goes with it.
    world
        .storage
        .delete_cluster("logs", Actor::OPERATOR)
        .await
        .expect("delete");
    assert_eq!(
        world
            .storage
            .capacity_memory(world.cluster_id)
            .await
            .expect("memory"),
        CapacityMemory::default()
    );
}
