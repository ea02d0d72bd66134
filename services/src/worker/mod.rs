//! The worker: carries out one scaling decision. Plan (estimate and check, against the value in Git),
//! write (a commit, or a branch and one pull request per cluster), then sync Argo CD and follow it.
//!
//! Every step moves the decision's status forward in Postgres before the next begins, and the step
//! itself is idempotent (a commit is found again by its decision trailer, a pull request by its branch),
//! so a worker killed anywhere, or a task delivered twice, resumes rather than repeats.

mod explain;
mod queue;
mod secrets;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::json;
use url::Url;

pub use explain::Explanation;
pub use queue::{RetrySettings, run_queue};
pub use secrets::{SecretError, SecretResolver};

use crate::{
    argocd::{ArgoCdClient, ArgoCdError, FollowSettings},
    cluster::{ClusterSpec, TargetKind, WriteBack},
    estimate::{CheckOutcome, PreviousChange, plan},
    github::{GitHubClient, GitHubError, PullRequestContent, RateLimitSettings},
    gitops::{Credential, GitError, GitWriter, Remote, ScaleChange, WriteOutcome},
    metrics::{Metrics, OutcomeLabels},
    rescale::{FlinkJob, RescaleError, RescaleSettings, RescaleTarget, rescale},
    rules::Direction,
    storage::{
        ClusterRecord, DecisionRecord, DecisionStatus, HumanChange, Sample, Storage, StorageError,
    },
};

/// The history the estimator learns from: the longest rule window, and at least this.
const MIN_HISTORY: Duration = Duration::from_secs(3600);

/// Why a step did not go through. Transient failures are retried; the others end the decision.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("Git: {0}")]
    Git(#[from] GitError),
    #[error("Argo CD: {0}")]
    ArgoCd(#[from] ArgoCdError),
    #[error("GitHub: {0}")]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "Argo CD applied the new scale, but only {live} of {wanted} engine instances have registered"
    )]
    CapacityNotUp { live: usize, wanted: usize },
    #[error("restarting the job: {0}")]
    Rescale(Box<RescaleError>),
}

impl WorkError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Storage(StorageError::Database(_)) => true,
            Self::Git(e) => e.is_transient(),
            Self::ArgoCd(e) => e.is_transient(),
            Self::GitHub(e) => e.is_transient(),
            Self::CapacityNotUp { .. } => true,
            Self::Rescale(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Where a task left its decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The decision reached this status (final, or waiting for review in a pull request).
    Reached(DecisionStatus),
    /// Another worker holds the decision right now.
    Busy,
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Where Git clones live.
    pub workdir: std::path::PathBuf,
    pub argocd: FollowSettings,
    pub github: RateLimitSettings,
    /// The service's public address, for links from commits and pull requests back to the decision.
    pub public_url: Option<Url>,
    /// An engine instance without a heartbeat for this long no longer counts as capacity.
    pub heartbeat_timeout: Duration,
    /// Waits while restarting a target without reactive scaling.
    pub rescale: RescaleSettings,
}

/// Carries out decisions; cheap to share between tasks.
pub struct Worker {
    storage: Storage,
    metrics: Arc<Metrics>,
    git: GitWriter,
    secrets: SecretResolver,
    http: reqwest::Client,
    settings: WorkerSettings,
}

