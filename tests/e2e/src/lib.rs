//! The whole loop on one machine, as real processes: Postgres (the machine's), Prometheus, the
//! librdkafka mock-cluster broker, engine instances, the autoscaler, a bare Git repository as the
//! GitOps repository, and the contract-faithful Elasticsearch and Argo CD test servers. Argo CD's test
//! server "applies" a synced scale by starting or stopping engine instances, the way a Deployment's
//! replica count would. Used by the end-to-end test and by the `demo` binary.

pub mod autoscaler;
pub mod database;
pub mod engines;
pub mod flink;
pub mod gitops;
pub mod load;
pub mod process;
pub mod prometheus;
pub mod review;
pub mod wait;

use std::sync::Arc;

use serde_json::{Value, json};
use test_support::argocd::{App, ArgoCdServer};
use test_support::es::{EsServer, EsServerOptions, Faults};
use test_support::kafka::MockBroker;

use autoscaler::{ARGOCD_TOKEN, Autoscaler, ENGINE_TOKEN};
use database::Database;
use engines::{EngineSettings, Engines};
use gitops::Repository;
use load::LoadGenerator;
use prometheus::Prometheus;
use review::Review;

/// The pipeline's name: the cluster name, the engine's `pipeline.name` and the Argo CD application.
pub const CLUSTER: &str = "logs";
pub const TOPIC: &str = "app-logs";
pub const PARTITIONS: i32 = 12;
pub const MAX_SCALE: u32 = 4;
/// Elasticsearch's capacity: each `_bulk` request takes this long, and it serves this many at once.
/// With one request of at most `BATCH_DOCS` in flight per instance, one instance moves about 500
/// records per second (measured: about 6 requests a second of about 85 documents each, debug build),
/// and four instances about four times that.
pub const ES_REQUEST_MS: u64 = 100;
pub const ES_CONCURRENT_REQUESTS: u64 = 4;
pub const BATCH_DOCS: u32 = 100;

/// How the stack's autoscaler writes a new scale back to the GitOps repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteBack {
    /// A commit on the branch (`write_back.mode: commit`).
    Commit,
    /// A pull request on the GitHub test server, applied once it is merged (`pull_request`).
    PullRequest,
}

pub struct Stack {
    pub autoscaler: Autoscaler,
    /// The GitHub test server and the review actions, with [`WriteBack::PullRequest`].
    pub review: Option<Review>,
    pub engines: Engines,
    pub prometheus: Prometheus,
    pub es: EsServer,
    pub argocd: ArgoCdServer,
    pub broker: MockBroker,
    pub repo: Repository,
    dir: Option<tempfile::TempDir>,
    _database: Database,
}

