//! Recommend-only mode: the decision ends `recommended` and nothing is written. With
//! `write_back.comment_on`, the recommendation is also commented on the open pull requests into the
//! spec's branch that change its scale file, once per decision: each comment carries the decision's
//! marker, and a pull request that already has it (a worker killed after posting, then retried) is
//! left alone. A comment that cannot be posted is a step on the decision, a log line and a metric; the
//! decision is `recommended` all the same, because the recommendation itself stands.

use serde::{Deserialize, Serialize};

use super::{Explanation, WorkError, Worker, explain::decision_marker};
use crate::{
    cluster::{ClusterSpec, CommentOn},
    github::{GitHubClient, GitHubError},
    metrics::OutcomeLabels,
    storage::{ClusterRecord, DecisionRecord, DecisionStatus, Transition},
    worker::SecretError,
};

/// At most this many open pull requests (the newest) are read for the scale file: a repository with
/// more open pull requests than that against one branch would spend the rate limit on every decision.
pub const MAX_PULLS_READ: u8 = 20;

/// Comments older than this before the decision cannot be its own; the margin covers a GitHub clock
/// ahead of ours. Listing only newer ones keeps the marker search to a page or two.
const COMMENT_CLOCK_MARGIN: chrono::Duration = chrono::Duration::hours(1);

/// Step `commented`: the pull requests that carry the decision's comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentedStep {
    pub github_repository: String,
    /// Every pull request that carries this decision's comment now, in the order read.
    pub pull_requests: Vec<u64>,
    /// Those this attempt commented on; the others already had the comment from an earlier attempt.
    pub posted: Vec<u64>,
    /// The comments this attempt posted.
    pub comment_urls: Vec<String>,
}

/// Step `no_pull_request_to_comment`: no open pull request into the branch changes the scale file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoPullRequestStep {
    pub github_repository: String,
    pub base: String,
    pub path: String,
    /// How many open pull requests into `base` were read (at most [`MAX_PULLS_READ`]).
    pub open_pull_requests_read: usize,
}

/// Step `comment_failed`: commenting stopped at a failure; the decision is recommended regardless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentFailedStep {
    pub github_repository: String,
    /// What went wrong, without the token.
    pub error: String,
    /// The pull request the failure happened on, when it was about one.
    pub pull_request: Option<u64>,
    /// Pull requests that carry the comment despite the failure (those before it).
    pub commented: Vec<u64>,
}

/// How commenting went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentStep {
    Commented(CommentedStep),
    NoPullRequest(NoPullRequestStep),
    Failed(CommentFailedStep),
}

impl CommentStep {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Commented(_) => "commented",
            Self::NoPullRequest(_) => "no_pull_request_to_comment",
            Self::Failed(_) => "comment_failed",
        }
    }

    fn detail(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Self::Commented(step) => serde_json::to_value(step),
            Self::NoPullRequest(step) => serde_json::to_value(step),
            Self::Failed(step) => serde_json::to_value(step),
        }
    }
}

