//! The rescale driver for targets that do not scale reactively: once Argo CD has synced a new scale,
//! restart the job at the new parallelism from a checkpoint.
//!
//! - `engine`: the pipeline engine's control endpoint drains, commits and restarts its stages;
//!   `engines`: every announced instance of a cluster that way, one after the other.
//! - `flink`: stop with a savepoint under a trigger id derived from the decision, resubmit the jar
//!   from that savepoint at the new parallelism, verify; or, with the adaptive scheduler, set the
//!   resource requirements and let the scheduler rescale in place.
//!
//! Every step is reported to the caller as it happens, for the decision's record. A failure leaves
//! the job running or restartable, and its error says which and what to do. Retrying the same
//! decision is safe: it finds the job where the last attempt left it.

mod engine;
mod engines;
mod error;
mod flink;
mod http;
mod recorded;

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use url::Url;

pub use error::{Problem, RescaleError, Situation};
pub use recorded::Recorded;

/// What to restart, and how to reach its control API.
#[derive(Debug, Clone)]
pub enum RescaleTarget {
    /// `control_url` is the engine's control listener (`control.listen`); `token` its `control.token`.
    Engine {
        control_url: Url,
        token: Option<secrecy::SecretString>,
    },
    /// Every instance of an engine cluster, each at the control URL it announced; the rescale succeeds
    /// only when all of them run at the new parallelism.
    EngineInstances {
        instances: Vec<EngineEndpoint>,
        token: Option<secrecy::SecretString>,
    },
    Flink(FlinkJob),
    /// A Flink job in reactive mode: the deployer's new TaskManager count rescales it, and the driver
    /// only confirms the job runs at the new parallelism.
    FlinkReactive {
        rest_url: Url,
        job_name: String,
    },
}

/// One engine instance's control API, as the instance announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEndpoint {
    pub instance: String,
    pub control_url: Url,
}

/// A Flink job, found by name on a session cluster, and how to resubmit it.
#[derive(Debug, Clone)]
pub struct FlinkJob {
    /// The REST endpoint of the JobManager, e.g. `http://flink-jobmanager:8081`.
    pub rest_url: Url,
    /// The job's name: its id changes with every resubmission, its name does not.
    pub job_name: String,
    /// The uploaded jar to resubmit (`GET /jars` → `files[].id`).
    pub jar_id: String,
    pub entry_class: Option<String>,
    /// Sent as `programArgsList`; the single-string `programArgs` is deprecated.
    pub program_args: Vec<String>,
    /// Where the savepoint goes; without it, the cluster's `state.savepoints.dir`.
    pub savepoint_dir: Option<String>,
    /// What the spec expects of the cluster: `jobmanager.scheduler: adaptive` (rescale in place
    /// through the resource-requirements API) or not (stop with a savepoint and resubmit). Flink
    /// 1.20+ reports each job's scheduler (`schedulerType`), and that wins; this is used only when
    /// the job does not say.
    pub adaptive_scheduler: bool,
}

/// How long to wait, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct RescaleSettings {
    /// Between two polls of an operation or a status.
    pub poll_interval: Duration,
    /// The longest wait for one phase: a savepoint, the old job finishing, the new one running at
    /// its parallelism, the engine draining.
    pub timeout: Duration,
    /// For each HTTP request.
    pub request_timeout: Duration,
}

impl Default for RescaleSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// One step of a rescale, for the decision's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RescaleStep {
    /// e.g. `savepoint_triggered`, `savepoint_completed`, `job_submitted`, `parallelism_verified`.
    pub step: &'static str,
    pub detail: serde_json::Value,
}

impl RescaleStep {
    fn new(step: &'static str, detail: serde_json::Value) -> Self {
        Self { step, detail }
    }
}

/// How the target got to its new parallelism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RescaleMethod {
    /// It already ran at the parallelism (e.g. a retry after the rescale was done): nothing changed.
    AlreadyAtParallelism,
    EngineControl,
    SavepointResubmit,
    ResourceRequirements,
    /// Reactive mode: Flink rescaled the job to the TaskManagers the deployer started or stopped.
    Reactive,
}

/// The outcome of a rescale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rescaled {
    pub parallelism: u32,
    pub method: RescaleMethod,
    /// Flink: the job that now runs.
    pub job_id: Option<String>,
    /// Flink: the savepoint the job was restarted from.
    pub savepoint: Option<String>,
}

impl Rescaled {
    fn new(parallelism: u32, method: RescaleMethod) -> Self {
        Self {
            parallelism,
            method,
            job_id: None,
            savepoint: None,
        }
    }
}

/// Restarts `target` at `parallelism`, reporting each step to `record` as it completes.
/// `decision_id` makes retries safe: the same decision uses the same savepoint trigger id.
/// `recorded` is what earlier attempts at the same decision recorded (its steps), which finds the
/// savepoint a stop produced once Flink has forgotten the operation.
pub async fn rescale(
    http: &reqwest::Client,
    target: &RescaleTarget,
    parallelism: u32,
    decision_id: i64,
    recorded: &Recorded,
    settings: RescaleSettings,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    if parallelism == 0 {
        return Err(RescaleError::new(
            "checking the request",
            Problem::Refused {
                status: 400,
                message: "the parallelism must be at least 1".to_owned(),
            },
            Situation::Untouched,
        ));
    }
    match target {
        RescaleTarget::Engine { control_url, token } => {
            engine::rescale(
                http,
                control_url,
                token.as_ref().map(secrecy::ExposeSecret::expose_secret),
                parallelism,
                &settings,
                record,
            )
            .await
        }
        RescaleTarget::EngineInstances { instances, token } => {
            engines::rescale(
                http,
                instances,
                token.as_ref().map(secrecy::ExposeSecret::expose_secret),
                parallelism,
                &settings,
                record,
            )
            .await
        }
        RescaleTarget::FlinkReactive { rest_url, job_name } => {
            flink::confirm_reactive(http, rest_url, job_name, parallelism, &settings, record).await
        }
        RescaleTarget::Flink(job) => {
            let trigger_id = trigger_id(decision_id);
            flink::rescale(
                http,
                job,
                parallelism,
                &trigger_id,
                recorded,
                &settings,
                record,
            )
            .await
        }
    }
}

/// The savepoint trigger id for a decision: 32 hex digits, the same on every attempt, so a retry
/// re-posts (or polls) the operation Flink already knows instead of taking a second savepoint.
pub fn trigger_id(decision_id: i64) -> String {
    let digest = Sha256::digest(format!("autoscaler rescale decision {decision_id}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}
