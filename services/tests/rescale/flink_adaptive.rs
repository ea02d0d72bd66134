//! Flink: the scheduler the job reports wins over the spec; the adaptive scheduler's cooldown, a
//! concurrent requirements update, and a shortage of slots.

use std::time::{Duration, Instant};

use autoscaler::rescale::{Problem, RescaleMethod, Situation};
use serde_json::json;

use super::flink::{cluster, target};
use super::{names, run, settings};

#[tokio::test]
async fn a_default_scheduler_job_is_resubmitted_whatever_the_spec_says() {
    let c = cluster().await;

    let (result, steps) = run(&target(&c, true), 3, 31, settings()).await;

    let done = result.expect("the rescale succeeds");
    assert_eq!(done.method, RescaleMethod::SavepointResubmit);
    assert_eq!(steps[0].detail["scheduler"], "Default");
    assert_eq!(steps[1].step, "scheduler_differs_from_spec");
    assert_eq!(
        steps[1].detail,
        json!({"job_id": c.job_id, "scheduler": "Default", "spec_adaptive_scheduler": true,
               "method": "savepoint_resubmit"})
    );
    assert!(c.server.requirement_updates().is_empty());
    assert_eq!(c.server.live_jobs("orders")[0].parallelism, 3);
}

#[tokio::test]
async fn an_adaptive_scheduler_job_is_rescaled_in_place_whatever_the_spec_says() {
    let c = cluster().await;
    c.server.enable_adaptive_scheduler();

    let (result, steps) = run(&target(&c, false), 3, 32, settings()).await;

    let done = result.expect("the rescale succeeds");
    assert_eq!(done.method, RescaleMethod::ResourceRequirements);
    assert_eq!(done.job_id.as_ref(), Some(&c.job_id));
    assert_eq!(
        names(&steps),
        [
            "job_found",
            "scheduler_differs_from_spec",
            "resource_requirements_updated",
            "parallelism_verified"
        ]
    );
    assert!(c.server.stop_requests().is_empty());
}

#[tokio::test]
async fn an_adaptive_rescale_waits_out_the_cooldown_it_reads_from_the_cluster() {
    let c = cluster().await;
    c.server.enable_adaptive_scheduler();
    // The job has just started: the scheduler will not rescale it for this long.
    let cooldown = Duration::from_secs(2);
    c.server.set_cooldown(cooldown);
    let started = Instant::now();
    // Shorter than the cooldown: the wait must be extended by what is left of it.
    let impatient = autoscaler::rescale::RescaleSettings {
        timeout: Duration::from_millis(500),
        ..settings()
    };

    let (result, steps) = run(&target(&c, true), 3, 33, impatient).await;

    result.expect("the rescale succeeds after the cooldown");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let left = steps[1].detail["cooldown_left_s"]
        .as_f64()
        .expect("seconds");
    assert!(left > 1.0 && left <= 2.0, "{left}");
    assert_eq!(c.server.job(&c.job_id).map(|j| j.parallelism), Some(3));
}

#[tokio::test]
async fn a_concurrent_requirements_update_is_retried() {
    let c = cluster().await;
    c.server.enable_adaptive_scheduler();
    c.server
        .set_requirements_update_time(Duration::from_secs(1));
    // Someone else's update is being persisted when the driver's arrives.
    let url = format!("{}/jobs/{}/resource-requirements", c.server.url(), c.job_id);
    let other = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let current: serde_json::Value = http.get(&url).send().await?.json().await?;
        http.put(&url).json(&current).send().await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (result, steps) = run(&target(&c, true), 3, 34, settings()).await;

    result.expect("the rescale succeeds");
    let other = other.await.expect("joined").expect("the other update");
    assert!(other.status().is_success());
    let retried = steps[1].detail["conflicts_retried"]
        .as_u64()
        .expect("a count");
    assert!(retried >= 1, "{steps:?}");
    assert_eq!(c.server.requirement_updates().len(), 2);
}

#[tokio::test]
async fn too_few_free_slots_are_reported_as_a_shortage_not_a_timeout() {
    let c = cluster().await;
    c.server.enable_adaptive_scheduler();
    c.server.set_slots(4);
    c.server.set_conf(
        "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout",
        "100 ms",
    );
    let patient = autoscaler::rescale::RescaleSettings {
        timeout: Duration::from_secs(60),
        ..settings()
    };
    let started = Instant::now();

    let (result, steps) = run(&target(&c, true), 8, 35, patient).await;

    let err = result.expect_err("4 slots cannot run 8");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err.problem,
        Problem::SlotShortage {
            asked: 8,
            running_at: 4,
            free_slots: 0,
            needed_slots: 4
        }
    );
    assert_eq!(
        err.situation,
        Situation::RequirementsSet {
            job_id: c.job_id.clone(),
            parallelism: 8
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("needs 4 more task slots and the cluster has 0 free"),
        "{message}"
    );
    assert!(err.is_transient(), "TaskManagers may still be coming");
    assert_eq!(
        names(&steps),
        ["job_found", "resource_requirements_updated"]
    );
    // The scheduler runs the job at what the slots allow meanwhile.
    assert_eq!(c.server.job(&c.job_id).map(|j| j.parallelism), Some(4));
}
