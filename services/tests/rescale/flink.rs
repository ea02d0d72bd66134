//! Flink: the savepoint path end to end, retries, and the adaptive scheduler.

use std::time::Duration;

use autoscaler::rescale::{FlinkJob, Problem, RescaleMethod, RescaleTarget, Situation, trigger_id};
use serde_json::json;
use test_support::flink::{FlinkServer, JobState};

use super::{names, run, settings};

pub(crate) struct Cluster {
    pub(crate) server: FlinkServer,
    pub(crate) jar: String,
    pub(crate) job_id: String,
}

/// A session cluster running job "orders" at parallelism 2.
pub(crate) async fn cluster() -> Cluster {
    let server = FlinkServer::start()
        .await
        .expect("flink test server starts");
    let jar = server.add_jar("orders-job.jar");
    let job_id = server.start_job("orders", &jar, 2);
    Cluster {
        server,
        jar,
        job_id,
    }
}

pub(crate) fn target(c: &Cluster, adaptive: bool) -> RescaleTarget {
    RescaleTarget::Flink(FlinkJob {
        rest_url: c.server.url().parse().expect("server URL parses"),
        job_name: "orders".to_owned(),
        jar_id: c.jar.clone(),
        entry_class: Some("com.acme.OrdersJob".to_owned()),
        program_args: vec!["--env".to_owned(), "prod".to_owned()],
        savepoint_dir: Some("s3://ckpt/savepoints/orders".to_owned()),
        adaptive_scheduler: adaptive,
    })
}

#[tokio::test]
async fn stops_with_a_savepoint_resubmits_from_it_and_verifies_the_parallelism() {
    let c = cluster().await;
    c.server.set_polls_to_complete(2);

    let (result, steps) = run(&target(&c, false), 6, 41, settings()).await;

    let done = result.expect("the rescale succeeds");
    assert_eq!(done.method, RescaleMethod::SavepointResubmit);
    assert_eq!(
        names(&steps),
        [
            "job_found",
            "savepoint_triggered",
            "savepoint_completed",
            "job_stopped",
            "job_submitted",
            "parallelism_verified"
        ]
    );
    let savepoint = done.savepoint.clone().expect("a savepoint location");
    assert!(savepoint.starts_with("s3://ckpt/savepoints/orders/savepoint-"));
    assert_eq!(steps[2].detail["location"], json!(savepoint));
    assert_eq!(
        c.server.stop_requests(),
        [
            json!({"drain": false, "formatType": "CANONICAL", "triggerId": trigger_id(41),
                "targetDirectory": "s3://ckpt/savepoints/orders"})
        ]
    );
    assert_eq!(
        c.server.submissions(),
        [
            json!({"parallelism": 6, "savepointPath": savepoint, "allowNonRestoredState": false,
                "entryClass": "com.acme.OrdersJob", "programArgsList": ["--env", "prod"]})
        ]
    );
    let old = c.server.job(&c.job_id).expect("old job listed");
    assert_eq!(old.state, JobState::Finished);
    let live = c.server.live_jobs("orders");
    assert_eq!(live.len(), 1, "exactly one job runs: {live:?}");
    assert_eq!(Some(&live[0].jid), done.job_id.as_ref());
    assert_eq!(live[0].vertex_parallelism, [6, 6, 6]);
    assert_eq!(live[0].restored_from.as_deref(), Some(savepoint.as_str()));
    assert_eq!(c.server.rescaling_calls(), 0);
}

#[tokio::test]
async fn the_trigger_id_is_32_hex_digits_and_stable_per_decision() {
    let id = trigger_id(7);
    assert_eq!(id.len(), 32);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(id, trigger_id(7));
    assert_ne!(id, trigger_id(8));
}

#[tokio::test]
async fn a_retry_after_an_interrupted_savepoint_reuses_the_operation() {
    let c = cluster().await;
    c.server.set_polls_to_complete(3);
    // The first attempt gives up while the savepoint is still in progress, as a crash would.
    let impatient = autoscaler::rescale::RescaleSettings {
        timeout: Duration::ZERO,
        ..settings()
    };

    let (first, _) = run(&target(&c, false), 4, 9, impatient).await;
    let err = first.expect_err("the first attempt times out");
    assert!(matches!(err.problem, Problem::TimedOut { .. }), "{err}");
    assert!(
        matches!(&err.situation, Situation::SavepointPending { trigger_id: t, .. } if *t == trigger_id(9)),
        "{err}"
    );
    assert!(err.is_transient());

    let (second, steps) = run(&target(&c, false), 4, 9, settings()).await;
    let done = second.expect("the retry completes the rescale");
    assert_eq!(c.server.savepoint_operations(), 1, "one savepoint, not two");
    let triggers: Vec<_> = c
        .server
        .stop_requests()
        .iter()
        .map(|r| r["triggerId"].clone())
        .collect();
    assert_eq!(triggers, [json!(trigger_id(9)), json!(trigger_id(9))]);
    assert_eq!(names(&steps).last(), Some(&"parallelism_verified"));
    assert_eq!(c.server.live_jobs("orders")[0].parallelism, 4);

    // A third attempt finds the job already rescaled and changes nothing.
    let (third, steps) = run(&target(&c, false), 4, 9, settings()).await;
    let again = third.expect("the repeat succeeds");
    assert_eq!(again.method, RescaleMethod::AlreadyAtParallelism);
    assert_eq!(again.job_id, done.job_id);
    assert_eq!(names(&steps), ["already_at_parallelism"]);
    assert_eq!(c.server.stop_requests().len(), 2);
    assert_eq!(c.server.submissions().len(), 1);
}

#[tokio::test]
async fn the_adaptive_scheduler_is_rescaled_in_place_without_a_savepoint() {
    let c = cluster().await;
    c.server.enable_adaptive_scheduler();
    c.server.set_polls_to_complete(2);

    let (result, steps) = run(&target(&c, true), 5, 3, settings()).await;

    let done = result.expect("the rescale succeeds");
    assert_eq!(done.method, RescaleMethod::ResourceRequirements);
    assert_eq!(
        done.job_id.as_ref(),
        Some(&c.job_id),
        "the same job, not a new one"
    );
    assert_eq!(
        names(&steps),
        [
            "job_found",
            "resource_requirements_updated",
            "parallelism_verified"
        ]
    );
    assert!(c.server.stop_requests().is_empty());
    assert!(c.server.submissions().is_empty());
    let updates = c.server.requirement_updates();
    assert_eq!(updates.len(), 1);
    let bounds: Vec<_> = updates[0]
        .as_object()
        .expect("a map by vertex id")
        .values()
        .map(|v| {
            (
                v["parallelism"]["lowerBound"].clone(),
                v["parallelism"]["upperBound"].clone(),
            )
        })
        .collect();
    assert_eq!(bounds, vec![(json!(1), json!(5)); 3]);
    let job = c.server.job(&c.job_id).expect("job listed");
    assert_eq!((job.state, job.parallelism), (JobState::Running, 5));
    assert_eq!(c.server.rescaling_calls(), 0);
}
