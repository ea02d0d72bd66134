//! Writes a new scale to any Git remote with the `git` command line: a working clone per remote under a
//! work directory, one writer per remote at a time, and on a rejected (non-fast-forward) push a fetch, a
//! fresh edit and a retry after a jittered pause.
//!
//! Every commit carries an `Autoscaler-Decision: <id>` trailer. Before writing, the branch is searched
//! for it, so a decision retried after a crash or delivered twice never makes a second commit, and a
//! commit without it is recognised as a person's.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{
    git::{Credential, git},
    yaml::{YamlEditError, read_scale, set_scale},
};

const MAX_ATTEMPTS: u32 = 5;
const TRAILER: &str = "Autoscaler-Decision";

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git {command} failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: YamlEditError,
    },
    #[error("{path} cannot be read or written: {reason}")]
    Io { path: String, reason: String },
    #[error("the push was rejected {0} times in a row by concurrent changes")]
    Contended(u32),
}

impl GitError {
    /// Whether trying again later may succeed: a remote that did not answer or kept moving, as opposed
    /// to a file that cannot take the change.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Command { .. } | Self::Contended(_))
    }
}

/// A branch of a remote, and how to authenticate to it.
#[derive(Debug, Clone, Copy)]
pub struct Remote<'a> {
    pub url: &'a str,
    pub branch: &'a str,
    pub credential: Option<&'a Credential>,
}

/// What to change, and why.
#[derive(Debug, Clone)]
pub struct ScaleChange<'a> {
    pub path: &'a str,
    pub key: &'a str,
    pub scale: u64,
    /// The commit message: what changed and why. The decision trailer is appended.
    pub message: &'a str,
    pub decision_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new commit was pushed; the file held `previous` before it.
    Committed { commit: String, previous: u64 },
    /// A commit for this decision is already on the branch (a retry after a crash).
    AlreadyCommitted { commit: String },
    /// The file already holds the scale; nothing to commit.
    Unchanged,
}

/// The value in the file and the newest commit that changed that value (not merely the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub value: u64,
    pub last_commit: Option<FileCommit>,
}

/// How far back the history is searched for the commit that changed the value.
const VALUE_HISTORY: &str = "200";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCommit {
    pub sha: String,
    pub author: String,
    pub at: DateTime<Utc>,
    /// The decision that wrote it, from its trailer; `None` for a person's commit, or for ours when a
    /// squash or merge lost the trailer (then `pull_request` or `branch` tells).
    pub decision: Option<i64>,
    /// The pull request a squash (`… (#12)`) or merge commit (`Merge pull request #12 from …`) names.
    pub pull_request: Option<u64>,
    /// The branch a merge commit names (`Merge pull request #12 from owner/autoscaler/logs`).
    pub branch: Option<String>,
}

