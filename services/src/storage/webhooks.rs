//! What the webhook receivers read and write: deliveries already seen, the decisions that notifications
//! and pull request events belong to, and the engine instances that announced themselves.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgConnection, types::Json};

use super::{
    Storage, StorageError,
    decisions::{COLUMNS, DecisionRecord, DecisionStatus},
    progress::{Transition, add_step_in, transition_in},
    tasks::insert_task,
};
use crate::queue::ScalingTask;

/// Where a delivery came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverySource {
    GitHub,
    ArgoCd,
    Engine,
}

impl DeliverySource {
    fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::ArgoCd => "argocd",
            Self::Engine => "engine",
        }
    }
}

/// A merged pull request, as GitHub reported it.
#[derive(Debug, Clone)]
pub struct Merge<'a> {
    pub decision_id: i64,
    pub cluster_id: i64,
    pub cluster_name: &'a str,
    pub merge_commit: &'a str,
    pub merged_by: &'a str,
}

/// A delivery as its receiver authenticated it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub source: DeliverySource,
    /// The sender's delivery id, or a key derived from the content where it has none.
    pub id: &'a str,
    pub event: &'a str,
    pub decision_id: Option<i64>,
    /// SHA-256 of a signed body: the same body under another delivery id is a replay.
    pub body_sha256: Option<[u8; 32]>,
}

/// What a delivery changes, written in the same transaction as the record of the delivery.
#[derive(Debug)]
pub enum DeliveryEffect<'a> {
    /// Nothing: the delivery is only remembered.
    Nothing,
    Merge(Merge<'a>),
    Transition {
        decision_id: i64,
        change: Transition<'a>,
    },
    /// A step on the decision, then possibly more.
    Step {
        decision_id: i64,
        name: &'a str,
        detail: &'a serde_json::Value,
        then: Option<AfterStep<'a>>,
    },
}

#[derive(Debug)]
pub enum AfterStep<'a> {
    Transition(Transition<'a>),
    Task(ScalingTask),
}

/// How a delivery was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Recorded, and its effect written.
    Applied,
    /// Recorded; the effect's compare-and-set found the decision elsewhere and wrote nothing.
    LostRace { found: DecisionStatus },
    /// This delivery id was handled before: nothing written.
    Duplicate,
    /// The same signed body came before under delivery `of`: nothing written.
    Replay { of: String },
}

impl Storage {
    /// Records a delivery and writes its effect in one transaction: either both are there or neither,
    /// and a delivery (or a replay of its body) is acted on at most once, even when two arrive at once
    /// (the second waits on the first's row and then finds it).
    pub async fn take_delivery(
        &self,
        delivery: &Delivery<'_>,
        effect: &DeliveryEffect<'_>,
    ) -> Result<DeliveryOutcome, StorageError> {
        let mut transaction = self.pool().begin().await?;
        let inserted = sqlx::query(
            "insert into webhook_deliveries (source, delivery_id, event, decision_id, body_sha256) \
             values ($1, $2, $3, $4, $5) on conflict do nothing",
        )
        .bind(delivery.source.as_str())
        .bind(delivery.id)
        .bind(delivery.event)
        .bind(delivery.decision_id)
        .bind(delivery.body_sha256.map(|d| d.to_vec()))
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if inserted == 0 {
            let earlier: Option<(String,)> = sqlx::query_as(
                "select delivery_id from webhook_deliveries where source = $1 \
                 and (delivery_id = $2 or body_sha256 = $3) order by delivery_id = $2 desc limit 1",
            )
            .bind(delivery.source.as_str())
            .bind(delivery.id)
            .bind(delivery.body_sha256.map(|d| d.to_vec()))
            .fetch_optional(&mut *transaction)
            .await?;
            return Ok(match earlier {
                Some((of,)) if of != delivery.id => DeliveryOutcome::Replay { of },
                _ => DeliveryOutcome::Duplicate,
            });
        }
        // The effect runs under a savepoint: a lost race undoes only the effect, and the delivery stays
        // recorded as handled.
        let mut effect_savepoint = sqlx::Connection::begin(&mut *transaction).await?;
        match apply_effect(&mut effect_savepoint, effect).await {
            Ok(()) => effect_savepoint.commit().await?,
            Err(StorageError::LostRace { found, .. }) => {
                effect_savepoint.rollback().await?;
                transaction.commit().await?;
                return Ok(DeliveryOutcome::LostRace { found });
            }
            Err(e) => return Err(e),
        }
        transaction.commit().await?;
        Ok(DeliveryOutcome::Applied)
    }

