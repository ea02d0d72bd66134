//! The simulated session cluster's jobs: their vertices, how they start, and how the adaptive
//! scheduler rescales them. Starting and rescaling advance on reads of the job, so tests control
//! them by polls; the adaptive scheduler's cooldown and the details cache go by the clock, as
//! Flink's do.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The JobStatus values this server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// The adaptive scheduler's job waiting for its slots.
    Created,
    Running,
    Finished,
    Canceled,
    /// A submission that failed while the job was being created (a bad savepoint, say).
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Created => "CREATED",
            JobState::Running => "RUNNING",
            JobState::Finished => "FINISHED",
            JobState::Canceled => "CANCELED",
            JobState::Failed => "FAILED",
        }
    }

    pub fn ended(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Canceled | JobState::Failed
        )
    }
}

/// Every job of this server has the same three operators, like a typical source → map → sink job.
pub(crate) const OPERATORS: [&str; 3] = ["Source: orders", "Map: enrich", "Sink: Writer"];
/// The key-group count; a rescale above it cannot restore keyed state.
pub const MAX_PARALLELISM: u32 = 128;

#[derive(Debug, Clone)]
pub(crate) struct Jar {
    /// The name the program gives its job (`env.execute(name)`).
    pub(crate) program_name: Option<String>,
    /// Set when the program calls `setParallelism` itself, overriding what the submitter asks for.
    pub(crate) pinned_parallelism: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct Vertex {
    pub(crate) id: String,
    pub(crate) name: &'static str,
    pub(crate) parallelism: u32,
    /// The bounds of the adaptive scheduler's resource requirements.
    pub(crate) lower: u32,
    pub(crate) upper: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) jid: String,
    pub(crate) name: String,
    pub(crate) jar_id: String,
    pub(crate) state: JobState,
    /// Whether the job runs under the adaptive scheduler (`None`: failed before it had one).
    pub(crate) adaptive: Option<bool>,
    pub(crate) start_time: i64,
    pub(crate) end_time: Option<i64>,
    pub(crate) vertices: Vec<Vertex>,
    pub(crate) restored_from: Option<String>,
    /// The savepoint a stop-with-savepoint took of this job (its checkpoint history's latest).
    pub(crate) stop_savepoint: Option<String>,
    /// Reads of the job left while its subtasks deploy and initialize (after a (re)start).
    pub(crate) starting_reads_left: u32,
    /// When the job last started or rescaled: the adaptive scheduler's cooldown counts from it.
    pub(crate) last_rescale: Instant,
    /// Server time in ms of the last transition to RUNNING.
    pub(crate) running_since: i64,
    /// An accepted resource-requirements update not yet (fully) applied: reads left before the
    /// scheduler acts on it.
    pub(crate) pending_rescale: Option<u32>,
    /// A requirements update being persisted; another one meanwhile is refused with 409.
    pub(crate) updating_requirements: bool,
    /// What `GET /jobs/{jobid}` last answered, and when: Flink serves it from a cache.
    pub(crate) cached_details: Option<(Instant, Value)>,
}

impl Job {
    pub(crate) fn new(
        jid: String,
        name: String,
        jar_id: String,
        parallelism: u32,
        at: i64,
    ) -> Self {
        let vertices = OPERATORS
            .iter()
            .enumerate()
            .map(|(i, name)| Vertex {
                // Vertex ids are stable across resubmissions of the same program, as Flink's
                // generated ids are for an unchanged job graph.
                id: format!("{:032x}", 0xbc76_4cd8_u128 * 1000 + i as u128),
                name,
                parallelism,
                lower: 1,
                upper: parallelism,
            })
            .collect();
        Self {
            jid,
            name,
            jar_id,
            state: JobState::Running,
            adaptive: Some(false),
            start_time: at,
            end_time: None,
            vertices,
            restored_from: None,
            stop_savepoint: None,
            starting_reads_left: 0,
            last_rescale: Instant::now(),
            running_since: at,
            pending_rescale: None,
            updating_requirements: false,
            cached_details: None,
        }
    }

    /// The job's parallelism as the highest of its vertices'.
    pub fn parallelism(&self) -> u32 {
        self.vertices
            .iter()
            .map(|v| v.parallelism)
            .max()
            .unwrap_or(0)
    }

    /// Task slots the job holds: one slot-sharing group, so its widest vertex's parallelism.
    pub(crate) fn slots(&self) -> u32 {
        if self.state.ended() {
            0
        } else {
            self.parallelism()
        }
    }

    /// The job ends in `state` (FINISHED after its stop-with-savepoint, CANCELED).
    pub(crate) fn end(&mut self, state: JobState, now: i64) {
        self.state = state;
        self.end_time = Some(now);
        self.pending_rescale = None;
    }

    /// A read of the job moves its start along, and lets the adaptive scheduler act on new
    /// requirements once `polls` reads have passed and the cooldown is over. `free` is the number of
    /// slots no job holds.
    pub(crate) fn observe(&mut self, now: i64, polls: u32, cooldown: Duration, free: u32) {
        if self.state.ended() {
            return;
        }
        if self.starting_reads_left > 0 {
            self.starting_reads_left -= 1;
            if self.starting_reads_left == 0 {
                self.state = JobState::Running;
                self.running_since = now;
            }
            return;
        }
        let Some(left) = self.pending_rescale else {
            return;
        };
        if left > 0 {
            self.pending_rescale = Some(left - 1);
            return;
        }
        if self.last_rescale.elapsed() < cooldown {
            return;
        }
        // The scheduler runs every vertex at its upper bound if the slots allow, else at what
        // they allow; it keeps the requirements and acts again when slots come.
        let held = self.parallelism();
        let reachable = held + free;
        let mut changed = false;
        let mut done = true;
        for v in &mut self.vertices {
            let target = v.upper.min(reachable).max(v.lower);
            done &= target == v.upper;
            if target != v.parallelism {
                v.parallelism = target;
                changed = true;
            }
        }
        if done {
            self.pending_rescale = None;
        }
        if changed {
            self.last_rescale = Instant::now();
            self.start(polls);
        }
    }

