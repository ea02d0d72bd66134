//! Kill tests on real processes: the `autoscaler` roles run as child processes against the machine's
//! Postgres, a bare Git repository, the Argo CD test server and an engine control endpoint, and are
//! SIGKILLed at each step of a decision (a test-only pause point, `AUTOSCALER_TEST_PAUSE_AT`, holds the
//! process exactly there) and at random moments (the soak). After each kill the system must converge:
//! at most one commit per decision, no decision left open, and what an applied decision says is what Git
//! and the engine hold. Postgres is crashed and restarted too: a server of the test's own
//! (`test_support::postgres`), since the machine's is shared with every other test.

#[path = "../common/database.rs"]
mod database;
#[path = "../common/engine_control.rs"]
mod engine_control;
#[path = "../common/git.rs"]
mod git_cli;
mod harness;
mod metrics;
mod soak;
mod webhook;
#[path = "../worker/world.rs"]
#[expect(
    dead_code,
    reason = "the kill tests use part of the worker tests' world"
)]
mod world;

use std::time::Duration;

use autoscaler::{fault, storage::DecisionStatus};
use harness::{Rig, Role};

const CONVERGE: Duration = Duration::from_secs(90);

/// Runs one decision with `role` paused at `point` and killed there, then with fresh processes.
async fn killed_at(role: Role, point: &'static str) {
    let mut rig = Rig::new(|_| {}).await;
    let id = rig.decide().await.expect("a decision");
    // The other roles run throughout; the paused one is killed at its point and started again.
    let mut others = Vec::new();
    for other in Role::ALL.into_iter().filter(|r| *r != role) {
        others.push(rig.spawn(other, None).0);
    }
    let (paused, marker) = rig.spawn(role, Some(point));
    rig.paused(&marker).await;
    paused.kill();
    let _again = rig.spawn(role, None).0;

    let (_, decision) = rig.converge_applied_once(id, CONVERGE, point).await;
    let steps = world::World::steps(&decision);
    assert!(
        steps.iter().any(|s| s == "reconciler_redrive"),
        "{point}: the reconciler picked the decision up again: {steps:?}"
    );
}

#[tokio::test]
async fn a_worker_killed_after_pushing_before_recording_the_commit_does_not_commit_twice() {
    killed_at(Role::Worker, fault::WORKER_PUSHED).await;
}

#[tokio::test]
async fn a_worker_killed_after_recording_the_commit_resumes_with_the_sync() {
    killed_at(Role::Worker, fault::WORKER_COMMITTED).await;
}

#[tokio::test]
async fn a_worker_killed_while_following_the_sync_resumes_it() {
    killed_at(Role::Worker, fault::WORKER_FOLLOWING_SYNC).await;
}

#[tokio::test]
async fn a_worker_killed_during_the_engine_restart_verifies_it_after_a_take_over() {
    killed_at(Role::Worker, fault::WORKER_ENGINE_RESTART).await;
}

/// The manager is killed inside the transaction that records a decision with its task: neither exists
/// afterwards, so nothing blocks the cluster, and the next manager decides again and carries it out once.
/// The manager scrapes the real Prometheus, which scrapes a saturated engine's metrics.
#[tokio::test]
async fn a_manager_killed_between_recording_and_enqueueing_leaves_neither() {
    let dir = std::env::temp_dir().join(format!("kill-prom-{}", uuid::Uuid::new_v4().simple()));
    let metrics = metrics::Metrics::saturated(&dir).await;
    let url = metrics.url();
    let mut rig = Rig::new(|spec| {
        spec["metrics"]["prometheus_url"] = url.into();
        // The shortest windows a spec may have: the test's recent history fills them.
        spec["policy"]["scale_up_window_seconds"] = 30.into();
        spec["policy"]["scale_down_window_seconds"] = 30.into();
    })
    .await;
    // The manager's earlier scrapes (it scrapes every 5 s here): with the one it makes on starting, the
    // scale-up window is full and fresh, so its rules fire on its first evaluation.
    rig.recent_history().await;
    let (paused, marker) = rig.spawn(Role::Manager, Some(fault::MANAGER_RECORDED));
    rig.paused(&marker).await;
    paused.kill();
    assert!(
        rig.decisions().await.is_empty(),
        "the killed transaction left no decision"
    );
    let (tasks,): (i64,) = sqlx::query_as("select count(*) from apalis.jobs")
        .fetch_one(rig.world.storage.pool())
        .await
        .expect("jobs");
    assert_eq!(tasks, 0, "and no task");

    rig.recent_history().await;
    let _manager = rig.spawn(Role::Manager, None).0;
    let _worker = rig.spawn(Role::Worker, None).0;
    test_support::wait::until_some("the next manager to decide", CONVERGE, || async {
        Ok((!rig.decisions().await.is_empty()).then_some(()))
    })
    .await
    .expect("a decision");
    let verdict = rig.converge(CONVERGE).await;
    verdict.assert_sound(rig.logs());
    assert_eq!(
        verdict.by_status.get("applied"),
        Some(&1),
        "the new manager's decision went through: {verdict:?}\n{}",
        rig.logs()
    );
    assert_eq!(verdict.decisions, 1, "one decision: {verdict:?}");
    assert_eq!(verdict.commits, 1, "one commit for it: {verdict:?}");
    drop(metrics);
    let _ = std::fs::remove_dir_all(dir);
}

/// Postgres itself goes down as a crash would (every connection cut, no checkpoint) while a worker
/// follows the sync, and comes back: the roles reconnect, the decision is carried out once, and nothing
/// stays open. The server is the test's own, so restarting it disturbs no other test.
#[tokio::test]
async fn postgres_crashed_and_restarted_while_a_worker_follows_the_sync_converges() {
    let postgres = test_support::postgres::OwnPostgres::start().expect("a Postgres of our own");
    let mut rig = Rig::new_on(database::TestDatabase::on(&postgres.admin_url()), |_| {}).await;
    // The sync does not finish until the test lets it: the worker is following it when Postgres goes.
    rig.world.argocd.set_polls_to_complete(world::APP, u32::MAX);
    let id = rig.decide().await.expect("a decision");
    let _roles: Vec<_> = Role::ALL
        .into_iter()
        .map(|role| rig.spawn(role, None).0)
        .collect();
    test_support::wait::until_some("the worker to follow the sync", CONVERGE, || async {
        Ok((rig.world.decision(id).await.status == DecisionStatus::Syncing).then_some(()))
    })
    .await
    .expect("syncing");

    postgres.crash_and_restart().expect("Postgres restarted");
    rig.world.argocd.set_polls_to_complete(world::APP, 1);

    rig.converge_applied_once(id, CONVERGE, "Postgres crashed while syncing")
        .await;
    // The crash hit the roles' live connections (Postgres says so as it cuts them).
    assert!(
        rig.logs()
            .contains("terminating connection due to immediate shutdown"),
        "{}",
        rig.logs()
    );
}