/// Writes scales to Git remotes, one writer per remote at a time within this process.
#[derive(Debug, Clone)]
pub struct GitWriter {
    workdir: PathBuf,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl GitWriter {
    pub fn new(workdir: impl Into<PathBuf>) -> Self {
        Self {
            workdir: workdir.into(),
            locks: Arc::default(),
        }
    }

    /// Reads the value at the key path on the branch as it is now, and who last changed the file.
    pub async fn inspect(
        &self,
        remote: Remote<'_>,
        path: &str,
        key: &str,
    ) -> Result<FileState, GitError> {
        let lock = self.lock_for(remote.url);
        let _guard = lock.lock().await;
        let clone = self.sync(remote).await?;
        let text = read_file(&clone, path).await?;
        let value = read_scale(&text, key).map_err(|source| GitError::File {
            path: path.to_owned(),
            source,
        })?;
        let last_commit = last_value_change(&clone, remote.credential, path, key).await?;
        Ok(FileState { value, last_commit })
    }

    /// The commit on the branch that carries decision `decision_id`'s trailer, if one was pushed (by a
    /// worker that died before it could record it).
    pub async fn decision_commit(
        &self,
        remote: Remote<'_>,
        decision_id: i64,
    ) -> Result<Option<String>, GitError> {
        let lock = self.lock_for(remote.url);
        let _guard = lock.lock().await;
        let clone = self.sync(remote).await?;
        let pattern = format!("^{TRAILER}: {decision_id}$");
        let found = git(
            &clone,
            remote.credential,
            &["log", "-1", "--format=%H", "--grep", &pattern, "HEAD"],
        )
        .await?;
        Ok(Some(found.trim().to_owned()).filter(|sha| !sha.is_empty()))
    }

    /// Commits `change` on the branch and pushes it.
    pub async fn write(
        &self,
        remote: Remote<'_>,
        change: &ScaleChange<'_>,
    ) -> Result<WriteOutcome, GitError> {
        let lock = self.lock_for(remote.url);
        let _guard = lock.lock().await;
        for attempt in 1..=MAX_ATTEMPTS {
            let clone = self.sync(remote).await?;
            if let Some(commit) = find_decision(&clone, remote.credential, "HEAD", change).await? {
                return Ok(WriteOutcome::AlreadyCommitted { commit });
            }
            let Some(previous) = edit_and_commit(&clone, remote.credential, change).await? else {
                return Ok(WriteOutcome::Unchanged);
            };
            let target = format!("HEAD:refs/heads/{}", remote.branch);
            match git(
                &clone,
                remote.credential,
                &["push", "--quiet", "origin", &target],
            )
            .await
            {
                Ok(_) => {
                    let commit = head(&clone).await?;
                    return Ok(WriteOutcome::Committed { commit, previous });
                }
                Err(GitError::Command { stderr, .. }) if is_rejection(&stderr) => {
                    tracing::info!(
                        attempt,
                        repository = remote.url,
                        "push rejected by a concurrent change; retrying"
                    );
                    tokio::time::sleep(jitter(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(GitError::Contended(MAX_ATTEMPTS))
    }

    /// Puts `change` as one commit on top of the base branch onto `head_branch` (the autoscaler's own
    /// branch for a pull request), replacing what that branch held. A branch whose tip already carries
    /// this decision is left alone.
    pub async fn write_branch(
        &self,
        base: Remote<'_>,
        head_branch: &str,
        change: &ScaleChange<'_>,
    ) -> Result<WriteOutcome, GitError> {
        let lock = self.lock_for(base.url);
        let _guard = lock.lock().await;
        let clone = self.sync(base).await?;
        let remote_head = format!("refs/remotes/origin/{head_branch}");
        let listed = git(
            &clone,
            base.credential,
            &[
                "ls-remote",
                "--heads",
                "origin",
                &format!("refs/heads/{head_branch}"),
            ],
        )
        .await?;
        if !listed.trim().is_empty() {
            git(
                &clone,
                base.credential,
                &[
                    "fetch",
                    "--quiet",
                    "origin",
                    &format!("+refs/heads/{head_branch}:{remote_head}"),
                ],
            )
            .await?;
            let tip = git(
                &clone,
                None,
                &["log", "-1", "--format=%H%x1f%B", &remote_head],
            )
            .await?;
            if let Some((commit, body)) = tip.split_once('\u{1f}')
                && decision_of(body) == Some(change.decision_id)
            {
                return Ok(WriteOutcome::AlreadyCommitted {
                    commit: commit.to_owned(),
                });
            }
        }
        let Some(previous) = edit_and_commit(&clone, base.credential, change).await? else {
            return Ok(WriteOutcome::Unchanged);
        };
        git(
            &clone,
            base.credential,
            &[
                "push",
                "--quiet",
                "--force",
                "origin",
                &format!("HEAD:refs/heads/{head_branch}"),
            ],
        )
        .await?;
        let commit = head(&clone).await?;
        Ok(WriteOutcome::Committed { commit, previous })
    }

    /// Whether `descendant` contains `ancestor` (the revision Argo CD applied includes our commit).
    pub async fn contains(
        &self,
        remote: Remote<'_>,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, GitError> {
        if ancestor == descendant {
            return Ok(true);
        }
        let lock = self.lock_for(remote.url);
        let _guard = lock.lock().await;
        let clone = self.sync(remote).await?;
        let result = git(
            &clone,
            None,
            &["merge-base", "--is-ancestor", ancestor, descendant],
        )
        .await;
        match result {
            Ok(_) => Ok(true),
            // Exit 1 is "no"; an unknown revision is "no" as well (not on this branch).
            Err(GitError::Command { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn lock_for(&self, repository: &str) -> Arc<tokio::sync::Mutex<()>> {
        // A std Mutex guards only the map lookup, never an await.
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(repository.to_owned()).or_default().clone()
    }

    /// A working clone of the remote, reset to the branch's current head.
    async fn sync(&self, remote: Remote<'_>) -> Result<PathBuf, GitError> {
        let name = hex(&Sha256::digest(remote.url.as_bytes()))[..16].to_owned();
        let clone = self.workdir.join(name);
        let branch = remote.branch;
        if !clone.join(".git").is_dir() {
            tokio::fs::create_dir_all(&self.workdir)
                .await
                .map_err(|e| GitError::Io {
                    path: self.workdir.display().to_string(),
                    reason: e.to_string(),
                })?;
            // A clone interrupted by a crash leaves a directory without a usable `.git`.
            let _ = tokio::fs::remove_dir_all(&clone).await;
            let target = clone.display().to_string();
            git(
                &self.workdir,
                remote.credential,
                &[
                    "clone",
                    "--quiet",
                    "--no-tags",
                    "--single-branch",
                    "--branch",
                    branch,
                    remote.url,
                    &target,
                ],
            )
            .await?;
            return Ok(clone);
        }
        git(
            &clone,
            remote.credential,
            &[
                "fetch",
                "--quiet",
                "origin",
                &format!("+refs/heads/{branch}:refs/remotes/origin/{branch}"),
            ],
        )
        .await?;
        git(
            &clone,
            None,
            &["reset", "--quiet", "--hard", &format!("origin/{branch}")],
        )
        .await?;
        Ok(clone)
    }
}

/// Edits the file in the clone and commits; `None` when it already holds the scale.
async fn edit_and_commit(
    clone: &Path,
    credential: Option<&Credential>,
    change: &ScaleChange<'_>,
) -> Result<Option<u64>, GitError> {
    let text = read_file(clone, change.path).await?;
    let file_error = |source| GitError::File {
        path: change.path.to_owned(),
        source,
    };
    let previous = read_scale(&text, change.key).map_err(file_error)?;
    if previous == change.scale {
        return Ok(None);
    }
    let edited = set_scale(&text, change.key, change.scale).map_err(file_error)?;
    write_file(clone, change.path, &edited).await?;
    let message = format!(
        "{}\n\n{TRAILER}: {}\n",
        change.message.trim_end(),
        change.decision_id
    );
    git(clone, credential, &["add", "--", change.path]).await?;
    git(
        clone,
        credential,
        &[
            "-c",
            "user.name=autoscaler",
            "-c",
            "user.email=autoscaler@localhost",
            "commit",
            "--quiet",
            "-m",
            &message,
            "--",
            change.path,
        ],
    )
    .await?;
    Ok(Some(previous))
}

/// The newest commit reachable from `from` carrying this decision's trailer.
async fn find_decision(
    clone: &Path,
    credential: Option<&Credential>,
    from: &str,
    change: &ScaleChange<'_>,
) -> Result<Option<String>, GitError> {
    let pattern = format!("^{TRAILER}: {}$", change.decision_id);
    let found = git(
        clone,
        credential,
        &["log", "-1", "--format=%H", "--grep", &pattern, from],
    )
    .await?;
    Ok(Some(found.trim().to_owned()).filter(|sha| !sha.is_empty()))
}

/// The newest commit that changed the value at `key` (the value differs from its first parent's), among
/// the commits that touched the file.
async fn last_value_change(
    clone: &Path,
    credential: Option<&Credential>,
    path: &str,
    key: &str,
) -> Result<Option<FileCommit>, GitError> {
    let out = git(
        clone,
        credential,
        &["log", "-n", VALUE_HISTORY, "--format=%H %P", "--", path],
    )
    .await?;
    for line in out.lines() {
        let mut shas = line.split_whitespace();
        let Some(sha) = shas.next() else { continue };
        let before = match shas.next() {
            Some(parent) => value_at(clone, parent, path, key).await,
            None => None,
        };
        if value_at(clone, sha, path, key).await != before {
            return commit_details(clone, credential, sha).await.map(Some);
        }
    }
    Ok(None)
}

/// The value at `key` in `path` at `revision`; `None` when the file or the key is not there.
async fn value_at(clone: &Path, revision: &str, path: &str, key: &str) -> Option<u64> {
    let text = git(clone, None, &["show", &format!("{revision}:{path}")])
        .await
        .ok()?;
    read_scale(&text, key).ok()
}

async fn commit_details(
    clone: &Path,
    credential: Option<&Credential>,
    sha: &str,
) -> Result<FileCommit, GitError> {
    let out = git(
        clone,
        credential,
        &["log", "-1", "--format=%H%x1f%an <%ae>%x1f%cI%x1f%B", sha],
    )
    .await?;
    let mut fields = out.splitn(4, '\u{1f}');
    let (Some(sha), Some(author), Some(at), Some(body)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(GitError::Command {
            command: "log".to_owned(),
            stderr: format!("unreadable commit {sha}"),
        });
    };
    let at = DateTime::parse_from_rfc3339(at.trim())
        .map_err(|e| GitError::Command {
            command: "log".to_owned(),
            stderr: format!("unreadable commit date {at:?}: {e}"),
        })?
        .with_timezone(&Utc);
    let subject = body.lines().next().unwrap_or_default();
    let (pull_request, branch) = pull_request_of(subject);
    Ok(FileCommit {
        sha: sha.trim().to_owned(),
        author: author.to_owned(),
        at,
        decision: decision_of(body),
        pull_request,
        branch,
    })
}

/// The pull request (and branch) a squash or merge commit's subject names, as GitHub writes them.
fn pull_request_of(subject: &str) -> (Option<u64>, Option<String>) {
    if let Some(rest) = subject.strip_prefix("Merge pull request #") {
        let (number, from) = rest.split_once(" from ").unwrap_or((rest, ""));
        // `owner/branch`: the branch is everything after the first slash.
        let branch = from
            .split_whitespace()
            .next()
            .and_then(|f| f.split_once('/'))
            .map(|(_, branch)| branch.to_owned());
        return (number.trim().parse().ok(), branch);
    }
    let squashed = subject
        .trim_end()
        .strip_suffix(')')
        .and_then(|s| s.rsplit_once("(#"))
        .and_then(|(_, number)| number.parse().ok());
    (squashed, None)
}

/// The decision id in a commit message's trailer.
fn decision_of(message: &str) -> Option<i64> {
    message.lines().find_map(|line| {
        line.strip_prefix(TRAILER)?
            .strip_prefix(':')?
            .trim()
            .parse()
            .ok()
    })
}

async fn head(clone: &Path) -> Result<String, GitError> {
    Ok(git(clone, None, &["rev-parse", "HEAD"])
        .await?
        .trim()
        .to_owned())
}

fn is_rejection(stderr: &str) -> bool {
    [
        "non-fast-forward",
        "fetch first",
        "[rejected]",
        "cannot lock ref",
    ]
    .iter()
    .any(|sign| stderr.contains(sign))
}

/// 100 ms to 200 ms times the attempt, spread by the clock's nanoseconds.
fn jitter(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(u64::from(attempt) * (100 + u64::from(nanos % 100)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn read_file(clone: &Path, path: &str) -> Result<String, GitError> {
    tokio::fs::read_to_string(clone.join(path))
        .await
        .map_err(|e| GitError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

async fn write_file(clone: &Path, path: &str, text: &str) -> Result<(), GitError> {
    tokio::fs::write(clone.join(path), text)
        .await
        .map_err(|e| GitError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squash_and_merge_subjects_name_their_pull_request() {
        assert_eq!(
            pull_request_of("Scale logs from 2 to 5 (#12)"),
            (Some(12), None)
        );
        assert_eq!(
            pull_request_of("Merge pull request #7 from acme/autoscaler/logs"),
            (Some(7), Some("autoscaler/logs".to_owned()))
        );
        assert_eq!(pull_request_of("logs: more replicas"), (None, None));
    }
}
