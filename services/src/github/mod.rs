//! One pull request per cluster on GitHub (octocrab): found by its head branch, updated in place by every
//! new decision, created only when none is open. The branch itself is pushed with git (see `gitops`);
//! this module only speaks the pull request API. In recommend-only mode it also finds other people's
//! open pull requests that change a file, and comments on them.

mod rate_limit;

use chrono::{DateTime, Utc};
use octocrab::{
    Octocrab, Page,
    models::{issues::Comment, repos::DiffEntry},
    params,
};
use url::Url;

pub use rate_limit::RateLimitSettings;

use rate_limit::{Attempt, classify};

/// How talking to GitHub went wrong. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub rejected the token (HTTP 401): {0}")]
    Unauthenticated(String),
    #[error(
        "GitHub denied the request (HTTP 403): {0}; the token needs pull request and contents write access"
    )]
    Forbidden(String),
    #[error("repository {0} not found on GitHub, or the token cannot see it (HTTP 404)")]
    NotFound(String),
    #[error("GitHub refused the request (HTTP 422): {0}")]
    Invalid(String),
    #[error("GitHub rate limit: {0}")]
    RateLimited(String),
    #[error("GitHub is unavailable: {0}")]
    Unavailable(String),
    #[error("the GitHub client could not be set up: {0}")]
    Setup(String),
}

impl GitHubError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited(_) | Self::Unavailable(_))
    }
}

/// The pull request a decision lives in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PullRequest {
    pub number: u64,
    pub url: Option<String>,
    /// Whether this call opened it (rather than updating an open one).
    pub created: bool,
}

/// An open pull request someone else opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPull {
    pub number: u64,
    pub url: Option<String>,
}

/// A comment the autoscaler posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedComment {
    pub id: u64,
    pub url: String,
}

/// How many of a pull request's files are read to find the scale file among them.
pub const FILES_PER_PULL: u8 = 100;

/// How many pages of 100 comments are read to find one the autoscaler posted.
pub const COMMENT_PAGES: u32 = 3;

/// What to put in the pull request.
#[derive(Debug, Clone)]
pub struct PullRequestContent<'a> {
    pub head_branch: &'a str,
    pub base_branch: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub labels: &'a [String],
}

/// The pull request API of one repository.
pub struct GitHubClient {
    crab: Octocrab,
    owner: String,
    repo: String,
    limits: RateLimitSettings,
}

