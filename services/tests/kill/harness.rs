//! The kill rig: one cluster's world (Postgres, a bare Git repository, the Argo CD test server, an
//! engine control endpoint), and the `autoscaler` roles as child processes that a test can SIGKILL at
//! any moment, or at a named pause point (`AUTOSCALER_TEST_PAUSE_AT`, see `services/src/fault.rs`).

use std::{
    collections::BTreeMap,
    fs::File,
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

use autoscaler::storage::{DecisionRecord, DecisionStatus, NewDecision, Sample};
use chrono::{Duration as ChronoDuration, Utc};
use serde_json::json;

use crate::database::TestDatabase;
use crate::engine_control::{CONTROL_TOKEN, Engine, engine};
use crate::world::{PATH, World, git};

/// Short deadlines and leases, so that a killed role's decision is picked up within seconds.
const FAST: &[(&str, &str)] = &[
    ("AUTOSCALER_SCRAPE_INTERVAL", "5s"),
    ("AUTOSCALER_PROMETHEUS_TIMEOUT", "2s"),
    ("AUTOSCALER_ARGOCD_POLL_INTERVAL", "100ms"),
    ("AUTOSCALER_WORKER_BACKOFF", "200ms"),
    ("AUTOSCALER_WORKER_ATTEMPTS", "5"),
    ("AUTOSCALER_WORKER_LEASE_TTL", "2s"),
    ("AUTOSCALER_RECONCILE_INTERVAL", "1s"),
    ("AUTOSCALER_RECONCILE_MAX_REDRIVES", "20"),
    ("AUTOSCALER_DEADLINE_PENDING", "3s"),
    ("AUTOSCALER_DEADLINE_RUNNING", "3s"),
    ("AUTOSCALER_DEADLINE_COMMITTED", "3s"),
    ("AUTOSCALER_ARGOCD_SYNC_TIMEOUT", "3s"),
    ("AUTOSCALER_DEADLINE_SYNCING", "4s"),
    ("AUTOSCALER_DEADLINE_SYNCED", "3s"),
];
pub const API_TOKEN: &str = "kill-test-api-token-0123";
pub const GITHUB_SECRET: &str = "kill-test-github-secret-01";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Manager,
    Worker,
    Webhook,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Manager, Role::Worker, Role::Webhook];

    pub fn name(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
            Role::Webhook => "webhook",
        }
    }
}

pub struct RoleProcess {
    pub role: Role,
    /// Where it listens (the webhook role's receivers).
    pub url: String,
    child: Child,
}

impl RoleProcess {
    /// SIGKILL, and reap it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Rig {
    pub world: World,
    pub engine: Engine,
    started: usize,
}

/// What the database and the repository say once everything settled.
#[derive(Debug, Default)]
pub struct Verdict {
    pub decisions: usize,
    pub by_status: BTreeMap<String, usize>,
    /// Commits on main that carry a decision's trailer.
    pub commits: usize,
    /// Decisions with more than one commit.
    pub duplicates: usize,
    /// Decisions still open.
    pub stuck: usize,
    /// Applied decisions whose commit is missing, or whose scale is not what Git and the engine hold.
    pub untrue: Vec<String>,
}

impl Verdict {
    /// What every kill test asks of the end state: no decision acted twice, none is left open, and
    /// every applied one is true to Git and the engine. `context` (the kill point, a seed, the logs)
    /// goes into the message.
    pub fn assert_sound(&self, context: impl std::fmt::Display) {
        assert_eq!(self.duplicates, 0, "acted twice: {self:?}\n{context}");
        assert_eq!(self.stuck, 0, "left open: {self:?}\n{context}");
        assert!(self.untrue.is_empty(), "untrue: {self:?}\n{context}");
    }
}

impl Rig {
    /// A non-reactive engine cluster: after the sync the worker restarts the engine at `control_url`.
    pub async fn new(adjust: impl FnOnce(&mut serde_json::Value)) -> Self {
        Self::new_on(TestDatabase::new(), adjust).await
    }

