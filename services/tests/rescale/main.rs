//! The rescale driver against a contract-faithful Flink REST test server and the pipeline engine's own
//! control router.

mod engine;
#[path = "../common/engine_control.rs"]
mod engine_control;
mod flink;
mod flink_adaptive;
mod flink_failures;
mod flink_real;
mod flink_recovery;

use std::time::Duration;

use autoscaler::rescale::{
    Recorded, RescaleError, RescaleSettings, RescaleStep, RescaleTarget, Rescaled, rescale,
};

/// Quick polls; deadlines generous enough for a loaded machine.
fn settings() -> RescaleSettings {
    RescaleSettings {
        poll_interval: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
    }
}

/// Runs one rescale; returns its outcome and the steps it recorded.
async fn run(
    target: &RescaleTarget,
    parallelism: u32,
    decision_id: i64,
    settings: RescaleSettings,
) -> (Result<Rescaled, RescaleError>, Vec<RescaleStep>) {
    run_after(
        target,
        parallelism,
        decision_id,
        &Recorded::none(),
        settings,
    )
    .await
}

/// Runs one rescale of a decision whose earlier attempts recorded `recorded`.
async fn run_after(
    target: &RescaleTarget,
    parallelism: u32,
    decision_id: i64,
    recorded: &Recorded,
    settings: RescaleSettings,
) -> (Result<Rescaled, RescaleError>, Vec<RescaleStep>) {
    let http = reqwest::Client::new();
    let mut steps = Vec::new();
    let mut record = |s: RescaleStep| steps.push(s);
    let result = rescale(
        &http,
        target,
        parallelism,
        decision_id,
        recorded,
        settings,
        &mut record,
    )
    .await;
    (result, steps)
}

fn names(steps: &[RescaleStep]) -> Vec<&'static str> {
    steps.iter().map(|s| s.step).collect()
}
