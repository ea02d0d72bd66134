//! What the GitHub test server stores: repositories backed by bare Git repositories, their pull
//! requests and labels.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A repository served under `/repos/{owner}/{name}`.
#[derive(Debug)]
pub(crate) struct RepoRecord {
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) id: u64,
    pub(crate) bare: PathBuf,
    pub(crate) default_branch: String,
    pub(crate) created_at: String,
    pub(crate) pulls: BTreeMap<u64, PullRecord>,
    /// Repository labels by lower-cased name (GitHub matches label names case-insensitively).
    pub(crate) labels: BTreeMap<String, LabelRecord>,
    /// Issues and pull requests share one number sequence.
    pub(crate) next_number: u64,
    /// Issue comments (a pull request's conversation) by issue number, oldest first.
    pub(crate) comments: BTreeMap<u64, Vec<CommentRecord>>,
}

impl RepoRecord {
    pub(crate) fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The open pull request from `head_ref` into `base_ref`, if any: GitHub allows only one.
    pub(crate) fn open_pull_for(&self, head_ref: &str, base_ref: &str) -> Option<u64> {
        self.pulls
            .values()
            .find(|p| p.open && p.head_ref == head_ref && p.base_ref == base_ref)
            .map(|p| p.number)
    }
}

/// One issue comment.
#[derive(Debug, Clone)]
pub(crate) struct CommentRecord {
    pub(crate) id: u64,
    pub(crate) body: String,
    pub(crate) author: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

#[derive(Debug, Clone)]
pub(crate) struct LabelRecord {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) color: String,
}

/// Commit and diff counts between the base and the head branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DiffStats {
    pub(crate) commits: u64,
    pub(crate) additions: u64,
    pub(crate) deletions: u64,
    pub(crate) changed_files: u64,
}

/// Where a branch stands in the bare repository.
#[derive(Debug, Clone)]
pub(crate) struct BranchState {
    pub(crate) head_sha: String,
    pub(crate) base_sha: String,
    pub(crate) stats: DiffStats,
}

#[derive(Debug, Clone)]
pub(crate) struct PullRecord {
    pub(crate) number: u64,
    pub(crate) id: u64,
    pub(crate) title: String,
    pub(crate) body: Option<String>,
    pub(crate) head_ref: String,
    pub(crate) base_ref: String,
    /// The login that opened it: the token's for pull requests created through the API.
    pub(crate) author: String,
    /// Refreshed from the bare repository while the pull request is open, frozen once closed.
    pub(crate) branches: BranchState,
    pub(crate) open: bool,
    pub(crate) draft: bool,
    pub(crate) maintainer_can_modify: bool,
    /// Label names in the order they were added.
    pub(crate) labels: Vec<String>,
    pub(crate) merged: bool,
    pub(crate) merged_at: Option<String>,
    pub(crate) merge_commit_sha: Option<String>,
    pub(crate) closed_at: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// What opening a pull request decides; the rest of a new record is the same whoever opens it.
pub(crate) struct NewPull {
    pub(crate) number: u64,
    pub(crate) id: u64,
    pub(crate) title: String,
    pub(crate) body: Option<String>,
    pub(crate) head_ref: String,
    pub(crate) base_ref: String,
    pub(crate) author: String,
    pub(crate) branches: BranchState,
    pub(crate) draft: bool,
    pub(crate) maintainer_can_modify: bool,
}

impl PullRecord {
    /// A pull request opened just now: open, unlabelled, unmerged.
    pub(crate) fn opened(new: NewPull) -> Self {
        let at = super::now();
        Self {
            number: new.number,
            id: new.id,
            title: new.title,
            body: new.body,
            head_ref: new.head_ref,
            base_ref: new.base_ref,
            author: new.author,
            branches: new.branches,
            open: true,
            draft: new.draft,
            maintainer_can_modify: new.maintainer_can_modify,
            labels: Vec::new(),
            merged: false,
            merged_at: None,
            merge_commit_sha: None,
            closed_at: None,
            created_at: at.clone(),
            updated_at: at,
        }
    }
}
