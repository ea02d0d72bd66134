//! Flink: a retry after Flink forgot the savepoint operation (`rest.async.store-duration`), and a job
//! that ended before the stop reached it.

use std::time::Duration;

use autoscaler::rescale::{Problem, Recorded, RescaleMethod, RescaleStep, Situation};
use serde_json::json;
use test_support::flink::JobState;

use super::flink::{cluster, target};
use super::{names, run, run_after, settings};

/// The decision's record as the worker keeps it.
fn record_of(steps: &[RescaleStep]) -> serde_json::Value {
    steps
        .iter()
        .map(|s| json!({"at": "t", "step": s.step, "detail": s.detail}))
        .collect()
}

#[tokio::test]
async fn a_savepoint_flink_forgot_is_found_in_the_decisions_record() {
    let c = cluster().await;
    c.server
        .fail_next_submission(503, "The dispatcher is shutting down.");
    let (first, first_steps) = run(&target(&c, false), 4, 21, settings()).await;
    let err = first.expect_err("the resubmission fails");
    let Situation::Restartable { savepoint, .. } = &err.situation else {
        panic!("restartable: {err}");
    };
    // Flink forgets the operation's result: a retry cannot read it any more.
    c.server.set_operation_store_duration(Duration::ZERO);

    let recorded = Recorded::from_steps(&record_of(&first_steps));
    let (second, steps) = run_after(&target(&c, false), 4, 21, &recorded, settings()).await;

    let done = second.expect("the retry resubmits from the recorded savepoint");
    assert_eq!(done.method, RescaleMethod::SavepointResubmit);
    assert_eq!(done.savepoint.as_ref(), Some(savepoint));
    assert_eq!(
        names(&steps),
        [
            "savepoint_recovered",
            "job_submitted",
            "parallelism_verified"
        ]
    );
    assert_eq!(steps[0].detail["from"], "decision_record");
    assert_eq!(c.server.savepoint_operations(), 1, "no second stop");
    let live = c.server.live_jobs("orders");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].restored_from.as_ref(), Some(savepoint));
    assert_eq!(live[0].parallelism, 4);
}

#[tokio::test]
async fn a_savepoint_flink_forgot_is_found_in_the_finished_jobs_checkpoint_history() {
    let c = cluster().await;
    c.server
        .fail_next_submission(503, "The dispatcher is shutting down.");
    let (first, _) = run(&target(&c, false), 4, 22, settings()).await;
    let err = first.expect_err("the resubmission fails");
    let Situation::Restartable { savepoint, .. } = &err.situation else {
        panic!("restartable: {err}");
    };
    c.server.set_operation_store_duration(Duration::ZERO);
    // The attempt died after posting the stop: its record says no more than that.
    let recorded = Recorded::from_steps(&json!([
        {"step": "savepoint_triggered", "detail": {"job_id": c.job_id}},
    ]));

    let (second, steps) = run_after(&target(&c, false), 4, 22, &recorded, settings()).await;

    let done = second.expect("the retry resubmits from the job's last savepoint");
    assert_eq!(steps[0].step, "savepoint_recovered");
    assert_eq!(steps[0].detail["from"], "checkpoint_history");
    assert_eq!(done.savepoint.as_ref(), Some(savepoint));
    assert_eq!(c.server.live_jobs("orders")[0].parallelism, 4);
}

#[tokio::test]
async fn without_a_record_a_stopped_job_is_not_restarted_and_the_error_says_so() {
    let c = cluster().await;
    c.server
        .fail_next_submission(503, "The dispatcher is shutting down.");
    let (first, _) = run(&target(&c, false), 4, 23, settings()).await;
    first.expect_err("the resubmission fails");
    c.server.set_operation_store_duration(Duration::ZERO);

    let (second, _) = run(&target(&c, false), 4, 23, settings()).await;

    let err = second.expect_err("nothing says this decision stopped the job");
    assert!(matches!(err.problem, Problem::NoRunningJob { .. }), "{err}");
    assert_eq!(
        err.situation,
        Situation::NothingRuns {
            job_name: "orders".to_owned(),
            newest: Some((c.job_id.clone(), "FINISHED".to_owned()))
        }
    );
    let message = err.to_string();
    assert!(!message.contains("keeps running"), "{message}");
    assert!(
        message.contains(&format!("GET /jobs/{}/checkpoints", c.job_id)),
        "{message}"
    );
    assert!(c.server.live_jobs("orders").is_empty());
    assert_eq!(c.server.submissions().len(), 1, "only the failed one");
}

#[tokio::test]
async fn a_job_someone_else_stopped_since_is_not_restarted_from_this_decisions_savepoint() {
    let c = cluster().await;
    let (first, first_steps) = run(&target(&c, false), 4, 24, settings()).await;
    let rescaled = first.expect("the rescale succeeds");
    // Someone stops the new job later; the decision is retried (say, after a crash of the worker).
    let new_job = rescaled.job_id.expect("a new job");
    super::flink_failures::stop_by_hand(&c.server.url(), &new_job).await;
    c.server.set_operation_store_duration(Duration::ZERO);

    let recorded = Recorded::from_steps(&record_of(&first_steps));
    let (second, _) = run_after(&target(&c, false), 4, 24, &recorded, settings()).await;

    let err = second.expect_err("not ours to restart");
    assert!(matches!(err.problem, Problem::NoRunningJob { .. }), "{err}");
    assert!(c.server.live_jobs("orders").is_empty());
}

#[tokio::test]
async fn a_job_that_ended_before_the_stop_reached_it_is_reported_as_gone() {
    let c = cluster().await;
    c.server.cancel_before_next_stop();

    let (result, steps) = run(&target(&c, false), 4, 25, settings()).await;

    // Flink accepts the stop (202) and fails the operation: the job is not there any more.
    let err = result.expect_err("the job is gone");
    assert_eq!(
        err.problem,
        Problem::JobEnded {
            job_id: c.job_id.clone(),
            state: "CANCELED".to_owned()
        }
    );
    assert_eq!(
        err.situation,
        Situation::JobGone {
            job_id: c.job_id.clone(),
            state: "CANCELED".to_owned()
        }
    );
    let message = err.to_string();
    assert!(
        !message.contains("still running") && !message.contains("at its old"),
        "{message}"
    );
    assert!(!err.is_transient());
    assert_eq!(names(&steps), ["job_found", "savepoint_triggered"]);
    assert!(c.server.submissions().is_empty());
    assert_eq!(
        c.server.job(&c.job_id).map(|j| j.state),
        Some(JobState::Canceled)
    );
}
