//! Rescaling a Flink job over the REST API (external-apis.md §5.1, §5.3, §6 item 6). Never calls
//! `PATCH /jobs/{jobid}/rescaling`: Flink answers it 503 (FLINK-12312).
//!
//! What a real Flink 2.3 does that shapes this code:
//! - `GET /jobs/{id}` is cached for about 3 s; `/jobs/overview` and `/jobs/{id}/status` are fresh.
//! - A job shows RUNNING while its subtasks still deploy and restore: it is verified only when
//!   every subtask of every vertex runs.
//! - Each job says its scheduler (`schedulerType`): the adaptive one is rescaled in place, any other
//!   stopped with a savepoint and resubmitted. The spec's `adaptive_scheduler` is an expectation; a
//!   job that says otherwise wins, and the difference is recorded as a step.
//! - A savepoint operation's result is kept for `rest.async.store-duration` only; after that, the
//!   savepoint of a job this decision stopped is found in the decision's record or in the finished
//!   job's checkpoint history.

mod adaptive;
mod api;
mod exception;
mod reactive;
mod resubmit;

pub(super) use reactive::confirm as confirm_reactive;

use serde_json::json;
use tokio::time::Instant;

use super::error::{Problem, RescaleError, Situation};
use super::{FlinkJob, Recorded, RescaleMethod, RescaleSettings, RescaleStep, Rescaled};
use api::{FlinkApi, JobDetails, JobOverview};

/// States from which a job will not run again (the JobStatus enum's globally terminal ones, plus
/// SUSPENDED, after which the job is not ours to stop).
const ENDED: [&str; 4] = ["FINISHED", "FAILED", "CANCELED", "SUSPENDED"];

/// What every phase of one rescale needs.
struct Ctx<'a> {
    api: FlinkApi<'a>,
    job: &'a FlinkJob,
    parallelism: u32,
    trigger_id: &'a str,
    recorded: &'a Recorded,
    settings: &'a RescaleSettings,
}

pub(super) async fn rescale(
    http: &reqwest::Client,
    job: &FlinkJob,
    parallelism: u32,
    trigger_id: &str,
    recorded: &Recorded,
    settings: &RescaleSettings,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    let cx = Ctx {
        api: FlinkApi {
            http,
            base: &job.rest_url,
            timeout: settings.request_timeout,
        },
        job,
        parallelism,
        trigger_id,
        recorded,
        settings,
    };
    match find(&cx).await? {
        Found::Running(overview) => running(&cx, overview, record).await,
        Found::StoppedByUs { job_id } => {
            record(RescaleStep::new(
                "savepoint_resumed",
                json!({"job_id": job_id, "trigger_id": trigger_id}),
            ));
            resubmit::rescale(&cx, &job_id, resubmit::Start::Resume, record).await
        }
        Found::Stopped {
            job_id,
            savepoint,
            from,
        } => {
            record(RescaleStep::new(
                "savepoint_recovered",
                json!({"job_id": job_id, "location": savepoint, "from": from}),
            ));
            resubmit::rescale(&cx, &job_id, resubmit::Start::Stopped(savepoint), record).await
        }
    }
}

