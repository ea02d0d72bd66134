//! Reading a pull request's branches from the bare repository: SHAs, commit count and diff size.

use std::path::Path;

use super::model::{BranchState, DiffStats};
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
