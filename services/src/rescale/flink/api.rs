//! The Flink REST calls the driver makes, and the response shapes it reads (external-apis.md §5).
//! Checked against a real Flink 2.3: unknown fields are ignored, optional ones are `Option`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::super::error::Problem;
use super::super::http::{call_with, join};
use super::exception::{JavaException, problem};

/// `GET /jobs/overview` → `jobs[]`. Fresh: served by the dispatcher, not from a cache.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct JobOverview {
    pub(super) jid: String,
    pub(super) name: String,
    pub(super) state: String,
    #[serde(rename = "start-time", default)]
    pub(super) start_time: i64,
    /// `Default`, `Adaptive` or `AdaptiveBatch` (Flink 1.20+); `null` for a job that failed before
    /// it had a scheduler.
    #[serde(rename = "schedulerType", default)]
    pub(super) scheduler_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Overview {
    jobs: Vec<JobOverview>,
}

/// `GET /jobs/{jobid}` (`JobDetailsInfo`), the parts read here. Served from the REST handlers'
/// execution-graph cache: up to `web.refresh-interval` (3 s) old.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct JobDetails {
    pub(super) state: String,
    #[serde(default)]
    pub(super) vertices: Vec<VertexInfo>,
    /// The server's clock when it built the answer, in ms.
    #[serde(default)]
    pub(super) now: Option<i64>,
    /// When the job last entered each state, in ms (0 when never).
    #[serde(default)]
    pub(super) timestamps: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct VertexInfo {
    pub(super) name: String,
    pub(super) parallelism: u32,
    #[serde(rename = "maxParallelism", default)]
    pub(super) max_parallelism: Option<i64>,
    /// The vertex's aggregate execution state: CREATED, INITIALIZING, RUNNING, ...
    #[serde(default)]
    pub(super) status: Option<String>,
    /// Subtasks per execution state.
    #[serde(default)]
    pub(super) tasks: BTreeMap<String, u32>,
    #[serde(rename = "slotSharingGroupId", default)]
    pub(super) slot_sharing_group: Option<String>,
}

impl VertexInfo {
    /// Every subtask is RUNNING (not SCHEDULED, DEPLOYING or INITIALIZING, which is restoring state).
    fn running(&self) -> bool {
        let all_tasks = self.tasks.is_empty()
            || self.tasks.get("RUNNING").copied().unwrap_or(0) == self.parallelism;
        self.status.as_deref().is_none_or(|s| s == "RUNNING") && all_tasks
    }
}

impl JobDetails {
    /// The job's parallelism: the highest of its vertices'. Operators the program pins lower (a
    /// single-reader source, say) keep theirs whatever the submission asks for.
    pub(super) fn parallelism(&self) -> Option<u32> {
        self.vertices.iter().map(|v| v.parallelism).max()
    }

    /// The job and every subtask of every vertex are RUNNING. Flink shows a resubmitted job RUNNING
    /// while its subtasks are still deploying and restoring their state.
    pub(super) fn all_running(&self) -> bool {
        self.state == "RUNNING"
            && !self.vertices.is_empty()
            && self.vertices.iter().all(VertexInfo::running)
    }

    /// e.g. `RUNNING at 3, 4/6 subtasks running`, for a message.
    pub(super) fn describe(&self) -> String {
        let total: u32 = self.vertices.iter().map(|v| v.parallelism).sum();
        let running: u32 = self
            .vertices
            .iter()
            .map(|v| {
                if v.tasks.is_empty() {
                    if v.running() { v.parallelism } else { 0 }
                } else {
                    v.tasks.get("RUNNING").copied().unwrap_or(0)
                }
            })
            .sum();
        format!(
            "{} at {}, {running}/{total} subtasks running",
            self.state,
            self.parallelism().unwrap_or(0)
        )
    }

    /// The lowest maximum parallelism of a vertex, and that vertex's name: no rescale can go above it.
    pub(super) fn max_parallelism(&self) -> Option<(u32, &str)> {
        self.vertices
            .iter()
            .filter_map(|v| {
                let max = u32::try_from(v.max_parallelism?).ok().filter(|m| *m > 0)?;
                Some((max, v.name.as_str()))
            })
            .min_by_key(|(max, _)| *max)
    }

    /// Task slots the job takes at `parallelism` (its current one when `None`): every slot-sharing
    /// group takes as many slots as its widest vertex.
    pub(super) fn slots(&self, parallelism: Option<u32>) -> u32 {
        let mut groups: BTreeMap<&str, u32> = BTreeMap::new();
        for v in &self.vertices {
            let p = parallelism.unwrap_or(v.parallelism);
            let group = v.slot_sharing_group.as_deref().unwrap_or("");
            let widest = groups.entry(group).or_default();
            *widest = (*widest).max(p);
        }
        groups.values().sum()
    }

