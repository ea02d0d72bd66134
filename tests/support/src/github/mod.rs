//! A contract-faithful GitHub REST test server for a bot's pull requests
//! (docs/reference/external-apis.md §4, §6.3, §6.7): list/create/get/update pull requests, a pull
//! request's files (the real diff in the bare repository), issue labels and issue comments, GitHub's
//! error shapes (401, 404, 422 Validation Failed), `x-ratelimit-*` headers on every
//! response and injectable rate-limit answers (secondary 403 without Retry-After, primary 403 with
//! `x-ratelimit-remaining: 0`, 429 with Retry-After).
//!
//! Repositories are bare Git repositories on disk: the code under test pushes branches to them with
//! the git CLI, pull requests read their head and base from them, and [`GitHubServer::merge_pull`]
//! merges with a real merge commit.

mod branches;
mod comments;
mod errors;
mod files;
mod gate;
mod labels;
mod list;
mod model;
mod pulls;
mod render;
mod routes;
mod update;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use gate::{Fault, RateLimit};
use model::{NewPull, PullRecord, RepoRecord};
use render::{Ctx, Detail};

use crate::git;
use crate::serve::Running;

/// The login the token belongs to: the author of every pull request the server creates.
pub const BOT_LOGIN: &str = "autoscaler-bot";

/// A pull request as the server holds it, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSnapshot {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    /// The head branch name (without `owner:`).
    pub head: String,
    pub head_sha: String,
    pub base: String,
    /// "open" or "closed".
    pub state: String,
    pub draft: bool,
    pub labels: Vec<String>,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
    /// The login that opened it.
    pub author: String,
}

/// An issue comment as the server holds it, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentSnapshot {
    pub id: u64,
    /// The pull request (issue) it is on.
    pub number: u64,
    pub author: String,
    pub body: String,
}

/// A running GitHub test server. Clones share state; the server stops when the last clone is
/// dropped or on [`GitHubServer::shutdown`].
#[derive(Clone)]
pub struct GitHubServer {
    shared: Arc<Shared>,
    running: Running,
}

pub(crate) struct Shared {
    token: String,
    base_url: String,
    state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    /// By lower-cased "owner/name": GitHub matches both case-insensitively.
    repos: BTreeMap<String, RepoRecord>,
    requests: Vec<(String, String)>,
    rate_limit: RateLimit,
    next_id: u64,
}

impl State {
    fn repo_mut(&mut self, owner: &str, name: &str) -> Option<&mut RepoRecord> {
        self.repos.get_mut(&repo_key(owner, name))
    }

    fn repo(&self, owner: &str, name: &str) -> Option<&RepoRecord> {
        self.repos.get(&repo_key(owner, name))
    }

    /// Ids for pull requests and labels: unique across the server, like GitHub's.
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        1_000_000 + self.next_id
    }
}

fn repo_key(owner: &str, name: &str) -> String {
    format!("{owner}/{name}").to_lowercase()
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("github test server state poisoned by a panicking test")
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            base: &self.base_url,
            bot_login: BOT_LOGIN,
        }
    }
}

