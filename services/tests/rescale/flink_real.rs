//! The driver against a real Flink 2.3 running the probe job: one cluster per scheduler, several
//! scenarios in turn on each. The driver polls at its production interval, so the printed times are
//! what a worker sees.

use std::time::{Duration, Instant};

use autoscaler::rescale::{
    FlinkJob, Problem, Recorded, RescaleMethod, RescaleSettings, RescaleTarget, Situation,
};
use serde_json::{Value, json};
use test_support::flink_cluster::{FlinkCluster, FlinkOptions, Scheduler};
use test_support::flink_probe::{self, ProbeJob};

use super::{names, run, run_after};

const NAME: &str = "probe-rescale";

/// Production polling, a deadline that fits a test.
fn settings() -> RescaleSettings {
    RescaleSettings {
        timeout: Duration::from_secs(120),
        ..RescaleSettings::default()
    }
}

struct Real {
    cluster: FlinkCluster,
    jar: String,
    probe: ProbeJob,
}

impl Real {
    async fn start(options: FlinkOptions, parallelism: u32) -> Real {
        let cluster = FlinkCluster::start(options)
            .await
            .expect("a real Flink cluster starts");
        let jar = cluster
            .upload_jar(&flink_probe::jar().expect("the probe job builds"))
            .await
            .expect("the jar uploads");
        // The probe's files live in the cluster's work directory, which goes with it.
        let probe = ProbeJob::new(NAME, &cluster.dir().join("probe")).expect("a probe job");
        probe.set_rate(200).expect("the rate file is written");
        let jid = cluster
            .submit(&jar, &probe.program(), parallelism)
            .await
            .expect("the probe job starts");
        cluster
            .wait_running(&jid, parallelism, Duration::from_secs(90))
            .await
            .expect("the probe job runs");
        Real {
            cluster,
            jar,
            probe,
        }
    }

    fn target(&self, spec_adaptive: bool) -> RescaleTarget {
        let program = self.probe.program();
        RescaleTarget::Flink(FlinkJob {
            rest_url: self.cluster.rest_url().parse().expect("URL parses"),
            job_name: NAME.to_owned(),
            jar_id: self.jar.clone(),
            entry_class: Some(program.entry_class),
            program_args: program.args,
            savepoint_dir: None,
            adaptive_scheduler: spec_adaptive,
        })
    }

    /// `GET /jobs/{id}`: every vertex at `parallelism`, every subtask RUNNING.
    async fn assert_fully_running(&self, job_id: &str, parallelism: u32) {
        let details: Value = reqwest::get(format!("{}/jobs/{job_id}", self.cluster.rest_url()))
            .await
            .expect("details")
            .json()
            .await
            .expect("JSON details");
        assert_eq!(details["state"], "RUNNING", "{details}");
        for v in details["vertices"].as_array().expect("vertices") {
            assert_eq!(v["parallelism"], parallelism, "{v}");
            assert_eq!(v["status"], "RUNNING", "{v}");
            assert_eq!(v["tasks"]["RUNNING"], parallelism, "{v}");
        }
    }
}

