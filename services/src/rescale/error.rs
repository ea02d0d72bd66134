//! What went wrong in a rescale, and what state it left the job in: every message ends with what the
//! job is doing now and what an operator must do. Never carries a token.

use std::fmt;
use std::time::Duration;

/// A failed rescale: the step that failed, why, and where that left the job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step} failed: {problem}. {situation}")]
pub struct RescaleError {
    /// e.g. `stopping the job with a savepoint`.
    pub step: &'static str,
    pub problem: Problem,
    pub situation: Situation,
}

impl RescaleError {
    pub(super) fn new(step: &'static str, problem: Problem, situation: Situation) -> Self {
        Self {
            step,
            problem,
            situation,
        }
    }

    /// Whether retrying the same decision later may succeed. A retry is always safe: it finds the job
    /// where this attempt left it (the same savepoint trigger id, or the job already at the target).
    pub fn is_transient(&self) -> bool {
        self.problem.is_transient()
    }
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// HTTP 401: the credentials were rejected.
    Unauthorized(String),
    /// HTTP 403.
    Forbidden(String),
    /// HTTP 404, or Flink's `FlinkJobNotFoundException` (which some endpoints answer with a 500).
    NotFound(String),
    /// HTTP 409: another operation on the job is under way.
    Conflict(String),
    /// Any other 4xx: the target refused the request as made.
    Refused { status: u16, message: String },
    /// 5xx, 429, a connection failure or a request timeout.
    Unavailable(String),
    /// A response that does not follow the API's contract.
    Malformed(String),
    /// Flink does not have the jar to resubmit (uploaded jars live in the JobManager's
    /// `web.upload.dir`; a restarted JobManager may have lost them).
    JarMissing { jar_id: String, message: String },
    /// The job's keyed state has fewer key groups than the parallelism asked for.
    AboveMaxParallelism {
        asked: u32,
        max: u32,
        vertex: String,
    },
    /// The adaptive scheduler cannot reach the parallelism: the cluster has too few free slots.
    SlotShortage {
        asked: u32,
        running_at: u32,
        free_slots: u32,
        needed_slots: u32,
    },
    /// No job of that name is running.
    NoRunningJob { job_name: String },
    /// More than one job of that name is running; which to restart is for a human to say.
    AmbiguousJob {
        job_name: String,
        job_ids: Vec<String>,
    },
    /// The job exists but is not RUNNING (restarting, initializing, ...).
    JobNotRunning { job_id: String, state: String },
    /// Flink completed the stop-with-savepoint operation with a `failure-cause`.
    SavepointFailed { cause: String },
    /// The job was stopped by this decision, but neither Flink (its operation result expired, and
    /// its checkpoint history shows no savepoint) nor the decision's record knows the savepoint.
    SavepointUnknown { job_id: String },
    /// The job reached a terminal state other than the one the step expected.
    JobEnded { job_id: String, state: String },
    TimedOut {
        waiting_for: String,
        waited: Duration,
    },
    /// The target runs, but not at the parallelism asked for.
    Mismatch {
        expected: u32,
        actual: u32,
        detail: String,
    },
}

