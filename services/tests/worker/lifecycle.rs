//! The decision lifecycle under races: every status write is a compare-and-set from the status the
//! writer expects, so a worker, a webhook and a late delivery never overwrite each other's outcome.

use std::time::Duration;

use autoscaler::{
    storage::{DecisionStatus, StorageError, Transition},
    worker::Progress,
};
use chrono::Utc;
use serde_json::json;

use crate::{
    webhook::{ARGOCD_HOOK_TOKEN, notify, serve, sync_event},
    world::{self, APP, World},
};

#[tokio::test]
async fn a_status_write_from_a_status_the_decision_left_is_a_lost_race_and_changes_nothing() {
    let world = World::new().await;
    let id = world.pending("up", Utc::now()).await;
    let storage = &world.storage;
    storage
        .transition(
            id,
            &Transition::new(DecisionStatus::Pending, DecisionStatus::Running),
        )
        .await
        .expect("pending to running");

    // A second writer that still believes the decision is pending.
    let reason = "a stale writer";
    let stale = Transition::new(DecisionStatus::Pending, DecisionStatus::Skipped).reason(reason);
    match storage.transition(id, &stale).await {
        Err(StorageError::LostRace {
            expected, found, ..
        }) => {
            assert_eq!(
                (expected, found),
                (DecisionStatus::Pending, DecisionStatus::Running)
            )
        }
        other => panic!("a lost race, not {other:?}"),
    }
    // A move the lifecycle does not have is refused before it reaches the database.
    let skip_ahead = Transition::new(DecisionStatus::Running, DecisionStatus::Applied);
    assert!(matches!(
        storage.transition(id, &skip_ahead).await,
        Err(StorageError::IllegalTransition(_))
    ));
    let decision = world.decision(id).await;
    assert_eq!(decision.status, DecisionStatus::Running);
    assert_eq!(decision.reason, None);
    assert_eq!(decision.finished_at, None);
}

#[tokio::test]
async fn a_sync_failed_by_argocd_while_the_worker_follows_it_is_not_overwritten_by_the_worker() {
    let world = World::new().await;
    let base = serve(&world).await;
    let now = Utc::now();
    world.saturated_history(now).await;
    world.argocd.set_polls_to_complete(APP, 1_000_000);
    let id = world.pending("up", now).await;
    let worker = world.worker("host-a");
    let running = tokio::spawn(async move { worker.run_task(id, World::retry()).await });
    world::eventually("the sync to start", Duration::from_secs(30), || async {
        world.decision(id).await.status == DecisionStatus::Syncing
    })
    .await;

    // Argo CD reports a failed sync while the worker still follows the operation...
    let mut failed = sync_event(
        APP,
        "Failed",
        "Degraded",
        &world.head("main"),
        &id.to_string(),
    );
    failed["message"] = json!("one or more objects failed to apply");
    let (status, receipt) = notify(&base, Some(("bearer", ARGOCD_HOOK_TOKEN)), &failed).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(world.decision(id).await.status, DecisionStatus::Failed);
    // ...then the operation the worker follows completes.
    world.argocd.set_polls_to_complete(APP, 1);
    let progress = running.await.expect("the task ends");

    assert_eq!(
        progress,
        Progress::LostRace {
            expected: DecisionStatus::Syncing,
            found: DecisionStatus::Failed
        }
    );
    let decision = world.decision(id).await;
    assert_eq!(decision.status, DecisionStatus::Failed, "{decision:?}");
    assert_eq!(
        decision.reason.as_deref(),
        Some("Argo CD reported the sync Failed: one or more objects failed to apply")
    );
    assert!(
        !World::steps(&decision).contains(&"applied".to_owned()),
        "{decision:?}"
    );
}

#[tokio::test]
async fn a_late_failed_sync_notification_does_not_fail_a_decision_the_worker_saw_synced() {
    let world = World::new().await;
    let base = serve(&world).await;
    let id = world.pending("up", Utc::now()).await;
    let commit = world.head("main");
    let write_back = json!({"mode": "commit", "commit": commit});
    for (from, to) in [
        (DecisionStatus::Pending, DecisionStatus::Running),
        (DecisionStatus::Running, DecisionStatus::Committed),
        (DecisionStatus::Committed, DecisionStatus::Syncing),
        (DecisionStatus::Syncing, DecisionStatus::Synced),
    ] {
        world
            .storage
            .transition(id, &Transition::new(from, to).write_back(&write_back))
            .await
            .expect("moved");
    }

    let failed = sync_event(APP, "Failed", "Degraded", &commit, &id.to_string());
    let (status, receipt) = notify(&base, Some(("bearer", ARGOCD_HOOK_TOKEN)), &failed).await;

    assert_eq!(status, 200, "{receipt}");
    let decision = world.decision(id).await;
    assert_eq!(decision.status, DecisionStatus::Synced, "{receipt}");
    assert!(World::steps(&decision).contains(&"argocd_sync_failed".to_owned()));
}
