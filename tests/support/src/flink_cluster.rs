//! A real Apache Flink 2.3 cluster for tests: one JobManager and any number of TaskManagers, each a
//! JVM started from the distribution `scripts/install-flink.sh` installs, bound to 127.0.0.1 on free
//! ports, with the Prometheus reporter on every process.
//!
//! - `Default` and `Adaptive` run a session cluster (`jobmanager.sh`): jobs are uploaded and submitted
//!   over REST. `Reactive` runs application mode (`standalone-job.sh`, `scheduler-mode: reactive`), the
//!   only mode reactive scaling works in: the cluster runs its one job at every slot it has, so
//!   starting or stopping a TaskManager rescales it.
//! - The JVMs run in the foreground as this process's children (Flink's scripts `exec` java), so
//!   they are killed by PID when the cluster is dropped, also when a test panics. A cluster's work
//!   directory lists its PIDs; a cluster started later kills what a killed test process left behind.
//! - The shared installation is read-only: each cluster has its own configuration directory
//!   (`FLINK_CONF_DIR`), logs, checkpoints, savepoints and uploads under its work directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::process::{Process, free_port};
use crate::wait::{until_ok, until_some};

pub const FLINK_VERSION: &str = "2.3.0";
/// Where `scripts/install-flink.sh` puts Flink unless `AUTOSCALER_FLINK_DIST` says otherwise.
const DEFAULT_DIST: &str = "/opt/flink-2.3.0";
/// Measured here: a JobManager answers REST about 10–20 s after its JVM starts on 2 busy cores.
const START_DEADLINE: Duration = Duration::from_secs(120);

/// The Flink installation: `AUTOSCALER_FLINK_DIST`, or `/opt/flink-2.3.0`.
pub fn flink_home() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("AUTOSCALER_FLINK_DIST")
        .map_or_else(|| PathBuf::from(DEFAULT_DIST), PathBuf::from);
    for needed in ["bin/jobmanager.sh", "lib", "plugins/metrics-prometheus"] {
        anyhow::ensure!(
            home.join(needed).exists(),
            "Flink {FLINK_VERSION} is not installed at {} (no {needed}): run scripts/setup.sh, or \
             set AUTOSCALER_FLINK_DIST to a Flink {FLINK_VERSION} directory",
            home.display()
        );
    }
    Ok(home)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// `jobmanager.scheduler: default`: a new parallelism needs stop-with-savepoint and resubmission.
    Default,
    /// `jobmanager.scheduler: adaptive`: the job's resource requirements can change in place.
    Adaptive,
    /// `scheduler-mode: reactive` in application mode: the job runs at every slot the cluster has.
    Reactive,
}

/// A job's entry point and its arguments.
#[derive(Debug, Clone)]
pub struct Program {
    pub entry_class: String,
    pub args: Vec<String>,
}

/// The job an application-mode (reactive) cluster runs.
#[derive(Debug, Clone)]
pub struct Application {
    pub jar: PathBuf,
    pub program: Program,
}

#[derive(Debug, Clone)]
pub struct FlinkOptions {
    pub scheduler: Scheduler,
    pub slots_per_task_manager: u32,
    /// TaskManagers started with the cluster.
    pub task_managers: u32,
    /// Extra `config.yaml` keys, e.g. a shorter adaptive-scheduler cooldown. They win over the
    /// harness's own.
    pub conf: Vec<(String, String)>,
    /// Required for `Reactive`, refused otherwise.
    pub application: Option<Application>,
}

impl Default for FlinkOptions {
    fn default() -> Self {
        Self {
            scheduler: Scheduler::Default,
            slots_per_task_manager: 2,
            task_managers: 1,
            conf: Vec::new(),
            application: None,
        }
    }
}

struct TaskManager {
    process: Process,
    metrics_port: u16,
}

pub struct FlinkCluster {
    options: FlinkOptions,
    home: PathBuf,
    dir: Option<PathBuf>,
    rest_port: u16,
    jobmanager_metrics_port: u16,
    task_managers: Vec<TaskManager>,
    started_task_managers: u32,
    http: reqwest::Client,
    /// Keep the work directory (its logs) when dropped: start-up failed.
    keep_dir: bool,
    // Declared last: dropped (killed) after the TaskManagers.
    jobmanager: Option<Process>,
}

/// `GET /jobs/overview` → `jobs[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct JobSummary {
    pub jid: String,
    pub name: String,
    pub state: String,
}

/// The parts of `GET /jobs/{id}` tests read.
#[derive(Debug, Clone, Deserialize)]
pub struct JobDetails {
    pub state: String,
    #[serde(default)]
    pub vertices: Vec<Vertex>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Vertex {
    pub id: String,
    pub name: String,
    pub parallelism: u32,
    pub status: String,
}

impl JobDetails {
    /// The highest vertex parallelism: what the job runs at.
    pub fn parallelism(&self) -> Option<u32> {
        self.vertices.iter().map(|v| v.parallelism).max()
    }

