//! The plan step: the value in Git and who set it, the cluster's history, then the estimate and the
//! check (`estimate::plan`, the same pure code the simulator runs).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Explanation, MIN_HISTORY, WorkError, Worker, short};
use crate::{
    cluster::WriteBack,
    estimate::{CheckOutcome, PreviousChange, plan},
    github::GitHubClient,
    gitops::Remote,
    rules::Direction,
    storage::{ClusterRecord, DecisionRecord, DecisionStatus, HumanChange, Sample, Transition},
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
        let direction = direction_of(decision)?;
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

        // A person's commit that changed the value (not merely the file, and not ours with a lost
        // trailer): recorded, and it restarts the cooldown instead of being overwritten.
        let by_hand = match &file.last_commit {
            Some(commit) if commit.decision.is_none() => {
                !self
                    .storage
                    .commit_is_ours(
                        cluster.id,
                        &commit.sha,
                        commit.pull_request,
                        commit.branch.as_deref(),
                    )
                    .await?
            }
            _ => false,
        };
        if by_hand && let Some(commit) = &file.last_commit {
            let cooldown_ends =
                commit.at + chrono::Duration::seconds(i64::from(spec.policy.cooldown_seconds));
            let newer_than_ours = last_written.as_ref().is_none_or(|p| commit.at > p.at);
            if newer_than_ours && now < cooldown_ends {
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
                let reason = format!(
                    "{} set the scale to {} by hand in commit {} at {}; the autoscaler waits until {} (cooldown)",
                    commit.author,
                    file.value,
                    short(&commit.sha),
                    commit.at.to_rfc3339(),
                    cooldown_ends.to_rfc3339()
                );
                return self
                    .finish(
                        decision.id,
                        DecisionStatus::Running,
                        DecisionStatus::Vetoed,
                        &reason,
                    )
                    .await;
            }
        }

        let history = self.history(cluster, now).await?;
        let previous = last_written.and_then(|p| {
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
        if to == from {
            let reason = format!("Git already holds {to}");
            return self
                .finish(
                    decision.id,
                    DecisionStatus::Running,
                    DecisionStatus::Skipped,
                    &reason,
                )
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
            unit: spec.target.scale_unit,
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