impl Worker {
    pub fn new(
        storage: Storage,
        metrics: Arc<Metrics>,
        secrets: SecretResolver,
        settings: WorkerSettings,
    ) -> anyhow::Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("autoscaler/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Arc::new(Self {
            storage,
            metrics,
            git: GitWriter::new(&settings.workdir),
            secrets,
            http,
            settings,
        }))
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    fn count(&self, outcome: &'static str) {
        self.metrics
            .worker_tasks
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Takes the decision as far as it goes now.
    #[tracing::instrument(skip(self), fields(cluster = tracing::field::Empty))]
    pub async fn execute(
        &self,
        decision_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        let Some(lock) = self.storage.lock_decision(decision_id).await? else {
            return Ok(Progress::Busy);
        };
        let result = self.execute_locked(decision_id, now).await;
        if let Err(e) = lock.release().await {
            tracing::warn!(decision = decision_id, error = %e, "cannot release the decision lock");
        }
        result
    }

    async fn execute_locked(
        &self,
        decision_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        let decision = self.storage.get_decision(decision_id).await?;
        tracing::Span::current().record("cluster", decision.cluster_name.as_str());
        let cluster = match self.cluster_of(&decision).await? {
            Some(cluster) => cluster,
            None => {
                return self
                    .fail(
                        decision.id,
                        "the cluster was deleted before the decision ran",
                    )
                    .await;
            }
        };
        let mut status = decision.status;
        if matches!(status, DecisionStatus::Pending | DecisionStatus::Running) {
            status = self.plan_and_write(&decision, &cluster, now).await?;
        }
        if matches!(
            status,
            DecisionStatus::Committed | DecisionStatus::Syncing | DecisionStatus::Merged
        ) {
            let decision = self.storage.get_decision(decision_id).await?;
            status = self.sync(&decision, &cluster.spec).await?;
        }
        if status == DecisionStatus::Synced {
            let decision = self.storage.get_decision(decision_id).await?;
            status = self.apply(&decision, &cluster).await?;
        }
        Ok(Progress::Reached(status))
    }

    /// Ends the decision as failed with `reason`, for a failure that retrying will not cure.
    pub async fn fail(&self, decision_id: i64, reason: &str) -> Result<Progress, WorkError> {
        tracing::warn!(decision = decision_id, reason, "decision failed");
        self.storage
            .advance_decision(
                decision_id,
                DecisionStatus::Failed,
                None,
                None,
                Some(reason),
            )
            .await?;
        self.storage
            .add_step(decision_id, "failed", &json!({"reason": reason}))
            .await?;
        Ok(Progress::Reached(DecisionStatus::Failed))
    }

    async fn cluster_of(
        &self,
        decision: &DecisionRecord,
    ) -> Result<Option<ClusterRecord>, WorkError> {
        match self.storage.get_cluster(&decision.cluster_name).await {
            // A cluster deleted and created again under the same name is another cluster.
            Ok(cluster) if Some(cluster.id) == decision.cluster_id => Ok(Some(cluster)),
            Ok(_) | Err(StorageError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn plan_and_write(
        &self,
        decision: &DecisionRecord,
        cluster: &ClusterRecord,
        now: DateTime<Utc>,
    ) -> Result<DecisionStatus, WorkError> {
        let spec = &cluster.spec;
        if decision.status == DecisionStatus::Pending {
            self.storage
                .advance_decision(decision.id, DecisionStatus::Running, None, None, None)
                .await?;
        }
        let direction = direction_of(decision)?;
        let credential = self.git_credential(spec).await?;
        let base = Remote {
            url: &spec.git.repository,
            branch: &spec.git.branch,
            credential: credential.as_ref(),
        };
        let file = self
            .git
            .inspect(base, &spec.git.path, &spec.git.key)
            .await
            .map_err(|e| self.permanent_file_error(e))?;

        // A person's commit: recorded, and it restarts the cooldown instead of being overwritten.
        if let Some(commit) = &file.last_commit
            && commit.decision.is_none()
        {
            let last_written = self
                .storage
                .previous_change(cluster.id, decision.id)
                .await?;
            let cooldown_ends =
                commit.at + chrono::Duration::seconds(i64::from(spec.policy.cooldown_seconds));
            let newer_than_ours = last_written.as_ref().is_none_or(|p| commit.at > p.at);
            if newer_than_ours && now < cooldown_ends {
                self.storage
                    .record_human_change(&HumanChange {
                        cluster_id: cluster.id,
                        cluster_name: &spec.name,
                        from_scale: last_written.and_then(|p| p.to_scale),
                        to_scale: i32::try_from(file.value).unwrap_or(i32::MAX),
                        commit: &commit.sha,
                        author: &commit.author,
                        at: commit.at,
                    })
                    .await?;
                let reason = format!(
                    "{} set the scale to {} by hand in commit {} at {}; the autoscaler waits until {} (cooldown)",
                    commit.author,
                    file.value,
                    short(&commit.sha),
                    commit.at.to_rfc3339(),
                    cooldown_ends.to_rfc3339()
                );
                return self
                    .finish(decision.id, DecisionStatus::Vetoed, &reason)
                    .await;
            }
        }

        let history = self.history(cluster, now).await?;
        let previous = self
            .storage
            .previous_change(cluster.id, decision.id)
            .await?
            .and_then(|p| {
                let (from, to) = (p.from_scale?, p.to_scale?);
                Some(PreviousChange {
                    direction: if to > from {
                        Direction::Up
                    } else {
                        Direction::Down
                    },
                    at: p.at,
                })
            });
        let planned = plan(&history, &spec.policy, direction, previous, now);
        let from = file.value;
        let to = match &planned.outcome {
            CheckOutcome::Apply { to, .. } => Some(u64::from(*to)),
            _ => None,
        };
        let recorded = json!({"plan": planned, "git_value": from});
        self.storage
            .record_plan(
                decision.id,
                &recorded,
                i32::try_from(from).ok(),
                to.and_then(|t| i32::try_from(t).ok()),
            )
            .await?;
        let (to, notes) = match &planned.outcome {
            CheckOutcome::Veto { reason } => {
                return self
                    .finish(decision.id, DecisionStatus::Vetoed, reason)
                    .await;
            }
            CheckOutcome::Skip { reason } => {
                return self
                    .finish(decision.id, DecisionStatus::Skipped, reason)
                    .await;
            }
            CheckOutcome::Apply { to, notes } => (u64::from(*to), notes.clone()),
        };
        if to == from {
            let reason = format!("Git already holds {to}");
            return self
                .finish(decision.id, DecisionStatus::Skipped, &reason)
                .await;
        }

        let window = window_of(decision, &history, now);
        let explanation = Explanation {
            cluster: &spec.name,
            decision_id: decision.id,
            rule: &decision.rule,
            rule_reason: decision
                .inputs
                .get("reason")
                .and_then(|r| r.as_str())
                .unwrap_or(""),
            from,
            to,
            estimate: planned.estimate.as_ref(),
            notes: &notes,
            window: (window.0, window.1),
            samples: &window.2,
            decision_url: self.decision_url(decision.id),
        };
        match &spec.write_back {
            WriteBack::Commit => self.commit(decision, spec, base, &explanation).await,
            WriteBack::PullRequest {
                github_repository,
                github_api_url,
                token,
                labels,
            } => {
                let token = self.secrets.resolve(token).await?;
                let github = GitHubClient::new(
                    github_api_url.as_ref(),
                    github_repository,
                    token,
                    self.settings.github,
                )?;
                self.pull_request(decision, cluster, base, &explanation, &github, labels)
                    .await
            }
        }
    }

    async fn commit(
        &self,
        decision: &DecisionRecord,
        spec: &ClusterSpec,
        remote: Remote<'_>,
        explanation: &Explanation<'_>,
    ) -> Result<DecisionStatus, WorkError> {
        let message = explanation.commit_message();
        let change = ScaleChange {
            path: &spec.git.path,
            key: &spec.git.key,
            scale: explanation.to,
            message: &message,
            decision_id: decision.id,
        };
        let commit = match self
            .git
            .write(remote, &change)
            .await
            .map_err(|e| self.permanent_file_error(e))?
        {
            WriteOutcome::Committed { commit, .. } | WriteOutcome::AlreadyCommitted { commit } => {
                commit
            }
            WriteOutcome::Unchanged => {
                let reason = format!("Git already holds {}", explanation.to);
                return self
                    .finish(decision.id, DecisionStatus::Skipped, &reason)
                    .await;
            }
        };
        let write_back = json!({
            "mode": "commit",
            "repository": spec.git.repository,
            "branch": spec.git.branch,
            "path": spec.git.path,
            "commit": commit,
        });
        self.storage
            .advance_decision(
                decision.id,
                DecisionStatus::Committed,
                Some(&write_back),
                None,
                None,
            )
            .await?;
        self.storage
            .add_step(decision.id, "committed", &write_back)
            .await?;
        tracing::info!(decision = decision.id, commit, "committed");
        Ok(DecisionStatus::Committed)
    }

    async fn pull_request(
        &self,
        decision: &DecisionRecord,
        cluster: &ClusterRecord,
        base: Remote<'_>,
        explanation: &Explanation<'_>,
        github: &GitHubClient,
        labels: &[String],
    ) -> Result<DecisionStatus, WorkError> {
        let spec = &cluster.spec;
        let head_branch = format!("autoscaler/{}", spec.name);
        let message = explanation.commit_message();
        let change = ScaleChange {
            path: &spec.git.path,
            key: &spec.git.key,
            scale: explanation.to,
            message: &message,
            decision_id: decision.id,
        };
        let commit = match self
            .git
            .write_branch(base, &head_branch, &change)
            .await
            .map_err(|e| self.permanent_file_error(e))?
        {
            WriteOutcome::Committed { commit, .. } | WriteOutcome::AlreadyCommitted { commit } => {
                commit
            }
            WriteOutcome::Unchanged => {
                let reason = format!("{} already holds {}", spec.git.branch, explanation.to);
                return self
                    .finish(decision.id, DecisionStatus::Skipped, &reason)
                    .await;
            }
        };
        let body = explanation.pull_request_body();
        let title = explanation.title();
        let pull = github
            .upsert(&PullRequestContent {
                head_branch: &head_branch,
                base_branch: &spec.git.branch,
                title: &title,
                body: &body,
                labels,
            })
            .await?;
        let write_back = json!({
            "mode": "pull_request",
            "repository": spec.git.repository,
            "github_repository": github.repository(),
            "branch": head_branch,
            "base": spec.git.branch,
            "commit": commit,
            "pull_request": pull.number,
            "url": pull.url,
            "opened": pull.created,
        });
        self.storage
            .supersede_pull_request_decisions(cluster.id, decision.id)
            .await?;
        self.storage
            .advance_decision(
                decision.id,
                DecisionStatus::PrOpen,
                Some(&write_back),
                None,
                None,
            )
            .await?;
        let step = if pull.created {
            "pull_request_opened"
        } else {
            "pull_request_updated"
        };
        self.storage
            .add_step(decision.id, step, &write_back)
            .await?;
        tracing::info!(
            decision = decision.id,
            pull_request = pull.number,
            step,
            "pull request ready for review"
        );
        Ok(DecisionStatus::PrOpen)
    }

    /// Syncs the Argo CD application (or refreshes it) and follows it until our commit is applied.
    async fn sync(
        &self,
        decision: &DecisionRecord,
        spec: &ClusterSpec,
    ) -> Result<DecisionStatus, WorkError> {
        let write_back = decision.write_back.as_ref().map(|w| &w.0);
        let commit = write_back
            .and_then(|w| w.get("merge_commit").or_else(|| w.get("commit")))
            .and_then(|c| c.as_str())
            .ok_or_else(|| WorkError::Invalid("the decision records no commit to sync".into()))?
            .to_owned();
        let argocd = &spec.argocd;
        let token = match &argocd.token {
            Some(secret) => Some(self.secrets.resolve(secret).await?),
            None => None,
        };
        if decision.status != DecisionStatus::Syncing {
            let started = json!({"application": argocd.application, "commit": commit});
            self.storage
                .advance_decision(
                    decision.id,
                    DecisionStatus::Syncing,
                    None,
                    Some(&started),
                    None,
                )
                .await?;
            self.storage
                .add_step(decision.id, "sync_started", &started)
                .await?;
        }
        let client = ArgoCdClient::new(
            self.http.clone(),
            argocd.server.clone(),
            token,
            argocd.project.clone(),
            self.settings.argocd,
        );
        let credential = self.git_credential(spec).await?;
        let remote = Remote {
            url: &spec.git.repository,
            branch: &spec.git.branch,
            credential: credential.as_ref(),
        };
        let infos = [
            ("autoscaler.decision", decision.id.to_string()),
            (
                "autoscaler.scale",
                decision.to_scale.unwrap_or_default().to_string(),
            ),
        ];
        let result = client
            .apply(
                &argocd.application,
                &commit,
                argocd.auto_sync,
                &infos,
                |revision| {
                    let git = &self.git;
                    let commit = commit.clone();
                    async move {
                        git.contains(remote, &commit, &revision)
                            .await
                            .unwrap_or(false)
                    }
                },
            )
            .await;
        match result {
            Ok(applied) => {
                let detail = json!({"application": argocd.application, "commit": commit, "applied": applied});
                self.storage
                    .advance_decision(
                        decision.id,
                        DecisionStatus::Synced,
                        None,
                        Some(&detail),
                        None,
                    )
                    .await?;
                self.storage
                    .add_step(decision.id, "synced", &detail)
                    .await?;
                tracing::info!(
                    decision = decision.id,
                    revision = applied.revision,
                    "synced"
                );
                Ok(DecisionStatus::Synced)
            }
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => {
                let reason = format!(
                    "commit {} is in Git, but {e}; sync application {} once the cause is fixed",
                    short(&commit),
                    argocd.application
                );
                self.fail(decision.id, &reason)
                    .await
                    .map(|_| DecisionStatus::Failed)
            }
        }
    }

    /// After the sync: the new scale takes effect (reactive targets) or is restarted into effect.
    /// Where engine instances announce themselves, the new capacity must have registered first.
    async fn apply(
        &self,
        decision: &DecisionRecord,
        cluster: &ClusterRecord,
    ) -> Result<DecisionStatus, WorkError> {
        let target = &cluster.spec.target;
        let reactive = target
            .reactive
            .unwrap_or_else(|| target.kind.scales_reactively_by_default());
        if !reactive {
            return self.restart(decision, &cluster.spec).await;
        }
        let wanted = decision.to_scale.unwrap_or_default().max(0) as usize;
        let alive_since = Utc::now()
            - chrono::Duration::from_std(self.settings.heartbeat_timeout)
                .unwrap_or(chrono::Duration::seconds(90));
        let cluster_id = cluster.id;
        let live = self
            .storage
            .live_engines(cluster_id, alive_since)
            .await?
            .len();
        let reports = self.storage.engines_ever_registered(cluster_id).await?;
        if reports && live < wanted {
            return Err(WorkError::CapacityNotUp { live, wanted });
        }
        let detail = json!({"live_instances": reports.then_some(live), "scale": wanted});
        self.storage
            .add_step(decision.id, "applied", &detail)
            .await?;
        self.finish(
            decision.id,
            DecisionStatus::Applied,
            "the new scale is in effect",
        )
        .await
    }

    /// Restarts a target without reactive scaling at the new parallelism (engine control endpoint, or
    /// Flink stop-with-savepoint and resubmit), recording every step.
    async fn restart(
        &self,
        decision: &DecisionRecord,
        spec: &ClusterSpec,
    ) -> Result<DecisionStatus, WorkError> {
        let target = &spec.target;
        let Some(control_url) = target.control_url.clone() else {
            return Err(WorkError::Invalid(
                "the target has no control_url to restart it with".to_owned(),
            ));
        };
        let restart_target = match (&target.kind, &target.flink) {
            (TargetKind::Flink, Some(job)) => RescaleTarget::Flink(FlinkJob {
                rest_url: control_url,
                job_name: job.job_name.clone(),
                jar_id: job.jar_id.clone(),
                entry_class: job.entry_class.clone(),
                program_args: job.program_args.clone(),
                savepoint_dir: job.savepoint_dir.clone(),
                adaptive_scheduler: job.adaptive_scheduler,
            }),
            (TargetKind::Flink, None) => {
                return Err(WorkError::Invalid(
                    "a Flink target without reactive scaling needs target.flink".to_owned(),
                ));
            }
            _ => RescaleTarget::Engine {
                control_url,
                token: match &target.control_token {
                    Some(secret) => Some(self.secrets.resolve(secret).await?),
                    None => None,
                },
            },
        };
        let parallelism = decision
            .to_scale
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(|| WorkError::Invalid("the decision records no new scale".to_owned()))?;
        let mut steps = Vec::new();
        let result = rescale(
            &self.http,
            &restart_target,
            parallelism,
            decision.id,
            self.settings.rescale,
            &mut |step| steps.push(step),
        )
        .await;
        for step in steps {
            self.storage
                .add_step(decision.id, step.step, &step.detail)
                .await?;
        }
        let rescaled = result.map_err(|e| WorkError::Rescale(Box::new(e)))?;
        self.storage
            .add_step(decision.id, "restarted", &json!(rescaled))
            .await?;
        self.finish(
            decision.id,
            DecisionStatus::Applied,
            &format!("restarted at parallelism {parallelism}"),
        )
        .await
    }

    async fn finish(
        &self,
        id: i64,
        status: DecisionStatus,
        reason: &str,
    ) -> Result<DecisionStatus, WorkError> {
        tracing::info!(decision = id, ?status, reason, "decision ended");
        self.storage
            .advance_decision(id, status, None, None, Some(reason))
            .await?;
        Ok(status)
    }

    async fn git_credential(&self, spec: &ClusterSpec) -> Result<Option<Credential>, WorkError> {
        match &spec.git.credentials {
            Some(secret) => Ok(Some(Credential::new(self.secrets.resolve(secret).await?))),
            None => Ok(None),
        }
    }

    /// A file that cannot take the change fails the decision; a remote that did not answer is retried.
    fn permanent_file_error(&self, error: GitError) -> WorkError {
        match error {
            GitError::File { .. } | GitError::Io { .. } => {
                WorkError::Invalid(format!("the scale cannot be written: {error}"))
            }
            other => WorkError::Git(other),
        }
    }

    async fn history(
        &self,
        cluster: &ClusterRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<Sample>, WorkError> {
        let policy = &cluster.spec.policy;
        let longest = policy
            .scale_down_window_seconds
            .max(policy.scale_up_window_seconds);
        let span = Duration::from_secs(u64::from(longest)).max(MIN_HISTORY);
        let since = now - chrono::Duration::from_std(span).unwrap_or(chrono::Duration::hours(1));
        Ok(self
            .storage
            .cluster_samples_since(cluster.id, since)
            .await?)
    }

    fn decision_url(&self, id: i64) -> Option<String> {
        let mut url = self.settings.public_url.clone()?;
        url.path_segments_mut().ok()?.pop_if_empty().extend([
            "api",
            "v1",
            "decisions",
            &id.to_string(),
        ]);
        Some(url.to_string())
    }
}

fn direction_of(decision: &DecisionRecord) -> Result<Direction, WorkError> {
    match decision.inputs.get("direction").and_then(|d| d.as_str()) {
        Some("up") => Ok(Direction::Up),
        Some("down") => Ok(Direction::Down),
        other => Err(WorkError::Invalid(format!(
            "the decision's inputs name no direction (found {other:?})"
        ))),
    }
}

/// The rule's window (from the decision's inputs) and the samples in it.
fn window_of(
    decision: &DecisionRecord,
    history: &[Sample],
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>, Vec<Sample>) {
    let bound = |name: &str| -> Option<DateTime<Utc>> {
        let text = decision.inputs.get("window")?.get(name)?.as_str()?;
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let to = bound("to").unwrap_or(now);
    let from = bound("from").unwrap_or(to - chrono::Duration::minutes(5));
    let samples = history
        .iter()
        .filter(|s| s.sampled_at > from && s.sampled_at <= to)
        .cloned()
        .collect();
    (from, to, samples)
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