    /// RUNNING, and so is every vertex (a restored job shows RUNNING while its tasks still deploy).
    pub fn fully_running(&self) -> bool {
        self.state == "RUNNING"
            && !self.vertices.is_empty()
            && self.vertices.iter().all(|v| v.status == "RUNNING")
    }
}

impl FlinkCluster {
    /// Starts the JobManager and `options.task_managers` TaskManagers, and waits until every slot is
    /// registered.
    pub async fn start(options: FlinkOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (options.scheduler == Scheduler::Reactive) == options.application.is_some(),
            "an application is required for the reactive scheduler, and only there"
        );
        anyhow::ensure!(
            options.slots_per_task_manager >= 1,
            "a TaskManager needs a slot"
        );
        let home = flink_home()?;
        sweep_abandoned_clusters();
        let dir = new_work_dir()?;
        let mut cluster = Self {
            rest_port: free_port()?,
            jobmanager_metrics_port: free_port()?,
            options,
            home,
            dir: Some(dir),
            task_managers: Vec::new(),
            started_task_managers: 0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            keep_dir: false,
            jobmanager: None,
        };
        if let Err(error) = cluster.boot().await {
            cluster.keep_dir = true;
            return Err(error.context(cluster.logs_hint()));
        }
        Ok(cluster)
    }

