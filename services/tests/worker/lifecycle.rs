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

/// Makes every insert into the job queue's table fail until `allow_tasks`: a queue that cannot take a
/// task, at the worst moment.
async fn refuse_tasks(world: &World) {
    sqlx::query("alter table apalis.jobs add constraint refuse_tasks check (false) not valid")
        .execute(world.storage.pool())
        .await
        .expect("constraint");
}

async fn allow_tasks(world: &World) {
    sqlx::query("alter table apalis.jobs drop constraint refuse_tasks")
        .execute(world.storage.pool())
        .await
        .expect("constraint dropped");
}

async fn tasks_of(world: &World, decision: i64) -> i64 {
    let (count,): (i64,) = sqlx::query_as(
        "select count(*) from apalis.jobs \
         where convert_from(job, 'UTF8')::jsonb->>'decision_id' = $1::text",
    )
    .bind(decision)
    .fetch_one(world.storage.pool())
    .await
    .expect("count");
    count
}

#[tokio::test]
async fn a_merge_whose_sync_task_cannot_be_queued_is_not_recorded_and_a_redelivery_records_both() {
    use crate::{
        pull_requests::pull_request_world,
        webhook::{deliver_github, sign},
    };
    let (world, github) = pull_request_world().await;
    let base = serve(&world).await;
    let id = world.saturated_decision().await;
    assert_eq!(
        world.worker("host-a").run_task(id, World::retry()).await,
        Progress::Reached(DecisionStatus::PrOpen)
    );
    let number = github.pulls("acme", "gitops")[0].number;
    github.merge_pull("acme", "gitops", number).expect("merged");
    let body = serde_json::to_vec(
        &github
            .webhook_payload("acme", "gitops", number)
            .expect("payload"),
    )
    .expect("json");

    refuse_tasks(&world).await;
    let (status, receipt) = deliver_github(&base, "pull_request", "d-9", &body, &sign(&body)).await;
    assert_eq!(status, 500, "{receipt}");
    // Neither the merge nor the delivery is recorded, so GitHub's redelivery is handled afresh.
    assert_eq!(world.decision(id).await.status, DecisionStatus::PrOpen);
    assert_eq!(tasks_of(&world, id).await, 0);

    allow_tasks(&world).await;
    let (status, receipt) = deliver_github(&base, "pull_request", "d-9", &body, &sign(&body)).await;
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("recorded")),
        "{receipt}"
    );
    assert_eq!(world.decision(id).await.status, DecisionStatus::Merged);
    assert_eq!(tasks_of(&world, id).await, 1);
}

