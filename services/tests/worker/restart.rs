//! Targets without reactive scaling: after the sync, the worker restarts the job at the new parallelism
//! (here a Flink job on the contract-faithful Flink REST test server) and only then calls it applied.

use autoscaler::{storage::DecisionStatus, worker::Progress};
use test_support::flink::FlinkServer;

use crate::world::World;

async fn flink_world() -> (World, FlinkServer, String) {
    flink_world_in(serde_json::json!({"unit": "parallelism"}), 2).await
}

/// Git holds 2 in `scale_unit`; the job runs at `parallelism`.
async fn flink_world_in(
    scale_unit: serde_json::Value,
    parallelism: u32,
) -> (World, FlinkServer, String) {
    let flink = FlinkServer::start().await.expect("flink");
    let jar = flink.add_jar("orders.jar");
    flink.start_job("orders", &jar, parallelism);
    let url = flink.url();
    let jar_id = jar.clone();
    let world = World::with_spec(move |spec| {
        spec["target"] = serde_json::json!({
            "kind": "flink",
            "control_url": url,
            "flink": {"job_name": "orders", "jar_id": jar_id},
            "scale_unit": scale_unit,
        });
    })
    .await;
    (world, flink, jar)
}

#[tokio::test]
async fn a_flink_job_is_restarted_from_a_savepoint_at_the_new_parallelism() {
    let (world, flink, jar) = flink_world().await;
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::Applied),
        "{decision:?}"
    );
    let to = u32::try_from(decision.to_scale.expect("scale")).expect("positive");
    let live = flink.live_jobs("orders");
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].parallelism, to);
    assert_eq!(live[0].jar_id, jar);
    assert!(
        live[0].restored_from.is_some(),
        "restarted from the savepoint"
    );
    let steps = World::steps(&decision);
    assert!(steps.contains(&"synced".to_owned()), "{steps:?}");
    assert!(steps.iter().any(|s| s == "restarted"), "{steps:?}");
}

#[tokio::test]
async fn task_managers_are_converted_to_parallelism_and_the_commit_says_both() {
    let unit = serde_json::json!({"unit": "task_managers", "slots_per_task_manager": 2});
    let (world, flink, _) = flink_world_in(unit, 4).await;
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::Applied),
        "{decision:?}"
    );
    let task_managers = u32::try_from(decision.to_scale.expect("scale")).expect("positive");
    assert!(task_managers > 2, "scaled up from 2: {decision:?}");
    let live = flink.live_jobs("orders");
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        live[0].parallelism,
        2 * task_managers,
        "slots × TaskManagers"
    );
    let subject = world.log().into_iter().next().expect("a commit");
    assert_eq!(
        subject,
        format!(
            "Scale logs: TaskManagers 2 → {task_managers} (parallelism 4 → {}, 2 slots each)",
            2 * task_managers
        )
    );
    assert!(
        world
            .file("main")
            .contains(&format!("replicas:   {task_managers} ")),
        "Git holds TaskManagers: {}",
        world.file("main")
    );
}

#[tokio::test]
async fn a_failed_savepoint_fails_the_decision_and_leaves_the_job_running() {
    let (world, flink, _) = flink_world().await;
    flink.fail_next_savepoint("java.io.IOException: checkpoint storage unavailable");
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Failed));
    let reason = world.decision(id).await.reason.unwrap_or_default();
    assert!(
        reason.contains("checkpoint storage unavailable"),
        "{reason}"
    );
    let live = flink.live_jobs("orders");
    assert_eq!(live.len(), 1, "the job keeps running: {live:?}");
    assert_eq!(live[0].parallelism, 2);
    assert!(flink.submissions().is_empty());
}
