//! The real-Flink harness: a session cluster starts on loopback, grows and shrinks by one
//! TaskManager at a time, its reporters are scraped by the real Prometheus, and dropping it kills
//! every JVM it started.

use std::time::Duration;

use test_support::flink_cluster::{Application, FlinkCluster, FlinkOptions, Scheduler};
use test_support::flink_probe::{self, ProbeJob};
use test_support::prometheus::{Prometheus, ScrapeJob};
use test_support::wait::until_some;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cluster_grows_and_shrinks_is_scraped_and_dies_with_its_handle() {
    let mut cluster = FlinkCluster::start(FlinkOptions {
        slots_per_task_manager: 2,
        ..FlinkOptions::default()
    })
    .await
    .expect("a Flink cluster starts");
    let overview = cluster.overview().await.expect("overview");
    assert_eq!(overview["taskmanagers"], 1, "{overview}");
    assert_eq!(overview["slots-total"], 2, "{overview}");
    assert_eq!(overview["flink-version"], "2.3.0", "{overview}");

    cluster
        .start_task_manager()
        .await
        .expect("a second TaskManager");
    assert_eq!(
        cluster.overview().await.expect("overview")["slots-total"],
        4
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let prometheus = Prometheus::start(
        dir.path(),
        &[ScrapeJob {
            name: "flink".to_owned(),
            targets: cluster.metrics_targets(),
            labels: vec![("flink_cluster".to_owned(), "harness".to_owned())],
            targets_file: None,
            interval: Duration::from_secs(1),
        }],
    )
    .await
    .expect("Prometheus starts");
    // The JobManager's reporter and both TaskManagers' are up, and the JobManager counts two.
    until_some(
        "every reporter scraped",
        Duration::from_secs(60),
        || async {
            let up = prometheus
                .value("sum(up{job=\"flink\", flink_cluster=\"harness\"})")
                .await?;
            let registered = prometheus
                .value("max(flink_jobmanager_numRegisteredTaskManagers)")
                .await?;
            Ok((up == Some(3.0) && registered == Some(2.0)).then_some(()))
        },
    )
    .await
    .expect("the reporters are scraped");

    cluster
        .stop_task_manager()
        .await
        .expect("the newest TaskManager stops");
    assert_eq!(cluster.task_managers(), 1);
    assert_eq!(
        cluster.overview().await.expect("overview")["taskmanagers"],
        1
    );

    let pids: Vec<String> = std::fs::read_to_string(cluster.dir().join("pids"))
        .expect("the cluster lists its PIDs")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        pids.len(),
        3,
        "a JobManager and two TaskManagers were started"
    );
    let dir = cluster.dir().to_path_buf();
    drop(cluster);
    for pid in &pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "JVM {pid} outlived its cluster"
        );
    }
    assert!(!dir.exists(), "the work directory is removed");
}

/// Reactive mode: the application cluster runs its one job at every slot it has, so a TaskManager
/// more or less rescales it (Flink's fast-rescale settings, as the end-to-end test uses them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reactive_cluster_runs_its_job_at_every_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = ProbeJob::new("reactive-probe", dir.path()).expect("probe");
    probe.set_rate(50).expect("rate");
    let conf = [
        (
            "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout",
            "5s",
        ),
        (
            "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling",
            "5s",
        ),
        (
            "jobmanager.adaptive-scheduler.resource-stabilization-timeout",
            "5s",
        ),
    ];
    let mut cluster = FlinkCluster::start(FlinkOptions {
        scheduler: Scheduler::Reactive,
        slots_per_task_manager: 2,
        task_managers: 1,
        conf: conf
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        application: Some(Application {
            jar: flink_probe::jar().expect("the probe jar"),
            program: probe.program(),
        }),
    })
    .await
    .expect("a reactive cluster starts");
    let deadline = Duration::from_secs(120);
    let job = cluster
        .running_job("reactive-probe", deadline)
        .await
        .expect("the application runs");
    cluster.wait_running(&job, 2, deadline).await.expect("at 2");
    cluster
        .start_task_manager()
        .await
        .expect("a second TaskManager");
    cluster.wait_running(&job, 4, deadline).await.expect("at 4");
    cluster.stop_task_manager().await.expect("back to one");
    cluster
        .wait_running(&job, 2, deadline)
        .await
        .expect("at 2 again");
}
