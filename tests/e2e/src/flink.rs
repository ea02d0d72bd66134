//! The whole loop against a real Apache Flink 2.3, as real processes: Postgres, the real Prometheus
//! scraping Flink's reporters, the autoscaler, a bare Git repository holding a FlinkDeployment patch,
//! the Argo CD test server as the deployer, and the probe job (`tests/flink-probe/`) as the pipeline,
//! whose input rate the test sets and whose sink tells which records arrived.
//!
//! Three paths, as a Flink user would run them:
//! - [`FlinkPath::Reactive`]: reactive mode (application cluster). Git holds the TaskManager count;
//!   Argo CD "applies" it by starting or stopping TaskManagers, and Flink rescales the job itself.
//! - [`FlinkPath::Savepoint`]: the default scheduler. Git holds the parallelism; after the sync the
//!   worker stops the job with a savepoint and resubmits it at the new parallelism.
//! - [`FlinkPath::Adaptive`]: the adaptive scheduler. Git holds the parallelism; after the sync the
//!   worker changes the job's resource requirements in place.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use test_support::argocd::{App, ArgoCdServer};
use test_support::flink_cluster::{Application, FlinkCluster, FlinkOptions, JobDetails, Scheduler};
use test_support::flink_probe::{self, ProbeJob};
use test_support::prometheus::{Prometheus, ScrapeJob, write_targets_file};
use tokio::sync::Mutex;

use crate::autoscaler::{ARGOCD_TOKEN, Autoscaler};
use crate::database::Database;
use crate::gitops::{self, Repository, ScaleFile};
use crate::{log, process};

/// The subscription's name and the Argo CD application's.
pub const CLUSTER: &str = "orders";
/// The Flink job's name; its `-` reaches Prometheus as `_` (the reporter rewrites label values).
pub const JOB_NAME: &str = "orders-ingest";
pub const SLOTS_PER_TASK_MANAGER: u32 = 2;
pub const PROBE_ENTRY_CLASS: &str = "autoscaler.probe.ProbeJob";
/// The probe's partitions: parallelism above it leaves source readers idle.
const SPLITS: u32 = 8;
/// Each `burn` subtask parks this long per record: about 200 records per second per subtask,
/// without using CPU, so that parallelism buys throughput on a 2-core machine.
pub const SLEEP_US: u64 = 5_000;
/// Short checkpoints: the sink flushes at each, so the test sees records within a second.
const CHECKPOINT_MS: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlinkPath {
    Reactive,
    Savepoint,
    Adaptive,
}

impl FlinkPath {
    /// What the number in Git is.
    fn scale_file(self) -> ScaleFile {
        match self {
            FlinkPath::Reactive => ScaleFile {
                path: "pipelines/orders/scale.yaml",
                key: "spec.taskManager.replicas",
            },
            FlinkPath::Savepoint | FlinkPath::Adaptive => ScaleFile {
                path: "pipelines/orders/scale.yaml",
                key: "spec.job.parallelism",
            },
        }
    }

    /// The FlinkDeployment patch as a person first commits it.
    fn first_scale_file(self) -> String {
        let head = "# The orders pipeline's scale. The autoscaler commits changes to the number below.\n\
                    apiVersion: flink.apache.org/v1beta1\n\
                    kind: FlinkDeployment\n\
                    metadata:\n  name: orders-ingest\n\
                    spec:\n";
        match self {
            FlinkPath::Reactive => format!("{head}  taskManager:\n    replicas: 1\n"),
            FlinkPath::Savepoint | FlinkPath::Adaptive => {
                format!("{head}  job:\n    parallelism: 1 # scaled by the autoscaler\n")
            }
        }
    }

    /// The number in Git in parallelism: TaskManagers × slots, or the parallelism itself.
    pub fn parallelism_of(self, scale: u32) -> u32 {
        match self {
            FlinkPath::Reactive => scale * SLOTS_PER_TASK_MANAGER,
            FlinkPath::Savepoint | FlinkPath::Adaptive => scale,
        }
    }

    pub fn max_scale(self) -> u32 {
        match self {
            // Three TaskManagers of two slots: parallelism 6.
            FlinkPath::Reactive => 3,
            // Two TaskManagers of two slots run at most parallelism 4.
            FlinkPath::Savepoint | FlinkPath::Adaptive => 4,
        }
    }
}

