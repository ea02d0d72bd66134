//! Real Flink 2.3 session clusters for the contract checks, running the probe job.

use std::time::Duration;

use test_support::flink_cluster::{FlinkCluster, FlinkOptions, Scheduler};
use test_support::flink_probe::{self, ProbeJob};

use crate::rest::Target;

/// What a check target on a real cluster keeps alive: the cluster (killed on drop), the probe's
/// files.
pub struct Real {
    _cluster: FlinkCluster,
    _probe: ProbeJob,
    _dir: tempfile::TempDir,
}

async fn start(name: &str, options: FlinkOptions) -> (Real, Target) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cluster = FlinkCluster::start(options)
        .await
        .expect("a real Flink cluster starts");
    let jar = flink_probe::jar().expect("the probe job builds");
    let jar_id = cluster.upload_jar(&jar).await.expect("the jar uploads");
    let probe = ProbeJob::new(name, dir.path()).expect("a probe job");
    probe.set_rate(50).expect("the rate file is written");
    let target = Target {
        label: "real Flink",
        url: cluster.rest_url(),
        http: reqwest::Client::new(),
        jar: jar_id,
        args: probe.args(),
        name: name.to_owned(),
    };
    let real = Real {
        _cluster: cluster,
        _probe: probe,
        _dir: dir,
    };
    (real, target)
}

/// Default scheduler, one TaskManager with 4 slots, operation results kept for `store`.
pub async fn default_cluster(name: &str, store: Duration) -> (Real, Target) {
    let options = FlinkOptions {
        scheduler: Scheduler::Default,
        slots_per_task_manager: 4,
        conf: vec![(
            "rest.async.store-duration".to_owned(),
            format!("{} s", store.as_secs()),
        )],
        ..FlinkOptions::default()
    };
    start(name, options).await
}

/// Adaptive scheduler, one TaskManager with `slots` slots, the rescale cooldown `cooldown` and a
/// short wait for resources (Flink's defaults: 30 s and 60 s), so a test does not wait minutes.
pub async fn adaptive_cluster(name: &str, slots: u32, cooldown: Duration) -> (Real, Target) {
    let seconds = |d: Duration| format!("{} s", d.as_secs());
    let options = FlinkOptions {
        scheduler: Scheduler::Adaptive,
        slots_per_task_manager: slots,
        conf: vec![
            (
                "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling".to_owned(),
                seconds(cooldown),
            ),
            (
                "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout".to_owned(),
                "3 s".to_owned(),
            ),
            (
                "jobmanager.adaptive-scheduler.resource-stabilization-timeout".to_owned(),
                "3 s".to_owned(),
            ),
        ],
        ..FlinkOptions::default()
    };
    start(name, options).await
}

#[tokio::test]
async fn a_real_flink_keeps_the_default_scheduler_contract() {
    let (_cluster, t) = default_cluster("contract-default", crate::STORE_DURATION).await;
    crate::default_checks(&t).await;
}

#[tokio::test]
async fn a_real_flink_keeps_the_adaptive_scheduler_contract() {
    let (_cluster, t) =
        adaptive_cluster("contract-adaptive", crate::ADAPTIVE_SLOTS, crate::COOLDOWN).await;
    let conflicts = crate::adaptive_checks(&t).await;
    eprintln!("real Flink: {conflicts} of 4 concurrent requirement updates answered 409");
}
