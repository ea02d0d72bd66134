//! The plan step: the value in Git and who set it, the cluster's history and its last written change
//! (the facts, by I/O), then the decision core's `decide::plan`, the same pure code the simulator runs.

use chrono::{DateTime, Utc};

use super::{Explanation, WorkError, Worker};
use crate::{
    cluster::WriteBack,
    decide::{
        self, CheckOutcome, DecisionInputs, Facts, GitFacts, HumanCommit, PlanRecord, Written,
        history_seconds,
    },
    estimate::CapacityMemory,
    github::GitHubClient,
    gitops::Remote,
    metrics::LoopLabels,
    storage::{
        ClusterRecord, DecisionRecord, DecisionStatus, HumanChange, Sample, StorageError,
        Transition,
    },
};

impl Worker {
    pub(super) async fn plan_and_write(
        &self,
        decision: &DecisionRecord,
        cluster: &ClusterRecord,
        now: DateTime<Utc>,
    ) -> Result<DecisionStatus, WorkError> {
        let spec = &cluster.spec;
        if decision.status == DecisionStatus::Pending {
            self.move_on(
                decision.id,
                Transition::new(DecisionStatus::Pending, DecisionStatus::Running),
            )
            .await?;
        }
        let inputs = decision.typed_inputs().map_err(|e| {
            WorkError::Invalid(format!("the decision's inputs cannot be read: {e}"))
        })?;
        self.check_destinations(spec).await?;
        let credential = self.git_credential(&cluster.team, spec).await?;
        let base = Remote {
            url: &spec.git.repository,
            branch: &spec.git.branch,
            credential: credential.as_ref(),
        };
        // A worker killed after its push and before recording it left the commit in Git: re-planning
        // against it would find the scale already there and skip a change that is in Git but never
        // synced. The commit is recorded and the decision resumes from there.
        if spec.write_back == WriteBack::Commit
            && decision.to_scale.is_some()
            && let Some(commit) = self
                .git
                .decision_commit(base, decision.id)
                .await
                .map_err(|e| self.permanent_file_error(e))?
        {
            return self.record_commit(decision, spec, &commit).await;
        }
        let file = self
            .git
            .inspect(base, &spec.git.path, &spec.git.key)
            .await
            .map_err(|e| self.permanent_file_error(e))?;

        // The last change written to Git: the baseline for a person's commit and for the reversal veto.
        let last_written = self
            .storage
            .previous_change(cluster.id, decision.id)
            .await?;

        // A person's commit that changed the value: not ours, with or without a lost trailer.
        let human_commit = match &file.last_commit {
            Some(commit) if commit.decision.is_none() => {
                let ours = self
                    .storage
                    .commit_is_ours(
                        cluster.id,
                        &commit.sha,
                        commit.pull_request,
                        commit.branch.as_deref(),
                    )
                    .await?;
                (!ours).then(|| HumanCommit {
                    sha: commit.sha.clone(),
                    author: commit.author.clone(),
                    at: commit.at,
                })
            }
            _ => None,
        };
        let history = self.history(cluster, now).await?;
        // The predictive sizing and veto need the seasonal series; without it the plan is the reactive one.
        let seasonal = if spec.policy.predictive.enabled {
            self.storage.seasonal_rates(cluster.id, now).await.ok()
        } else {
            None
        };
        // What earlier decisions learned; without it the estimate learns from this history alone, so a
        // failed read costs a better model, never the decision.
        let capacity = self
            .storage
            .capacity_memory(cluster.id)
            .await
            .unwrap_or_else(|error| {
                self.memory_error("read", cluster, &error);
                CapacityMemory::default()
            });
        let facts = Facts {
            seasonal,
            last_written: last_written
                .as_ref()
                .map(|p| Written::new(p.from_scale, p.to_scale, p.at)),
            git: Some(GitFacts {
                value: file.value,
                human_commit,
            }),
            capacity,
            ..Facts::default()
        };
        let planned = decide::plan(&spec.policy, inputs.direction, &history, &facts, now);

        // A person's commit restarts the cooldown instead of being overwritten: recorded, and the end.
        if let (Some(commit), CheckOutcome::Veto { reason }) =
            (&planned.human_change, &planned.outcome)
        {
            self.storage
                .record_human_change(&HumanChange {
                    cluster_id: cluster.id,
                    cluster_name: &spec.name,
                    from_scale: last_written.as_ref().and_then(|p| p.to_scale),
                    to_scale: i32::try_from(file.value).unwrap_or(i32::MAX),
                    commit: &commit.sha,
                    author: &commit.author,
                    at: commit.at,
                })
                .await?;
            return self
                .finish(
                    decision.id,
                    DecisionStatus::Running,
                    DecisionStatus::Vetoed,
                    reason,
                )
                .await;
        }

        let from = file.value;
        let to = match &planned.outcome {
            CheckOutcome::Apply { to, .. } => Some(u64::from(*to)),
            _ => None,
        };
        let recorded = serde_json::to_value(PlanRecord {
            plan: &planned,
            git_value: from,
        })
        .map_err(|e| WorkError::Invalid(format!("the plan cannot be recorded: {e}")))?;
        self.storage
            .record_plan(
                decision.id,
                &recorded,
                i32::try_from(from).ok(),
                to.and_then(|t| i32::try_from(t).ok()),
            )
            .await?;
        // Kept once the decision is recorded: what this history taught the cluster's next decision.
        if let Some(estimate) = &planned.estimate
            && let Err(error) = self
                .storage
                .save_capacity_memory(cluster.id, &estimate.learned)
                .await
        {
            self.memory_error("save", cluster, &error);
        }
        let (to, notes) = match &planned.outcome {
            CheckOutcome::Veto { reason } => {
                return self
                    .finish(
                        decision.id,
                        DecisionStatus::Running,
                        DecisionStatus::Vetoed,
                        reason,
                    )
                    .await;
            }
            CheckOutcome::Skip { reason } => {
                return self
                    .finish(
                        decision.id,
                        DecisionStatus::Running,
                        DecisionStatus::Skipped,
                        reason,
                    )
                    .await;
            }
            CheckOutcome::Apply { to, notes } => (u64::from(*to), notes.clone()),
        };

        let window = window_of(&inputs, &history);
        let explanation = Explanation {
            cluster: &spec.name,
            decision_id: decision.id,
            rule: &decision.rule,
            rule_reason: &inputs.reason,
            from,
            to,
            unit: spec.target.scale_unit,
            estimate: planned.estimate.as_ref(),
            notes: &notes,
            window: (window.0, window.1),
            samples: &window.2,
            decision_url: self.decision_url(decision.id),
        };
        match &spec.write_back {
            // Recorded and nothing written: no commit, no pull request, no sync.
            WriteBack::Recommend { comment_on } => {
                self.recommend(decision, cluster, &explanation, comment_on.as_ref())
                    .await
            }
            WriteBack::Commit => self.commit(decision, spec, base, &explanation).await,
            WriteBack::PullRequest {
                github_repository,
                github_api_url,
                token,
                labels,
            } => {
                let token = self.secrets.resolve(&cluster.team, token).await?;
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

    /// The capacity memory is an aid: an error is logged and counted, and the decision goes on.
    fn memory_error(&self, action: &'static str, cluster: &ClusterRecord, error: &StorageError) {
        tracing::warn!(cluster = %cluster.spec.name, action, %error, "capacity memory unavailable");
        self.metrics
            .loop_errors
            .get_or_create(&LoopLabels {
                name: "capacity_memory",
            })
            .inc();
    }

    async fn history(
        &self,
        cluster: &ClusterRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<Sample>, WorkError> {
        let seconds = history_seconds(&cluster.spec.policy);
        let since = now - chrono::Duration::seconds(i64::from(seconds));
        Ok(self
            .storage
            .cluster_samples_since(cluster.id, since)
            .await?)
    }
}

/// The rule's window (from the decision's inputs) and the samples in it.
fn window_of(
    inputs: &DecisionInputs,
    history: &[Sample],
) -> (DateTime<Utc>, DateTime<Utc>, Vec<Sample>) {
    let (from, to) = (inputs.window.from, inputs.window.to);
    let samples = history
        .iter()
        .filter(|s| s.sampled_at > from && s.sampled_at <= to)
        .cloned()
        .collect();
    (from, to, samples)
}