    /// [`Rig::new`] in `database` (on a Postgres of the test's own, which it may restart).
    pub async fn new_on(
        database: TestDatabase,
        adjust: impl FnOnce(&mut serde_json::Value),
    ) -> Self {
        let engine = engine("logs-0", None).await;
        let url = engine.url.clone();
        let world = World::with_spec_on(database, move |spec| {
            spec["target"] = json!({
                "kind": "engine",
                "reactive": false,
                "control_url": url,
                "control_token": {"file": "engine-control"},
            });
            adjust(spec);
        })
        .await;
        std::fs::write(
            world.dir.join("secrets/default/engine-control"),
            CONTROL_TOKEN,
        )
        .expect("secret");
        // Ten minutes of a saturated job, ending a minute ago: the worker plans from it, and the
        // manager, seeing no fresh sample, does not fire on its own.
        world
            .saturated_history(Utc::now() - ChronoDuration::seconds(60))
            .await;
        Self {
            world,
            engine,
            started: 0,
        }
    }

    /// A minute of samples every 5 s (the rig's scrape interval) up to now, as the manager would have
    /// stored them from the saturated engine that `metrics::Metrics` exposes.
    pub async fn recent_history(&self) {
        let now = Utc::now();
        let batch: Vec<(i64, Sample)> = (0..12_i32)
            .map(|i| {
                (
                    self.world.cluster_id,
                    Sample {
                        sampled_at: now - ChronoDuration::seconds(i64::from(5 * (11 - i))),
                        cpu_load: Some(0.97),
                        lag_records: Some(640_000.0 + 5000.0 * f64::from(i)),
                        lag_seconds: Some(640.0 + 5.0 * f64::from(i)),
                        records_in: Some(5000.0),
                        records_out: Some(2000.0),
                        scale: Some(2.0),
                    },
                )
            })
            .collect();
        self.world
            .storage
            .insert_samples(&batch)
            .await
            .expect("samples");
    }

