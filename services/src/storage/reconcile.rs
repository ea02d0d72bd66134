//! What the reconciler reads and writes: open decisions past their deadline, a re-drive (a step and a
//! new task in one transaction), and the leader's lock.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, types::Json};

use super::{Storage, StorageError};
use crate::{
    lifecycle::{Deadlines, DecisionStatus},
    queue::ScalingTask,
};

/// A decision that sat in an open status past that status' deadline.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StuckDecision {
    pub id: i64,
    pub cluster_name: String,
    pub status: DecisionStatus,
    /// When it last changed (its status or a step).
    pub since: DateTime<Utc>,
    /// Re-drives the reconciler already made.
    pub redrives: i64,
}

/// The reconciler's leadership: a session advisory lock held on a connection of its own, so it ends
/// when this process or its connection dies, and no transaction stays open.
pub struct Leadership {
    connection: PgConnection,
}

/// Namespaces the leader's advisory lock (the decisions' locks use 0x5ca1e).
const LEADER_NAMESPACE: i32 = 0x5ca1f;
const RECONCILER_KEY: i32 = 1;

impl Leadership {
    /// Whether the lock is still held: the connection still answers.
    pub async fn still_held(&mut self) -> bool {
        sqlx::query("select 1")
            .execute(&mut self.connection)
            .await
            .is_ok()
    }
}

impl Storage {
    /// Becomes the reconciler's leader, or `None` when another replica is.
    pub async fn try_lead(&self) -> Result<Option<Leadership>, StorageError> {
        let mut connection = self.pool().acquire().await?;
        let (locked,): (bool,) = sqlx::query_as("select pg_try_advisory_lock($1, $2)")
            .bind(LEADER_NAMESPACE)
            .bind(RECONCILER_KEY)
            .fetch_one(&mut *connection)
            .await?;
        if !locked {
            return Ok(None);
        }
        // Out of the pool for good: the lock lives exactly as long as this connection.
        Ok(Some(Leadership {
            connection: connection.detach(),
        }))
    }

    /// Open decisions that sat in their status longer than its deadline, longest first.
    pub async fn stuck_decisions(
        &self,
        deadlines: &Deadlines,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StuckDecision>, StorageError> {
        let (statuses, seconds): (Vec<&str>, Vec<f64>) = DecisionStatus::ALL
            .into_iter()
            .filter_map(|s| Some((s.as_str(), deadlines.of(s)?.as_secs_f64())))
            .unzip();
        Ok(sqlx::query_as(
            "select d.id, d.cluster_name, d.status, d.updated_at as since, \
                    (select count(*) from jsonb_array_elements(d.steps) s \
                     where s->>'step' = 'reconciler_redrive') as redrives \
             from decisions d \
             join unnest($1::text[], $2::float8[]) as deadline(status, seconds) \
               on deadline.status = d.status \
             where d.status in ('pending', 'running', 'committed', 'merged', 'syncing', 'synced') \
               and d.updated_at < $3 - make_interval(secs => deadline.seconds) \
             order by d.updated_at limit $4",
        )
        .bind(statuses)
        .bind(seconds)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?)
    }

    /// Records a re-drive on the decision and pushes its task again, together; `LostRace` (and nothing
    /// written) when the decision left `status` meanwhile.
    pub async fn redrive(
        &self,
        stuck: &StuckDecision,
        detail: &serde_json::Value,
    ) -> Result<(), StorageError> {
        let mut transaction = self.pool().begin().await?;
        let (found,): (Option<DecisionStatus>,) = sqlx::query_as(
            "with moved as ( \
                 update decisions set updated_at = now(), steps = steps || jsonb_build_array( \
                     jsonb_build_object('at', now(), 'step', 'reconciler_redrive', 'detail', $3::jsonb)) \
                 where id = $1 and status = $2 returning status) \
             select (select status from moved)",
        )
        .bind(stuck.id)
        .bind(stuck.status)
        .bind(Json(detail))
        .fetch_one(&mut *transaction)
        .await?;
        if found.is_none() {
            let now = self.get_decision(stuck.id).await?.status;
            return Err(StorageError::LostRace {
                id: stuck.id,
                expected: stuck.status,
                found: now,
            });
        }
        super::tasks::insert_task(
            &mut transaction,
            &ScalingTask {
                decision_id: stuck.id,
                cluster: stuck.cluster_name.clone(),
            },
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }
}
