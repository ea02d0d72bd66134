//! A decision's lifecycle: its statuses and the moves between them, in one pure place.
//!
//! Storage writes a status only as a compare-and-set from the status the writer expects
//! (`Storage::transition`), and only along an edge this module allows. Two actors that race for one
//! decision (a worker and a webhook, two workers, the reconciler) cannot overwrite each other: the
//! loser learns the status it found instead.
//!
//! ```text
//! pending ─▶ running ─▶ committed ─▶ syncing ─▶ synced ─▶ applied
//!    │          │                       ▲
//!    │          ├─▶ pr_open ─▶ merged ──┘
//!    │          │      ├─▶ rejected
//!    │          │      └─▶ superseded
//!    │          └─▶ vetoed | skipped | recommended (write_back.mode: recommend)
//!    └─▶ skipped (a merged pull request goes first)
//! every non-final status ─▶ failed
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a decision stands. The in-flight ones (pending to syncing, not `pr_open`) are at most one per
/// cluster: a unique index in the schema guarantees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum DecisionStatus {
    Pending,
    Running,
    Vetoed,
    Skipped,
    Committed,
    PrOpen,
    Merged,
    Rejected,
    Syncing,
    Synced,
    Applied,
    Failed,
    /// A newer decision replaced it in the same pull request.
    Superseded,
    /// Recommend-only mode: the change was decided and recorded, and nothing was written.
    Recommended,
}

impl DecisionStatus {
    pub const ALL: [Self; 14] = [
        Self::Pending,
        Self::Running,
        Self::Vetoed,
        Self::Skipped,
        Self::Committed,
        Self::PrOpen,
        Self::Merged,
        Self::Rejected,
        Self::Syncing,
        Self::Synced,
        Self::Applied,
        Self::Failed,
        Self::Superseded,
        Self::Recommended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Vetoed => "vetoed",
            Self::Skipped => "skipped",
            Self::Committed => "committed",
            Self::PrOpen => "pr_open",
            Self::Merged => "merged",
            Self::Rejected => "rejected",
            Self::Syncing => "syncing",
            Self::Synced => "synced",
            Self::Applied => "applied",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
            Self::Recommended => "recommended",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Vetoed
                | Self::Skipped
                | Self::Rejected
                | Self::Applied
                | Self::Failed
                | Self::Superseded
                | Self::Recommended
        )
    }

    /// Whether a worker has something to do in this status (everything not final, except waiting for a
    /// review).
    pub fn needs_worker(self) -> bool {
        !self.is_final() && self != Self::PrOpen
    }
}

impl std::fmt::Display for DecisionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A move the lifecycle does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a decision cannot move from {from} to {to}")]
pub struct IllegalTransition {
    pub from: DecisionStatus,
    pub to: DecisionStatus,
}

/// Whether a decision may move from `from` to `to`.
pub fn allowed(from: DecisionStatus, to: DecisionStatus) -> bool {
    use DecisionStatus::*;
    if from.is_final() {
        return false;
    }
    // Anything still open can end as failed, with the reason (worker, webhook or reconciler).
    if to == Failed {
        return true;
    }
    matches!(
        (from, to),
        (Pending, Running)
            | (Pending, Skipped)
            | (Running, Vetoed | Skipped | Recommended | Committed | PrOpen)
            | (PrOpen, Merged | Rejected | Superseded)
            | (Committed | Merged, Syncing)
            | (Syncing, Synced)
            | (Synced, Applied)
    )
}

pub fn check(from: DecisionStatus, to: DecisionStatus) -> Result<(), IllegalTransition> {
    if allowed(from, to) {
        Ok(())
    } else {
        Err(IllegalTransition { from, to })
    }
}

