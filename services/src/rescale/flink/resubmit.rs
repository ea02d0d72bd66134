//! Stop with a savepoint, then resubmit the jar from it (§5.1): works with any scheduler.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::super::error::{Problem, RescaleError, Situation};
use super::super::{RescaleMethod, RescaleStep, Rescaled};
use super::{Ctx, ENDED, verified, wait_running};

/// `trigger`: post the stop request (idempotent for our trigger id); false when an earlier attempt
/// already stopped the job and only the operation's result is needed.
pub(super) async fn rescale(
    cx: &Ctx<'_>,
    job_id: &str,
    trigger: bool,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    let pending = || Situation::SavepointPending {
        job_id: job_id.to_owned(),
        trigger_id: cx.trigger_id.to_owned(),
    };
    if trigger {
        stop(cx, job_id, record).await.map_err(|(problem, moved)| {
            // Refused before Flink registered anything: the job was not touched.
            let situation = if moved {
                pending()
            } else {
                Situation::Untouched
            };
            RescaleError::new("stopping the job with a savepoint", problem, situation)
        })?;
    }

    let savepoint = match wait_savepoint(cx, job_id).await {
        Ok(Ok(location)) => location,
        Ok(Err(cause)) => {
            // Flink leaves the job running when the savepoint fails; say what it is doing now.
            let state = cx
                .api
                .job_status(job_id)
                .await
                .unwrap_or_else(|p| format!("in an unknown state ({p})"));
            return Err(RescaleError::new(
                "taking the savepoint",
                Problem::SavepointFailed { cause },
                Situation::JobStillRunning {
                    job_id: job_id.to_owned(),
                    state,
                },
            ));
        }
        Err(problem) => {
            return Err(RescaleError::new(
                "taking the savepoint",
                problem,
                pending(),
            ));
        }
    };
    record(RescaleStep::new(
        "savepoint_completed",
        json!({"job_id": job_id, "location": savepoint}),
    ));

    // Resubmitting while the old job still holds its slots would start a second copy of it.
    let state = wait_ended(cx, job_id)
        .await
        .map_err(|p| RescaleError::new("waiting for the job to stop", p, pending()))?;
    record(RescaleStep::new(
        "job_stopped",
        json!({"job_id": job_id, "state": state}),
    ));

    let restartable = || Situation::Restartable {
        savepoint: savepoint.clone(),
        jar_id: cx.job.jar_id.clone(),
        parallelism: cx.parallelism,
        entry_class: cx.job.entry_class.clone(),
        program_args: cx.job.program_args.clone(),
    };
    let new_job = cx
        .api
        .run_jar(&cx.job.jar_id, &run_body(cx, &savepoint))
        .await
        .map_err(|p| RescaleError::new("resubmitting the job", p, restartable()))?;
    record(RescaleStep::new(
        "job_submitted",
        json!({"job_id": new_job, "jar_id": cx.job.jar_id, "parallelism": cx.parallelism,
               "savepoint": savepoint}),
    ));

    let resubmitted = || Situation::Resubmitted {
        job_id: new_job.clone(),
        savepoint: savepoint.clone(),
        jar_id: cx.job.jar_id.clone(),
        parallelism: cx.parallelism,
    };
    let verify = |p| RescaleError::new("verifying the parallelism", p, resubmitted());
    let details = wait_running(&cx.api, &new_job, cx.settings, |_| true)
        .await
        .map_err(verify)?;
    record(verified(&new_job, &details, cx.parallelism).map_err(verify)?);
    Ok(Rescaled {
        parallelism: cx.parallelism,
        method: RescaleMethod::SavepointResubmit,
        job_id: Some(new_job),
        savepoint: Some(savepoint),
    })
}

/// Posts the stop. `Err((problem, moved))`: `moved` when the job may have started stopping.
async fn stop(
    cx: &Ctx<'_>,
    job_id: &str,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<(), (Problem, bool)> {
    // Not `drain`: it would emit MAX_WATERMARK and fire every event-time timer before the restart.
    let mut body = json!({"drain": false, "formatType": "CANONICAL", "triggerId": cx.trigger_id});
    if let Some(dir) = &cx.job.savepoint_dir {
        body["targetDirectory"] = dir.as_str().into();
    }
    let answered = cx
        .api
        .stop_with_savepoint(job_id, &body)
        .await
        .map_err(|p| {
            let refused = matches!(
                p,
                Problem::Refused { .. }
                    | Problem::NotFound(_)
                    | Problem::Unauthorized(_)
                    | Problem::Forbidden(_)
            );
            (p, !refused)
        })?;
    if answered != cx.trigger_id {
        return Err((
            Problem::Malformed(format!(
                "asked for trigger id {} and got {answered}",
                cx.trigger_id
            )),
            true,
        ));
    }
    record(RescaleStep::new(
        "savepoint_triggered",
        json!({"job_id": job_id, "trigger_id": cx.trigger_id,
               "target_directory": cx.job.savepoint_dir}),
    ));
    Ok(())
}

/// Polls the operation until COMPLETED: `Ok(Ok(location))` or `Ok(Err(failure cause))`.
async fn wait_savepoint(cx: &Ctx<'_>, job_id: &str) -> Result<Result<String, String>, Problem> {
    let deadline = Instant::now() + cx.settings.timeout;
    loop {
        let result = cx.api.savepoint(job_id, cx.trigger_id).await?;
        if result.status.id == "COMPLETED" {
            let operation = result.operation.ok_or_else(|| {
                Problem::Malformed("a COMPLETED savepoint operation without `operation`".to_owned())
            })?;
            return match (operation.location, operation.failure_cause) {
                (Some(location), _) => Ok(Ok(location)),
                (None, Some(cause)) => Ok(Err(cause.summary())),
                (None, None) => Err(Problem::Malformed(
                    "a COMPLETED savepoint operation with neither location nor failure-cause"
                        .to_owned(),
                )),
            };
        }
        if result.status.id != "IN_PROGRESS" {
            return Err(Problem::Malformed(format!(
                "unknown operation status {:?}",
                result.status.id
            )));
        }
        if Instant::now() >= deadline {
            return Err(Problem::TimedOut {
                waiting_for: format!("savepoint operation {}", cx.trigger_id),
                waited: cx.settings.timeout,
            });
        }
        tokio::time::sleep(cx.settings.poll_interval).await;
    }
}

/// Polls `GET /jobs/{jobid}/status` until the job has ended; returns that state.
async fn wait_ended(cx: &Ctx<'_>, job_id: &str) -> Result<String, Problem> {
    let deadline = Instant::now() + cx.settings.timeout;
    loop {
        let state = cx.api.job_status(job_id).await?;
        if ENDED.contains(&state.as_str()) {
            return Ok(state);
        }
        if Instant::now() >= deadline {
            return Err(Problem::TimedOut {
                waiting_for: format!("job {job_id} to finish after its savepoint (it is {state})"),
                waited: cx.settings.timeout,
            });
        }
        tokio::time::sleep(cx.settings.poll_interval).await;
    }
}

/// `JarRunRequestBody`. `restoreMode` is left to the cluster's default: its name and values differ
/// between Flink 1.x and 2.x (§5.1 item 4).
fn run_body(cx: &Ctx<'_>, savepoint: &str) -> Value {
    let mut body = json!({
        "parallelism": cx.parallelism,
        "savepointPath": savepoint,
        "allowNonRestoredState": false,
    });
    if let Some(class) = &cx.job.entry_class {
        body["entryClass"] = class.as_str().into();
    }
    if !cx.job.program_args.is_empty() {
        body["programArgsList"] = cx.job.program_args.clone().into();
    }
    body
}
