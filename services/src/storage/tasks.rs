//! Scaling tasks in the job queue's table (`apalis.jobs`), written in the same transaction as the
//! decision they carry out: a decision that needs a worker and its task exist together or not at all.
//!
//! The row is the one apalis-postgres' own push writes (its `sink.sql`): the JSON of the task as bytes,
//! the queue named after the task's Rust type, `Pending`, due now. Its insert trigger wakes the workers.

use sqlx::PgConnection;

use super::{
    Storage, StorageError,
    decisions::{COLUMNS, DecisionRecord, NewDecision},
};
use crate::queue::ScalingTask;

/// apalis' default for a pushed task.
const MAX_ATTEMPTS: i32 = 25;

/// The queue apalis-postgres serves `ScalingTask`s from: `PostgresStorage::<ScalingTask>::new` names
/// it after the type.
pub fn scaling_queue_name() -> &'static str {
    std::any::type_name::<ScalingTask>()
}

pub(super) async fn insert_task(
    connection: &mut PgConnection,
    task: &ScalingTask,
) -> Result<(), StorageError> {
    let job = serde_json::to_vec(task).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    sqlx::query(
        "insert into apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at, priority) \
         values (apalis.generate_ulid(), $1, $2, 'Pending', 0, $3, now(), 0)",
    )
    .bind(scaling_queue_name())
    .bind(job)
    .bind(MAX_ATTEMPTS)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

impl Storage {
    /// Records a pending decision and its task in one transaction. `Conflict` (and nothing written) when
    /// the cluster already has a decision in flight.
    pub async fn insert_pending_decision_with_task(
        &self,
        new: &NewDecision,
    ) -> Result<DecisionRecord, StorageError> {
        let mut transaction = self.pool().begin().await?;
        let decision: DecisionRecord = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "insert into decisions (cluster_id, cluster_name, status, rule, inputs, from_scale, team, \
             prediction_due) \
             values ($1, $2, 'pending', $3, $4, $5, (select team from clusters where id = $1), $6) \
             returning {COLUMNS}"
        )))
        .bind(new.cluster_id)
        .bind(&new.cluster_name)
        .bind(&new.rule)
        .bind(sqlx::types::Json(&new.inputs))
        .bind(new.from_scale)
        .bind(new.inputs.prediction_due())
        .fetch_one(&mut *transaction)
        .await
        .map_err(super::conflict_on_unique)?;
        crate::fault::pause_at(crate::fault::MANAGER_RECORDED).await;
        insert_task(
            &mut transaction,
            &ScalingTask {
                decision_id: decision.id,
                cluster: decision.cluster_name.clone(),
            },
        )
        .await?;
        transaction.commit().await?;
        Ok(decision)
    }

    /// Pushes a task for a decision that already exists (a hint from a webhook, a re-drive).
    pub async fn push_task(&self, task: &ScalingTask) -> Result<(), StorageError> {
        let mut transaction = self.pool().begin().await?;
        insert_task(&mut transaction, task).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Tasks of the decision not yet finished by apalis (waiting, running, or failed with attempts
    /// left): what the reconciler looks at before it re-drives.
    pub async fn open_tasks(&self, decision_id: i64) -> Result<i64, StorageError> {
        let (open,): (i64,) = sqlx::query_as(
            "select count(*) from apalis.jobs where job_type = $1 \
             and convert_from(job, 'UTF8')::jsonb->>'decision_id' = $2::text \
             and (status in ('Pending', 'Queued', 'Running') \
                  or (status = 'Failed' and attempts < max_attempts))",
        )
        .bind(scaling_queue_name())
        .bind(decision_id)
        .fetch_one(self.pool())
        .await?;
        Ok(open)
    }
}
