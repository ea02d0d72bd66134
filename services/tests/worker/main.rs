//! The worker end to end: real Postgres, real Git repositories on disk, and the contract-faithful Argo CD
//! and GitHub test servers. Each test follows one decision from pending to where it must end.

#[path = "../common/database.rs"]
mod database;
#[path = "../common/engine_control.rs"]
mod engine_control;
mod engines;
#[path = "../common/git.rs"]
mod git_cli;
mod human;
mod lifecycle;
mod memory;
mod pull_requests;
mod recommend;
mod restart;
mod webhook;
mod world;

use std::time::Duration;

use autoscaler::{storage::DecisionStatus, worker::Progress};
use chrono::Utc;
use world::{APP, ARGOCD_TOKEN, VALUES, World};

#[tokio::test]
async fn a_pending_decision_becomes_a_commit_and_a_followed_sync() {
    let world = World::new().await;
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    let decision = world.decision(id).await;
    assert_eq!(
        progress,
        Progress::Reached(DecisionStatus::Applied),
        "{decision:?}"
    );
    assert_eq!(decision.from_scale, Some(2));
    let to = decision.to_scale.expect("a new scale");
    assert!(to > 2, "{decision:?}");
    // The estimate, its method and inputs are on the decision.
    let estimate = &decision.estimate.as_ref().expect("estimate").0;
    assert_eq!(estimate["git_value"], 2);
    assert!(
        estimate["plan"]["estimate"]["method"]["method"].is_string(),
        "{estimate}"
    );
    // One commit, changing only that number, with a message that says what and why.
    assert_eq!(world.log()[0], format!("Scale logs from 2 to {to}"));
    assert_eq!(world.log().len(), 2);
    assert_eq!(
        world.file("main"),
        VALUES.replace("replicas:   2 ", &format!("replicas:   {to} "))
    );
    let message = world::git(&world.bare, &["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains("Rule lag_above_threshold: lag 639 s"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Autoscaler-Decision: {id}")),
        "{message}"
    );
    // Argo CD synced it, tagged with the decision, and the applied revision is recorded.
    let commit = world.head("main");
    assert_eq!(world.argocd.applied_revision(APP), Some(commit.clone()));
    let syncs = world.argocd.sync_requests(APP);
    assert_eq!(syncs.len(), 1, "{syncs:?}");
    assert!(
        syncs[0]["infos"]
            .as_array()
            .expect("infos")
            .iter()
            .any(|i| i["name"] == "autoscaler.decision"
                && i["value"].as_str().and_then(|v| v.parse().ok()) == Some(id)),
        "{syncs:?}"
    );
    let sync = &decision.sync.as_ref().expect("sync").0;
    assert_eq!(sync["applied"]["revision"], commit.as_str());
    assert_eq!(
        World::steps(&decision),
        ["committed", "sync_started", "synced", "applied"]
    );
    assert!(!format!("{decision:?}").contains(ARGOCD_TOKEN));
}

#[tokio::test]
async fn a_worker_killed_after_the_commit_is_resumed_by_another_without_a_second_commit() {
    let world = World::new().await;
    let now = Utc::now();
    world.saturated_history(now).await;
    // The sync takes a while, so the first worker dies while following it.
    world.argocd.set_polls_to_complete(APP, 1_000_000);
    let id = world.pending("up", now).await;

    let first = world.worker("host-a");
    let running = tokio::spawn(async move { first.run_task(id, World::retry()).await });
    world::eventually(
        "the first worker to reach the sync",
        Duration::from_secs(30),
        || async { world.decision(id).await.status == DecisionStatus::Syncing },
    )
    .await;
    running.abort();
    let _ = running.await;
    world.argocd.set_polls_to_complete(APP, 2);
    // Until the dead worker's lease expires, nobody else takes the decision.
    assert_eq!(
        world.worker("host-c").run_task(id, World::retry()).await,
        Progress::Busy
    );
    world.lease_expired(id).await;

    // The task is handed out again, to a worker on another host.
    let progress = world.worker("host-b").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Applied));
    assert_eq!(
        world.log().len(),
        2,
        "exactly one autoscaler commit: {:?}",
        world.log()
    );
    assert_eq!(world.argocd.applied_revision(APP), Some(world.head("main")));
}

