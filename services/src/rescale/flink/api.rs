//! The Flink REST calls the driver makes, and the response shapes it reads (external-apis.md §5).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::super::error::Problem;
use super::super::http::{call, join};

/// `GET /jobs/overview` → `jobs[]`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct JobOverview {
    pub(super) jid: String,
    pub(super) name: String,
    pub(super) state: String,
    #[serde(rename = "start-time", default)]
    pub(super) start_time: i64,
}

#[derive(Debug, Deserialize)]
struct Overview {
    jobs: Vec<JobOverview>,
}

/// `GET /jobs/{jobid}` (`JobDetailsInfo`), the parts read here.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct JobDetails {
    pub(super) state: String,
    #[serde(default)]
    pub(super) vertices: Vec<VertexInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct VertexInfo {
    pub(super) name: String,
    pub(super) parallelism: u32,
}

impl JobDetails {
    /// The job's parallelism: the highest of its vertices'. Operators the program pins lower (a
    /// single-reader source, say) keep theirs whatever the submission asks for.
    pub(super) fn parallelism(&self) -> Option<u32> {
        self.vertices.iter().map(|v| v.parallelism).max()
    }
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
    /// The first line of the stack trace is `class: message`; the rest is noise in a decision record.
    pub(super) fn summary(&self) -> String {
        self.stack_trace
            .as_deref()
            .and_then(|t| t.lines().next())
            .map(str::to_owned)
            .or_else(|| self.class.clone())
            .unwrap_or_else(|| "no cause given".to_owned())
    }
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

/// Flink's error body is `{"errors": [...]}`; the first entry is the message (later ones can be
/// whole stack traces).
fn message_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    let first = errors.errors.first()?;
    let line = first.lines().next().unwrap_or_default();
    Some(line.chars().take(500).collect())
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

    /// `GET /jobs/{jobid}/status` → `{"status": "<JobStatus>"}`.
    pub(super) async fn job_status(&self, jid: &str) -> Result<String, Problem> {
        #[derive(Deserialize)]
        struct JobStatus {
            status: String,
        }
        let s: JobStatus = self.get(&["jobs", jid, "status"]).await?;
        Ok(s.status)
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
        let t: Trigger = call(
            self.http.post(url).timeout(self.timeout).json(body),
            message_of,
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

    /// `POST /jars/{jarid}/run` → `{"jobid": "..."}`.
    pub(super) async fn run_jar(&self, jar_id: &str, body: &Value) -> Result<String, Problem> {
        #[derive(Deserialize)]
        struct Submitted {
            jobid: String,
        }
        let url = join(self.base, &["jars", jar_id, "run"]);
        let s: Submitted = call(
            self.http.post(url).timeout(self.timeout).json(body),
            message_of,
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
        let _: Value = call(
            self.http.put(url).timeout(self.timeout).json(requirements),
            message_of,
        )
        .await?;
        Ok(())
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, segments: &[&str]) -> Result<T, Problem> {
        let url = join(self.base, segments);
        call(self.http.get(url).timeout(self.timeout), message_of).await
    }
}
