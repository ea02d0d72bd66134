//! Reading pull requests' branches from the bare repository: SHAs, commit count and diff size.

use std::path::Path;

use super::model::{BranchState, DiffStats};
use super::{Shared, now};
use crate::git;

/// Where `head` and `base` stand, or `None` if either branch does not exist.
pub(crate) fn branch_state(bare: &Path, head: &str, base: &str) -> Option<BranchState> {
    if !git::branch_exists(bare, head) || !git::branch_exists(bare, base) {
        return None;
    }
    let head_sha = git::rev_parse(bare, head)?;
    let base_sha = git::rev_parse(bare, base)?;
    Some(BranchState {
        stats: diff_stats(bare, &base_sha, &head_sha),
        head_sha,
        base_sha,
    })
}

/// What GitHub counts: commits on head not on base, and the diff from their merge base.
fn diff_stats(bare: &Path, base_sha: &str, head_sha: &str) -> DiffStats {
    let range = format!("{base_sha}..{head_sha}");
    let commits = git::run(bare, &["rev-list", "--count", &range])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let three_dot = format!("{base_sha}...{head_sha}");
    let numstat = git::run(bare, &["diff", "--numstat", &three_dot]).unwrap_or_default();
    let mut stats = DiffStats {
        commits,
        ..DiffStats::default()
    };
    for line in numstat.lines() {
        let mut parts = line.split('\t');
        // Binary files show "-" for both counts; they still count as changed.
        let added = parts
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let deleted = parts
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        stats.additions += added;
        stats.deletions += deleted;
        stats.changed_files += 1;
    }
    stats
}

/// Re-reads the open pull requests' branches from the bare repository, as GitHub follows pushes.
/// A pull request whose head branch was deleted is closed, as on GitHub. Returns false for an
/// unknown repository.
pub(crate) async fn refresh_open_pulls(shared: &Shared, owner: &str, repo: &str) -> bool {
    let (bare, open) = {
        let state = shared.lock();
        let Some(repo) = state.repo(owner, repo) else {
            return false;
        };
        let open: Vec<(u64, String, String)> = repo
            .pulls
            .values()
            .filter(|p| p.open)
            .map(|p| (p.number, p.head_ref.clone(), p.base_ref.clone()))
            .collect();
        (repo.bare.clone(), open)
    };
    if open.is_empty() {
        return true;
    }
    let observed = tokio::task::spawn_blocking(move || {
        open.into_iter()
            .map(|(number, head, base)| {
                let head_exists = git::branch_exists(&bare, &head);
                (number, head_exists, branch_state(&bare, &head, &base))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut state = shared.lock();
    let Some(repo) = state.repo_mut(owner, repo) else {
        return false;
    };
    for (number, head_exists, branches) in observed {
        let Some(pull) = repo.pulls.get_mut(&number).filter(|p| p.open) else {
            continue;
        };
        match branches {
            Some(branches) => {
                if branches.head_sha != pull.branches.head_sha {
                    pull.updated_at = now();
                }
                pull.branches = branches;
            }
            None if !head_exists => {
                let at = now();
                pull.open = false;
                pull.closed_at = Some(at.clone());
                pull.updated_at = at;
            }
            None => {}
        }
    }
    true
}
