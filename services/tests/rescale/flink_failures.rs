//! Flink: a failed savepoint, a failed resubmission, a parallelism that does not take, and error shapes.

use std::time::Duration;

use autoscaler::rescale::{FlinkJob, Problem, Recorded, RescaleTarget, Situation};
use serde_json::json;
use test_support::flink::JobState;

use super::flink::{cluster, target};
use super::{names, run, run_after, settings};

#[tokio::test]
async fn a_failed_savepoint_leaves_the_job_running_and_submits_nothing() {
    let c = cluster().await;
    c.server
        .fail_next_savepoint("Checkpoint Coordinator is suspending.");

    let (result, steps) = run(&target(&c, false), 6, 5, settings()).await;

    let err = result.expect_err("the rescale fails");
    assert!(
        matches!(&err.problem, Problem::SavepointFailed { cause } if cause.contains("Checkpoint Coordinator is suspending.")),
        "{err}"
    );
    assert_eq!(
        err.situation,
        Situation::JobStillRunning {
            job_id: c.job_id.clone(),
            state: "RUNNING".to_owned()
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("was not stopped and is RUNNING"),
        "{message}"
    );
    assert!(!err.is_transient());
    assert_eq!(names(&steps), ["job_found", "savepoint_triggered"]);
    assert!(c.server.submissions().is_empty());
    let job = c.server.job(&c.job_id).expect("job listed");
    assert_eq!((job.state, job.parallelism), (JobState::Running, 2));
}

#[tokio::test]
async fn a_failed_resubmission_says_how_to_restart_and_a_retry_restarts_from_the_same_savepoint() {
    let c = cluster().await;
    // A fault of the dispatcher, not of the request: Flink answers it 500, which may pass.
    c.server
        .fail_next_submission(500, "The rpc invocation timed out.");

    let (result, steps) = run(&target(&c, false), 6, 12, settings()).await;

    let err = result.expect_err("the resubmission fails");
    assert!(
        matches!(&err.problem, Problem::Unavailable(m) if m == "HTTP 500: RuntimeException: The rpc invocation timed out."),
        "{err}"
    );
    let Situation::Restartable {
        savepoint,
        jar_id,
        parallelism,
        ..
    } = &err.situation
    else {
        panic!("the job is left restartable: {err}");
    };
    assert_eq!((jar_id, *parallelism), (&c.jar, 6));
    let message = err.to_string();
    for needle in [
        savepoint.as_str(),
        &format!("POST /jars/{}/run", c.jar),
        "\"parallelism\":6",
        "STOPPED",
        "The rpc invocation timed out.",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    assert!(err.is_transient(), "a 500 may pass on retry");
    assert_eq!(names(&steps).last(), Some(&"job_stopped"));
    assert!(c.server.live_jobs("orders").is_empty(), "nothing runs now");

    // The retry finds the stopped job by the trigger id and resubmits from the same savepoint.
    let (retry, steps) = run(&target(&c, false), 6, 12, settings()).await;
    let done = retry.expect("the retry succeeds");
    assert_eq!(names(&steps)[0], "savepoint_resumed");
    assert_eq!(done.savepoint.as_ref(), Some(savepoint));
    assert_eq!(c.server.savepoint_operations(), 1);
    let live = c.server.live_jobs("orders");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].restored_from.as_ref(), Some(savepoint));
}

#[tokio::test]
async fn a_missing_jar_is_named_and_not_retried() {
    let c = cluster().await;
    let mut missing_jar = target(&c, false);
    if let RescaleTarget::Flink(job) = &mut missing_jar {
        job.jar_id = "0000-gone_orders-job.jar".to_owned();
    }

    let (result, _) = run(&missing_jar, 3, 13, settings()).await;

    // Flink answers an unknown jar with a 500; retrying does not upload it.
    let err = result.expect_err("the jar does not exist");
    assert!(
        matches!(&err.problem, Problem::JarMissing { jar_id, message }
            if jar_id == "0000-gone_orders-job.jar" && message.contains("does not exist")),
        "{err}"
    );
    assert!(err.to_string().contains("upload the job's jar"), "{err}");
    assert!(
        matches!(err.situation, Situation::Restartable { .. }),
        "{err}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_resubmission_from_a_missing_savepoint_is_refused_with_flinks_cause() {
    let c = cluster().await;
    c.server.set_operation_store_duration(Duration::ZERO);
    // This decision stopped the job (its operation result is gone since); the savepoint its record
    // names has been deleted.
    stop_by_hand(&c.server.url(), &c.job_id).await;
    let gone = "file:/gone/savepoint-000000-000000000000";
    let recorded = Recorded::from_steps(&json!([
        {"step": "savepoint_triggered", "detail": {"job_id": c.job_id}},
        {"step": "savepoint_completed", "detail": {"job_id": c.job_id, "location": gone}},
    ]));

    let (result, steps) = run_after(&target(&c, false), 3, 19, &recorded, settings()).await;

    let err = result.expect_err("Flink cannot find the savepoint");
    assert_eq!(names(&steps), ["savepoint_recovered"]);
    assert!(
        matches!(&err.problem, Problem::Refused { status: 400, message }
            if message.starts_with("Could not execute application. (cause: FileNotFoundException: \
                                    Cannot find checkpoint or savepoint")),
        "{err}"
    );
    assert!(
        matches!(&err.situation, Situation::Restartable { savepoint, .. } if savepoint == gone),
        "{err}"
    );
    assert!(!err.is_transient(), "a missing savepoint stays missing");
    let failed: Vec<_> = c
        .server
        .jobs()
        .into_iter()
        .filter(|j| j.state == JobState::Failed)
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "Flink leaves the failed submission: {failed:?}"
    );
}

