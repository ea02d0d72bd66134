//! Stop with a savepoint, then resubmit the jar from it (§5.1): works with any scheduler.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::super::error::{Problem, RescaleError, Situation};
use super::super::{RescaleMethod, RescaleStep, Rescaled};
use super::{Ctx, ENDED, recovered, verified, wait_running};

/// Where this attempt starts.
pub(super) enum Start {
    /// Post the stop (idempotent for our trigger id).
    Trigger,
    /// An earlier attempt posted it and Flink still has the operation: read its result.
    Resume,
    /// An earlier attempt stopped the job and its savepoint is known: resubmit from it.
    Stopped(String),
}

pub(super) async fn rescale(
    cx: &Ctx<'_>,
    job_id: &str,
    start: Start,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    let pending = || Situation::SavepointPending {
        job_id: job_id.to_owned(),
        trigger_id: cx.trigger_id.to_owned(),
    };
    let savepoint = match start {
        Start::Stopped(savepoint) => savepoint,
        Start::Trigger | Start::Resume => {
            if matches!(start, Start::Trigger) {
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
            let savepoint = match savepoint_of_stop(cx, job_id).await? {
                (location, None) => {
                    record(RescaleStep::new(
                        "savepoint_completed",
                        json!({"job_id": job_id, "location": location}),
                    ));
                    location
                }
                (location, Some(from)) => {
                    record(RescaleStep::new(
                        "savepoint_recovered",
                        json!({"job_id": job_id, "location": location, "from": from}),
                    ));
                    location
                }
            };
            // Resubmitting while the old job still holds its slots would start a second copy.
            let state = wait_ended(cx, job_id)
                .await
                .map_err(|p| RescaleError::new("waiting for the job to stop", p, pending()))?;
            record(RescaleStep::new(
                "job_stopped",
                json!({"job_id": job_id, "state": state}),
            ));
            savepoint
        }
    };

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
    let details = wait_running(cx, &new_job, cx.settings.timeout, |_| true)
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

/// The savepoint our stop produced (with where it was found, when not in the operation's result),
/// or the error that says where the job is.
async fn savepoint_of_stop(
    cx: &Ctx<'_>,
    job_id: &str,
) -> Result<(String, Option<&'static str>), RescaleError> {
    let pending = || Situation::SavepointPending {
        job_id: job_id.to_owned(),
        trigger_id: cx.trigger_id.to_owned(),
    };
    let failed = match wait_savepoint(cx, job_id).await {
        Ok(Ok(location)) => return Ok((location, None)),
        Ok(Err(failed)) => failed,
        // The operation's result expired before we read it (`rest.async.store-duration`).
        Err(Problem::NotFound(message)) => Failed {
            cause: format!("the savepoint operation is gone: {message}"),
            job_gone: false,
        },
        Err(problem) => {
            return Err(RescaleError::new(
                "taking the savepoint",
                problem,
                pending(),
            ));
        }
    };
    // Flink leaves the job running when the savepoint fails; say what it is doing now.
    let state = cx.api.job_status(job_id).await;
    let ended = match &state {
        Ok(s) => ENDED.contains(&s.as_str()),
        Err(Problem::NotFound(_)) => true,
        Err(_) => false,
    };
    if ended && cx.recorded.stopped(job_id) {
        // An earlier attempt stopped it; this attempt's operation is a new one that found no job.
        if let Some((location, from)) = recovered(cx, job_id)
            .await
            .map_err(|p| RescaleError::new("finding the savepoint", p, pending()))?
        {
            return Ok((location, Some(from)));
        }
    }
    let state = state.unwrap_or_else(|p| format!("in an unknown state ({p})"));
    let situation = if ended || failed.job_gone {
        Situation::JobGone {
            job_id: job_id.to_owned(),
            state: state.clone(),
        }
    } else {
        Situation::JobStillRunning {
            job_id: job_id.to_owned(),
            state: state.clone(),
        }
    };
    let problem = if failed.job_gone {
        Problem::JobEnded {
            job_id: job_id.to_owned(),
            state,
        }
    } else {
        Problem::SavepointFailed {
            cause: failed.cause,
        }
    };
    Err(RescaleError::new(
        "taking the savepoint",
        problem,
        situation,
    ))
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

/// A savepoint operation that completed with a failure.
struct Failed {
    cause: String,
    /// Flink found no job to stop: it had ended before the stop reached it.
    job_gone: bool,
}

/// Polls the operation until COMPLETED: `Ok(Ok(location))` or `Ok(Err(failure))`.
async fn wait_savepoint(cx: &Ctx<'_>, job_id: &str) -> Result<Result<String, Failed>, Problem> {
    let deadline = Instant::now() + cx.settings.timeout;
    loop {
        let result = cx.api.savepoint(job_id, cx.trigger_id).await?;
        if result.status.id == "COMPLETED" {
            let operation = result.operation.ok_or_else(|| {
                Problem::Malformed("a COMPLETED savepoint operation without `operation`".to_owned())
            })?;
            return match (operation.location, operation.failure_cause) {
                (Some(location), _) => Ok(Ok(location)),
                (None, Some(cause)) => {
                    let exception = cause.exception();
                    Ok(Err(Failed {
                        cause: exception.summary(),
                        job_gone: exception.names("FlinkJobNotFoundException"),
                    }))
                }
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

/// Polls `GET /jobs/{jobid}/status` (fresh, unlike the job's details) until the job has ended;
/// returns that state.
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

/// `JarRunRequestBody`. `restoreMode` (`claimMode` in 2.x) is left to the cluster's default: its
/// name and values differ between Flink 1.x and 2.x (§5.1 item 4). Only `programArgsList`: Flink
/// 2.x silently ignores the old `programArgs` string.
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