/// The one live job of that name: done already, or rescaled the way its scheduler allows.
async fn running(
    cx: &Ctx<'_>,
    overview: JobOverview,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    let untouched = |p| RescaleError::new("finding the job", p, Situation::Untouched);
    let job_id = overview.jid;
    let details = cx.api.job(&job_id).await.map_err(untouched)?;
    let current = details.parallelism().unwrap_or(0);
    if current == cx.parallelism && !ENDED.contains(&details.state.as_str()) {
        // A retry after the job was resubmitted (or a rescale someone else did); it counts once
        // every subtask runs.
        let details = wait_running(cx, &job_id, cx.settings.timeout, |_| true)
            .await
            .map_err(untouched)?;
        if details.parallelism() == Some(cx.parallelism) {
            record(RescaleStep::new(
                "already_at_parallelism",
                json!({"job_id": job_id, "parallelism": current}),
            ));
            let mut done = Rescaled::new(cx.parallelism, RescaleMethod::AlreadyAtParallelism);
            done.job_id = Some(job_id);
            return Ok(done);
        }
    }
    if details.state != "RUNNING" {
        return Err(untouched(Problem::JobNotRunning {
            job_id,
            state: details.state,
        }));
    }
    // Flink would refuse it, and only after the savepoint path had stopped the job.
    if let Some((max, vertex)) = details.max_parallelism()
        && cx.parallelism > max
    {
        return Err(RescaleError::new(
            "checking the parallelism",
            Problem::AboveMaxParallelism {
                asked: cx.parallelism,
                max,
                vertex: vertex.to_owned(),
            },
            Situation::Untouched,
        ));
    }
    let observed = overview.scheduler_type;
    let adaptive = match observed.as_deref() {
        Some(kind) => kind == "Adaptive",
        None => cx.job.adaptive_scheduler,
    };
    record(RescaleStep::new(
        "job_found",
        json!({"job_id": job_id, "name": cx.job.job_name, "parallelism": current,
               "scheduler": observed}),
    ));
    if observed.is_some() && adaptive != cx.job.adaptive_scheduler {
        record(RescaleStep::new(
            "scheduler_differs_from_spec",
            json!({"job_id": job_id, "scheduler": observed,
                   "spec_adaptive_scheduler": cx.job.adaptive_scheduler,
                   "method": if adaptive { "resource_requirements" } else { "savepoint_resubmit" }}),
        ));
    }
    if adaptive {
        adaptive::rescale(cx, &job_id, &details, record).await
    } else {
        resubmit::rescale(cx, &job_id, resubmit::Start::Trigger, record).await
    }
}

enum Found {
    /// The one live job of that name.
    Running(JobOverview),
    /// No live job, but a finished one holds our savepoint operation: an earlier attempt stopped it.
    StoppedByUs { job_id: String },
    /// No live job; an earlier attempt stopped this one, and Flink no longer has the operation.
    /// `from` says where the savepoint was found.
    Stopped {
        job_id: String,
        savepoint: String,
        from: &'static str,
    },
}

async fn find(cx: &Ctx<'_>) -> Result<Found, RescaleError> {
    let untouched = |p| RescaleError::new("finding the job", p, Situation::Untouched);
    let job = cx.job;
    let mut named: Vec<_> = cx
        .api
        .jobs()
        .await
        .map_err(untouched)?
        .into_iter()
        .filter(|j| j.name == job.job_name)
        .collect();
    // Newest first: the job an interrupted attempt stopped is the last one of that name.
    named.sort_by_key(|j| std::cmp::Reverse(j.start_time));
    let mut live: Vec<_> = named
        .iter()
        .filter(|j| !ENDED.contains(&j.state.as_str()))
        .cloned()
        .collect();
    if live.len() > 1 {
        return Err(untouched(Problem::AmbiguousJob {
            job_name: job.job_name.clone(),
            job_ids: live.iter().map(|j| j.jid.clone()).collect(),
        }));
    }
    if let Some(one) = live.pop() {
        return Ok(Found::Running(one));
    }
    let finished: Vec<_> = named.iter().filter(|j| j.state == "FINISHED").collect();
    for candidate in finished.iter().take(3) {
        match cx.api.savepoint(&candidate.jid, cx.trigger_id).await {
            Ok(_) => {
                return Ok(Found::StoppedByUs {
                    job_id: candidate.jid.clone(),
                });
            }
            Err(Problem::NotFound(_)) => {}
            Err(other) => return Err(untouched(other)),
        }
    }
    // Flink has forgotten the operation (or never had it): what did earlier attempts record? Only
    // the last job this decision stopped, and only if no job of that name was stopped since (a
    // newer FAILED one is a resubmission that failed, which the savepoint is for).
    let newest_stopped = named
        .iter()
        .find(|j| j.state == "FINISHED" || j.state == "CANCELED");
    if let Some(stopped) = cx.recorded.last_stopped()
        && newest_stopped.is_none_or(|j| j.jid == stopped)
    {
        return match recovered(cx, stopped).await {
            Ok(Some((savepoint, from))) => Ok(Found::Stopped {
                job_id: stopped.to_owned(),
                savepoint,
                from,
            }),
            Ok(None) => Err(RescaleError::new(
                "finding the savepoint",
                Problem::SavepointUnknown {
                    job_id: stopped.to_owned(),
                },
                Situation::StoppedSavepointUnknown {
                    job_id: stopped.to_owned(),
                },
            )),
            Err(p) => Err(RescaleError::new(
                "finding the savepoint",
                p,
                Situation::SavepointPending {
                    job_id: stopped.to_owned(),
                    trigger_id: cx.trigger_id.to_owned(),
                },
            )),
        };
    }
    Err(RescaleError::new(
        "finding the job",
        Problem::NoRunningJob {
            job_name: job.job_name.clone(),
        },
        Situation::NothingRuns {
            job_name: job.job_name.clone(),
            newest: named.first().map(|j| (j.jid.clone(), j.state.clone())),
        },
    ))
}