impl Problem {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Problem::Conflict(_)
                | Problem::Unavailable(_)
                | Problem::JobNotRunning { .. }
                | Problem::TimedOut { .. }
                // TaskManagers may still be starting (a scale in TaskManagers comes with new ones).
                | Problem::SlotShortage { .. }
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unauthorized(m) => write!(f, "the credentials were rejected (HTTP 401): {m}"),
            Problem::Forbidden(m) => write!(f, "the request was forbidden (HTTP 403): {m}"),
            Problem::NotFound(m) => write!(f, "not found: {m}"),
            Problem::Conflict(m) => write!(f, "another operation is under way (HTTP 409): {m}"),
            Problem::Refused { status, message } => {
                write!(f, "the request was refused (HTTP {status}): {message}")
            }
            Problem::Unavailable(m) => write!(f, "the API is unavailable: {m}"),
            Problem::Malformed(m) => write!(f, "the API answered outside its contract: {m}"),
            Problem::JarMissing { jar_id, message } => write!(
                f,
                "Flink has no jar {jar_id:?} ({message}); upload the job's jar (POST /jars/upload) \
                 and set target.flink.jar_id to the id Flink gives it"
            ),
            Problem::AboveMaxParallelism { asked, max, vertex } => write!(
                f,
                "parallelism {asked} is above the maximum parallelism {max} of {vertex:?} (its \
                 number of key groups), which Flink refuses; lower the policy's max_scale, or give \
                 the job a higher max parallelism (which takes a new job without its state)"
            ),
            Problem::SlotShortage {
                asked,
                running_at,
                free_slots,
                needed_slots,
            } => write!(
                f,
                "the adaptive scheduler runs the job at {running_at} instead of {asked}: it needs \
                 {needed_slots} more task slots and the cluster has {free_slots} free"
            ),
            Problem::NoRunningJob { job_name } => write!(f, "no job named {job_name:?} is running"),
            Problem::AmbiguousJob { job_name, job_ids } => write!(
                f,
                "{} jobs named {job_name:?} are running ({})",
                job_ids.len(),
                job_ids.join(", ")
            ),
            Problem::JobNotRunning { job_id, state } => {
                write!(f, "job {job_id} is {state}, not RUNNING")
            }
            Problem::SavepointFailed { cause } => write!(f, "the savepoint failed: {cause}"),
            Problem::SavepointUnknown { job_id } => write!(
                f,
                "job {job_id} was stopped with a savepoint, but Flink no longer reports where it \
                 is (the operation's result expired and the checkpoint history shows none)"
            ),
            Problem::JobEnded { job_id, state } => write!(f, "job {job_id} ended {state}"),
            Problem::TimedOut {
                waiting_for,
                waited,
            } => write!(
                f,
                "gave up after {} s waiting for {waiting_for}",
                waited.as_secs()
            ),
            Problem::Mismatch {
                expected,
                actual,
                detail,
            } => write!(
                f,
                "it runs at parallelism {actual} instead of {expected} ({detail})"
            ),
        }
    }
}

/// Where the failure left the job, with what an operator must do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Situation {
    /// Nothing was changed: the job keeps running.
    Untouched,
    /// No job of that name runs, and this rescale did not stop one; nothing was changed.
    NothingRuns {
        job_name: String,
        /// The newest job of that name, if Flink still lists one: (id, state).
        newest: Option<(String, String)>,
    },
    /// The job ended on its own (or someone else ended it) before this rescale stopped it.
    JobGone { job_id: String, state: String },
    /// The engine may have received the rescale request; its outcome is unknown.
    EngineMayBeRescaling { status_url: String },
    /// One of several engine instances did not reach the new parallelism; `then` is where that left it.
    EngineInstances {
        failed: String,
        then: Box<Situation>,
        /// Instances that run at `parallelism` now.
        at_new: Vec<String>,
        /// Instances this attempt did not get to: they run at their old parallelism.
        not_asked: Vec<String>,
        parallelism: u32,
    },
    /// The engine accepted the rescale but does not show the new parallelism.
    EngineRescaleRequested {
        status_url: String,
        parallelism: u32,
    },
    /// A stop-with-savepoint was (or may have been) triggered: the job is running, stopping, or
    /// stopped with a savepoint under this trigger id.
    SavepointPending { job_id: String, trigger_id: String },
    /// The savepoint failed and the job was not stopped.
    JobStillRunning { job_id: String, state: String },
    /// The job was stopped by this decision, and where its savepoint went is not known.
    StoppedSavepointUnknown { job_id: String },
    /// The job is stopped and its state is in `savepoint`; nothing runs until it is resubmitted.
    Restartable {
        savepoint: String,
        jar_id: String,
        parallelism: u32,
        entry_class: Option<String>,
        program_args: Vec<String>,
    },
    /// A new job was submitted from the savepoint.
    Resubmitted {
        job_id: String,
        savepoint: String,
        jar_id: String,
        parallelism: u32,
    },
    /// The adaptive scheduler has new resource requirements; the job keeps running.
    RequirementsSet { job_id: String, parallelism: u32 },
    /// Reactive mode: the deployer applied the new scale; Flink rescales the job itself once the
    /// TaskManagers register.
    ReactiveDeployed { job_name: String, parallelism: u32 },
}