#[tokio::test]
async fn a_task_delivered_twice_at_once_makes_one_commit() {
    let world = World::new().await;
    let id = world.saturated_decision().await;

    let (host_a, host_b) = (world.worker("host-a"), world.worker("host-b"));
    let (a, b) = tokio::join!(
        host_a.run_task(id, World::retry()),
        host_b.run_task(id, World::retry()),
    );

    let outcomes = [a, b];
    assert!(
        outcomes.contains(&Progress::Reached(DecisionStatus::Applied)),
        "{outcomes:?}"
    );
    assert_eq!(world.log().len(), 2, "{:?}", world.log());
    assert_eq!(world.decision(id).await.status, DecisionStatus::Applied);
    // Run again later (a late redelivery): nothing more happens.
    let again = world.worker("host-c").run_task(id, World::retry()).await;
    assert_eq!(again, Progress::Reached(DecisionStatus::Applied));
    assert_eq!(world.log().len(), 2);
    assert_eq!(world.argocd.sync_requests(APP).len(), 1);
}

#[tokio::test]
async fn a_scale_set_by_hand_is_recorded_and_restarts_the_cooldown() {
    let world = World::new().await;
    let now = Utc::now();
    world.saturated_history(now).await;
    world.commit_by_hand(7);
    let id = world.pending("up", now).await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Vetoed));
    let decision = world.decision(id).await;
    let reason = decision.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("Ada <ada@example.com> set the scale to 7 by hand")
            && reason.contains("cooldown"),
        "{reason}"
    );
    let history = world
        .storage
        .list_decisions(world.cluster_id, None, 10)
        .await
        .expect("decisions");
    let human = history
        .iter()
        .find(|d| d.rule == "human_change")
        .expect("the hand change is recorded");
    assert_eq!(human.status, DecisionStatus::Applied);
    assert_eq!(human.to_scale, Some(7));
    // Git holds the person's value; nothing was written over it.
    assert_eq!(world.log()[0], "logs: more replicas for the sale");
    assert!(world.argocd.sync_requests(APP).is_empty());
    // The manager sees it as the last change, so the cooldown runs from the person's commit.
    let facts = world.storage.decision_facts().await.expect("facts");
    assert!(facts[&world.cluster_id].last_change_at.is_some());
}

#[tokio::test]
async fn a_missing_key_fails_the_decision_with_that_reason_and_writes_nothing() {
    let world = World::with_spec(|spec| spec["git"]["key"] = "engine.parallelism".into()).await;
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Failed));
    let reason = world.decision(id).await.reason.unwrap_or_default();
    assert!(
        reason.contains("\"engine.parallelism\" is not in the file"),
        "{reason}"
    );
    assert_eq!(world.log(), ["seed"]);
}

#[tokio::test]
async fn without_enough_history_the_estimate_is_vetoed_and_nothing_is_written() {
    let world = World::new().await;
    let id = world.pending("up", Utc::now()).await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Vetoed));
    let reason = world.decision(id).await.reason.unwrap_or_default();
    assert!(reason.starts_with("cannot estimate"), "{reason}");
    assert_eq!(world.log(), ["seed"]);
}

#[tokio::test]
async fn another_argocd_operation_in_progress_is_waited_out() {
    let world = World::new().await;
    let now = Utc::now();
    world.saturated_history(now).await;
    world.argocd.set_polls_to_complete(APP, 4);
    world.argocd.start_foreign_operation(APP);
    let id = world.pending("up", now).await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Applied));
    assert_eq!(world.argocd.applied_revision(APP), Some(world.head("main")));
    let syncs = world.argocd.sync_requests(APP);
    assert!(syncs.len() >= 2, "the first sync met code 9: {syncs:?}");
}

#[tokio::test]
async fn an_application_that_syncs_itself_is_refreshed_not_synced() {
    let world = World::with_spec(|spec| spec["argocd"]["auto_sync"] = true.into()).await;
    world.argocd.add_application(test_support::argocd::App {
        name: APP.to_owned(),
        project: "default".to_owned(),
        repo: world.bare.clone(),
        target_revision: "main".to_owned(),
        auto_sync: true,
    });
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Applied));
    assert!(world.argocd.sync_requests(APP).is_empty());
    let decision = world.decision(id).await;
    assert_eq!(
        decision.sync.expect("sync").0["applied"]["method"],
        "refresh"
    );
    assert_eq!(world.argocd.applied_revision(APP), Some(world.head("main")));
}

