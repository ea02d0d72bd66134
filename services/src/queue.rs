//! The scaling task queue (apalis on Postgres): the manager pushes, workers take.

use apalis::prelude::TaskSink;
use apalis_postgres::PostgresStorage;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// One scaling task: the decision it carries out. Everything else (rule, window, policy) is on the
/// decision row, so the task stays small and the audit trail is the single source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingTask {
    pub decision_id: i64,
    pub cluster: String,
}

#[derive(Debug, thiserror::Error)]
#[error("could not enqueue the scaling task: {0}")]
pub struct EnqueueError(String);

#[derive(Clone)]
pub struct TaskQueue {
    storage: PostgresStorage<ScalingTask>,
}

impl TaskQueue {
    pub fn new(pool: &PgPool) -> Self {
        Self {
            storage: PostgresStorage::new(pool),
        }
    }

    pub async fn push(&self, task: ScalingTask) -> Result<(), EnqueueError> {
        let mut storage = self.storage.clone();
        storage
            .push(task)
            .await
            .map_err(|e| EnqueueError(e.to_string()))
    }
}
