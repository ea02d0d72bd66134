//! Rescaling a Flink job over the REST API (external-apis.md §5.1, §5.3, §6 item 6). Never calls
//! `PATCH /jobs/{jobid}/rescaling`: Flink answers it 503 (FLINK-12312).

mod adaptive;
mod api;
mod resubmit;

use serde_json::json;
use tokio::time::Instant;

use super::error::{Problem, RescaleError, Situation};
use super::{FlinkJob, RescaleMethod, RescaleSettings, RescaleStep, Rescaled};
use api::{FlinkApi, JobDetails};

/// States from which a job will not run again (the JobStatus enum's globally terminal ones, plus
/// SUSPENDED, after which the job is not ours to stop).
const ENDED: [&str; 4] = ["FINISHED", "FAILED", "CANCELED", "SUSPENDED"];

/// What every phase of one rescale needs.
struct Ctx<'a> {
    api: FlinkApi<'a>,
    job: &'a FlinkJob,
    parallelism: u32,
    trigger_id: &'a str,
    settings: &'a RescaleSettings,
}

pub(super) async fn rescale(
    http: &reqwest::Client,
    job: &FlinkJob,
    parallelism: u32,
    trigger_id: &str,
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
        settings,
    };
    let api = &cx.api;
    let untouched = |p| RescaleError::new("finding the job", p, Situation::Untouched);
    match find(api, job, trigger_id).await.map_err(untouched)? {
        Found::Running { job_id } => {
            let details = api.job(&job_id).await.map_err(untouched)?;
            let current = details.parallelism().unwrap_or(0);
            if details.state == "RUNNING" && current == parallelism {
                // A retry after the job was resubmitted (or a rescale someone else did).
                record(RescaleStep::new(
                    "already_at_parallelism",
                    json!({"job_id": job_id, "parallelism": current}),
                ));
                let mut done = Rescaled::new(parallelism, RescaleMethod::AlreadyAtParallelism);
                done.job_id = Some(job_id);
                return Ok(done);
            }
            if details.state != "RUNNING" {
                return Err(untouched(Problem::JobNotRunning {
                    job_id,
                    state: details.state,
                }));
            }
            record(RescaleStep::new(
                "job_found",
                json!({"job_id": job_id, "name": job.job_name, "parallelism": current}),
            ));
            if job.adaptive_scheduler {
                adaptive::rescale(&cx, &job_id, record).await
            } else {
                resubmit::rescale(&cx, &job_id, true, record).await
            }
        }
        Found::StoppedByUs { job_id } => {
            record(RescaleStep::new(
                "savepoint_resumed",
                json!({"job_id": job_id, "trigger_id": trigger_id}),
            ));
            resubmit::rescale(&cx, &job_id, false, record).await
        }
    }
}

enum Found {
    /// The one live job of that name.
    Running { job_id: String },
    /// No live job, but a finished one holds our savepoint operation: an earlier attempt stopped it.
    StoppedByUs { job_id: String },
}

async fn find(api: &FlinkApi<'_>, job: &FlinkJob, trigger_id: &str) -> Result<Found, Problem> {
    let mut named: Vec<_> = api
        .jobs()
        .await?
        .into_iter()
        .filter(|j| j.name == job.job_name)
        .collect();
    let live: Vec<_> = named
        .iter()
        .filter(|j| !ENDED.contains(&j.state.as_str()))
        .collect();
    match live.as_slice() {
        [one] => {
            return Ok(Found::Running {
                job_id: one.jid.clone(),
            });
        }
        [] => {}
        many => {
            return Err(Problem::AmbiguousJob {
                job_name: job.job_name.clone(),
                job_ids: many.iter().map(|j| j.jid.clone()).collect(),
            });
        }
    }
    if !job.adaptive_scheduler {
        // Newest first: the job an interrupted attempt stopped is the last one of that name.
        named.sort_by_key(|j| std::cmp::Reverse(j.start_time));
        for candidate in named.iter().filter(|j| j.state == "FINISHED").take(3) {
            match api.savepoint(&candidate.jid, trigger_id).await {
                Ok(_) => {
                    return Ok(Found::StoppedByUs {
                        job_id: candidate.jid.clone(),
                    });
                }
                Err(Problem::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
    }
    Err(Problem::NoRunningJob {
        job_name: job.job_name.clone(),
    })
}

/// Reads the job until it is RUNNING with its vertices, and returns those details. `Err` carries the
/// problem only; the caller knows the situation.
async fn wait_running(
    api: &FlinkApi<'_>,
    job_id: &str,
    settings: &RescaleSettings,
    mut done: impl FnMut(&JobDetails) -> bool,
) -> Result<JobDetails, Problem> {
    let deadline = Instant::now() + settings.timeout;
    loop {
        let details = api.job(job_id).await?;
        if ENDED.contains(&details.state.as_str()) {
            return Err(Problem::JobEnded {
                job_id: job_id.to_owned(),
                state: details.state,
            });
        }
        let running = details.state == "RUNNING" && !details.vertices.is_empty();
        if running && done(&details) {
            return Ok(details);
        }
        if Instant::now() >= deadline {
            return Err(Problem::TimedOut {
                waiting_for: format!(
                    "job {job_id} to run at the new parallelism (it is {} at {})",
                    details.state,
                    details.parallelism().unwrap_or(0)
                ),
                waited: settings.timeout,
            });
        }
        tokio::time::sleep(settings.poll_interval).await;
    }
}

/// The verification result as a step, or a mismatch.
fn verified(job_id: &str, details: &JobDetails, parallelism: u32) -> Result<RescaleStep, Problem> {
    let actual = details.parallelism().unwrap_or(0);
    let vertices: Vec<_> = details
        .vertices
        .iter()
        .map(|v| format!("{}={}", v.name, v.parallelism))
        .collect();
    if actual != parallelism {
        return Err(Problem::Mismatch {
            expected: parallelism,
            actual,
            detail: format!("job {job_id}: {}", vertices.join(", ")),
        });
    }
    Ok(RescaleStep::new(
        "parallelism_verified",
        json!({"job_id": job_id, "parallelism": actual, "vertices": details.vertices}),
    ))
}
