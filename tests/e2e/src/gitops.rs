//! The GitOps repository: a bare repository on disk holding a scale file, laid out the way the
//! autoscaler writes it: the engine's Deployment patch (`spec.replicas`), or a FlinkDeployment patch
//! (`spec.job.parallelism`, or `spec.taskManager.replicas`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use test_support::git;

pub const BRANCH: &str = "main";
pub const SCALE_PATH: &str = "pipelines/logs/scale.yaml";
pub const SCALE_KEY: &str = "spec.replicas";
/// The trailer on every commit the autoscaler makes.
const DECISION_TRAILER: &str = "Autoscaler-Decision:";

/// The scale file as a person first commits it; only the number changes afterwards.
fn scale_file(replicas: u32) -> String {
    format!(
        "# The engine's replica count. The autoscaler commits changes to `spec.replicas`; a change by hand\n\
         # pauses it for the cooldown.\n\
         apiVersion: apps/v1\n\
         kind: Deployment\n\
         metadata:\n  name: logs-engine  # the Deployment this patch scales\n\
         spec:\n  replicas: {replicas}\n"
    )
}

/// Where a pipeline's scale lives in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleFile {
    pub path: &'static str,
    /// Dot-separated, as the subscription's `git.key`.
    pub key: &'static str,
}

/// The engine's: [`SCALE_PATH`], [`SCALE_KEY`].
pub const ENGINE_SCALE: ScaleFile = ScaleFile {
    path: SCALE_PATH,
    key: SCALE_KEY,
};

/// One commit on the branch, newest first in [`Repository::history`].
#[derive(Debug, Clone)]
pub struct Commit {
    pub sha: String,
    pub subject: String,
    /// The `Autoscaler-Decision` trailer, for commits the autoscaler made.
    pub decision: Option<i64>,
    /// The scale file's number at this commit.
    pub scale: u32,
}

#[derive(Debug, Clone)]
pub struct Repository {
    pub bare: PathBuf,
    pub scale: ScaleFile,
}

impl Repository {
    /// The engine's repository, at `replicas`.
    pub fn create(bare: &Path, replicas: u32) -> anyhow::Result<Self> {
        Self::create_with(bare, ENGINE_SCALE, &scale_file(replicas))
    }

    /// A repository whose first commit holds `content` at `scale.path`.
    pub fn create_with(bare: &Path, scale: ScaleFile, content: &str) -> anyhow::Result<Self> {
        git::init_bare_repo(bare, BRANCH, &[(scale.path, content)])?;
        let repo = Self {
            bare: bare.to_path_buf(),
            scale,
        };
        repo.scale_at(BRANCH)
            .context("the first commit must hold a number at the scale key")?;
        Ok(repo)
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// The scale the file holds at `revision`.
    pub fn scale_at(&self, revision: &str) -> anyhow::Result<u32> {
        let ScaleFile { path, key } = self.scale;
        let text = git::run(&self.bare, &["show", &format!("{revision}:{path}")])?;
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).with_context(|| format!("{path} at {revision}"))?;
        let number = key
            .split('.')
            .try_fold(&doc, |node, step| node.get(step))
            .and_then(serde_yaml::Value::as_u64)
            .with_context(|| format!("{path} at {revision} has no number at {key}"))?;
        u32::try_from(number).context("the scale is out of range")
    }

    /// The branch's commits, newest first.
    pub fn history(&self) -> anyhow::Result<Vec<Commit>> {
        let log = git::run(
            &self.bare,
            &[
                "log",
                "--format=%H%x1f%s%x1f%(trailers:key=Autoscaler-Decision,valueonly)%x1e",
                BRANCH,
            ],
        )?;
        log.split('\x1e')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let mut fields = entry.split('\x1f');
                let sha = fields.next().unwrap_or_default().to_owned();
                let subject = fields.next().unwrap_or_default().to_owned();
                let decision = fields
                    .next()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        v.parse::<i64>()
                            .with_context(|| format!("{DECISION_TRAILER} {v}"))
                    })
                    .transpose()?;
                let scale = self.scale_at(&sha)?;
                Ok(Commit {
                    sha,
                    subject,
                    decision,
                    scale,
                })
            })
            .collect()
    }
}

/// The one commit in `history` that carries `decision`'s trailer; an error when none or several do.
pub fn commit_of(history: &[Commit], decision: i64) -> anyhow::Result<Commit> {
    let commits: Vec<&Commit> = history
        .iter()
        .filter(|c| c.decision == Some(decision))
        .collect();
    anyhow::ensure!(
        commits.len() == 1,
        "exactly one commit carries decision {decision}: {history:#?}"
    );
    Ok(commits[0].clone())
}