/// Why commenting stopped; both say what without any secret.
#[derive(Debug, thiserror::Error)]
enum CommentError {
    #[error("the GitHub token cannot be read: {0}")]
    Secret(#[from] SecretError),
    #[error("GitHub: {0}")]
    GitHub(#[from] GitHubError),
}

impl Worker {
    /// Ends the decision `recommended`, after commenting it where `comment_on` says.
    pub(super) async fn recommend(
        &self,
        decision: &DecisionRecord,
        cluster: &ClusterRecord,
        explanation: &Explanation<'_>,
        comment_on: Option<&CommentOn>,
    ) -> Result<DecisionStatus, WorkError> {
        let reason = format!(
            "recommends changing the scale from {} to {} ({}); recommend-only mode writes nothing",
            explanation.from, explanation.to, explanation.rule_reason
        );
        let mut change =
            Transition::new(DecisionStatus::Running, DecisionStatus::Recommended).reason(&reason);
        let step = match comment_on {
            Some(comment_on) => Some(
                self.comment_recommendation(decision, cluster, explanation, comment_on)
                    .await,
            ),
            None => None,
        };
        let detail = step
            .as_ref()
            .map(CommentStep::detail)
            .transpose()
            .map_err(|e| WorkError::Invalid(format!("the comment step cannot be recorded: {e}")))?;
        if let (Some(step), Some(detail)) = (&step, &detail) {
            change = change.step(step.name(), detail);
        }
        self.move_on(decision.id, change).await?;
        tracing::info!(
            decision = decision.id,
            reason,
            comment = step.as_ref().map(CommentStep::name),
            "decision recommended"
        );
        Ok(DecisionStatus::Recommended)
    }

    /// Comments on every open pull request that changes the scale file, and says how it went.
    async fn comment_recommendation(
        &self,
        decision: &DecisionRecord,
        cluster: &ClusterRecord,
        explanation: &Explanation<'_>,
        comment_on: &CommentOn,
    ) -> CommentStep {
        let mut commented = Vec::new();
        let mut failed_on = None;
        let result = self
            .comment_each(
                decision,
                cluster,
                explanation,
                comment_on,
                &mut commented,
                &mut failed_on,
            )
            .await;
        let step = match result {
            Ok(step) => step,
            Err(error) => {
                tracing::warn!(
                    decision = decision.id,
                    repository = comment_on.github_repository,
                    pull_request = failed_on,
                    %error,
                    "the recommendation could not be commented; the decision is recommended regardless"
                );
                CommentStep::Failed(CommentFailedStep {
                    github_repository: comment_on.github_repository.clone(),
                    error: error.to_string(),
                    pull_request: failed_on,
                    commented: commented.iter().map(|(number, _)| *number).collect(),
                })
            }
        };
        let outcome = match &step {
            CommentStep::Commented(step) if step.posted.is_empty() => "already_posted",
            CommentStep::Commented(_) => "posted",
            CommentStep::NoPullRequest(_) => "no_pull_request",
            CommentStep::Failed(_) => "failed",
        };
        self.metrics
            .recommendation_comments
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        step
    }

    /// The work of [`Self::comment_recommendation`]: `commented` collects (number, posted URL) as it
    /// goes and `failed_on` names the pull request a failure was about, for the failure's step.
    async fn comment_each(
        &self,
        decision: &DecisionRecord,
        cluster: &ClusterRecord,
        explanation: &Explanation<'_>,
        comment_on: &CommentOn,
        commented: &mut Vec<(u64, Option<String>)>,
        failed_on: &mut Option<u64>,
    ) -> Result<CommentStep, CommentError> {
        let spec: &ClusterSpec = &cluster.spec;
        let token = self
            .secrets
            .resolve(&cluster.team, &comment_on.token)
            .await?;
        let github = GitHubClient::new(
            comment_on.github_api_url.as_ref(),
            &comment_on.github_repository,
            token,
            self.settings.github,
        )?;
        let open = github
            .open_pulls_into(&spec.git.branch, MAX_PULLS_READ)
            .await?;
        let mut touching = Vec::new();
        for pull in &open {
            *failed_on = Some(pull.number);
            if github
                .pull_changes_file(pull.number, &spec.git.path)
                .await?
            {
                touching.push(pull.number);
            }
        }
        *failed_on = None;
        if touching.is_empty() {
            return Ok(CommentStep::NoPullRequest(NoPullRequestStep {
                github_repository: github.repository(),
                base: spec.git.branch.clone(),
                path: spec.git.path.clone(),
                open_pull_requests_read: open.len(),
            }));
        }
        let marker = decision_marker(decision.id);
        let since = decision.created_at - COMMENT_CLOCK_MARGIN;
        let body = explanation.recommendation_comment(&spec.git.path);
        for number in touching {
            *failed_on = Some(number);
            if github.has_comment_with(number, &marker, since).await? {
                commented.push((number, None));
                continue;
            }
            let posted = github.comment(number, &body).await?;
            tracing::info!(
                decision = decision.id,
                pull_request = number,
                comment = posted.url,
                "recommendation commented"
            );
            commented.push((number, Some(posted.url)));
        }
        *failed_on = None;
        Ok(CommentStep::Commented(CommentedStep {
            github_repository: github.repository(),
            pull_requests: commented.iter().map(|(number, _)| *number).collect(),
            posted: commented
                .iter()
                .filter(|(_, url)| url.is_some())
                .map(|(number, _)| *number)
                .collect(),
            comment_urls: commented
                .iter()
                .filter_map(|(_, url)| url.clone())
                .collect(),
        }))
    }
}