/// Serialises content-creating calls in this process, as GitHub asks of integrations.
static CREATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl GitHubClient {
    /// `repository` is `owner/name`; `api` defaults to api.github.com.
    pub fn new(
        api: Option<&Url>,
        repository: &str,
        token: secrecy::SecretString,
        limits: RateLimitSettings,
    ) -> Result<Self, GitHubError> {
        let (owner, repo) = repository
            .split_once('/')
            .ok_or_else(|| GitHubError::Setup(format!("{repository:?} is not owner/name")))?;
        let mut builder = Octocrab::builder()
            .personal_token(token)
            // Rate limits and server errors are handled here, with waits a test can shorten.
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(std::time::Duration::from_secs(10)))
            .set_read_timeout(Some(std::time::Duration::from_secs(30)));
        if let Some(api) = api {
            builder = builder
                .base_uri(api.as_str())
                .map_err(|e| GitHubError::Setup(e.to_string()))?;
        }
        let crab = builder
            .build()
            .map_err(|e| GitHubError::Setup(e.to_string()))?;
        Ok(Self {
            crab,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            limits,
        })
    }

    /// Updates the open pull request from `head_branch`, or opens one.
    pub async fn upsert(
        &self,
        content: &PullRequestContent<'_>,
    ) -> Result<PullRequest, GitHubError> {
        let _creating = CREATING.lock().await;
        let mut pull = match self.find_open(content).await? {
            Some(number) => self.update(number, content).await?,
            None => match self.create(content).await {
                Ok(pull) => pull,
                // Opened meanwhile (by a retry of ours, or another worker): update that one.
                Err(GitHubError::Invalid(message)) if message.contains("already exists") => {
                    let number = self.find_open(content).await?.ok_or_else(|| {
                        GitHubError::Invalid(format!("{message}, yet none is listed"))
                    })?;
                    self.update(number, content).await?
                }
                Err(e) => return Err(e),
            },
        };
        if !content.labels.is_empty() {
            let labels = content.labels.to_vec();
            self.call("add labels", || async {
                self.crab
                    .issues(&self.owner, &self.repo)
                    .add_labels(pull.number, &labels)
                    .await
            })
            .await?;
        }
        pull.url = pull.url.or_else(|| {
            Some(format!(
                "https://github.com/{}/{}/pull/{}",
                self.owner, self.repo, pull.number
            ))
        });
        Ok(pull)
    }

    async fn find_open(
        &self,
        content: &PullRequestContent<'_>,
    ) -> Result<Option<u64>, GitHubError> {
        let head = format!("{}:{}", self.owner, content.head_branch);
        let page = self
            .call("list pull requests", || async {
                self.crab
                    .pulls(&self.owner, &self.repo)
                    .list()
                    .state(params::State::Open)
                    .head(head.clone())
                    .base(content.base_branch)
                    .per_page(10u8)
                    .send()
                    .await
            })
            .await?;
        Ok(page.items.first().map(|pr| pr.number))
    }

    async fn create(&self, content: &PullRequestContent<'_>) -> Result<PullRequest, GitHubError> {
        let pr = self
            .call("create the pull request", || async {
                self.crab
                    .pulls(&self.owner, &self.repo)
                    .create(content.title, content.head_branch, content.base_branch)
                    .body(content.body)
                    .maintainer_can_modify(true)
                    .send()
                    .await
            })
            .await?;
        Ok(PullRequest {
            number: pr.number,
            url: pr.html_url.map(|u| u.to_string()),
            created: true,
        })
    }

    async fn update(
        &self,
        number: u64,
        content: &PullRequestContent<'_>,
    ) -> Result<PullRequest, GitHubError> {
        let pr = self
            .call("update the pull request", || async {
                self.crab
                    .pulls(&self.owner, &self.repo)
                    .update(number)
                    .title(content.title)
                    .body(content.body)
                    .send()
                    .await
            })
            .await?;
        Ok(PullRequest {
            number: pr.number,
            url: pr.html_url.map(|u| u.to_string()),
            created: false,
        })
    }

    /// The open pull requests into `base`, newest first, at most `at_most` (GitHub pages up to 100).
    pub async fn open_pulls_into(
        &self,
        base: &str,
        at_most: u8,
    ) -> Result<Vec<OpenPull>, GitHubError> {
        let page = self
            .call("list open pull requests", || async {
                self.crab
                    .pulls(&self.owner, &self.repo)
                    .list()
                    .state(params::State::Open)
                    .base(base)
                    .sort(params::pulls::Sort::Created)
                    .direction(params::Direction::Descending)
                    .per_page(at_most)
                    .send()
                    .await
            })
            .await?;
        Ok(page
            .items
            .into_iter()
            .take(usize::from(at_most))
            .map(|pr| OpenPull {
                number: pr.number,
                url: pr.html_url.map(|u| u.to_string()),
            })
            .collect())
    }

    /// Whether the pull request changes `path` (or renames it away), judged on its first
    /// [`FILES_PER_PULL`] files: GitHub lists a pull request's files in pages, and a bot reading every
    /// page of a huge refactoring would spend the rate limit on it.
    pub async fn pull_changes_file(&self, number: u64, path: &str) -> Result<bool, GitHubError> {
        let route = format!("/repos/{}/{}/pulls/{number}/files", self.owner, self.repo);
        let query = [("per_page", FILES_PER_PULL), ("page", 1)];
        let files: Page<DiffEntry> = self
            .call("list a pull request's files", || async {
                self.crab.get(&route, Some(&query)).await
            })
            .await?;
        Ok(files
            .items
            .iter()
            .any(|f| f.filename == path || f.previous_filename.as_deref() == Some(path)))
    }

    /// Whether a comment on the pull request (or issue), updated since `since`, contains `marker`.
    /// Reads at most [`COMMENT_PAGES`] pages of 100: `since` keeps them to the recent ones.
    pub async fn has_comment_with(
        &self,
        number: u64,
        marker: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, GitHubError> {
        let mut page = self
            .call("list a pull request's comments", || async {
                self.crab
                    .issues(&self.owner, &self.repo)
                    .list_comments(number)
                    .since(since)
                    .per_page(100u8)
                    .send()
                    .await
            })
            .await?;
        for read in 1..=COMMENT_PAGES {
            if page
                .items
                .iter()
                .any(|c| c.body.as_deref().is_some_and(|b| b.contains(marker)))
            {
                return Ok(true);
            }
            if read == COMMENT_PAGES {
                break;
            }
            let next = page.next.clone();
            match self
                .call("list a pull request's comments", || async {
                    self.crab.get_page::<Comment>(&next).await
                })
                .await?
            {
                Some(more) => page = more,
                None => break,
            }
        }
        Ok(false)
    }

    /// Comments `body` on the pull request (an issue comment, as a person would in the conversation).
    pub async fn comment(&self, number: u64, body: &str) -> Result<PostedComment, GitHubError> {
        let _creating = CREATING.lock().await;
        let comment = self
            .call("comment on the pull request", || async {
                self.crab
                    .issues(&self.owner, &self.repo)
                    .create_comment(number, body)
                    .await
            })
            .await?;
        Ok(PostedComment {
            id: comment.id.into_inner(),
            url: comment.html_url.to_string(),
        })
    }

    /// Runs one API call, waiting out rate limits and retrying server errors within the settings.
    async fn call<T, F, Fut>(&self, what: &str, make: F) -> Result<T, GitHubError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = octocrab::Result<T>>,
    {
        let mut attempt = 1;
        loop {
            let error = match make().await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            match classify(&error, &self.repository(), attempt, &self.limits) {
                Attempt::RetryAfter(wait, reason) => {
                    tracing::warn!(what, attempt, wait_ms = wait.as_millis() as u64, %reason, "GitHub asked to wait");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Attempt::Fail(e) => return Err(e),
            }
        }
    }

    /// `owner/name`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }
}