#[tokio::test]
async fn a_failure_the_worker_cannot_record_leaves_the_task_in_the_queue_until_it_can() {
    // The key is not in the file: the decision must fail.
    let world = World::with_spec(|spec| spec["git"]["key"] = "engine.parallelism".into()).await;
    let id = world.saturated_decision().await;
    world
        .storage
        .push_task(&autoscaler::queue::ScalingTask {
            decision_id: id,
            cluster: "logs".to_owned(),
        })
        .await
        .expect("pushed");
    // The database refuses to record the failure, as if it went away at that moment.
    sqlx::raw_sql(
        "create function refuse_failed() returns trigger language plpgsql as $$ \
         begin if new.status = 'failed' then raise exception 'the database is gone'; end if; \
         return new; end $$; \
         create trigger refuse_failed before update on decisions \
         for each row execute function refuse_failed();",
    )
    .execute(world.storage.pool())
    .await
    .expect("trigger");

    let shutdown = tokio_util::sync::CancellationToken::new();
    let queue = tokio::spawn(autoscaler::worker::run_queue(
        world.worker("host-a"),
        world.storage.pool().clone(),
        "worker-unrecorded".to_owned(),
        1,
        World::retry(),
        shutdown.clone(),
    ));
    // Apalis hands a failed task out again at once, so between two looks the task may be failed, queued
    // or running again: one spent attempt is what tells that the failure was not recorded. Waiting to
    // catch it in `Failed` instead let it spend attempts on the refusing database, under load all of them.
    let job = || async {
        sqlx::query_as::<_, (String, i32, i32)>(
            "select status, attempts, max_attempts from apalis.jobs limit 1",
        )
        .fetch_one(world.storage.pool())
        .await
        .expect("job")
    };
    world::eventually(
        "the queue to keep the task after the unrecorded failure",
        Duration::from_secs(60),
        || async { job().await.1 >= 1 },
    )
    .await;
    let (status, attempts, max_attempts) = job().await;
    assert!(
        ["Failed", "Queued", "Running"].contains(&status.as_str()) && attempts < max_attempts,
        "the task must stay in the queue with attempts left: {status}, {attempts} of {max_attempts}"
    );
    assert_eq!(world.decision(id).await.status, DecisionStatus::Running);

    sqlx::raw_sql("drop trigger refuse_failed on decisions")
        .execute(world.storage.pool())
        .await
        .expect("trigger dropped");
    world::eventually(
        "the failure to be recorded by the task's next run",
        Duration::from_secs(120),
        || async { world.decision(id).await.status == DecisionStatus::Failed },
    )
    .await;
    shutdown.cancel();
    let _ = queue.await;
}

async fn backdate(world: &World, decision: i64) {
    sqlx::query("update decisions set updated_at = now() - interval '1 hour' where id = $1")
        .bind(decision)
        .execute(world.storage.pool())
        .await
        .expect("backdated");
}

