//! The Flink REST contract the restart driver depends on, checked with the same assertions against a
//! real Flink 2.3 session cluster and against the Flink test server, which is thereby proven
//! faithful. One test per cluster runs every check of its scheduler in turn; the real clusters are
//! shared that way because each costs about 20 s and 1 GiB.

mod adaptive_scheduler;
mod default_scheduler;
mod real;
mod rest;

use std::time::Duration;

use rest::Target;
use test_support::flink::FlinkServer;

/// Short enough for the expiry check, long enough for the checks that re-read a result.
pub(crate) const STORE_DURATION: Duration = Duration::from_secs(20);
/// The adaptive scheduler's cooldown in the adaptive clusters (Flink's default is 30 s).
pub(crate) const COOLDOWN: Duration = Duration::from_secs(10);
/// Task slots of the adaptive clusters.
pub(crate) const ADAPTIVE_SLOTS: u32 = 2;

/// The test server set up as the real clusters are: the same store duration, Flink's 3 s details
/// cache.
async fn double(name: &str) -> (FlinkServer, Target) {
    let server = FlinkServer::start()
        .await
        .expect("flink test server starts");
    server.set_operation_store_duration(STORE_DURATION);
    server.set_details_cache(Duration::from_secs(3));
    let jar = server.add_jar("probe-job.jar");
    let target = Target {
        label: "test server",
        url: server.url(),
        http: reqwest::Client::new(),
        jar,
        args: vec!["--name".to_owned(), name.to_owned()],
        name: name.to_owned(),
    };
    (server, target)
}

pub(crate) async fn default_checks(t: &Target) {
    default_scheduler::errors_have_flinks_shapes(t).await;
    let stopped = default_scheduler::savepoint_lifecycle(t).await;
    let running = default_scheduler::resubmission(t, &stopped).await;
    default_scheduler::run_refusals(t, &stopped).await;
    default_scheduler::requirements_are_refused(t, &running, &stopped.jid).await;
    default_scheduler::results_expire(t, &stopped, STORE_DURATION).await;
    t.cancel(&running).await;
}

/// Returns how many concurrent PUTs were refused with 409.
pub(crate) async fn adaptive_checks(t: &Target) -> usize {
    let job = adaptive_scheduler::requirements(t).await;
    adaptive_scheduler::rescale_waits_out_the_cooldown(t, &job, COOLDOWN).await;
    adaptive_scheduler::settles_at_the_free_slots(
        t,
        &job,
        ADAPTIVE_SLOTS,
        COOLDOWN + rest::DEADLINE,
    )
    .await;
    let conflicts = adaptive_scheduler::concurrent_updates(t, &job).await;
    t.cancel(&job.jid).await;
    conflicts
}

#[tokio::test]
async fn the_test_server_keeps_the_default_scheduler_contract() {
    let (_server, t) = double("contract-default").await;
    default_checks(&t).await;
}

#[tokio::test]
async fn the_test_server_keeps_the_adaptive_scheduler_contract() {
    let (server, t) = double("contract-adaptive").await;
    server.enable_adaptive_scheduler();
    server.set_slots(ADAPTIVE_SLOTS);
    server.set_cooldown(COOLDOWN);
    // Persisting takes a moment, so four PUTs at once do collide here.
    server.set_requirements_update_time(Duration::from_millis(300));
    let conflicts = adaptive_checks(&t).await;
    assert!(conflicts > 0, "concurrent PUTs collide");
}