/// Each Argo CD refusal ends the decision with a reason naming the cause and the commit in Git.
#[tokio::test]
async fn argocd_refusals_fail_the_decision_with_a_clear_reason() {
    let cases: [(&str, &str, &str); 4] = [
        ("closed sync window", APP, "sync window"),
        (
            "failed operation",
            APP,
            "ended Failed: one or more objects failed to apply",
        ),
        (
            "unknown application in a project",
            "nope",
            "application \"nope\" does not exist in Argo CD",
        ),
        (
            "unknown application, no project",
            "nope",
            "also answers 403 for an application that does not exist",
        ),
    ];
    for (name, application, expected) in cases {
        let world = World::with_spec(|spec| {
            spec["argocd"]["application"] = application.into();
            if name.ends_with("in a project") {
                spec["argocd"]["project"] = "default".into();
            }
        })
        .await;
        match name {
            "closed sync window" => world.argocd.set_sync_window_closed(APP, true),
            "failed operation" => world
                .argocd
                .fail_next_operation(APP, "one or more objects failed to apply"),
            _ => {}
        }
        let now = Utc::now();
        world.saturated_history(now).await;
        let id = world.pending("up", now).await;

        let progress = world.worker("host-a").run_task(id, World::retry()).await;

        assert_eq!(
            progress,
            Progress::Reached(DecisionStatus::Failed),
            "{name}"
        );
        let reason = world.decision(id).await.reason.unwrap_or_default();
        assert!(reason.contains(expected), "{name}: {reason}");
        assert!(
            reason.contains(&world.head("main")[..12]),
            "{name} names the commit: {reason}"
        );
    }
}

#[tokio::test]
async fn a_wrong_argocd_token_fails_without_showing_any_token() {
    let world = World::new().await;
    std::fs::write(
        world.dir.join("secrets/default/argocd"),
        "not-the-right-token-0000",
    )
    .expect("secret");
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Failed));
    let decision = world.decision(id).await;
    let reason = decision.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("rejected the API token (HTTP 401)"),
        "{reason}"
    );
    let stored = serde_json::to_string(&decision).expect("json");
    assert!(
        !stored.contains("not-the-right-token") && !stored.contains(ARGOCD_TOKEN),
        "{stored}"
    );
}

#[tokio::test]
async fn an_unreachable_argocd_is_retried_then_given_up_with_the_reason() {
    let world =
        World::with_spec(|spec| spec["argocd"]["server"] = "http://127.0.0.1:9".into()).await;
    let id = world.saturated_decision().await;

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Failed));
    let decision = world.decision(id).await;
    let reason = decision.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("gave up after 3 attempts: Argo CD: Argo CD is unavailable"),
        "{reason}"
    );
    let steps = World::steps(&decision);
    assert_eq!(
        steps.iter().filter(|s| *s == "retry").count(),
        2,
        "{steps:?}"
    );
    // The commit was made once, before the sync attempts.
    assert_eq!(world.log().len(), 2);
}

#[tokio::test]
async fn a_decision_whose_cluster_was_deleted_fails() {
    let world = World::new().await;
    let id = world.pending("up", Utc::now()).await;
    world
        .storage
        .delete_cluster("logs", autoscaler::storage::Actor::OPERATOR)
        .await
        .expect("deleted");

    let progress = world.worker("host-a").run_task(id, World::retry()).await;

    assert_eq!(progress, Progress::Reached(DecisionStatus::Failed));
    let reason = world.decision(id).await.reason.unwrap_or_default();
    assert!(reason.contains("cluster was deleted"), "{reason}");
}

#[tokio::test]
async fn tasks_from_the_queue_are_carried_out_by_the_worker_role() {
    let world = World::new().await;
    let id = world.saturated_decision().await;
    autoscaler::queue::TaskQueue::new(world.storage.pool())
        .push(autoscaler::queue::ScalingTask {
            decision_id: id,
            cluster: "logs".to_owned(),
        })
        .await
        .expect("pushed");

    let shutdown = tokio_util::sync::CancellationToken::new();
    let queue = tokio::spawn(autoscaler::worker::run_queue(
        world.worker("host-a"),
        world.storage.pool().clone(),
        "worker-test".to_owned(),
        2,
        World::retry(),
        shutdown.clone(),
    ));
    world::eventually(
        "the queued task to be carried out",
        Duration::from_secs(60),
        || async { world.decision(id).await.status == DecisionStatus::Applied },
    )
    .await;
    shutdown.cancel();
    let stopped = queue.await.expect("joins");
    assert!(stopped.is_ok(), "{stopped:?}");
}