/// How long a decision may sit in each open status before the reconciler looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Waiting for a worker to take the task.
    pub pending: Duration,
    /// Planning and writing: a clone, an estimate, a push, maybe a pull request.
    pub running: Duration,
    /// Written to Git, or merged, with the sync not yet started.
    pub committed: Duration,
    /// Following Argo CD: longer than the worker's own sync timeout.
    pub syncing: Duration,
    /// Argo CD applied it; the new capacity comes up or the job restarts.
    pub synced: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            pending: Duration::from_secs(5 * 60),
            running: Duration::from_secs(10 * 60),
            committed: Duration::from_secs(5 * 60),
            syncing: Duration::from_secs(20 * 60),
            synced: Duration::from_secs(20 * 60),
        }
    }
}

impl Deadlines {
    /// The deadline of an open status; `None` for final statuses and for `pr_open`, which waits for a
    /// person as long as it takes.
    pub fn of(&self, status: DecisionStatus) -> Option<Duration> {
        use DecisionStatus::*;
        match status {
            Pending => Some(self.pending),
            Running => Some(self.running),
            Committed | Merged => Some(self.committed),
            Syncing => Some(self.syncing),
            Synced => Some(self.synced),
            PrOpen => None,
            _ => None,
        }
    }
}

/// What the reconciler does with a decision past its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    /// Push its task again: the worker resumes from the status (a commit is found again by its
    /// trailer, a pull request by its branch), so this never writes a second change.
    Redrive,
    /// End it as failed, with this reason.
    Fail(String),
}

/// The reconciler's choice for a decision stuck in `status` after `redrives` earlier re-drives.
pub fn remedy(status: DecisionStatus, redrives: u32, max_redrives: u32) -> Option<Remedy> {
    if !status.needs_worker() {
        return None;
    }
    if redrives < max_redrives {
        Some(Remedy::Redrive)
    } else {
        Some(Remedy::Fail(format!(
            "stuck in {status} past its deadline after {redrives} re-drives by the reconciler"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DecisionStatus::*;

    #[test]
    fn final_statuses_never_move() {
        for from in DecisionStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in DecisionStatus::ALL {
                assert!(!allowed(from, to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn every_open_status_can_fail_and_reaches_a_final_status() {
        for from in DecisionStatus::ALL.into_iter().filter(|s| !s.is_final()) {
            assert!(allowed(from, Failed), "{from}");
        }
    }

    #[test]
    fn the_happy_paths_are_allowed_and_skipping_ahead_is_not() {
        for path in [
            &[Pending, Running, Committed, Syncing, Synced, Applied][..],
            &[Pending, Running, PrOpen, Merged, Syncing, Synced, Applied][..],
            &[Pending, Running, Recommended][..],
        ] {
            for pair in path.windows(2) {
                assert!(allowed(pair[0], pair[1]), "{pair:?}");
            }
        }
        for (from, to) in [
            (Pending, Committed),
            (Running, Applied),
            (Syncing, Applied),
            (Synced, Syncing),
            (Committed, Running),
            (PrOpen, Syncing),
            (Pending, Recommended),
            (Recommended, Committed),
        ] {
            assert_eq!(check(from, to), Err(IllegalTransition { from, to }));
        }
    }

    #[test]
    fn open_pull_requests_have_no_deadline_and_are_never_redriven() {
        let deadlines = Deadlines::default();
        assert_eq!(deadlines.of(PrOpen), None);
        assert_eq!(remedy(PrOpen, 0, 3), None);
        for status in DecisionStatus::ALL.into_iter().filter(|s| s.needs_worker()) {
            assert!(deadlines.of(status).is_some(), "{status}");
        }
    }

    #[test]
    fn a_stuck_decision_is_redriven_then_failed() {
        assert_eq!(remedy(Running, 0, 2), Some(Remedy::Redrive));
        assert_eq!(remedy(Running, 1, 2), Some(Remedy::Redrive));
        let Some(Remedy::Fail(reason)) = remedy(Syncing, 2, 2) else {
            panic!("fails after the re-drives");
        };
        assert!(reason.contains("stuck in syncing"), "{reason}");
    }
}
