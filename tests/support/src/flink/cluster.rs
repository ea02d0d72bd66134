//! The simulated session cluster: jars, jobs with their vertices, savepoint operations and
//! resource requirements. Transitions advance on reads, so tests control timing by polls, not clocks.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The JobStatus values this server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Initializing,
    Running,
    Finished,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Initializing => "INITIALIZING",
            JobState::Running => "RUNNING",
            JobState::Finished => "FINISHED",
        }
    }
}

/// Every job of this server has the same three operators, like a typical source → map → sink job.
const OPERATORS: [&str; 3] = ["Source: orders", "Map: enrich", "Sink: elasticsearch"];
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

/// A stop-with-savepoint operation, keyed by (job, trigger id) as Flink's operation cache is.
#[derive(Debug, Clone)]
pub(crate) struct SavepointOp {
    pub(crate) polls_left: u32,
    /// `Ok(location)` or `Err(failure cause message)`, decided when the operation is triggered.
    pub(crate) outcome: Result<String, String>,
    pub(crate) completed: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) jid: String,
    pub(crate) name: String,
    pub(crate) jar_id: String,
    pub(crate) state: JobState,
    pub(crate) start_time: i64,
    pub(crate) end_time: Option<i64>,
    pub(crate) vertices: Vec<Vertex>,
    pub(crate) restored_from: Option<String>,
    pub(crate) savepoints: BTreeMap<String, SavepointOp>,
    /// GETs of the job left while INITIALIZING (after a submission).
    pub(crate) initializing_gets_left: u32,
    /// An accepted resource-requirements update not yet applied: (GETs left, target upper bounds).
    pub(crate) pending_rescale: Option<(u32, BTreeMap<String, u32>)>,
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
            start_time: at,
            end_time: None,
            vertices,
            restored_from: None,
            savepoints: BTreeMap::new(),
            initializing_gets_left: 0,
            pending_rescale: None,
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

    /// A read of the job's details moves initialization and adaptive rescales along.
    pub(crate) fn observe(&mut self) {
        if self.state == JobState::Initializing {
            if self.initializing_gets_left == 0 {
                self.state = JobState::Running;
            } else {
                self.initializing_gets_left -= 1;
            }
        }
        if let Some((left, targets)) = &mut self.pending_rescale {
            if *left == 0 {
                for v in &mut self.vertices {
                    if let Some(p) = targets.get(&v.id) {
                        v.parallelism = *p;
                    }
                }
                self.pending_rescale = None;
            } else {
                *left -= 1;
            }
        }
    }

    /// `JobDetailsInfo`. A job still initializing has a sparse execution graph without vertices.
    pub(crate) fn details(&self, now: i64) -> Value {
        let vertices: Vec<Value> = if self.state == JobState::Initializing {
            Vec::new()
        } else {
            self.vertices
                .iter()
                .map(|v| {
                    json!({
                        "id": v.id,
                        "name": v.name,
                        "maxParallelism": MAX_PARALLELISM,
                        "parallelism": v.parallelism,
                        "status": self.state.as_str(),
                        "start-time": self.start_time,
                        "end-time": self.end_time.unwrap_or(-1),
                        "duration": self.end_time.unwrap_or(now) - self.start_time,
                        "tasks": {},
                        "metrics": {},
                    })
                })
                .collect()
        };
        json!({
            "jid": self.jid,
            "name": self.name,
            "isStoppable": false,
            "state": self.state.as_str(),
            "job-type": "STREAMING",
            "start-time": self.start_time,
            "end-time": self.end_time.unwrap_or(-1),
            "duration": self.end_time.unwrap_or(now) - self.start_time,
            "maxParallelism": -1,
            "now": now,
            "timestamps": {},
            "vertices": vertices,
            "status-counts": {},
            "plan": {"jid": self.jid, "name": self.name, "type": "STREAMING", "nodes": []},
        })
    }

    /// One entry of `GET /jobs/overview`.
    pub(crate) fn overview(&self, now: i64) -> Value {
        json!({
            "jid": self.jid,
            "name": self.name,
            "state": self.state.as_str(),
            "start-time": self.start_time,
            "end-time": self.end_time.unwrap_or(-1),
            "duration": self.end_time.unwrap_or(now) - self.start_time,
            "last-modification": self.end_time.unwrap_or(self.start_time),
            "tasks": {"total": self.vertices.len()},
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
