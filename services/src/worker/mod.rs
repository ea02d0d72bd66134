//! The worker: carries out one scaling decision. Plan (estimate and check, against the value in Git),
//! write (a commit, or a branch and one pull request per cluster), then sync Argo CD and follow it. In
//! recommend-only mode nothing is written: the decision ends `recommended`, commented on the pull
//! requests that change the scale file when the spec asks for it.
//!
//! Every step moves the decision's status forward in Postgres before the next begins, and the step
//! itself is idempotent (a commit is found again by its decision trailer, a pull request by its branch),
//! so a worker killed anywhere, or a task delivered twice, resumes rather than repeats.

mod apply;
mod explain;
mod plan;
mod queue;
mod recommend;
mod secrets;
mod sync;
mod write;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::json;
use url::Url;

use crate::outbound::{OutboundPolicy, Refusal, guard};

pub use explain::Explanation;
pub use queue::{RetrySettings, run_queue};
pub use recommend::{
    CommentFailedStep, CommentStep, CommentedStep, MAX_PULLS_READ, NoPullRequestStep,
};
pub use secrets::{SecretError, SecretResolver};

use crate::{
    argocd::{ArgoCdError, FollowSettings},
    cluster::ClusterSpec,
    github::{GitHubError, RateLimitSettings},
    gitops::{Credential, GitError, GitWriter},
    metrics::{Metrics, OutcomeLabels},
    rescale::{RescaleError, RescaleSettings},
    storage::{ClusterRecord, DecisionRecord, DecisionStatus, Storage, StorageError, Transition},
};

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
    #[error("{field} is refused by the outbound policy: {refusal}")]
    Outbound {
        field: &'static str,
        #[source]
        refusal: Refusal,
    },
    /// An engine instance announced a control URL the policy refuses now (or that no longer parses).
    #[error(
        "the control_url engine instance {instance} announced is refused: {refusal}; no instance was restarted"
    )]
    AnnouncedUrl {
        instance: String,
        #[source]
        refusal: Refusal,
    },
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
    /// Someone else (a webhook, the reconciler) moved the decision while this task worked on it; the
    /// task stopped rather than overwrite `found`.
    LostRace {
        expected: DecisionStatus,
        found: DecisionStatus,
    },
    /// The task failed and the failure could not be recorded (the database was unreachable): the
    /// decision is unchanged and the task must run again.
    Unrecorded,
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
    /// Where a spec's URLs may point, checked again on every connection.
    pub outbound: Arc<OutboundPolicy>,
    /// How long a worker's lease on a decision lasts unless renewed (every third of it): a dead
    /// worker's decision can be taken over this long after its last renewal.
    pub lease_ttl: Duration,
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
        let http = crate::outbound::guard::client_builder(&settings.outbound)
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

    /// Every destination of `spec` against the outbound policy as it is now.
    async fn check_destinations(&self, spec: &ClusterSpec) -> Result<(), WorkError> {
        for (field, destination) in spec.destinations() {
            guard::check_before_use(&self.settings.outbound, destination)
                .await
                .map_err(|refusal| WorkError::Outbound { field, refusal })?;
        }
        Ok(())
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
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let Some(lease) = self
            .storage
            .lease_decision(decision_id, &owner, self.settings.lease_ttl)
            .await?
        else {
            return Ok(Progress::Busy);
        };
        // Renewed while the task works; the compare-and-set of every status write guards the rest.
        let renewing = async {
            loop {
                tokio::time::sleep(self.settings.lease_ttl / 3).await;
                match self.storage.renew_lease(&lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            decision = decision_id,
                            "the decision's lease was taken over"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(decision = decision_id, error = %e, "cannot renew the decision's lease")
                    }
                }
            }
        };
        let result = tokio::select! {
            result = self.execute_locked(decision_id, now) => result,
            // Another worker took the decision over: this task stops without touching it.
            () = renewing => Ok(Progress::Busy),
        };
        if let Err(e) = self.storage.release_lease(&lease).await {
            tracing::warn!(decision = decision_id, error = %e, "cannot release the decision's lease");
        }
        lost_race_is_progress(decision_id, result)
    }

    async fn execute_locked(
        &self,
        decision_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        let decision = self.storage.get_decision(decision_id).await?;
        tracing::Span::current().record("cluster", decision.cluster_name.as_str());
        // Ended, or waiting for a review: a late or repeated delivery has nothing to do.
        if decision.status.is_final() || decision.status == DecisionStatus::PrOpen {
            return Ok(Progress::Reached(decision.status));
        }
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
            status = self.sync(&decision, &cluster.team, &cluster.spec).await?;
        }
        if status == DecisionStatus::Synced {
            let decision = self.storage.get_decision(decision_id).await?;
            status = self.apply(&decision, &cluster).await?;
        }
        Ok(Progress::Reached(status))
    }

    /// Ends the decision as failed with `reason`, for a failure that retrying will not cure. A decision
    /// that ended meanwhile keeps its end; one moved on meanwhile is a lost race, reported as such.
    pub async fn fail(&self, decision_id: i64, reason: &str) -> Result<Progress, WorkError> {
        let current = self.storage.get_decision(decision_id).await?.status;
        if current.is_final() {
            return Ok(Progress::Reached(current));
        }
        tracing::warn!(decision = decision_id, reason, "decision failed");
        let detail = json!({"reason": reason});
        let failed = Transition::new(current, DecisionStatus::Failed)
            .reason(reason)
            .step("failed", &detail);
        lost_race_is_progress(
            decision_id,
            self.storage
                .transition(decision_id, &failed)
                .await
                .map(|()| Progress::Reached(DecisionStatus::Failed))
                .map_err(WorkError::from),
        )
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

    /// Ends the decision, from the status this task left it in, as `status` with `reason`.
    async fn finish(
        &self,
        id: i64,
        from: DecisionStatus,
        status: DecisionStatus,
        reason: &str,
    ) -> Result<DecisionStatus, WorkError> {
        self.move_on(id, Transition::new(from, status).reason(reason))
            .await?;
        tracing::info!(decision = id, ?status, reason, "decision ended");
        Ok(status)
    }

    /// One step of the lifecycle, a compare-and-set from the status this task left the decision in.
    async fn move_on(&self, id: i64, change: Transition<'_>) -> Result<DecisionStatus, WorkError> {
        self.storage.transition(id, &change).await?;
        Ok(change.to)
    }

    async fn git_credential(
        &self,
        team: &str,
        spec: &ClusterSpec,
    ) -> Result<Option<Credential>, WorkError> {
        match &spec.git.credentials {
            Some(secret) => Ok(Some(Credential::from_secret(
                &self.secrets.resolve(team, secret).await?,
            ))),
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

/// A lost compare-and-set is an answer, not a failure: the task stops and says what it found.
fn lost_race_is_progress(
    decision_id: i64,
    result: Result<Progress, WorkError>,
) -> Result<Progress, WorkError> {
    match result {
        Err(WorkError::Storage(StorageError::LostRace {
            expected, found, ..
        })) => {
            tracing::warn!(
                decision = decision_id,
                %expected,
                %found,
                "the decision was moved by someone else; this task stops"
            );
            Ok(Progress::LostRace { expected, found })
        }
        other => other,
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