pub struct FlinkStack {
    pub path: FlinkPath,
    pub autoscaler: Autoscaler,
    pub flink: Arc<Mutex<FlinkCluster>>,
    pub rest_url: String,
    pub prometheus: Prometheus,
    pub argocd: ArgoCdServer,
    pub repo: Repository,
    pub probe: ProbeJob,
    http: reqwest::Client,
    dir: Option<tempfile::TempDir>,
    _database: Database,
}

impl FlinkStack {
    /// Starts everything, the probe job at scale 1 with no input yet, and subscribes the pipeline.
    pub async fn start(path: FlinkPath) -> anyhow::Result<Self> {
        process::binaries_dir()?;
        let dir = tempfile::Builder::new().prefix("e2e-flink-").tempdir()?;
        let probe = ProbeJob {
            splits: SPLITS,
            sleep_us: SLEEP_US,
            checkpoint_ms: CHECKPOINT_MS,
            ..ProbeJob::new(JOB_NAME, &dir.path().join("probe"))?
        };
        let jar = flink_probe::jar()?;
        let program = probe.program();
        let options = match path {
            FlinkPath::Reactive => FlinkOptions {
                scheduler: Scheduler::Reactive,
                slots_per_task_manager: SLOTS_PER_TASK_MANAGER,
                task_managers: 1,
                application: Some(Application {
                    jar: jar.clone(),
                    program: program.clone(),
                }),
                conf: fast_rescale_conf(),
            },
            FlinkPath::Savepoint => FlinkOptions {
                scheduler: Scheduler::Default,
                slots_per_task_manager: SLOTS_PER_TASK_MANAGER,
                task_managers: 2,
                ..FlinkOptions::default()
            },
            FlinkPath::Adaptive => FlinkOptions {
                scheduler: Scheduler::Adaptive,
                slots_per_task_manager: SLOTS_PER_TASK_MANAGER,
                task_managers: 2,
                conf: fast_rescale_conf(),
                ..FlinkOptions::default()
            },
        };
        let flink = FlinkCluster::start(options).await?;
        let rest_url = flink.rest_url();
        let jar_id = match path {
            FlinkPath::Reactive => None,
            FlinkPath::Savepoint | FlinkPath::Adaptive => {
                let jar_id = flink.upload_jar(&jar).await?;
                flink.submit(&jar_id, &program, 1).await?;
                Some(jar_id)
            }
        };
        let job = flink
            .running_job(JOB_NAME, Duration::from_secs(120))
            .await?;
        flink
            .wait_running(&job, path.parallelism_of(1), Duration::from_secs(120))
            .await?;

        let targets = dir.path().join("flink-targets.json");
        write_targets_file(&targets, &flink.metrics_targets())?;
        let prometheus = Prometheus::start(
            dir.path(),
            &[ScrapeJob {
                name: "flink".to_owned(),
                targets: Vec::new(),
                targets_file: Some(targets.clone()),
                labels: Vec::new(),
                interval: Duration::from_secs(1),
            }],
        )
        .await?;

        let repo = Repository::create_with(
            &dir.path().join("gitops.git"),
            path.scale_file(),
            &path.first_scale_file(),
        )?;
        let argocd = ArgoCdServer::start(ARGOCD_TOKEN).await?;
        argocd.add_application(App {
            name: CLUSTER.to_owned(),
            project: "default".to_owned(),
            repo: repo.bare.clone(),
            target_revision: gitops::BRANCH.to_owned(),
            auto_sync: false,
        });
        let flink = Arc::new(Mutex::new(flink));
        if path == FlinkPath::Reactive {
            // Argo CD applying a revision = the TaskManager Deployment's replicas becoming the number.
            let (cluster, repo, targets) = (flink.clone(), repo.clone(), targets.clone());
            let runtime = tokio::runtime::Handle::current();
            argocd.on_applied(Arc::new(move |_app, revision| {
                let (cluster, repo, targets) = (cluster.clone(), repo.clone(), targets.clone());
                let revision = revision.to_owned();
                runtime.spawn(async move {
                    if let Err(error) =
                        apply_task_managers(&cluster, &repo, &revision, &targets).await
                    {
                        log(&format!("applying {revision}: {error:#}"));
                    }
                });
            }));
        }

        let database = Database::new("e2e_flink");
        let autoscaler = Autoscaler::start_for_stack(dir.path(), &database).await?;
        let stack = Self {
            path,
            autoscaler,
            flink,
            rest_url,
            prometheus,
            argocd,
            repo,
            probe,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            dir: Some(dir),
            _database: database,
        };
        stack
            .autoscaler
            .subscribe(&stack.cluster_spec(jar_id.as_deref()))
            .await?;
        Ok(stack)
    }