/// The savepoint of `job_id`, which this decision stopped, once Flink no longer has the operation:
/// from the decision's record, else from the job's checkpoint history. `None` when neither knows.
async fn recovered(cx: &Ctx<'_>, job_id: &str) -> Result<Option<(String, &'static str)>, Problem> {
    if let Some(location) = cx.recorded.savepoint_of(job_id) {
        return Ok(Some((location.to_owned(), "decision_record")));
    }
    match cx.api.stop_savepoint(job_id).await {
        Ok(Some(location)) => Ok(Some((location, "checkpoint_history"))),
        // Flink no longer lists the job (its history expires after `jobstore.expiration-time`).
        Ok(None) | Err(Problem::NotFound(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Reads the job until `done` holds with every subtask RUNNING, and returns those details. `Err`
/// carries the problem only; the caller knows the situation.
async fn wait_running(
    cx: &Ctx<'_>,
    job_id: &str,
    timeout: std::time::Duration,
    mut done: impl FnMut(&JobDetails) -> bool,
) -> Result<JobDetails, Problem> {
    let deadline = Instant::now() + timeout;
    loop {
        let details = cx.api.job(job_id).await?;
        if ENDED.contains(&details.state.as_str()) {
            return Err(Problem::JobEnded {
                job_id: job_id.to_owned(),
                state: details.state,
            });
        }
        if details.all_running() && done(&details) {
            return Ok(details);
        }
        if Instant::now() >= deadline {
            return Err(Problem::TimedOut {
                waiting_for: format!(
                    "job {job_id} to run at parallelism {} with every subtask running (it is {})",
                    cx.parallelism,
                    details.describe()
                ),
                waited: timeout,
            });
        }
        tokio::time::sleep(cx.settings.poll_interval).await;
    }
}

/// The verification result as a step, or a mismatch.
fn verified(job_id: &str, details: &JobDetails, parallelism: u32) -> Result<RescaleStep, Problem> {
    let actual = details.parallelism().unwrap_or(0);
    if actual != parallelism {
        let vertices: Vec<_> = details
            .vertices
            .iter()
            .map(|v| format!("{}={}", v.name, v.parallelism))
            .collect();
        return Err(Problem::Mismatch {
            expected: parallelism,
            actual,
            detail: format!("job {job_id}: {}", vertices.join(", ")),
        });
    }
    Ok(RescaleStep::new(
        "parallelism_verified",
        json!({"job_id": job_id, "parallelism": actual, "vertices": details.vertex_record(),
               "all_subtasks_running": true}),
    ))
}