    /// The job (re)starts: its subtasks deploy and initialize for `polls` reads.
    pub(crate) fn start(&mut self, polls: u32) {
        self.starting_reads_left = polls;
        if polls > 0 && self.adaptive == Some(true) {
            self.state = JobState::Created;
        }
    }

    /// `JobDetailsInfo`, with each vertex's status and its subtasks' states.
    pub(crate) fn details(&self, now: i64) -> Value {
        let starting = self.starting_reads_left > 0;
        let vertices: Vec<Value> = self
            .vertices
            .iter()
            .map(|v| {
                let (status, tasks) = match self.state {
                    JobState::Finished => ("FINISHED", json!({"FINISHED": v.parallelism})),
                    JobState::Canceled | JobState::Failed => {
                        ("CANCELED", json!({"CANCELED": v.parallelism}))
                    }
                    // The adaptive scheduler shows a job waiting for its slots with no tasks.
                    JobState::Created => ("CREATED", json!({})),
                    JobState::Running if starting => {
                        ("INITIALIZING", json!({"INITIALIZING": v.parallelism}))
                    }
                    JobState::Running => ("RUNNING", json!({"RUNNING": v.parallelism})),
                };
                json!({
                    "id": v.id,
                    "slotSharingGroupId": "6a55b1dbf30e1bb1a0bb1b98735a7bd1",
                    "name": v.name,
                    "maxParallelism": MAX_PARALLELISM,
                    "parallelism": v.parallelism,
                    "status": status,
                    "start-time": self.start_time,
                    "end-time": self.end_time.unwrap_or(-1),
                    "duration": self.end_time.unwrap_or(now) - self.start_time,
                    "tasks": tasks,
                    "metrics": {},
                })
            })
            .collect();
        json!({
            "jid": self.jid,
            "name": self.name,
            "isStoppable": false,
            "state": self.state.as_str(),
            "job-type": "STREAMING",
            "schedulerType": self.scheduler_type(),
            "start-time": self.start_time,
            "end-time": self.end_time.unwrap_or(-1),
            "duration": self.end_time.unwrap_or(now) - self.start_time,
            "maxParallelism": MAX_PARALLELISM,
            "now": now,
            "timestamps": {"INITIALIZING": self.start_time, "RUNNING": self.running_since},
            "vertices": vertices,
            "status-counts": {},
            "plan": {"jid": self.jid, "name": self.name, "type": "STREAMING", "nodes": []},
        })
    }

    fn scheduler_type(&self) -> Value {
        match self.adaptive {
            Some(true) => json!("Adaptive"),
            Some(false) => json!("Default"),
            None => Value::Null,
        }
    }

    /// One entry of `GET /jobs/overview`.
    pub(crate) fn overview(&self, now: i64) -> Value {
        json!({
            "jid": self.jid,
            "name": self.name,
            "jobType": "STREAMING",
            "schedulerType": self.scheduler_type(),
            "state": self.state.as_str(),
            "start-time": self.start_time,
            "end-time": self.end_time.unwrap_or(-1),
            "duration": self.end_time.unwrap_or(now) - self.start_time,
            "last-modification": self.end_time.unwrap_or(self.start_time),
            "tasks": {"total": self.vertices.len()},
            "pending-operators": 0,
        })
    }

    /// `GET /jobs/{jobid}/checkpoints`, the parts that matter: the latest savepoint.
    pub(crate) fn checkpoints(&self) -> Value {
        let savepoint = self.stop_savepoint.as_ref().map(|path| {
            json!({
                "className": "completed",
                "id": 1,
                "status": "COMPLETED",
                "is_savepoint": true,
                "savepointFormat": "CANONICAL",
                "checkpoint_type": "SYNC_SAVEPOINT",
                "external_path": path,
                "discarded": false,
            })
        });
        let restored = self
            .restored_from
            .as_ref()
            .map(|path| json!({"id": 1, "is_savepoint": true, "external_path": path}));
        json!({
            "counts": {"restored": u32::from(restored.is_some()), "total": u32::from(savepoint.is_some()),
                       "in_progress": 0, "completed": u32::from(savepoint.is_some()), "failed": 0},
            "latest": {"completed": null, "savepoint": savepoint, "failed": null, "restored": restored},
            "history": [],
        })
    }

    /// `JobResourceRequirementsBody`.
    pub(crate) fn requirements(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .vertices
            .iter()
            .map(|v| {
                (
                    v.id.clone(),
                    json!({"parallelism": {"lowerBound": v.lower, "upperBound": v.upper}}),
                )
            })
            .collect();
        Value::Object(map)
    }
}

/// A public snapshot of a job, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub jid: String,
    pub name: String,
    pub jar_id: String,
    pub state: JobState,
    /// The highest vertex parallelism.
    pub parallelism: u32,
    pub vertex_parallelism: Vec<u32>,
    /// The savepoint the job was started from, if any.
    pub restored_from: Option<String>,
}

impl From<&Job> for JobInfo {
    fn from(job: &Job) -> Self {
        Self {
            jid: job.jid.clone(),
            name: job.name.clone(),
            jar_id: job.jar_id.clone(),
            state: job.state,
            parallelism: job.parallelism(),
            vertex_parallelism: job.vertices.iter().map(|v| v.parallelism).collect(),
            restored_from: job.restored_from.clone(),
        }
    }
}