    /// The subscription, as a Flink user would send it; windows shortened so that the loop runs in
    /// minutes.
    fn cluster_spec(&self, jar_id: Option<&str>) -> Value {
        let scale_unit = match self.path {
            FlinkPath::Reactive => json!({"unit": "task_managers",
                                          "slots_per_task_manager": SLOTS_PER_TASK_MANAGER}),
            FlinkPath::Savepoint | FlinkPath::Adaptive => json!({"unit": "parallelism"}),
        };
        let mut flink = json!({"job_name": JOB_NAME});
        if let Some(jar_id) = jar_id {
            flink["jar_id"] = jar_id.into();
            flink["entry_class"] = PROBE_ENTRY_CLASS.into();
            flink["program_args"] = self.probe.args().into();
            flink["adaptive_scheduler"] = (self.path == FlinkPath::Adaptive).into();
        }
        let scale = self.repo.scale;
        json!({
            "name": CLUSTER,
            "target": {"kind": "flink", "reactive": self.path == FlinkPath::Reactive,
                       "control_url": self.rest_url, "scale_unit": scale_unit, "flink": flink},
            "metrics": {"prometheus_url": self.prometheus.url, "selector": {"job_name": JOB_NAME}},
            "git": {"repository": self.repo.url(), "branch": gitops::BRANCH,
                    "path": scale.path, "key": scale.key},
            "write_back": {"mode": "commit"},
            "argocd": {"server": self.argocd.url(), "application": CLUSTER,
                       "token": {"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_ARGOCD_TOKEN"}},
            "policy": {
                "min_scale": 1, "max_scale": self.path.max_scale(),
                "lag_seconds_high": 15, "lag_seconds_low": 3,
                "scale_up_window_seconds": 30, "scale_down_window_seconds": 30,
                "cooldown_seconds": 20, "catch_up_seconds": 60
            }
        })
    }

    /// The job's parallelism when it and all its tasks run, from Flink's REST API.
    pub async fn running_parallelism(&self) -> anyhow::Result<Option<u32>> {
        let jobs: Value = self
            .http
            .get(format!("{}/jobs/overview", self.rest_url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let Some(id) = jobs["jobs"].as_array().and_then(|jobs| {
            jobs.iter()
                .find(|j| j["name"] == JOB_NAME && j["state"] == "RUNNING")
                .and_then(|j| j["jid"].as_str().map(str::to_owned))
        }) else {
            return Ok(None);
        };
        let details: JobDetails = self
            .http
            .get(format!("{}/jobs/{id}", self.rest_url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(details
            .fully_running()
            .then(|| details.parallelism())
            .flatten())
    }

    /// Records the probe's source has not read yet, as Flink reports them through Prometheus.
    pub async fn pending_records(&self) -> anyhow::Result<Option<f64>> {
        self.prometheus
            .value(&format!(
                "sum(flink_taskmanager_job_task_operator_pendingRecords{{job_name=\"{}\"}})",
                JOB_NAME.replace('-', "_")
            ))
            .await
    }
}

impl Drop for FlinkStack {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            log(&format!(
                "the Flink stack's logs stay in {}",
                dir.keep().display()
            ));
        }
    }
}

/// Adaptive-scheduler settings that make a rescale take seconds instead of the defaults' minute
/// (wait for resources to stabilise, a cooldown after each rescale). Production keeps Flink's defaults.
fn fast_rescale_conf() -> Vec<(String, String)> {
    [
        (
            "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout",
            "5s",
        ),
        (
            "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling",
            "5s",
        ),
        (
            "jobmanager.adaptive-scheduler.rescale-trigger.max-delay",
            "10s",
        ),
        (
            "jobmanager.adaptive-scheduler.resource-stabilization-timeout",
            "5s",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Starts or stops TaskManagers until as many run as the scale file says at `revision`, and points
/// Prometheus at their reporters.
async fn apply_task_managers(
    cluster: &Mutex<FlinkCluster>,
    repo: &Repository,
    revision: &str,
    targets: &Path,
) -> anyhow::Result<()> {
    let wanted = repo.scale_at(revision)? as usize;
    let mut cluster = cluster.lock().await;
    while cluster.task_managers() < wanted {
        cluster.start_task_manager().await?;
        write_targets_file(targets, &cluster.metrics_targets())?;
    }
    while cluster.task_managers() > wanted {
        cluster.stop_task_manager().await?;
        write_targets_file(targets, &cluster.metrics_targets())?;
    }
    Ok(())
}