impl GitHubServer {
    /// Binds 127.0.0.1 on a free port; requests must carry `Authorization: Bearer <token>` (or `token <token>`).
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let mut shared = None;
        let running = Running::spawn(|url| {
            let s = Arc::new(Shared {
                token: token.to_owned(),
                base_url: url.to_owned(),
                state: Mutex::new(State::default()),
            });
            shared = Some(s.clone());
            routes::router(s)
        })
        .await?;
        let shared = shared.ok_or_else(|| std::io::Error::other("router was not built"))?;
        Ok(Self { shared, running })
    }

    /// e.g. `http://127.0.0.1:41234`: pass it to `Octocrab::builder().base_uri(..)`.
    pub fn url(&self) -> String {
        self.running.url()
    }

    pub fn shutdown(&self) {
        self.running.shutdown();
    }

    /// Serves `/repos/{owner}/{name}` from the bare repository `bare_repo`; its default branch is the
    /// repository's HEAD (or "main").
    pub fn add_repository(&self, owner: &str, name: &str, bare_repo: PathBuf) {
        let default_branch = git::run(&bare_repo, &["symbolic-ref", "--short", "HEAD"])
            .unwrap_or_else(|_| "main".to_owned());
        let repo = RepoRecord {
            owner: owner.to_owned(),
            name: name.to_owned(),
            id: render::stable_id(&format!("{owner}/{name}")),
            bare: bare_repo,
            default_branch,
            created_at: now(),
            pulls: BTreeMap::new(),
            labels: BTreeMap::new(),
            next_number: 1,
            comments: BTreeMap::new(),
        };
        self.shared.lock().repos.insert(repo_key(owner, name), repo);
    }

    /// The next `n` requests get 403 "You have exceeded a secondary rate limit…" with no
    /// `Retry-After` and a non-zero `x-ratelimit-remaining`, as GitHub sends it.
    pub fn inject_secondary_rate_limit(&self, n: usize) {
        self.inject(n, Fault::SecondaryLimit);
    }

    /// The next `n` requests get 403 "API rate limit exceeded…" with `x-ratelimit-remaining: 0`
    /// and `x-ratelimit-reset` = now + `reset_in_secs` (epoch seconds).
    pub fn inject_primary_rate_limit(&self, n: usize, reset_in_secs: u64) {
        let reset_at = gate::now_epoch() + i64::try_from(reset_in_secs).unwrap_or(i64::MAX / 2);
        self.inject(n, Fault::PrimaryLimit { reset_at });
    }

    /// The next `n` requests get 429 with `Retry-After: <secs>`.
    pub fn inject_retry_after(&self, n: usize, secs: u64) {
        self.inject(n, Fault::RetryAfter { secs });
    }

    fn inject(&self, n: usize, fault: Fault) {
        let mut state = self.shared.lock();
        state
            .rate_limit
            .faults
            .extend(std::iter::repeat_n(fault, n));
    }

    /// Every request received, authenticated or not: (method, path without the query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.lock().requests.clone()
    }

    /// The repository's pull requests by number. Head SHAs are as of the last API read of the pull.
    pub fn pulls(&self, owner: &str, repo: &str) -> Vec<PullSnapshot> {
        let state = self.shared.lock();
        let Some(repo) = state.repo(owner, repo) else {
            return Vec::new();
        };
        repo.pulls
            .values()
            .map(|p| PullSnapshot {
                number: p.number,
                title: p.title.clone(),
                body: p.body.clone(),
                head: p.head_ref.clone(),
                head_sha: p.branches.head_sha.clone(),
                base: p.base_ref.clone(),
                state: if p.open { "open" } else { "closed" }.to_owned(),
                draft: p.draft,
                labels: p.labels.clone(),
                merged: p.merged,
                merge_commit_sha: p.merge_commit_sha.clone(),
                author: p.author.clone(),
            })
            .collect()
    }

    /// The repository's issue comments, by pull request number and then oldest first.
    pub fn comments(&self, owner: &str, repo: &str) -> Vec<CommentSnapshot> {
        let state = self.shared.lock();
        let Some(repo) = state.repo(owner, repo) else {
            return Vec::new();
        };
        repo.comments
            .iter()
            .flat_map(|(number, comments)| {
                comments.iter().map(|c| CommentSnapshot {
                    id: c.id,
                    number: *number,
                    author: c.author.clone(),
                    body: c.body.clone(),
                })
            })
            .collect()
    }

    /// A person (`author`) opens a pull request from `head` into `base`, as in GitHub's web UI: both
    /// branches must exist in the bare repository. Returns its number. Runs git synchronously.
    pub fn open_pull_as(
        &self,
        owner: &str,
        repo: &str,
        author: &str,
        head: &str,
        base: &str,
        title: &str,
    ) -> anyhow::Result<u64> {
        let bare = {
            let state = self.shared.lock();
            let repo_rec = state
                .repo(owner, repo)
                .with_context(|| format!("no repository {owner}/{repo}"))?;
            repo_rec.bare.clone()
        };
        let branches = branches::branch_state(&bare, head, base)
            .with_context(|| format!("branches {head} / {base} must exist"))?;
        let mut state = self.shared.lock();
        let id = state.next_id();
        let repo_rec = state
            .repo_mut(owner, repo)
            .with_context(|| format!("no repository {owner}/{repo}"))?;
        let number = repo_rec.next_number;
        repo_rec.next_number += 1;
        repo_rec.pulls.insert(
            number,
            PullRecord::opened(NewPull {
                number,
                id,
                title: title.to_owned(),
                body: None,
                head_ref: head.to_owned(),
                base_ref: base.to_owned(),
                author: author.to_owned(),
                branches,
                draft: false,
                maintainer_can_modify: true,
            }),
        );
        Ok(number)
    }

    /// `author` comments `body` on pull request `number`, as in GitHub's web UI.
    pub fn comment_as(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
        author: &str,
        body: &str,
    ) -> anyhow::Result<u64> {
        let (json, _) = comments::add(&self.shared, owner, repo, number, author, body)
            .with_context(|| format!("no pull request #{number} in {owner}/{repo}"))?;
        json["id"].as_u64().context("the comment has an id")
    }

    /// Merges the pull request's head into its base in the bare repository with a merge commit
    /// (GitHub's "Create a merge commit"), marks it closed and merged, and returns the merge SHA.
    /// Runs git synchronously.
    pub fn merge_pull(&self, owner: &str, repo: &str, number: u64) -> anyhow::Result<String> {
        let (bare, head_ref, base_ref, message) = {
            let state = self.shared.lock();
            let repo_rec = state
                .repo(owner, repo)
                .with_context(|| format!("no repository {owner}/{repo}"))?;
            let pull = repo_rec
                .pulls
                .get(&number)
                .with_context(|| format!("no pull request #{number} in {owner}/{repo}"))?;
            if !pull.open {
                bail!("pull request #{number} is not open");
            }
            let message = format!(
                "Merge pull request #{number} from {}/{}\n\n{}",
                repo_rec.owner, pull.head_ref, pull.title
            );
            (
                repo_rec.bare.clone(),
                pull.head_ref.clone(),
                pull.base_ref.clone(),
                message,
            )
        };
        let before = branches::branch_state(&bare, &head_ref, &base_ref)
            .with_context(|| format!("branches {head_ref} / {base_ref} must exist to merge"))?;
        let merge_sha = git::merge_no_ff(&bare, &base_ref, &head_ref, &message)?;
        let mut state = self.shared.lock();
        let pull = state
            .repo_mut(owner, repo)
            .and_then(|r| r.pulls.get_mut(&number))
            .with_context(|| format!("pull request #{number} vanished"))?;
        let at = now();
        pull.branches = before;
        pull.open = false;
        pull.merged = true;
        pull.merged_at = Some(at.clone());
        pull.closed_at = Some(at.clone());
        pull.updated_at = at;
        pull.merge_commit_sha = Some(merge_sha.clone());
        Ok(merge_sha)
    }

    /// Closes the pull request without merging.
    pub fn close_pull(&self, owner: &str, repo: &str, number: u64) -> anyhow::Result<()> {
        let mut state = self.shared.lock();
        let pull = state
            .repo_mut(owner, repo)
            .and_then(|r| r.pulls.get_mut(&number))
            .with_context(|| format!("no pull request #{number} in {owner}/{repo}"))?;
        let at = now();
        pull.open = false;
        pull.closed_at = Some(at.clone());
        pull.updated_at = at;
        Ok(())
    }

    /// The body of the `pull_request` webhook GitHub sends when this pull request was closed
    /// (merged or not): action "closed", number, the full pull_request, repository and sender.
    /// Deliver it with `X-GitHub-Event: pull_request`.
    pub fn webhook_payload(&self, owner: &str, repo: &str, number: u64) -> anyhow::Result<Value> {
        let state = self.shared.lock();
        let repo_rec = state
            .repo(owner, repo)
            .with_context(|| format!("no repository {owner}/{repo}"))?;
        let pull = repo_rec
            .pulls
            .get(&number)
            .with_context(|| format!("no pull request #{number} in {owner}/{repo}"))?;
        let ctx = self.shared.ctx();
        let action = if pull.open { "opened" } else { "closed" };
        Ok(json!({
            "action": action,
            "number": pull.number,
            "pull_request": render::pull_request(&ctx, repo_rec, pull, Detail::Full),
            "repository": render::repository(&ctx, repo_rec),
            "sender": render::user(&ctx, BOT_LOGIN),
        }))
    }
}