/// Stops the job with a savepoint under a trigger of its own, as a person would, and waits for it.
pub(crate) async fn stop_by_hand(url: &str, job_id: &str) {
    let http = reqwest::Client::new();
    let trigger = "0123456789abcdef0123456789abcdef";
    http.post(format!("{url}/jobs/{job_id}/stop"))
        .json(&json!({"triggerId": trigger}))
        .send()
        .await
        .expect("stop");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer: serde_json::Value = http
            .get(format!("{url}/jobs/{job_id}/savepoints/{trigger}"))
            .send()
            .await
            .expect("poll")
            .json()
            .await
            .expect("a JSON answer");
        if answer["status"]["id"] == "COMPLETED" {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the savepoint never completed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_job_that_runs_at_another_parallelism_fails_verification() {
    let c = cluster().await;
    c.server.pin_jar_parallelism(&c.jar, 3);

    let (result, _) = run(&target(&c, false), 6, 14, settings()).await;

    let err = result.expect_err("verification fails");
    assert!(
        matches!(
            err.problem,
            Problem::Mismatch {
                expected: 6,
                actual: 3,
                ..
            }
        ),
        "{err}"
    );
    let Situation::Resubmitted { job_id, .. } = &err.situation else {
        panic!("the new job was submitted: {err}");
    };
    assert_eq!(
        c.server.job(job_id).map(|j| j.state),
        Some(JobState::Running)
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn no_running_job_or_two_of_them_change_nothing() {
    let c = cluster().await;
    let mut other = target(&c, false);
    if let RescaleTarget::Flink(job) = &mut other {
        job.job_name = "payments".to_owned();
    }
    let (result, _) = run(&other, 3, 15, settings()).await;
    let err = result.expect_err("no such job");
    assert!(matches!(err.problem, Problem::NoRunningJob { .. }), "{err}");
    assert_eq!(
        err.situation,
        Situation::NothingRuns {
            job_name: "payments".to_owned(),
            newest: None
        }
    );

    let second = c.server.start_job("orders", &c.jar, 2);
    let (result, _) = run(&target(&c, false), 3, 15, settings()).await;
    let err = result.expect_err("two jobs of that name");
    let Problem::AmbiguousJob { job_ids, .. } = &err.problem else {
        panic!("ambiguous: {err}");
    };
    assert!(job_ids.contains(&c.job_id) && job_ids.contains(&second));
    assert!(c.server.stop_requests().is_empty());
}

#[tokio::test]
async fn an_unreachable_api_is_transient_and_changes_nothing() {
    // A port that was free a moment ago: connecting is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let target = RescaleTarget::Flink(FlinkJob {
        rest_url: format!("http://127.0.0.1:{port}")
            .parse()
            .expect("URL parses"),
        job_name: "orders".to_owned(),
        jar_id: "x.jar".to_owned(),
        entry_class: None,
        program_args: Vec::new(),
        savepoint_dir: None,
        adaptive_scheduler: false,
    });
    let (result, _) = run(&target, 3, 16, settings()).await;
    let err = result.expect_err("nothing listens");
    assert!(matches!(err.problem, Problem::Unavailable(_)), "{err}");
    assert_eq!(err.situation, Situation::Untouched);
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_parallelism_above_the_max_is_refused_before_anything_changes() {
    for adaptive in [false, true] {
        let c = cluster().await;
        if adaptive {
            c.server.enable_adaptive_scheduler();
        }

        let (result, steps) = run(&target(&c, adaptive), 200, 17, settings()).await;

        let err = result.expect_err("above the key-group count");
        assert_eq!(
            err.problem,
            Problem::AboveMaxParallelism {
                asked: 200,
                max: 128,
                vertex: "Source: orders".to_owned()
            }
        );
        assert!(err.to_string().contains("maximum parallelism 128"), "{err}");
        assert_eq!(err.situation, Situation::Untouched);
        assert!(!err.is_transient());
        assert!(steps.is_empty(), "{steps:?}");
        assert!(
            c.server.stop_requests().is_empty(),
            "the job was not stopped"
        );
        assert!(c.server.requirement_updates().is_empty());
        assert_eq!(c.server.job(&c.job_id).map(|j| j.parallelism), Some(2));
    }
}
