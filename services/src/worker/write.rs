//! The write step: a commit on the branch, or the autoscaler's branch and one pull request per cluster.

use serde_json::json;

use super::{Explanation, WorkError, Worker};
use crate::{
    cluster::ClusterSpec,
    github::{GitHubClient, PullRequestContent},
    gitops::{Remote, ScaleChange, WriteOutcome},
    storage::{ClusterRecord, DecisionRecord, DecisionStatus, Transition},
};

impl Worker {
    pub(super) async fn commit(
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
                    .finish(
                        decision.id,
                        DecisionStatus::Running,
                        DecisionStatus::Skipped,
                        &reason,
                    )
                    .await;
            }
        };
        crate::fault::pause_at(crate::fault::WORKER_PUSHED).await;
        self.record_commit(decision, spec, &commit).await
    }

    /// Records the pushed `commit` on the decision: it is `committed` from here on.
    pub(super) async fn record_commit(
        &self,
        decision: &DecisionRecord,
        spec: &ClusterSpec,
        commit: &str,
    ) -> Result<DecisionStatus, WorkError> {
        let write_back = json!({
            "mode": "commit",
            "repository": spec.git.repository,
            "branch": spec.git.branch,
            "path": spec.git.path,
            "commit": commit,
        });
        self.move_on(
            decision.id,
            Transition::new(DecisionStatus::Running, DecisionStatus::Committed)
                .write_back(&write_back)
                .step("committed", &write_back),
        )
        .await?;
        tracing::info!(decision = decision.id, commit, "committed");
        crate::fault::pause_at(crate::fault::WORKER_COMMITTED).await;
        Ok(DecisionStatus::Committed)
    }

    pub(super) async fn pull_request(
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
                    .finish(
                        decision.id,
                        DecisionStatus::Running,
                        DecisionStatus::Skipped,
                        &reason,
                    )
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
        let step = if pull.created {
            "pull_request_opened"
        } else {
            "pull_request_updated"
        };
        self.move_on(
            decision.id,
            Transition::new(DecisionStatus::Running, DecisionStatus::PrOpen)
                .write_back(&write_back)
                .step(step, &write_back),
        )
        .await?;
        tracing::info!(
            decision = decision.id,
            pull_request = pull.number,
            step,
            "pull request ready for review"
        );
        Ok(DecisionStatus::PrOpen)
    }
}
