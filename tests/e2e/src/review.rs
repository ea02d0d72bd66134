//! Pull-request review on the local stack. The GitHub test server hosts the GitOps repository's pull
//! requests (the autoscaler opens them through its REST API, as it would on github.com); a person's merge
//! or close is done on the test server and delivered to the autoscaler's `/webhooks/github` signed with
//! the webhook secret, with a delivery id, as GitHub delivers it.

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use test_support::github::{GitHubServer, PullSnapshot};

/// The repository on the GitHub test server: `acme/gitops`, backed by the stack's bare repository.
pub const OWNER: &str = "acme";
pub const REPOSITORY: &str = "gitops";
/// The token the autoscaler presents to the GitHub test server; the subscription names it as
/// `{"env": "AUTOSCALER_TEAM_DEFAULT_SECRET_GITHUB_TOKEN"}`.
pub const GITHUB_TOKEN: &str = "e2e-github-token-0123456789";
/// The secret GitHub signs deliveries with (`AUTOSCALER_GITHUB_WEBHOOK_SECRET`).
pub const WEBHOOK_SECRET: &str = "e2e-github-webhook-secret-0123";

pub struct Review {
    pub github: GitHubServer,
    webhook_url: String,
    http: reqwest::Client,
}

impl Review {
    pub async fn start(bare: std::path::PathBuf) -> anyhow::Result<Self> {
        let github = GitHubServer::start(GITHUB_TOKEN).await?;
        github.add_repository(OWNER, REPOSITORY, bare);
        Ok(Self {
            github,
            webhook_url: String::new(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
        })
    }

    /// Where merges and closes are delivered: the autoscaler's webhook receiver.
    pub fn deliver_to(&mut self, autoscaler_url: &str) {
        self.webhook_url = format!("{autoscaler_url}/webhooks/github");
    }

    /// The repository's pull requests, oldest first.
    pub fn pull_requests(&self) -> Vec<PullSnapshot> {
        self.github.pulls(OWNER, REPOSITORY)
    }

    /// The pull request waiting for review, if one is.
    pub fn open_pull_request(&self) -> Option<PullSnapshot> {
        self.pull_requests().into_iter().find(|p| p.state == "open")
    }

    /// Merges the pull request (a merge commit on the base branch) and delivers the event; the merge
    /// commit's SHA.
    pub async fn merge(&self, number: u64) -> anyhow::Result<String> {
        let sha = self.github.merge_pull(OWNER, REPOSITORY, number)?;
        self.deliver(number).await?;
        Ok(sha)
    }

    /// Closes the pull request without merging and delivers the event.
    pub async fn close(&self, number: u64) -> anyhow::Result<()> {
        self.github.close_pull(OWNER, REPOSITORY, number)?;
        self.deliver(number).await
    }

    async fn deliver(&self, number: u64) -> anyhow::Result<()> {
        let payload = self.github.webhook_payload(OWNER, REPOSITORY, number)?;
        let body = serde_json::to_vec(&payload)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes())?;
        mac.update(&body);
        let signature: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let response = self
            .http
            .post(&self.webhook_url)
            .header("content-type", "application/json")
            .header("x-github-event", "pull_request")
            .header(
                "x-github-delivery",
                format!("e2e-{number}-{}", chrono::Utc::now().timestamp_micros()),
            )
            .header("x-hub-signature-256", format!("sha256={signature}"))
            .body(body)
            .send()
            .await
            .context("delivering the pull request event")?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "the autoscaler refused the pull request event with {status}: {}",
            response.text().await.unwrap_or_default()
        );
        Ok(())
    }
}