fn reconciler(world: &World, max_redrives: u32) -> autoscaler::manager::Reconciler {
    autoscaler::manager::Reconciler {
        storage: world.storage.clone(),
        metrics: world.metrics.clone(),
        settings: autoscaler::manager::ReconcileSettings {
            max_redrives,
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn a_decision_stuck_while_syncing_is_redriven_and_applied_without_a_second_commit() {
    let world = World::new().await;
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
    // The worker dies, and its task with it; the decision sits in syncing past the deadline.
    running.abort();
    let _ = running.await;
    world.argocd.set_polls_to_complete(APP, 2);
    world.lease_expired(id).await;
    backdate(&world, id).await;

    let report = reconciler(&world, 3).pass(Utc::now()).await.expect("pass");

    assert_eq!(report.redriven, [id]);
    assert_eq!(tasks_of(&world, id).await, 1, "the task is pushed again");
    let decision = world.decision(id).await;
    assert_eq!(decision.status, DecisionStatus::Syncing);
    assert!(World::steps(&decision).contains(&"reconciler_redrive".to_owned()));
    let counted = world
        .metrics
        .reconciler_actions
        .get_or_create(&autoscaler::metrics::ReconcileLabels {
            action: "redrive",
            status: "syncing",
        })
        .get();
    assert_eq!(counted, 1);
    // Not stuck any more: the next pass leaves it alone.
    let again = reconciler(&world, 3).pass(Utc::now()).await.expect("pass");
    assert!(again.redriven.is_empty(), "{again:?}");

    let shutdown = tokio_util::sync::CancellationToken::new();
    let queue = tokio::spawn(autoscaler::worker::run_queue(
        world.worker("host-b"),
        world.storage.pool().clone(),
        "worker-redriven".to_owned(),
        1,
        World::retry(),
        shutdown.clone(),
    ));
    world::eventually(
        "the re-driven task to apply the decision",
        Duration::from_secs(60),
        || async { world.decision(id).await.status == DecisionStatus::Applied },
    )
    .await;
    shutdown.cancel();
    let _ = queue.await;
    assert_eq!(
        world.log().len(),
        2,
        "one autoscaler commit: {:?}",
        world.log()
    );
}

#[tokio::test]
async fn a_decision_no_worker_takes_is_failed_with_the_reason_after_its_redrives() {
    let world = World::new().await;
    let id = world.pending("up", Utc::now()).await;
    backdate(&world, id).await;
    let reconciler = reconciler(&world, 1);

    let first = reconciler.pass(Utc::now()).await.expect("pass");
    assert_eq!(first.redriven, [id]);
    backdate(&world, id).await;
    let second = reconciler.pass(Utc::now()).await.expect("pass");

    assert_eq!(second.failed, [id]);
    let decision = world.decision(id).await;
    assert_eq!(decision.status, DecisionStatus::Failed);
    assert!(
        decision
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("stuck in pending past its deadline after 1 re-drives"),
        "{decision:?}"
    );
    assert_eq!(
        World::steps(&decision),
        ["reconciler_redrive", "reconciler_failed"]
    );
    assert!(decision.finished_at.is_some());

    // A pull request waiting for review is never stuck, however long it waits.
    let waiting = world.pending("up", Utc::now()).await;
    for (from, to) in [
        (DecisionStatus::Pending, DecisionStatus::Running),
        (DecisionStatus::Running, DecisionStatus::PrOpen),
    ] {
        world
            .storage
            .transition(waiting, &Transition::new(from, to))
            .await
            .expect("moved");
    }
    backdate(&world, waiting).await;
    let third = reconciler.pass(Utc::now()).await.expect("pass");
    assert_eq!(third, Default::default());
    assert_eq!(world.decision(waiting).await.status, DecisionStatus::PrOpen);
}

#[tokio::test]
async fn one_replica_leads_the_reconciler_until_its_connection_ends() {
    let world = World::new().await;
    let mut leader = world
        .storage
        .try_lead()
        .await
        .expect("asked")
        .expect("the first replica leads");
    let other = autoscaler::storage::Storage::from_pool(
        sqlx::PgPool::connect_with((*world.storage.pool().connect_options()).clone())
            .await
            .expect("another replica's pool"),
    );
    assert!(other.try_lead().await.expect("asked").is_none());
    assert!(leader.still_held().await);

    drop(leader);
    world::eventually(
        "the other replica to take the lead",
        Duration::from_secs(10),
        || async { other.try_lead().await.expect("asked").is_some() },
    )
    .await;
}

#[tokio::test]
async fn no_transaction_stays_open_while_a_worker_follows_a_sync() {
    let world = World::new().await;
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
    // Long enough for the lease to be renewed at least once while following.
    world::eventually("the lease to be renewed", Duration::from_secs(10), || async {
        let (renewed,): (bool,) = sqlx::query_as(
            "select lease_expires_at > now() + interval '1500 milliseconds' from decisions where id = $1",
        )
        .bind(id)
        .fetch_one(world.storage.pool())
        .await
        .expect("lease");
        renewed
    })
    .await;

    let (open,): (i64,) = sqlx::query_as(
        "select count(*) from pg_stat_activity \
         where datname = current_database() and state like 'idle in transaction%'",
    )
    .fetch_one(world.storage.pool())
    .await
    .expect("activity");
    assert_eq!(open, 0, "a transaction is held open across the sync");
    let (owner,): (Option<String>,) =
        sqlx::query_as("select lease_owner from decisions where id = $1")
            .bind(id)
            .fetch_one(world.storage.pool())
            .await
            .expect("lease");
    assert!(owner.is_some(), "the following worker holds the lease");
    running.abort();
    let _ = running.await;
}

#[tokio::test]
async fn old_deliveries_finished_tasks_and_final_decisions_are_pruned_and_open_ones_kept() {
    let world = World::new().await;
    let pool = world.storage.pool();
    let old = world.pending("up", Utc::now()).await;
    world
        .storage
        .transition(
            old,
            &Transition::new(DecisionStatus::Pending, DecisionStatus::Failed).reason("old"),
        )
        .await
        .expect("failed");
    let open = world.pending("up", Utc::now()).await;
    sqlx::query("update decisions set finished_at = now() - interval '400 days', updated_at = now() - interval '400 days'")
        .execute(pool)
        .await
        .expect("aged");
    for (delivery, age) in [("old", "40 days"), ("new", "1 day")] {
        sqlx::query(
            "insert into webhook_deliveries (source, delivery_id, event, received_at) \
             values ('github', $1, 'ping', now() - $2::interval)",
        )
        .bind(delivery)
        .bind(age)
        .execute(pool)
        .await
        .expect("delivery");
    }
    for decision in [old, open] {
        world
            .storage
            .push_task(&autoscaler::queue::ScalingTask {
                decision_id: decision,
                cluster: "logs".to_owned(),
            })
            .await
            .expect("task");
    }
    sqlx::query(
        "update apalis.jobs set status = 'Done', done_at = now() - interval '10 days' \
         where convert_from(job, 'UTF8')::jsonb->>'decision_id' = $1::text",
    )
    .bind(old)
    .execute(pool)
    .await
    .expect("done");

    let now = Utc::now();
    let pruned = world
        .storage
        .prune_history(&autoscaler::storage::RetentionCutoffs {
            deliveries: now - chrono::Duration::days(30),
            tasks: now - chrono::Duration::days(7),
            decisions: now - chrono::Duration::days(365),
        })
        .await
        .expect("pruned");

    assert_eq!(
        pruned,
        autoscaler::storage::Pruned {
            deliveries: 1,
            tasks: 1,
            decisions: 1
        }
    );
    assert_eq!(world.decision(open).await.status, DecisionStatus::Pending);
    assert_eq!(tasks_of(&world, open).await, 1);
    assert!(world.storage.get_decision(old).await.is_err());
}

#[tokio::test]
async fn identical_skips_collapse_into_the_newest_with_a_count_and_a_different_one_starts_anew() {
    let world = World::new().await;
    let now = Utc::now();
    let storage = &world.storage;
    // The worker's last two moves of a decision whose checked scale equals the current one.
    let skip = |id: i64, reason: &'static str| async move {
        for change in [
            Transition::new(DecisionStatus::Pending, DecisionStatus::Running),
            Transition::new(DecisionStatus::Running, DecisionStatus::Skipped).reason(reason),
        ] {
            storage.transition(id, &change).await.expect("moved");
        }
    };
    let same = "the checked scale equals the current scale (2)";
    let mut skipped = Vec::new();
    let mut first_taken = None;
    for _ in 0..3 {
        let id = world.pending("up", now).await;
        first_taken = first_taken.or(Some(world.decision(id).await.created_at));
        skip(id, same).await;
        skipped.push(id);
    }
    let newest = world.decision(skipped[2]).await;
    assert_eq!(newest.repeats, 3, "{newest:?}");
    assert_eq!(newest.reason.as_deref(), Some(same));
    assert_eq!(newest.first_at, first_taken, "the first skip's time");
    for folded in [skipped[0], skipped[1]] {
        assert!(
            matches!(
                storage.get_decision(folded).await,
                Err(StorageError::NotFound)
            ),
            "decision {folded} was folded into the newest"
        );
    }

    // A different reason is a different skip.
    let other = world.pending("up", now).await;
    skip(other, "Git already holds 2").await;
    assert_eq!(world.decision(other).await.repeats, 1);
    assert_eq!(world.decision(skipped[2]).await.repeats, 3);

    // Another outcome comes between: the next identical skip stands for itself again.
    let failed = world.pending("up", now).await;
    storage
        .finish_decision(failed, DecisionStatus::Failed, Some("push refused"))
        .await
        .expect("failed");
    let after = world.pending("up", now).await;
    skip(after, "Git already holds 2").await;
    assert_eq!(world.decision(after).await.repeats, 1);
    assert!(
        storage.get_decision(other).await.is_ok(),
        "not folded across a failure"
    );
}
