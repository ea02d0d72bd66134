//! One cluster's world for the worker: a fresh database, a bare Git repository as the GitOps remote,
//! the contract-faithful Argo CD test server deploying from it, and a worker with short waits.

use std::{path::PathBuf, process::Command, sync::Arc, time::Duration};

use autoscaler::{
    argocd::FollowSettings,
    cluster::ClusterSpec,
    decide::{DecisionInputs, Direction},
    github::RateLimitSettings,
    metrics::Metrics,
    storage::{DecisionRecord, NewDecision, Sample, Storage},
    worker::{RetrySettings, SecretResolver, Worker, WorkerSettings},
};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};
use test_support::argocd::{App, ArgoCdServer};

use crate::database::TestDatabase;

pub const ARGOCD_TOKEN: &str = "argocd-token-for-tests-1234";
pub const APP: &str = "logs";
pub const PATH: &str = "pipelines/logs/values.yaml";
/// Comments, quoting, odd spacing and a second `replicas` key elsewhere: all must survive byte for byte.
pub const VALUES: &str = concat!(
    "# Scale of the logs pipeline. Owned by the autoscaler; reviewed by #data-platform.\n",
    "engine:\n",
    "  image: \"registry.example.com/engine:1.4\"   # pinned\n",
    "  replicas:   2    # engine instances\n",
    "  resources: {cpu: 2, memory: 1Gi}\n",
    "sidecar:\n",
    "  replicas: 1\n",
);

pub struct World {
    pub storage: Storage,
    pub argocd: ArgoCdServer,
    pub dir: PathBuf,
    pub bare: PathBuf,
    pub cluster_id: i64,
    pub metrics: Arc<Metrics>,
    /// For processes that connect on their own (the kill tests' roles).
    #[allow(
        dead_code,
        reason = "read by the kill tests, which share this file, not by the worker tests"
    )]
    pub database_url: String,
    _database: TestDatabase,
}

pub use crate::git_cli::git;

impl World {
    pub async fn new() -> Self {
        Self::with_spec(|_| {}).await
    }

    /// A world whose cluster spec `adjust` may change first.
    pub async fn with_spec(adjust: impl FnOnce(&mut Value)) -> Self {
        Self::with_spec_on(TestDatabase::new(), adjust).await
    }

    /// [`World::with_spec`] in `database` (on a server of the test's own).
    pub async fn with_spec_on(database: TestDatabase, adjust: impl FnOnce(&mut Value)) -> Self {
        let storage = Storage::connect(&database.url).await.expect("connect");
        storage.migrate().await.expect("migrate");

        let dir = std::env::temp_dir().join(format!("worker-{}", uuid::Uuid::new_v4().simple()));
        let bare = dir.join("gitops.git");
        let seed = dir.join("seed");
        std::fs::create_dir_all(seed.join("pipelines/logs")).expect("dirs");
        std::fs::create_dir_all(dir.join("secrets/default")).expect("dirs");
        std::fs::write(
            dir.join("secrets/default/argocd"),
            format!("{ARGOCD_TOKEN}\n"),
        )
        .expect("secret");
        git(
            &dir,
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                "gitops.git",
            ],
        );
        git(&seed, &["init", "--quiet", "--initial-branch=main"]);
        std::fs::write(seed.join(PATH), VALUES).expect("write");
        git(&seed, &["add", "."]);
        // The seed is old: it is the baseline, not a recent hand edit.
        let seeded = Command::new("git")
            .args([
                "-c",
                "user.name=Platform",
                "-c",
                "user.email=platform@example.com",
            ])
            .args(["commit", "--quiet", "-m", "seed"])
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .current_dir(&seed)
            .status()
            .expect("git runs");
        assert!(seeded.success());
        let bare_path = bare.to_str().expect("utf-8");
        git(&seed, &["push", "--quiet", bare_path, "main"]);

        let argocd = ArgoCdServer::start(ARGOCD_TOKEN).await.expect("argocd");
        argocd.add_application(App {
            name: APP.to_owned(),
            project: "default".to_owned(),
            repo: bare.clone(),
            target_revision: "main".to_owned(),
            auto_sync: false,
        });