impl Stack {
    /// Starts everything with one engine instance and subscribes the pipeline, writing back with
    /// commits. Nothing produces yet.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(WriteBack::Commit).await
    }

    /// [`Stack::start`], writing back as `write_back` says.
    pub async fn start_with(write_back: WriteBack) -> anyhow::Result<Self> {
        process::binaries_dir()?;
        let dir = tempfile::Builder::new().prefix("e2e-").tempdir()?;
        let broker = MockBroker::start(&[(TOPIC, PARTITIONS)]);
        let es = EsServer::start(EsServerOptions {
            keep_sources: false,
            faults: Faults {
                delay_ms: ES_REQUEST_MS,
                max_concurrent_requests: ES_CONCURRENT_REQUESTS,
                ..Faults::default()
            },
            ..EsServerOptions::default()
        })
        .await?;
        let repo = Repository::create(&dir.path().join("gitops.git"), 1)?;
        let argocd = ArgoCdServer::start(ARGOCD_TOKEN).await?;
        argocd.add_application(App {
            name: CLUSTER.to_owned(),
            project: "default".to_owned(),
            repo: repo.bare.clone(),
            target_revision: gitops::BRANCH.to_owned(),
            auto_sync: false,
        });

        // The autoscaler creates its database; the guard drops it again, also when start-up fails.
        let database = Database::new("e2e");
        let autoscaler = Autoscaler::start_for_stack(dir.path(), &database).await?;
        let review = match write_back {
            WriteBack::Commit => None,
            WriteBack::PullRequest => {
                let mut review = Review::start(repo.bare.clone()).await?;
                review.deliver_to(&autoscaler.url);
                Some(review)
            }
        };

        let engines = Engines::new(
            EngineSettings {
                pipeline: CLUSTER.to_owned(),
                brokers: broker.bootstrap.clone(),
                topic: TOPIC.to_owned(),
                elasticsearch: es.url(),
                announce_url: format!("{}/webhooks/engine", autoscaler.url),
                announce_token: ENGINE_TOKEN.to_owned(),
                batch_max_docs: BATCH_DOCS,
            },
            dir.path(),
            MAX_SCALE as usize,
        )?;
        let prometheus = prometheus::start(dir.path(), &engines.metrics_targets()).await?;

        // Argo CD applying a revision = the Deployment's replicas becoming the file's number.
        let (fleet, applied_repo) = (engines.clone(), repo.clone());
        argocd.on_applied(Arc::new(move |_app, revision| {
            let (fleet, repo, revision) =
                (fleet.clone(), applied_repo.clone(), revision.to_owned());
            // Off the server's request task: stopping an instance waits for its drain.
            std::thread::spawn(move || {
                let result = repo
                    .scale_at(&revision)
                    .and_then(|scale| fleet.scale_to(scale as usize));
                if let Err(error) = result {
                    log(&format!("applying {revision}: {error:#}"));
                }
            });
        }));
        engines.scale_to(repo.scale_at(gitops::BRANCH)? as usize)?;

        let stack = Self {
            autoscaler,
            review,
            engines,
            prometheus,
            es,
            argocd,
            broker,
            repo,
            dir: Some(dir),
            _database: database,
        };
        stack.autoscaler.subscribe(&stack.cluster_spec()).await?;
        Ok(stack)
    }

    /// The subscription, as a user would send it. The policy is the design's, with windows and
    /// thresholds shortened so that the loop runs in minutes.
    fn cluster_spec(&self) -> Value {
        json!({
            "name": CLUSTER,
            "target": {"kind": "engine"},
            "metrics": {"prometheus_url": self.prometheus.url, "selector": {"pipeline": CLUSTER}},
            "git": {"repository": self.repo.url(), "branch": gitops::BRANCH,
                    "path": gitops::SCALE_PATH, "key": gitops::SCALE_KEY},
            "write_back": match &self.review {
                None => json!({"mode": "commit"}),
                Some(review) => json!({
                    "mode": "pull_request",
                    "github_repository": format!("{}/{}", review::OWNER, review::REPOSITORY),
                    "github_api_url": review.github.url(),
                    "token": {"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB_TOKEN"},
                }),
            },
            "argocd": {"server": self.argocd.url(), "application": CLUSTER,
                       "token": {"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_ARGOCD_TOKEN"}},
            "policy": {
                "min_scale": 1, "max_scale": MAX_SCALE, "partition_count": PARTITIONS,
                "lag_seconds_high": 15, "lag_seconds_low": 3,
                "scale_up_window_seconds": 30, "scale_down_window_seconds": 30,
                "cooldown_seconds": 20, "catch_up_seconds": 60
            }
        })
    }

    /// Starts the load generator at `rate` records per second.
    pub fn start_load(&self, rate: u32) -> anyhow::Result<LoadGenerator> {
        LoadGenerator::start(self.logs_dir(), &self.broker.bootstrap, TOPIC, rate)
    }

    /// Records waiting in Kafka for the pipeline, as the engines report it.
    pub async fn lag_records(&self) -> anyhow::Result<Option<f64>> {
        self.prometheus
            .value(&format!(
                "sum(engine_consumer_lag_records{{pipeline=\"{CLUSTER}\"}})"
            ))
            .await
    }

    /// Documents Elasticsearch holds.
    pub fn documents(&self) -> usize {
        self.es.ids().len()
    }

    /// Dead-lettered records of every engine instance that ran.
    pub fn dead_letters(&self) -> anyhow::Result<Vec<String>> {
        engines::dead_letters(self.logs_dir())
    }

    /// Where the processes' logs are.
    pub fn logs_dir(&self) -> &std::path::Path {
        self.dir
            .as_ref()
            .map_or(std::path::Path::new("."), |d| d.path())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.engines.stop_all();
        // A failed test leaves the processes' logs behind for whoever reads the failure.
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            log(&format!(
                "the stack's logs stay in {}",
                dir.keep().display()
            ));
        }
    }
}

pub(crate) fn log(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "e2e: {line}");
}
