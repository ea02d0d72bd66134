//! The human-change veto: a person who set the scale in Git by hand wins over the autoscaler for a
//! cooldown, counted from their commit.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::Written;
use crate::cluster::Policy;

/// A commit by a person that changed the scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HumanCommit {
    pub sha: String,
    pub author: String,
    pub at: DateTime<Utc>,
}

/// Why the autoscaler must wait, when `commit` (which set `value`) is newer than the autoscaler's own last
/// change and its cooldown has not run out.
pub(super) fn veto(
    policy: &Policy,
    commit: &HumanCommit,
    value: u64,
    last_written: Option<Written>,
    now: DateTime<Utc>,
) -> Option<String> {
    let cooldown_ends = commit.at + Duration::seconds(i64::from(policy.cooldown_seconds));
    let newer_than_ours = last_written.is_none_or(|w| commit.at > w.at);
    (newer_than_ours && now < cooldown_ends).then(|| {
        format!(
            "{} set the scale to {value} by hand in commit {} at {}; the autoscaler waits until {} (cooldown)",
            commit.author,
            commit.sha.get(..12).unwrap_or(&commit.sha),
            commit.at.to_rfc3339(),
            cooldown_ends.to_rfc3339()
        )
    })
}