#[tokio::test]
async fn a_real_flink_with_the_default_scheduler_is_rescaled_by_savepoint() {
    let store = Duration::from_secs(10);
    let real = Real::start(
        FlinkOptions {
            scheduler: Scheduler::Default,
            slots_per_task_manager: 4,
            conf: vec![(
                "rest.async.store-duration".to_owned(),
                format!("{} s", store.as_secs()),
            )],
            ..FlinkOptions::default()
        },
        2,
    )
    .await;

    // 2 → 1 with a spec that expects the adaptive scheduler: the job says Default, and that wins.
    let started = Instant::now();
    let (result, steps) = run(&real.target(true), 1, 101, settings()).await;
    let done = result.expect("the rescale succeeds");
    eprintln!(
        "savepoint path 2 -> 1: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(done.method, RescaleMethod::SavepointResubmit);
    assert!(
        names(&steps).contains(&"scheduler_differs_from_spec"),
        "{steps:?}"
    );
    let job = done.job_id.expect("a new job");
    real.assert_fully_running(&job, 1).await;

    // 1 → 2, first with a jar Flink does not have: the job is left stopped, its savepoint known.
    let mut no_jar = real.target(false);
    if let RescaleTarget::Flink(job) = &mut no_jar {
        job.jar_id = "00000000-0000-0000-0000-000000000000_gone.jar".to_owned();
    }
    let (result, steps) = run(&no_jar, 2, 102, settings()).await;
    let err = result.expect_err("the jar is missing");
    assert!(matches!(err.problem, Problem::JarMissing { .. }), "{err}");
    assert!(!err.is_transient());
    let Situation::Restartable { savepoint, .. } = &err.situation else {
        panic!("restartable: {err}");
    };
    assert_eq!(
        names(&steps),
        [
            "job_found",
            "savepoint_triggered",
            "savepoint_completed",
            "job_stopped"
        ]
    );
    // Flink forgets the operation's result after rest.async.store-duration.
    let http = reqwest::Client::new();
    let operation = format!(
        "{}/jobs/{job}/savepoints/{}",
        real.cluster.rest_url(),
        autoscaler::rescale::trigger_id(102)
    );
    let deadline = Instant::now() + store + Duration::from_secs(60);
    while http
        .get(&operation)
        .send()
        .await
        .expect("poll")
        .status()
        .is_success()
    {
        assert!(Instant::now() < deadline, "the result never expired");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The retry, whose record shows only the stop: the savepoint comes from the checkpoint history.
    let recorded = Recorded::from_steps(&json!([
        {"step": "savepoint_triggered", "detail": steps[1].detail},
    ]));
    let started = Instant::now();
    let (result, steps) = run_after(&real.target(false), 2, 102, &recorded, settings()).await;
    let done = result.expect("the retry resubmits");
    eprintln!(
        "resubmission after the result expired 1 -> 2: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(steps[0].step, "savepoint_recovered");
    assert_eq!(steps[0].detail["from"], "checkpoint_history");
    assert_eq!(done.savepoint.as_ref(), Some(savepoint));
    real.assert_fully_running(&done.job_id.expect("a new job"), 2)
        .await;

    // And once more the plain way, for the timing.
    let started = Instant::now();
    let (result, _) = run(&real.target(false), 1, 103, settings()).await;
    let done = result.expect("the rescale succeeds");
    eprintln!(
        "savepoint path 2 -> 1: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    real.assert_fully_running(&done.job_id.expect("a new job"), 1)
        .await;
}

#[tokio::test]
async fn a_real_flink_with_the_adaptive_scheduler_is_rescaled_in_place() {
    let cooldown = Duration::from_secs(5);
    let real = Real::start(
        FlinkOptions {
            scheduler: Scheduler::Adaptive,
            slots_per_task_manager: 2,
            // Shorter than Flink's 30 s and 60 s, so the test does not wait minutes; the driver
            // reads them from the cluster.
            conf: vec![
                (
                    "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling".to_owned(),
                    format!("{} s", cooldown.as_secs()),
                ),
                (
                    "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout"
                        .to_owned(),
                    "3 s".to_owned(),
                ),
            ],
            ..FlinkOptions::default()
        },
        1,
    )
    .await;
    let job = real
        .cluster
        .running_job(NAME, Duration::from_secs(10))
        .await
        .expect("the job runs");

    // 1 → 2 with a spec that does not expect the adaptive scheduler: the job says Adaptive.
    let started = Instant::now();
    let (result, steps) = run(&real.target(false), 2, 201, settings()).await;
    let done = result.expect("the rescale succeeds");
    eprintln!(
        "adaptive path 1 -> 2: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(done.method, RescaleMethod::ResourceRequirements);
    assert_eq!(
        done.job_id.as_ref(),
        Some(&job),
        "the same job, rescaled in place"
    );
    assert!(
        names(&steps).contains(&"scheduler_differs_from_spec"),
        "{steps:?}"
    );
    real.assert_fully_running(&job, 2).await;

    // 2 → 1 right after: the cooldown since the last rescale is waited out, not timed out on.
    let started = Instant::now();
    let (result, _) = run(&real.target(true), 1, 202, settings()).await;
    result.expect("the rescale succeeds");
    eprintln!(
        "adaptive path 2 -> 1: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    real.assert_fully_running(&job, 1).await;

    // 1 → 4 with 2 slots: a slot shortage, reported once the scheduler has settled.
    let started = Instant::now();
    let (result, _) = run(&real.target(true), 4, 203, settings()).await;
    let err = result.expect_err("2 slots cannot run 4");
    let took = started.elapsed();
    eprintln!(
        "adaptive slot shortage reported after {:.1} s",
        took.as_secs_f64()
    );
    assert!(
        matches!(err.problem, Problem::SlotShortage { asked: 4, .. }),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(
        matches!(&err.situation, Situation::RequirementsSet { job_id, parallelism: 4 } if *job_id == job),
        "{err}"
    );
}
