//! The scaling task queue (apalis on Postgres): the manager and the webhooks push, workers take. Tasks
//! are written by our own storage, in the transaction of the decision they belong to where there is
//! one (`storage/tasks.rs`); workers take them with apalis.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::storage::Storage;

/// One scaling task: the decision it carries out. Everything else (rule, window, policy) is on the
/// decision row, so the task stays small and the audit trail is the single source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingTask {
    pub decision_id: i64,
    pub cluster: String,
}

#[derive(Debug, thiserror::Error)]
#[error("could not enqueue the scaling task: {0}")]
pub struct EnqueueError(#[source] crate::storage::StorageError);

#[derive(Clone)]
pub struct TaskQueue {
    storage: Storage,
}

impl TaskQueue {
    pub fn new(pool: &PgPool) -> Self {
        Self {
            storage: Storage::from_pool(pool.clone()),
        }
    }

    pub async fn push(&self, task: ScalingTask) -> Result<(), EnqueueError> {
        self.storage.push_task(&task).await.map_err(EnqueueError)
    }
}