    /// Milliseconds since the job last entered RUNNING, by the server's clock.
    pub(super) fn running_for_ms(&self) -> Option<i64> {
        let since = self.timestamps.get("RUNNING").copied().filter(|t| *t > 0)?;
        Some(self.now? - since)
    }

    /// The vertices for a step record.
    pub(super) fn vertex_record(&self) -> Value {
        self.vertices
            .iter()
            .map(|v| serde_json::json!({"name": v.name, "parallelism": v.parallelism}))
            .collect()
    }
}

/// `GET /overview`: the cluster's slots.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct ClusterOverview {
    #[serde(rename = "slots-total")]
    pub(super) slots_total: u32,
    #[serde(rename = "slots-available")]
    pub(super) slots_available: u32,
}

/// `AsynchronousOperationResult` of a savepoint operation.
#[derive(Debug, Deserialize)]
pub(super) struct SavepointResult {
    pub(super) status: OperationStatus,
    pub(super) operation: Option<SavepointOperation>,
}

#[derive(Debug, Deserialize)]
pub(super) struct OperationStatus {
    pub(super) id: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct SavepointOperation {
    pub(super) location: Option<String>,
    #[serde(rename = "failure-cause")]
    pub(super) failure_cause: Option<FailureCause>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FailureCause {
    pub(super) class: Option<String>,
    #[serde(rename = "stack-trace")]
    pub(super) stack_trace: Option<String>,
}

impl FailureCause {
    pub(super) fn exception(&self) -> JavaException {
        JavaException::parse(
            self.stack_trace
                .as_deref()
                .or(self.class.as_deref())
                .unwrap_or("no cause given"),
        )
    }
}

/// `GET /jobs/{jobid}/checkpoints` → `latest.savepoint`, the part read here.
#[derive(Debug, Deserialize)]
struct Checkpoints {
    latest: Option<Latest>,
}

#[derive(Debug, Deserialize)]
struct Latest {
    savepoint: Option<SavepointInfo>,
}

#[derive(Debug, Deserialize)]
struct SavepointInfo {
    status: Option<String>,
    /// `SYNC_SAVEPOINT` for the savepoint of a stop-with-savepoint, `SAVEPOINT` for a plain one.
    checkpoint_type: Option<String>,
    external_path: Option<String>,
}

/// `JobResourceRequirementsBody`: per vertex id, the adaptive scheduler's parallelism bounds.
pub(super) type Requirements = BTreeMap<String, VertexRequirements>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct VertexRequirements {
    pub(super) parallelism: Bounds,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Bounds {
    pub(super) lower_bound: u32,
    pub(super) upper_bound: u32,
}

pub(super) struct FlinkApi<'a> {
    pub(super) http: &'a reqwest::Client,
    pub(super) base: &'a Url,
    pub(super) timeout: Duration,
}

impl FlinkApi<'_> {
    pub(super) async fn jobs(&self) -> Result<Vec<JobOverview>, Problem> {
        let overview: Overview = self.get(&["jobs", "overview"]).await?;
        Ok(overview.jobs)
    }

    pub(super) async fn job(&self, jid: &str) -> Result<JobDetails, Problem> {
        self.get(&["jobs", jid]).await
    }

    /// `GET /jobs/{jobid}/status` → `{"status": "<JobStatus>"}`; fresh, unlike the details.
    pub(super) async fn job_status(&self, jid: &str) -> Result<String, Problem> {
        #[derive(Deserialize)]
        struct JobStatus {
            status: String,
        }
        let s: JobStatus = self.get(&["jobs", jid, "status"]).await?;
        Ok(s.status)
    }

    pub(super) async fn cluster(&self) -> Result<ClusterOverview, Problem> {
        self.get(&["overview"]).await
    }

    /// `GET /jobmanager/config`: the keys set in the cluster's configuration (defaults are absent).
    pub(super) async fn config(&self) -> Result<BTreeMap<String, String>, Problem> {
        #[derive(Deserialize)]
        struct Entry {
            key: String,
            value: String,
        }
        let entries: Vec<Entry> = self.get(&["jobmanager", "config"]).await?;
        Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
    }

    /// `POST /jobs/{jobid}/stop` → 202 `{"request-id": "<trigger id>"}`.
    pub(super) async fn stop_with_savepoint(
        &self,
        jid: &str,
        body: &Value,
    ) -> Result<String, Problem> {
        #[derive(Deserialize)]
        struct Trigger {
            #[serde(rename = "request-id")]
            request_id: String,
        }
        let url = join(self.base, &["jobs", jid, "stop"]);
        let t: Trigger = call_with(
            self.http.post(url).timeout(self.timeout).json(body),
            |s, b| problem(s, b, None),
        )
        .await?;
        Ok(t.request_id)
    }

    pub(super) async fn savepoint(
        &self,
        jid: &str,
        trigger: &str,
    ) -> Result<SavepointResult, Problem> {
        self.get(&["jobs", jid, "savepoints", trigger]).await
    }

    /// The location of the savepoint a stop-with-savepoint took of this (finished) job, from its
    /// checkpoint history; `None` when its latest savepoint is not one.
    pub(super) async fn stop_savepoint(&self, jid: &str) -> Result<Option<String>, Problem> {
        let checkpoints: Checkpoints = self.get(&["jobs", jid, "checkpoints"]).await?;
        Ok(checkpoints
            .latest
            .and_then(|l| l.savepoint)
            .filter(|s| {
                s.checkpoint_type.as_deref() == Some("SYNC_SAVEPOINT")
                    && s.status.as_deref().is_none_or(|st| st == "COMPLETED")
            })
            .and_then(|s| s.external_path))
    }

    /// `POST /jars/{jarid}/run` → `{"jobid": "..."}`.
    pub(super) async fn run_jar(&self, jar_id: &str, body: &Value) -> Result<String, Problem> {
        #[derive(Deserialize)]
        struct Submitted {
            jobid: String,
        }
        let url = join(self.base, &["jars", jar_id, "run"]);
        let s: Submitted = call_with(
            self.http.post(url).timeout(self.timeout).json(body),
            |s, b| problem(s, b, Some(jar_id)),
        )
        .await?;
        Ok(s.jobid)
    }

    pub(super) async fn requirements(&self, jid: &str) -> Result<Requirements, Problem> {
        self.get(&["jobs", jid, "resource-requirements"]).await
    }

    pub(super) async fn set_requirements(
        &self,
        jid: &str,
        requirements: &Requirements,
    ) -> Result<(), Problem> {
        let url = join(self.base, &["jobs", jid, "resource-requirements"]);
        let _: Value = call_with(
            self.http.put(url).timeout(self.timeout).json(requirements),
            |s, b| problem(s, b, None),
        )
        .await?;
        Ok(())
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, segments: &[&str]) -> Result<T, Problem> {
        let url = join(self.base, segments);
        call_with(self.http.get(url).timeout(self.timeout), |s, b| {
            problem(s, b, None)
        })
        .await
    }
}

/// A duration as Flink's configuration writes it: `30 s`, `30s`, `500 ms`, `1 min`, `2h`; a bare
/// number is milliseconds.
pub(super) fn flink_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let ms = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => n,
        "s" | "sec" | "secs" | "second" | "seconds" => n.checked_mul(1000)?,
        "m" | "min" | "mins" | "minute" | "minutes" => n.checked_mul(60_000)?,
        "h" | "hour" | "hours" => n.checked_mul(3_600_000)?,
        "d" | "day" | "days" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_durations_parse_with_and_without_units() {
        assert_eq!(flink_duration("30 s"), Some(Duration::from_secs(30)));
        assert_eq!(flink_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(flink_duration("1 min"), Some(Duration::from_secs(60)));
        assert_eq!(flink_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(flink_duration("500 ms"), Some(Duration::from_millis(500)));
        assert_eq!(flink_duration("soon"), None);
        assert_eq!(flink_duration("3 fortnights"), None);
    }

    fn details(vertices: serde_json::Value) -> JobDetails {
        serde_json::from_value(serde_json::json!({"state": "RUNNING", "vertices": vertices}))
            .expect("details parse")
    }

    #[test]
    fn a_job_runs_only_when_every_subtask_does() {
        let restoring = details(serde_json::json!([
            {"name": "Source", "parallelism": 3, "status": "RUNNING", "tasks": {"RUNNING": 3}},
            {"name": "Sink", "parallelism": 3, "status": "INITIALIZING",
             "tasks": {"RUNNING": 1, "INITIALIZING": 2}},
        ]));
        assert!(!restoring.all_running());
        assert_eq!(restoring.describe(), "RUNNING at 3, 4/6 subtasks running");
        let running = details(serde_json::json!([
            {"name": "Source", "parallelism": 3, "status": "RUNNING", "tasks": {"RUNNING": 3}},
        ]));
        assert!(running.all_running());
        assert!(!details(serde_json::json!([])).all_running());
    }

    #[test]
    fn slots_count_the_widest_vertex_of_each_sharing_group() {
        let d = details(serde_json::json!([
            {"name": "a", "parallelism": 3, "slotSharingGroupId": "g1", "maxParallelism": 128},
            {"name": "b", "parallelism": 2, "slotSharingGroupId": "g1", "maxParallelism": 64},
            {"name": "c", "parallelism": 1, "slotSharingGroupId": "g2", "maxParallelism": -1},
        ]));
        assert_eq!(d.slots(None), 4);
        assert_eq!(d.slots(Some(5)), 10);
        assert_eq!(d.max_parallelism(), Some((64, "b")));
    }
}
