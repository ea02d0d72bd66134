//! Pruning by age: webhook deliveries, finished scaling tasks, and final decisions (kept longest: they
//! are the audit trail).

use chrono::{DateTime, Utc};

use super::{Storage, StorageError, tasks::scaling_queue_name};

/// What one pruning pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: u64,
    pub tasks: u64,
    pub decisions: u64,
}

/// Everything older than these goes.
#[derive(Debug, Clone, Copy)]
pub struct RetentionCutoffs {
    pub deliveries: DateTime<Utc>,
    pub tasks: DateTime<Utc>,
    pub decisions: DateTime<Utc>,
}

impl Storage {
    pub async fn prune_history(&self, cutoffs: &RetentionCutoffs) -> Result<Pruned, StorageError> {
        let deliveries = sqlx::query("delete from webhook_deliveries where received_at < $1")
            .bind(cutoffs.deliveries)
            .execute(self.pool())
            .await?
            .rows_affected();
        // Finished tasks only: done, or failed with no attempts left.
        let tasks = sqlx::query(
            "delete from apalis.jobs where job_type = $1 and done_at is not null and done_at < $2 \
             and (status in ('Done', 'Killed') or (status = 'Failed' and attempts >= max_attempts))",
        )
        .bind(scaling_queue_name())
        .bind(cutoffs.tasks)
        .execute(self.pool())
        .await?
        .rows_affected();
        // Final decisions only; one still open is never pruned, however old.
        let decisions = sqlx::query(
            "delete from decisions where finished_at is not null and finished_at < $1 \
             and status in ('vetoed', 'skipped', 'rejected', 'applied', 'failed', 'superseded', \
                             'recommended')",
        )
        .bind(cutoffs.decisions)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(Pruned {
            deliveries,
            tasks,
            decisions,
        })
    }
}
