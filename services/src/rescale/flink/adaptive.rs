//! In-place rescale with the adaptive scheduler's resource requirements (§5.3): no savepoint, no
//! resubmission; the scheduler restarts the job from its latest checkpoint at the new parallelism.
//!
//! The scheduler takes its time, as configured: nothing changes until
//! `…executing.cooldown-after-rescaling` (30 s) has passed since the job last started or rescaled,
//! and when slots are short it waits `…executing.resource-stabilization-timeout` (60 s) for more,
//! then runs at what the free slots allow. So the wait here covers the cooldown, and a job that
//! cannot get the slots it needs is reported as a slot shortage once the scheduler would have
//! settled, instead of at the timeout.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::super::error::{Problem, RescaleError, Situation};
use super::super::{RescaleMethod, RescaleStep, Rescaled};
use super::api::{JobDetails, Requirements, flink_duration};
use super::{Ctx, ENDED, verified};

const COOLDOWN_KEY: &str = "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling";
const COOLDOWN_DEFAULT: Duration = Duration::from_secs(30);
const STABILIZATION_KEY: &str =
    "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout";
const STABILIZATION_DEFAULT: Duration = Duration::from_secs(60);

pub(super) async fn rescale(
    cx: &Ctx<'_>,
    job_id: &str,
    details: &JobDetails,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    let n = cx.parallelism;
    let untouched = |p| {
        RescaleError::new(
            "updating the resource requirements",
            p,
            Situation::Untouched,
        )
    };
    // Without the configuration (an older Flink, a proxy that hides it) Flink's defaults hold.
    let config = cx.api.config().await.unwrap_or_default();
    let setting = |key: &str, default: Duration| {
        config
            .get(key)
            .and_then(|v| flink_duration(v))
            .unwrap_or(default)
    };
    let cooldown = setting(COOLDOWN_KEY, COOLDOWN_DEFAULT);
    let stabilization = setting(STABILIZATION_KEY, STABILIZATION_DEFAULT);
    let cooldown_left = match details.running_for_ms() {
        Some(ms) => cooldown.saturating_sub(Duration::from_millis(ms.max(0).unsigned_abs())),
        None => cooldown,
    };

    let mut requirements = cx.api.requirements(job_id).await.map_err(untouched)?;
    for vertex in requirements.values_mut() {
        let bounds = &mut vertex.parallelism;
        bounds.upper_bound = n;
        // Keep the lower bound the operator chose, unless it would now exceed the upper one.
        bounds.lower_bound = bounds.lower_bound.min(n);
    }
    // Flink persists the requirements before applying them, and answers an error if it could not:
    // whatever the answer, nothing was applied unless it is 200.
    let conflicts = put(cx, job_id, &requirements).await.map_err(untouched)?;
    record(RescaleStep::new(
        "resource_requirements_updated",
        json!({"job_id": job_id, "upper_bound": n, "vertices": requirements.len(),
               "conflicts_retried": conflicts, "cooldown_left_s": cooldown_left.as_secs_f64()}),
    ));

    let set = || Situation::RequirementsSet {
        job_id: job_id.to_owned(),
        parallelism: n,
    };
    let verify = |p| RescaleError::new("verifying the parallelism", p, set());
    // How long too few free slots may last before it is a shortage: until the scheduler would have
    // settled, plus a few polls for TaskManagers that are registering.
    let patience = cooldown_left + stabilization + cx.settings.poll_interval * 5;
    let details = wait(cx, job_id, cooldown_left + cx.settings.timeout, patience)
        .await
        .map_err(verify)?;
    record(verified(job_id, &details, n).map_err(verify)?);
    Ok(Rescaled {
        parallelism: n,
        method: RescaleMethod::ResourceRequirements,
        job_id: Some(job_id.to_owned()),
        savepoint: None,
    })
}

/// PUTs the requirements; Flink answers 409 while another update of them is being persisted, so
/// that is retried. Returns how many times it was.
async fn put(cx: &Ctx<'_>, job_id: &str, requirements: &Requirements) -> Result<u32, Problem> {
    let deadline = Instant::now() + cx.settings.timeout;
    let mut conflicts = 0;
    loop {
        match cx.api.set_requirements(job_id, requirements).await {
            Ok(()) => return Ok(conflicts),
            Err(Problem::Conflict(_)) if Instant::now() < deadline => {
                conflicts += 1;
                tokio::time::sleep(cx.settings.poll_interval).await;
            }
            Err(other) => return Err(other),
        }
    }
}

/// Reads the job until it runs at the parallelism with every subtask RUNNING. Fails with a slot
/// shortage once the cluster has had too few free slots for `patience`.
async fn wait(
    cx: &Ctx<'_>,
    job_id: &str,
    timeout: Duration,
    patience: Duration,
) -> Result<JobDetails, Problem> {
    let n = cx.parallelism;
    let deadline = Instant::now() + timeout;
    let mut short_since: Option<Instant> = None;
    loop {
        let details = cx.api.job(job_id).await?;
        if ENDED.contains(&details.state.as_str()) {
            return Err(Problem::JobEnded {
                job_id: job_id.to_owned(),
                state: details.state,
            });
        }
        if details.parallelism() == Some(n) && details.all_running() {
            return Ok(details);
        }
        // The details can be 3 s old and the overview is fresh, so a shortage must last to count.
        let cluster = cx.api.cluster().await?;
        let needed = details.slots(Some(n)).saturating_sub(details.slots(None));
        if cluster.slots_available < needed {
            let since = *short_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= patience {
                return Err(Problem::SlotShortage {
                    asked: n,
                    running_at: details.parallelism().unwrap_or(0),
                    free_slots: cluster.slots_available,
                    needed_slots: needed,
                });
            }
        } else {
            short_since = None;
        }
        if Instant::now() >= deadline {
            return Err(Problem::TimedOut {
                waiting_for: format!(
                    "job {job_id} to run at parallelism {n} with every subtask running (it is {}; \
                     the cluster has {} of {} slots free)",
                    details.describe(),
                    cluster.slots_available,
                    cluster.slots_total
                ),
                waited: timeout,
            });
        }
        tokio::time::sleep(cx.settings.poll_interval).await;
    }
}