    /// Starts `role` as a child process, paused at `pause` if given (the marker file is returned).
    pub fn spawn(&mut self, role: Role, pause: Option<&str>) -> (RoleProcess, PathBuf) {
        self.started += 1;
        let n = self.started;
        let port = test_support::process::free_port().expect("a free port");
        let log = self.world.dir.join(format!("{}-{n}.log", role.name()));
        let marker = self.world.dir.join(format!("{}-{n}.paused", role.name()));
        let out = File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_autoscaler"));
        command
            .arg(role.name())
            .env("DATABASE_URL", self.database_url())
            .env("AUTOSCALER_LISTEN", format!("127.0.0.1:{port}"))
            .env("AUTOSCALER_API_TOKENS", API_TOKEN)
            .env(
                "AUTOSCALER_OUTBOUND_ALLOW",
                test_support::OUTBOUND_ALLOW_LOCAL,
            )
            .env("AUTOSCALER_SECRETS_DIR", self.world.dir.join("secrets"))
            .env(
                "AUTOSCALER_WORK_DIR",
                self.world.dir.join(format!("work-{n}")),
            )
            .env("AUTOSCALER_GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
            .env("AUTOSCALER_ENGINE_TOKENS", "kill-test-engine-token-01")
            .env("AUTOSCALER_PUBLIC_URL", "https://autoscaler.example.com")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(FAST.iter().copied())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        if let Some(point) = pause {
            command
                .env("AUTOSCALER_TEST_PAUSE_AT", point)
                .env("AUTOSCALER_TEST_PAUSE_MARKER", &marker);
        }
        let child = command.spawn().expect("the autoscaler binary starts");
        (
            RoleProcess {
                role,
                url: format!("http://127.0.0.1:{port}"),
                child,
            },
            marker,
        )
    }

    fn database_url(&self) -> String {
        self.world.database_url.clone()
    }

    /// Waits until the process paused at its point (it wrote the marker); the roles' logs otherwise.
    pub async fn paused(&self, marker: &std::path::Path) {
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while !marker.exists() {
            assert!(
                std::time::Instant::now() < end,
                "no process reached its pause point within 60 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The end of every role's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(&self.world.dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                all.push_str(&format!("--- {}\n", path.display()));
                for line in tail.into_iter().rev() {
                    all.push_str(line);
                    all.push('\n');
                }
            }
        }
        all
    }

    /// A pending decision and its task, as the manager records them.
    pub async fn decide(&self) -> Option<i64> {
        let now = Utc::now();
        let new = NewDecision {
            cluster_id: self.world.cluster_id,
            cluster_name: "logs".to_owned(),
            rule: "lag_above_threshold".to_owned(),
            inputs: autoscaler::decide::DecisionInputs::bare(
                autoscaler::rules::Direction::Up,
                "lag above threshold",
                now,
                300,
            ),
            from_scale: Some(2),
        };
        self.world
            .storage
            .insert_pending_decision_with_task(&new)
            .await
            .ok()
            .map(|d| d.id)
    }

    pub async fn decisions(&self) -> Vec<DecisionRecord> {
        let (ids,): (Vec<i64>,) = sqlx::query_as(
            "select coalesce(array_agg(id order by id), '{}') from decisions where cluster_id = $1",
        )
        .bind(self.world.cluster_id)
        .fetch_one(self.world.storage.pool())
        .await
        .expect("decisions");
        let mut all = Vec::new();
        for id in ids {
            all.push(self.world.decision(id).await);
        }
        all
    }

    pub async fn in_flight(&self) -> bool {
        self.decisions()
            .await
            .iter()
            .any(|d| !d.status.is_final() && d.status != DecisionStatus::PrOpen)
    }

    /// Waits until every decision is final (the reconciler's deadlines are seconds here), then checks
    /// the repository against the decisions.
    /// [`Rig::converge`], then what a kill test of one decision asks of the end: `id` applied, carried by
    /// exactly one commit, and the end state sound. `context` (the kill point) leads every message.
    pub async fn converge_applied_once(
        &self,
        id: i64,
        within: Duration,
        context: &str,
    ) -> (Verdict, DecisionRecord) {
        let verdict = self.converge(within).await;
        let decision = self.world.decision(id).await;
        assert_eq!(
            decision.status,
            DecisionStatus::Applied,
            "{context}: {verdict:?} {decision:?}\n{}",
            self.logs()
        );
        assert_eq!(
            verdict.commits, 1,
            "{context}: one commit carries the decision: {verdict:?}"
        );
        verdict.assert_sound(format_args!("{context}\n{}", self.logs()));
        (verdict, decision)
    }

    pub async fn converge(&self, within: Duration) -> Verdict {
        let end = std::time::Instant::now() + within;
        while self.in_flight().await && std::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.verdict().await
    }

    pub async fn verdict(&self) -> Verdict {
        let decisions = self.decisions().await;
        let bodies = git(&self.world.bare, &["log", "--format=%H %B%x00", "main"]);
        let mut commits_of: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for entry in bodies.split('\0') {
            let sha = entry.split_whitespace().next().unwrap_or_default();
            for line in entry.lines() {
                if let Some(id) = line.trim().strip_prefix("Autoscaler-Decision: ")
                    && let Ok(id) = id.trim().parse::<i64>()
                {
                    commits_of.entry(id).or_default().push(sha.to_owned());
                }
            }
        }
        let mut verdict = Verdict {
            decisions: decisions.len(),
            commits: commits_of.values().map(Vec::len).sum(),
            duplicates: commits_of.values().filter(|c| c.len() > 1).count(),
            ..Verdict::default()
        };
        for d in &decisions {
            *verdict
                .by_status
                .entry(d.status.as_str().to_owned())
                .or_default() += 1;
            if !d.status.is_final() {
                verdict.stuck += 1;
            }
            if d.status == DecisionStatus::Applied {
                let to = d.to_scale.unwrap_or_default();
                match commits_of.get(&d.id).and_then(|c| c.first()) {
                    Some(sha) => {
                        let file = git(&self.world.bare, &["show", &format!("{sha}:{PATH}")]);
                        if !file.contains(&format!("replicas:   {to} ")) {
                            verdict
                                .untrue
                                .push(format!("decision {}: its commit does not hold {to}", d.id));
                        }
                    }
                    None => verdict
                        .untrue
                        .push(format!("decision {} is applied without a commit", d.id)),
                }
            }
        }
        // The newest applied decision is what Git and the engine hold now.
        if let Some(last) = decisions
            .iter()
            .filter(|d| d.status == DecisionStatus::Applied)
            .max_by_key(|d| d.id)
        {
            let to = last.to_scale.unwrap_or_default();
            if !self
                .world
                .file("main")
                .contains(&format!("replicas:   {to} "))
            {
                verdict.untrue.push(format!("main does not hold {to}"));
            }
            let running = self.engine.status.snapshot().parallelism;
            if i64::try_from(running).ok() != Some(i64::from(to)) {
                verdict
                    .untrue
                    .push(format!("the engine runs at {running}, not {to}"));
            }
        }
        verdict
    }
}
