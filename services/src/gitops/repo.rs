//! Commits a new scale to any Git remote with the `git` command line: a working clone per remote under a
//! work directory, one writer per remote at a time, and on a rejected (non-fast-forward) push a fetch, a
//! fresh edit and a retry after a jittered pause.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::yaml::{YamlEditError, read_scale, set_scale};

const MAX_ATTEMPTS: u32 = 5;

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

/// What to change, where, and why.
#[derive(Debug, Clone)]
pub struct ScaleChange<'a> {
    pub repository: &'a str,
    pub branch: &'a str,
    pub path: &'a str,
    pub key: &'a str,
    pub scale: u64,
    /// The commit message: what changed and why.
    pub message: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub commit: String,
    /// The value the file held before this commit.
    pub previous: u64,
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

    /// Reads the value at the key path on the remote branch as it is now.
    pub async fn read(
        &self,
        repository: &str,
        branch: &str,
        path: &str,
        key: &str,
    ) -> Result<u64, GitError> {
        let lock = self.lock_for(repository);
        let _guard = lock.lock().await;
        let clone = self.sync(repository, branch).await?;
        let text = read_file(&clone, path).await?;
        read_scale(&text, key).map_err(|source| GitError::File {
            path: path.to_owned(),
            source,
        })
    }

    /// Commits `change` and pushes it. `Ok(None)` when the file already holds that scale.
    pub async fn write(&self, change: &ScaleChange<'_>) -> Result<Option<Committed>, GitError> {
        let lock = self.lock_for(change.repository);
        let _guard = lock.lock().await;
        for attempt in 1..=MAX_ATTEMPTS {
            let clone = self.sync(change.repository, change.branch).await?;
            let text = read_file(&clone, change.path).await?;
            let file_error = |source| GitError::File {
                path: change.path.to_owned(),
                source,
            };
            let previous = read_scale(&text, change.key).map_err(file_error)?;
            if previous == change.scale {
                return Ok(None);
            }
            let edited = set_scale(&text, change.key, change.scale).map_err(file_error)?;
            write_file(&clone, change.path, &edited).await?;
            git(&clone, &["add", "--", change.path]).await?;
            git(
                &clone,
                &[
                    "-c",
                    "user.name=autoscaler",
                    "-c",
                    "user.email=autoscaler@localhost",
                    "commit",
                    "--quiet",
                    "-m",
                    change.message,
                    "--",
                    change.path,
                ],
            )
            .await?;
            match git(
                &clone,
                &[
                    "push",
                    "--quiet",
                    "origin",
                    &format!("HEAD:refs/heads/{}", change.branch),
                ],
            )
            .await
            {
                Ok(_) => {
                    let commit = git(&clone, &["rev-parse", "HEAD"]).await?.trim().to_owned();
                    return Ok(Some(Committed { commit, previous }));
                }
                Err(GitError::Command { stderr, .. }) if is_rejection(&stderr) => {
                    tracing::info!(
                        attempt,
                        repository = change.repository,
                        "push rejected by a concurrent change; retrying"
                    );
                    tokio::time::sleep(jitter(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(GitError::Contended(MAX_ATTEMPTS))
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
    async fn sync(&self, repository: &str, branch: &str) -> Result<PathBuf, GitError> {
        let name = hex(&Sha256::digest(repository.as_bytes()))[..16].to_owned();
        let clone = self.workdir.join(name);
        if !clone.join(".git").is_dir() {
            tokio::fs::create_dir_all(&self.workdir)
                .await
                .map_err(|e| GitError::Io {
                    path: self.workdir.display().to_string(),
                    reason: e.to_string(),
                })?;
            let target = clone.display().to_string();
            git(
                &self.workdir,
                &[
                    "clone",
                    "--quiet",
                    "--no-tags",
                    "--single-branch",
                    "--branch",
                    branch,
                    repository,
                    &target,
                ],
            )
            .await?;
            return Ok(clone);
        }
        git(
            &clone,
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
            &["reset", "--quiet", "--hard", &format!("origin/{branch}")],
        )
        .await?;
        Ok(clone)
    }
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

/// Runs git in `dir` without prompts; stdout on success, stderr in the error.
async fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| GitError::Command {
            command: args.join(" "),
            stderr: e.to_string(),
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(GitError::Command {
            command: args.first().copied().unwrap_or_default().to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}