        let mut spec = json!({
            "name": "logs",
            "target": {"kind": "engine"},
            "metrics": {"prometheus_url": "http://127.0.0.1:9", "selector": {"pipeline": "logs"}},
            "git": {"repository": format!("file://{bare_path}"), "path": PATH, "key": "engine.replicas"},
            "argocd": {"server": argocd.url(), "application": APP, "token": {"file": "argocd"}},
            "policy": {"max_scale": 12, "partition_count": 24}
        });
        adjust(&mut spec);
        let spec: ClusterSpec = serde_json::from_value(spec).expect("spec");
        let cluster = storage
            .insert_cluster(&spec, autoscaler::storage::Actor::OPERATOR)
            .await
            .expect("cluster");
        Self {
            storage,
            argocd,
            dir,
            bare,
            cluster_id: cluster.id,
            metrics: Arc::default(),
            database_url: database.url.clone(),
            _database: database,
        }
    }

    /// A worker on its own "host": its own clones.
    pub fn worker(&self, host: &str) -> Arc<Worker> {
        Worker::new(
            self.storage.clone(),
            self.metrics.clone(),
            SecretResolver::new(Some(self.dir.join("secrets")), None),
            WorkerSettings {
                workdir: self.dir.join(host),
                argocd: FollowSettings {
                    poll_interval: Duration::from_millis(20),
                    timeout: Duration::from_secs(20),
                },
                github: RateLimitSettings {
                    secondary_wait: Duration::from_millis(20),
                    max_wait: Duration::from_secs(5),
                    max_attempts: 4,
                },
                public_url: Some("https://autoscaler.example.com".parse().expect("url")),
                outbound: Arc::new(
                    test_support::OUTBOUND_ALLOW_LOCAL
                        .parse()
                        .expect("the tests' allow-list"),
                ),
                heartbeat_timeout: Duration::from_secs(60),
                rescale: autoscaler::rescale::RescaleSettings {
                    poll_interval: Duration::from_millis(20),
                    timeout: Duration::from_secs(20),
                    request_timeout: Duration::from_secs(10),
                },
                lease_ttl: Duration::from_secs(2),
            },
        )
        .expect("worker")
    }

    pub fn retry() -> RetrySettings {
        RetrySettings {
            attempts: 3,
            backoff: Duration::from_millis(20),
        }
    }

    /// Ten minutes of a saturated job at scale 2: lag high and growing, 1000 records/s per worker,
    /// input at 5000 records/s.
    pub async fn saturated_history(&self, now: DateTime<Utc>) {
        let batch: Vec<(i64, Sample)> = (0..40)
            .map(|i| {
                let at = now - ChronoDuration::seconds(15 * (39 - i));
                (
                    self.cluster_id,
                    Sample {
                        sampled_at: at,
                        cpu_load: Some(0.97),
                        lag_records: Some(600_000.0 + 1000.0 * i as f64),
                        lag_seconds: Some(600.0 + i as f64),
                        records_in: Some(5000.0),
                        records_out: Some(2000.0 + (i % 3) as f64),
                        scale: Some(2.0),
                    },
                )
            })
            .collect();
        self.storage.insert_samples(&batch).await.expect("samples");
    }

    /// A pending decision as the manager records it.
    pub async fn pending(&self, direction: &str, now: DateTime<Utc>) -> i64 {
        self.storage
            .insert_pending_decision(&NewDecision {
                cluster_id: self.cluster_id,
                cluster_name: "logs".to_owned(),
                rule: "lag_above_threshold".to_owned(),
                inputs: DecisionInputs::bare(
                    match direction {
                        "down" => Direction::Down,
                        _ => Direction::Up,
                    },
                    "lag 639 s above 300 s over 300 s",
                    now,
                    300,
                ),
                from_scale: Some(2),
            })
            .await
            .expect("pending decision")
            .id
    }

    /// The usual start: a saturated history, and a pending scale-up decision on top of it.
    pub async fn saturated_decision(&self) -> i64 {
        let now = Utc::now();
        self.saturated_history(now).await;
        self.pending("up", now).await
    }

    /// Waits until no worker's lease on the decision is in force (a killed worker's has expired).
    pub async fn lease_expired(&self, id: i64) {
        eventually("the decision's lease to expire", Duration::from_secs(30), || async {
            let (free,): (bool,) = sqlx::query_as(
                "select lease_owner is null or lease_expires_at < now() from decisions where id = $1",
            )
            .bind(id)
            .fetch_one(self.storage.pool())
            .await
            .expect("lease");
            free
        })
        .await;
    }

    pub async fn decision(&self, id: i64) -> DecisionRecord {
        self.storage.get_decision(id).await.expect("decision")
    }

    pub fn file(&self, branch: &str) -> String {
        git(&self.bare, &["show", &format!("{branch}:{PATH}")])
    }

    /// Subjects on main, newest first.
    pub fn log(&self) -> Vec<String> {
        git(&self.bare, &["log", "--format=%s", "main"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn head(&self, branch: &str) -> String {
        git(&self.bare, &["rev-parse", branch]).trim().to_owned()
    }

    /// A person changes the scale on main, now.
    pub fn commit_by_hand(&self, replicas: u32) {
        let hand = self
            .dir
            .join(format!("hand-{}", uuid::Uuid::new_v4().simple()));
        let url = format!("file://{}", self.bare.display());
        git(
            &self.dir,
            &["clone", "--quiet", &url, hand.to_str().expect("utf-8")],
        );
        let text = std::fs::read_to_string(hand.join(PATH)).expect("read");
        let edited = text.replace("replicas:   2 ", &format!("replicas:   {replicas} "));
        assert_ne!(text, edited, "the hand edit changes the file");
        std::fs::write(hand.join(PATH), edited).expect("write");
        git(
            &hand,
            &[
                "-c",
                "user.name=Ada",
                "-c",
                "user.email=ada@example.com",
                "commit",
                "--quiet",
                "-am",
                "logs: more replicas for the sale",
            ],
        );
        git(&hand, &["push", "--quiet", "origin", "main"]);
    }

    pub fn steps(record: &DecisionRecord) -> Vec<String> {
        record
            .steps
            .0
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .filter_map(|s| s["step"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `check` until it holds, or panics after `deadline` naming `what`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = std::time::Instant::now() + deadline;
    while !check().await {
        assert!(
            std::time::Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