impl fmt::Display for Situation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Situation::Untouched => write!(
                f,
                "Nothing was changed: the job keeps running at its old parallelism. Fix the cause, \
                 then retry the rescale"
            ),
            Situation::NothingRuns { job_name, newest } => {
                write!(
                    f,
                    "No job named {job_name:?} runs, and this rescale stopped none; nothing was \
                     changed"
                )?;
                if let Some((job_id, state)) = newest {
                    write!(
                        f,
                        ". The newest job of that name, {job_id}, is {state}: if it should run, \
                         restart it from its latest savepoint or checkpoint (GET \
                         /jobs/{job_id}/checkpoints shows them)"
                    )?;
                }
                Ok(())
            }
            Situation::JobGone { job_id, state } => write!(
                f,
                "Job {job_id} is {state}: it ended before the stop-with-savepoint reached it, and \
                 nothing was resubmitted. Find out why it ended (GET /jobs/{job_id}/exceptions), \
                 then restart it from its latest savepoint or checkpoint (GET \
                 /jobs/{job_id}/checkpoints)"
            ),
            Situation::StoppedSavepointUnknown { job_id } => write!(
                f,
                "Job {job_id} is stopped and nothing runs in its place. Its savepoint is the \
                 newest savepoint-{}-… directory under the savepoint directory: restart the job \
                 from it with POST /jars/<jar id>/run",
                job_id.get(..6).unwrap_or(job_id)
            ),
            Situation::EngineMayBeRescaling { status_url } => write!(
                f,
                "The engine may be rescaling: GET {status_url} shows its state and parallelism. \
                 Retrying the rescale checks that first"
            ),
            Situation::EngineInstances {
                failed,
                then,
                at_new,
                not_asked,
                parallelism,
            } => {
                write!(f, "On engine instance {failed}: {then}. ")?;
                if at_new.is_empty() {
                    write!(f, "No other instance runs at parallelism {parallelism}")?;
                } else {
                    write!(
                        f,
                        "Instances {} run at parallelism {parallelism}",
                        at_new.join(", ")
                    )?;
                }
                if !not_asked.is_empty() {
                    write!(
                        f,
                        "; {} were not asked and run at their old parallelism",
                        not_asked.join(", ")
                    )?;
                }
                write!(
                    f,
                    ". Retrying the rescale skips instances already at {parallelism}"
                )
            }
            Situation::EngineRescaleRequested {
                status_url,
                parallelism,
            } => write!(
                f,
                "The engine accepted the rescale to {parallelism} but does not report it: check \
                 GET {status_url} and the engine's logs"
            ),
            Situation::SavepointPending { job_id, trigger_id } => write!(
                f,
                "Job {job_id} is running, stopping, or stopped with a savepoint under trigger id \
                 {trigger_id} (GET /jobs/{job_id}/savepoints/{trigger_id} shows which). Retrying \
                 the rescale resumes from there without a second savepoint"
            ),
            Situation::JobStillRunning { job_id, state } => write!(
                f,
                "Job {job_id} was not stopped and is {state} at its old parallelism; nothing was \
                 resubmitted. Fix the cause of the savepoint failure, then start a new rescale \
                 (retrying this one reads the same failed operation until Flink forgets it)"
            ),
            Situation::Restartable {
                savepoint,
                jar_id,
                parallelism,
                entry_class,
                program_args,
            } => {
                let mut body = serde_json::json!({
                    "parallelism": parallelism,
                    "savepointPath": savepoint,
                });
                if let Some(class) = entry_class {
                    body["entryClass"] = class.as_str().into();
                }
                if !program_args.is_empty() {
                    body["programArgsList"] = program_args.clone().into();
                }
                write!(
                    f,
                    "The job is STOPPED, not running; its state is safe in savepoint {savepoint}. \
                     Once the cause is fixed, restart it with POST /jars/{jar_id}/run and body \
                     {body}, or retry the rescale, which resubmits from the same savepoint"
                )
            }
            Situation::Resubmitted {
                job_id,
                savepoint,
                jar_id,
                parallelism,
            } => write!(
                f,
                "New job {job_id} was submitted from jar {jar_id} with parallelism {parallelism} \
                 from savepoint {savepoint}; check it in Flink. If it is not running, restart it \
                 from that savepoint"
            ),
            Situation::RequirementsSet {
                job_id,
                parallelism,
            } => write!(
                f,
                "Job {job_id} keeps running; its resource requirements ask for parallelism \
                 {parallelism}, which the adaptive scheduler applies once enough slots are free. \
                 Check the TaskManagers' slots"
            ),
            Situation::ReactiveDeployed {
                job_name,
                parallelism,
            } => write!(
                f,
                "The new scale is deployed; in reactive mode Flink rescales job {job_name:?} to \
                 parallelism {parallelism} by itself once enough TaskManagers register. Check the \
                 TaskManagers (GET /taskmanagers) and the job; retrying looks again"
            ),
        }
    }
}