    /// The decision waiting in the pull request from `branch` with this number.
    pub async fn pull_request_decision(
        &self,
        branch: &str,
        number: u64,
    ) -> Result<Option<DecisionRecord>, StorageError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from decisions where status = 'pr_open' \
             and write_back->>'branch' = $1 and write_back->>'pull_request' = $2 \
             order by id desc limit 1"
        )))
        .bind(branch)
        .bind(number.to_string())
        .fetch_optional(self.pool())
        .await?)
    }

    /// The decision an Argo CD notification is about: named by the sync's `infos`, or else the one whose
    /// commit Argo CD applied, among decisions of clusters deployed by `application`.
    pub async fn notified_decision(
        &self,
        application: &str,
        revision: Option<&str>,
        decision_id: Option<i64>,
    ) -> Result<Option<DecisionRecord>, StorageError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "select {} from decisions d join clusters c on c.id = d.cluster_id \
             where c.spec->'argocd'->>'application' = $1 \
               and d.status in ('committed', 'merged', 'syncing', 'synced', 'applied', 'failed') \
               and (($3::bigint is not null and d.id = $3) \
                    or ($3::bigint is null and $2::text is not null \
                        and (d.write_back->>'commit' = $2 or d.write_back->>'merge_commit' = $2))) \
             order by d.id desc limit 1",
            COLUMNS
                .split(", ")
                .map(|c| format!("d.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(application)
        .bind(revision)
        .bind(decision_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Whether any subscribed cluster is deployed by this Argo CD application.
    pub async fn application_known(&self, application: &str) -> Result<bool, StorageError> {
        let (known,): (bool,) = sqlx::query_as(
            "select exists (select 1 from clusters where spec->'argocd'->>'application' = $1)",
        )
        .bind(application)
        .fetch_one(self.pool())
        .await?;
        Ok(known)
    }

    /// Registers an engine instance or refreshes its heartbeat, with the control URL it announced
    /// (the latest announcement wins); `NotFound` for an unknown cluster.
    pub async fn engine_heartbeat(
        &self,
        cluster: &str,
        instance: &str,
        control_url: Option<&str>,
    ) -> Result<(), StorageError> {
        let result = sqlx::query(
            "insert into engine_workers (cluster_id, instance_id, control_url) \
             select id, $2, $3 from clusters where name = $1 \
             on conflict (cluster_id, instance_id) \
             do update set last_heartbeat_at = now(), control_url = excluded.control_url",
        )
        .bind(cluster)
        .bind(instance)
        .bind(control_url)
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    pub async fn engine_unregister(
        &self,
        cluster: &str,
        instance: &str,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "delete from engine_workers w using clusters c \
             where c.id = w.cluster_id and c.name = $1 and w.instance_id = $2",
        )
        .bind(cluster)
        .bind(instance)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether the cluster's instances announce themselves at all (any registration is kept until
    /// unregistered).
    pub async fn engines_ever_registered(&self, cluster_id: i64) -> Result<bool, StorageError> {
        let (any,): (bool,) =
            sqlx::query_as("select exists (select 1 from engine_workers where cluster_id = $1)")
                .bind(cluster_id)
                .fetch_one(self.pool())
                .await?;
        Ok(any)
    }

    /// Instances of the cluster that announced themselves since `alive_since`, by name.
    pub async fn live_engines(
        &self,
        cluster_id: i64,
        alive_since: DateTime<Utc>,
    ) -> Result<Vec<EngineInstance>, StorageError> {
        Ok(sqlx::query_as(
            "select instance_id, control_url, last_heartbeat_at from engine_workers \
             where cluster_id = $1 and last_heartbeat_at >= $2 order by instance_id",
        )
        .bind(cluster_id)
        .bind(alive_since)
        .fetch_all(self.pool())
        .await?)
    }
}

async fn apply_effect(
    connection: &mut PgConnection,
    effect: &DeliveryEffect<'_>,
) -> Result<(), StorageError> {
    match effect {
        DeliveryEffect::Nothing => Ok(()),
        DeliveryEffect::Merge(merge) => merge_in(connection, merge).await,
        DeliveryEffect::Transition {
            decision_id,
            change,
        } => transition_in(connection, *decision_id, change).await,
        DeliveryEffect::Step {
            decision_id,
            name,
            detail,
            then,
        } => {
            add_step_in(connection, *decision_id, name, detail).await?;
            match then {
                None => Ok(()),
                Some(AfterStep::Transition(change)) => {
                    transition_in(connection, *decision_id, change).await
                }
                Some(AfterStep::Task(task)) => insert_task(connection, task).await,
            }
        }
    }
}

/// Marks the decision merged and pushes the task that syncs it, in the caller's transaction. A decision the manager enqueued for the
/// cluster meanwhile steps aside: the reviewed change goes first. `LostRace` (and nothing written)
/// when the decision is no longer waiting in its pull request.
async fn merge_in(connection: &mut PgConnection, merge: &Merge<'_>) -> Result<(), StorageError> {
    use crate::lifecycle::{DecisionStatus, check};
    check(DecisionStatus::PrOpen, DecisionStatus::Merged)?;
    check(DecisionStatus::Pending, DecisionStatus::Skipped)?;
    sqlx::query(
        "update decisions set status = 'skipped', \
         reason = 'a merged pull request (decision ' || $2 || ') goes first', \
         updated_at = now(), finished_at = now() \
         where cluster_id = $1 and status = 'pending'",
    )
    .bind(merge.cluster_id)
    .bind(merge.decision_id)
    .execute(&mut *connection)
    .await?;
    let (merged, found): (Option<DecisionStatus>, Option<DecisionStatus>) = sqlx::query_as(
        "with moved as ( \
             update decisions set status = 'merged', \
             write_back = write_back || $2, updated_at = now(), \
             steps = steps || jsonb_build_array(jsonb_build_object('at', now(), 'step', 'merged', 'detail', $2)) \
             where id = $1 and status = 'pr_open' returning status) \
         select (select status from moved), (select status from decisions where id = $1)",
    )
    .bind(merge.decision_id)
    .bind(Json(serde_json::json!({
        "merge_commit": merge.merge_commit,
        "merged_by": merge.merged_by,
    })))
    .fetch_one(&mut *connection)
    .await?;
    match (merged, found) {
        (Some(_), _) => {}
        (None, Some(found)) => {
            return Err(StorageError::LostRace {
                id: merge.decision_id,
                expected: DecisionStatus::PrOpen,
                found,
            });
        }
        (None, None) => return Err(StorageError::NotFound),
    }
    crate::fault::pause_at(crate::fault::WEBHOOK_MERGE).await;
    // The sync task in the same transaction: a merge is never recorded without a worker to sync it.
    super::tasks::insert_task(
        &mut *connection,
        &crate::queue::ScalingTask {
            decision_id: merge.decision_id,
            cluster: merge.cluster_name.to_owned(),
        },
    )
    .await?;
    Ok(())
}

/// An engine instance as it last announced itself.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EngineInstance {
    pub instance_id: String,
    /// As announced, checked for shape at the webhook; checked against the outbound policy again
    /// before every use.
    pub control_url: Option<String>,
    pub last_heartbeat_at: DateTime<Utc>,
}