    async fn boot(&mut self) -> anyhow::Result<()> {
        self.write_config()?;
        self.start_jobmanager()?;
        until_ok("the JobManager's REST API", START_DEADLINE, || async {
            self.overview().await.map(|_| ())
        })
        .await?;
        for _ in 0..self.options.task_managers {
            self.start_task_manager().await?;
        }
        Ok(())
    }

    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest_port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_deref().unwrap_or(Path::new("."))
    }

    pub fn slots_per_task_manager(&self) -> u32 {
        self.options.slots_per_task_manager
    }

    /// The TaskManagers running now.
    pub fn task_managers(&self) -> usize {
        self.task_managers.len()
    }

    /// `host:port` of the JobManager's reporter and every running TaskManager's.
    pub fn metrics_targets(&self) -> Vec<String> {
        std::iter::once(self.jobmanager_metrics_port)
            .chain(self.task_managers.iter().map(|t| t.metrics_port))
            .map(|port| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// Starts one more TaskManager and waits until the JobManager counts its slots.
    pub async fn start_task_manager(&mut self) -> anyhow::Result<()> {
        let metrics_port = free_port()?;
        self.started_task_managers += 1;
        let name = format!("taskmanager-{}", self.started_task_managers);
        let mut command = self.script("taskmanager.sh");
        command
            .arg("start-foreground")
            .arg("-D")
            .arg(format!("metrics.reporter.prom.port={metrics_port}"));
        let process = self.spawn(&name, command)?;
        self.task_managers.push(TaskManager {
            process,
            metrics_port,
        });
        self.wait_task_managers(self.task_managers.len()).await
    }

    /// Stops the newest TaskManager with SIGTERM (as Kubernetes stops a pod) and waits until the
    /// JobManager no longer counts it.
    pub async fn stop_task_manager(&mut self) -> anyhow::Result<()> {
        let task_manager = self
            .task_managers
            .pop()
            .context("no TaskManager is running")?;
        let name = task_manager.process.name.clone();
        task_manager
            .process
            .terminate(Duration::from_secs(30))
            .with_context(|| format!("stopping {name}"))?;
        self.wait_task_managers(self.task_managers.len()).await
    }

    async fn wait_task_managers(&self, count: usize) -> anyhow::Result<()> {
        let slots = count as u64 * u64::from(self.options.slots_per_task_manager);
        until_some(
            &format!("{count} TaskManagers with {slots} slots registered"),
            START_DEADLINE,
            || async {
                let overview = self.overview().await?;
                let registered = overview["taskmanagers"].as_u64();
                let total = overview["slots-total"].as_u64();
                Ok((registered == Some(count as u64) && total == Some(slots)).then_some(()))
            },
        )
        .await
        .with_context(|| self.logs_hint())
    }

    /// `GET /overview`: TaskManagers, slots, jobs by state.
    pub async fn overview(&self) -> anyhow::Result<Value> {
        self.get("overview").await
    }

    pub async fn jobs(&self) -> anyhow::Result<Vec<JobSummary>> {
        #[derive(Deserialize)]
        struct Jobs {
            jobs: Vec<JobSummary>,
        }
        let jobs: Jobs = serde_json::from_value(self.get("jobs/overview").await?)?;
        Ok(jobs.jobs)
    }

    /// The one RUNNING job of that name, waiting up to `deadline` for it.
    pub async fn running_job(&self, name: &str, deadline: Duration) -> anyhow::Result<String> {
        until_some(&format!("a running job named {name}"), deadline, || async {
            let running: Vec<JobSummary> = self
                .jobs()
                .await?
                .into_iter()
                .filter(|j| j.name == name && j.state == "RUNNING")
                .collect();
            anyhow::ensure!(running.len() <= 1, "several jobs named {name}: {running:?}");
            Ok(running.into_iter().next().map(|j| j.jid))
        })
        .await
    }

    /// `GET /jobs/{id}` (served from a cache up to about 3 s old).
    pub async fn job(&self, job_id: &str) -> anyhow::Result<JobDetails> {
        Ok(serde_json::from_value(
            self.get(&format!("jobs/{job_id}")).await?,
        )?)
    }

    /// Waits until the job runs at `parallelism` with every vertex RUNNING.
    pub async fn wait_running(
        &self,
        job_id: &str,
        parallelism: u32,
        deadline: Duration,
    ) -> anyhow::Result<JobDetails> {
        until_some(
            &format!("job {job_id} fully running at parallelism {parallelism}"),
            deadline,
            || async {
                let details = self.job(job_id).await?;
                Ok(
                    (details.fully_running() && details.parallelism() == Some(parallelism))
                        .then_some(details),
                )
            },
        )
        .await
    }

    /// `POST /jars/upload`: the jar id Flink gives it.
    pub async fn upload_jar(&self, jar: &Path) -> anyhow::Result<String> {
        let bytes = std::fs::read(jar).with_context(|| format!("reading {}", jar.display()))?;
        let file_name = jar
            .file_name()
            .and_then(|n| n.to_str())
            .context("a jar path without a file name")?
            .to_owned();
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name)
            .mime_str("application/x-java-archive")?;
        let form = reqwest::multipart::Form::new().part("jarfile", part);
        let response: Value = self
            .http
            .post(format!("{}/jars/upload", self.rest_url()))
            .multipart(form)
            .send()
            .await?
            .error_for_status()
            .context("uploading the jar")?
            .json()
            .await?;
        let path = response["filename"]
            .as_str()
            .with_context(|| format!("an upload answer without filename: {response}"))?;
        // The id is the file name Flink stored the jar under.
        Ok(path.rsplit('/').next().unwrap_or(path).to_owned())
    }

    /// `POST /jars/{jar}/run`: the new job's id.
    pub async fn submit(
        &self,
        jar_id: &str,
        program: &Program,
        parallelism: u32,
    ) -> anyhow::Result<String> {
        let body = json!({
            "entryClass": program.entry_class,
            "programArgsList": program.args,
            "parallelism": parallelism,
        });
        let response = self
            .http
            .post(format!("{}/jars/{jar_id}/run", self.rest_url()))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(
            status.is_success(),
            "submitting {jar_id} was refused ({status}): {answer}"
        );
        answer["jobid"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("a run answer without jobid: {answer}"))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}/{path}", self.rest_url()))
            .send()
            .await
            .with_context(|| format!("GET /{path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "GET /{path}: {status} {body}");
        Ok(body)
    }

    fn write_config(&self) -> anyhow::Result<()> {
        let dir = self.dir();
        let conf = dir.join("conf");
        for sub in ["conf", "log", "checkpoints", "savepoints", "upload", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        // Logging configuration and the rest of the shipped conf/, except config.yaml, written below.
        for entry in std::fs::read_dir(self.home.join("conf"))? {
            let entry = entry?;
            if entry.file_name() != "config.yaml" && entry.file_type()?.is_file() {
                std::fs::copy(entry.path(), conf.join(entry.file_name()))?;
            }
        }
        let shipped: serde_yaml::Value = serde_yaml::from_str(
            &std::fs::read_to_string(self.home.join("conf/config.yaml"))
                .context("reading Flink's shipped config.yaml")?,
        )?;
        // The --add-opens flags Flink needs on Java 17.
        let java_opts = shipped["env"]["java"]["opts"]["all"]
            .as_str()
            .context("Flink's shipped config.yaml has no env.java.opts.all")?
            .to_owned();
        let url = |sub: &str| format!("file://{}", dir.join(sub).display());
        let path = |sub: &str| dir.join(sub).display().to_string();
        let mut keys: Vec<(String, String)> = [
            ("env.java.opts.all", java_opts),
            ("jobmanager.bind-host", "127.0.0.1".into()),
            ("jobmanager.rpc.address", "127.0.0.1".into()),
            ("jobmanager.rpc.port", free_port()?.to_string()),
            ("jobmanager.memory.process.size", "1024m".into()),
            ("taskmanager.bind-host", "127.0.0.1".into()),
            ("taskmanager.host", "127.0.0.1".into()),
            // Every TaskManager on this host needs its own ports: let each pick free ones.
            ("taskmanager.rpc.port", "0".into()),
            ("taskmanager.data.port", "0".into()),
            ("taskmanager.memory.process.size", "1280m".into()),
            (
                "taskmanager.numberOfTaskSlots",
                self.options.slots_per_task_manager.to_string(),
            ),
            ("rest.address", "127.0.0.1".into()),
            ("rest.bind-address", "127.0.0.1".into()),
            ("rest.port", self.rest_port.to_string()),
            ("blob.server.port", "0".into()),
            ("execution.checkpointing.dir", url("checkpoints")),
            ("execution.checkpointing.savepoint-dir", url("savepoints")),
            ("web.upload.dir", path("upload")),
            ("io.tmp.dirs", path("tmp")),
            (
                "metrics.reporter.prom.factory.class",
                "org.apache.flink.metrics.prometheus.PrometheusReporterFactory".into(),
            ),
            // The JobManager's; each TaskManager gets its own on its command line. The reporter binds
            // every interface (it has no host option): the ports are free ones, never exposed.
            (
                "metrics.reporter.prom.port",
                self.jobmanager_metrics_port.to_string(),
            ),
            // Shorter than Flink's defaults (10 s / 50 s), so that a stopped TaskManager is noticed in
            // seconds; production keeps its own.
            ("heartbeat.interval", "2000".into()),
            ("heartbeat.timeout", "10000".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        match self.options.scheduler {
            Scheduler::Default => keys.push(("jobmanager.scheduler".into(), "default".into())),
            Scheduler::Adaptive => keys.push(("jobmanager.scheduler".into(), "adaptive".into())),
            Scheduler::Reactive => keys.push(("scheduler-mode".into(), "reactive".into())),
        }
        for (key, value) in &self.options.conf {
            keys.retain(|(k, _)| k != key);
            keys.push((key.clone(), value.clone()));
        }
        // Flat keys, every value a quoted string: Flink converts strings to each option's type.
        let mut text = String::new();
        for (key, value) in keys {
            text.push_str(&format!("{key}: {}\n", serde_json::to_string(&value)?));
        }
        std::fs::write(conf.join("config.yaml"), text).context("writing config.yaml")
    }

    fn start_jobmanager(&mut self) -> anyhow::Result<()> {
        let command = match &self.options.application {
            None => {
                let mut command = self.script("jobmanager.sh");
                command.arg("start-foreground");
                command
            }
            Some(application) => {
                let mut command = self.script("standalone-job.sh");
                // `--jars` takes every value up to the next option it knows, so it goes first: after
                // it, the class name ends the list and the program's own arguments follow.
                command
                    .arg("start-foreground")
                    .arg("--jars")
                    .arg(format!("file://{}", application.jar.display()))
                    .arg("--job-classname")
                    .arg(&application.program.entry_class)
                    .args(&application.program.args);
                command
            }
        };
        self.jobmanager = Some(self.spawn("jobmanager", command)?);
        Ok(())
    }

    fn script(&self, name: &str) -> Command {
        let dir = self.dir();
        let mut command = Command::new(self.home.join("bin").join(name));
        command
            .env("FLINK_CONF_DIR", dir.join("conf"))
            .env("FLINK_LOG_DIR", dir.join("log"))
            .env("FLINK_PID_DIR", dir)
            .current_dir(dir);
        command
    }

    /// Starts a JVM and writes its PID down, so that a cluster started later can kill it if this
    /// test process dies without dropping the cluster.
    fn spawn(&self, name: &str, command: Command) -> anyhow::Result<Process> {
        let process = Process::spawn(name, command, &self.dir().join("log"))?;
        use std::io::Write as _;
        let mut pids = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("pids"))?;
        writeln!(pids, "{}", process.pid())?;
        Ok(process)
    }

    fn logs_hint(&self) -> String {
        format!("Flink's logs are in {}", self.dir().join("log").display())
    }
}

impl Drop for FlinkCluster {
    fn drop(&mut self) {
        // Processes are killed by their own drops: TaskManagers first, then the JobManager.
        self.task_managers.clear();
        self.jobmanager = None;
        let Some(dir) = self.dir.take() else { return };
        if self.keep_dir || std::thread::panicking() {
            eprintln!("flink: the cluster's logs stay in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Every cluster's work directory is under this one.
fn clusters_root() -> PathBuf {
    std::env::temp_dir().join("autoscaler-flink")
}

fn new_work_dir() -> anyhow::Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = clusters_root().join(format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Kills the JVMs of clusters whose test process is gone (killed from outside, so nothing dropped
/// them) and removes their directories. A PID is killed only if its command line names the cluster's
/// directory, so a reused PID is left alone.
fn sweep_abandoned_clusters() {
    let Ok(entries) = std::fs::read_dir(clusters_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let pids = std::fs::read_to_string(dir.join("pids")).unwrap_or_default();
        for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
