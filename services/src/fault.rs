//! Test-only pause points, compiled in and inert unless `AUTOSCALER_TEST_PAUSE_AT` names one. The
//! kill tests (`services/tests/kill.rs`) start a role with `AUTOSCALER_TEST_PAUSE_AT=<point>`: when the
//! process reaches that point it writes `<point> <pid>` to the file `AUTOSCALER_TEST_PAUSE_MARKER`
//! names and waits there forever, so the test can SIGKILL it exactly there. Never set them in
//! production: a paused process does no more work on that decision.

use std::sync::OnceLock;

/// Every pause point, in the order a decision meets them.
pub const POINTS: &[&str] = &[
    // The manager's decision row is inserted, its task not yet (one open transaction).
    MANAGER_RECORDED,
    // The worker pushed the commit; the decision does not say `committed` yet.
    WORKER_PUSHED,
    // The decision says `committed`; the sync has not started.
    WORKER_COMMITTED,
    // Argo CD was asked to sync; the worker is following it.
    WORKER_FOLLOWING_SYNC,
    // The engine accepted the rescale to the new parallelism; the worker has not verified it.
    WORKER_ENGINE_RESTART,
    // The webhook moved the decision to `merged`; its sync task not yet (one open transaction).
    WEBHOOK_MERGE,
];

pub const MANAGER_RECORDED: &str = "manager_recorded";
pub const WORKER_PUSHED: &str = "worker_pushed";
pub const WORKER_COMMITTED: &str = "worker_committed";
pub const WORKER_FOLLOWING_SYNC: &str = "worker_following_sync";
pub const WORKER_ENGINE_RESTART: &str = "worker_engine_restart";
pub const WEBHOOK_MERGE: &str = "webhook_merge";

/// Waits forever at `point` if `AUTOSCALER_TEST_PAUSE_AT` names it; returns at once otherwise.
pub async fn pause_at(point: &'static str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("AUTOSCALER_TEST_PAUSE_AT").ok());
    if at.as_deref() != Some(point) {
        return;
    }
    tracing::warn!(
        point,
        "paused at a test pause point (AUTOSCALER_TEST_PAUSE_AT) until killed"
    );
    if let Some(marker) = std::env::var_os("AUTOSCALER_TEST_PAUSE_MARKER") {
        let _ = std::fs::write(marker, format!("{point} {}\n", std::process::id()));
    }
    std::future::pending::<()>().await;
}
