use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, types::Json};

use super::{
    Storage, StorageError,
    audit::{self, Actor, AuditAction, Change},
    conflict_on_unique,
};
use crate::cluster::ClusterSpec;

/// A subscribed cluster as stored.
#[derive(Debug, Clone)]
pub struct ClusterRecord {
    pub id: i64,
    /// The team that subscribed it; only that team's tokens (and the default team's admins) see it.
    pub team: String,
    pub spec: ClusterSpec,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ClusterRow {
    id: i64,
    team: String,
    spec: Json<serde_json::Value>,
    paused: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ClusterRow> for ClusterRecord {
    type Error = StorageError;

    fn try_from(row: ClusterRow) -> Result<Self, StorageError> {
        let spec = serde_json::from_value(row.spec.0)
            .map_err(|e| StorageError::Corrupt(format!("cluster {}: spec: {e}", row.id)))?;
        Ok(Self {
            id: row.id,
            team: row.team,
            spec,
            paused: row.paused,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterStatusCounts {
    pub active: i64,
    pub paused: i64,
}

const COLUMNS: &str = "id, team, spec, paused, created_at, updated_at";

fn spec_json(spec: &ClusterSpec) -> Result<Json<serde_json::Value>, StorageError> {
    serde_json::to_value(spec)
        .map(Json)
        .map_err(|e| StorageError::Corrupt(format!("spec does not serialize: {e}")))
}

/// The spec as the audit log keeps it.
fn audited(record: &ClusterRecord) -> Option<serde_json::Value> {
    serde_json::to_value(&record.spec).ok()
}

impl Storage {
    /// Subscribes a cluster for the actor's team, with its audit entry.
    pub async fn insert_cluster(
        &self,
        spec: &ClusterSpec,
        actor: Actor<'_>,
    ) -> Result<ClusterRecord, StorageError> {
        let mut transaction = self.pool().begin().await?;
        let row: ClusterRow = sqlx::query_as(AssertSqlSafe(format!(
            "insert into clusters (name, kind, spec, team) values ($1, $2, $3, $4) returning {COLUMNS}"
        )))
        .bind(&spec.name)
        .bind(spec.target.kind.as_str())
        .bind(spec_json(spec)?)
        .bind(actor.team)
        .fetch_one(&mut *transaction)
        .await
        .map_err(conflict_on_unique)?;
        let record = ClusterRecord::try_from(row)?;
        let change = Change {
            actor,
            team: &record.team,
            action: AuditAction::Subscribe,
            cluster: &spec.name,
            before: None,
            after: audited(&record),
        };
        audit::record(&mut transaction, change).await?;
        transaction.commit().await?;
        Ok(record)
    }

    /// Any team's cluster: for the service's own loops, which act for every team.
    pub async fn get_cluster(&self, name: &str) -> Result<ClusterRecord, StorageError> {
        // Postgres cannot compare text with a NUL character; no stored name has one.
        if name.contains('\0') {
            return Err(StorageError::NotFound);
        }
        let row: Option<ClusterRow> = sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from clusters where name = $1"
        )))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.ok_or(StorageError::NotFound)?.try_into()
    }

    /// Clusters ordered by name, after the given name (keyset pagination); only `team`'s when given.
    pub async fn list_clusters(
        &self,
        team: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClusterRecord>, StorageError> {
        let rows: Vec<ClusterRow> = sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from clusters where ($1::text is null or name > $1) \
             and ($3::text is null or team = $3) order by name limit $2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .bind(team)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// The cluster as it is, locked until the transaction ends; `NotFound` outside the actor's scope.
    async fn lock_cluster(
        transaction: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        name: &str,
        actor: Actor<'_>,
    ) -> Result<ClusterRecord, StorageError> {
        let row: Option<ClusterRow> = sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from clusters where name = $1 and ($2::text is null or team = $2) \
             for update"
        )))
        .bind(name)
        .bind(actor.scope)
        .fetch_optional(&mut **transaction)
        .await?;
        row.ok_or(StorageError::NotFound)?.try_into()
    }

    /// Replaces the spec of an existing cluster in the actor's scope; its name and team cannot change.
    pub async fn replace_cluster(
        &self,
        spec: &ClusterSpec,
        actor: Actor<'_>,
    ) -> Result<ClusterRecord, StorageError> {
        let mut transaction = self.pool().begin().await?;
        let before = Self::lock_cluster(&mut transaction, &spec.name, actor).await?;
        let row: ClusterRow = sqlx::query_as(AssertSqlSafe(format!(
            "update clusters set kind = $2, spec = $3, updated_at = now() where id = $1 returning {COLUMNS}"
        )))
        .bind(before.id)
        .bind(spec.target.kind.as_str())
        .bind(spec_json(spec)?)
        .fetch_one(&mut *transaction)
        .await?;
        let after = ClusterRecord::try_from(row)?;
        let change = Change {
            actor,
            team: &before.team,
            action: AuditAction::Replace,
            cluster: &spec.name,
            before: audited(&before),
            after: audited(&after),
        };
        audit::record(&mut transaction, change).await?;
        transaction.commit().await?;
        Ok(after)
    }

    pub async fn set_cluster_paused(
        &self,
        name: &str,
        paused: bool,
        actor: Actor<'_>,
    ) -> Result<ClusterRecord, StorageError> {
        let mut transaction = self.pool().begin().await?;
        let before = Self::lock_cluster(&mut transaction, name, actor).await?;
        let row: ClusterRow = sqlx::query_as(AssertSqlSafe(format!(
            "update clusters set paused = $2, updated_at = now() where id = $1 returning {COLUMNS}"
        )))
        .bind(before.id)
        .bind(paused)
        .fetch_one(&mut *transaction)
        .await?;
        let after = ClusterRecord::try_from(row)?;
        let change = Change {
            actor,
            team: &before.team,
            action: if paused {
                AuditAction::Pause
            } else {
                AuditAction::Resume
            },
            cluster: name,
            before: None,
            after: None,
        };
        audit::record(&mut transaction, change).await?;
        transaction.commit().await?;
        Ok(after)
    }

    /// Deletes the cluster and its samples; its decisions stay as the audit trail.
    pub async fn delete_cluster(&self, name: &str, actor: Actor<'_>) -> Result<(), StorageError> {
        let mut transaction = self.pool().begin().await?;
        let before = Self::lock_cluster(&mut transaction, name, actor).await?;
        sqlx::query("delete from clusters where id = $1")
            .bind(before.id)
            .execute(&mut *transaction)
            .await?;
        let change = Change {
            actor,
            team: &before.team,
            action: AuditAction::Delete,
            cluster: name,
            before: audited(&before),
            after: None,
        };
        audit::record(&mut transaction, change).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn count_clusters(&self) -> Result<ClusterStatusCounts, StorageError> {
        let (active, paused): (i64, i64) = sqlx::query_as(
            "select count(*) filter (where not paused), count(*) filter (where paused) from clusters",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(ClusterStatusCounts { active, paused })
    }
}

/// What the safeguards need from the decision history, per cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecisionFacts {
    pub in_flight: bool,
    pub last_change_at: Option<DateTime<Utc>>,
}

impl Storage {
    /// Every subscribed cluster, for the manager's loops.
    pub async fn all_clusters(&self) -> Result<Vec<ClusterRecord>, StorageError> {
        let rows: Vec<ClusterRow> = sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from clusters order by id"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// For every cluster with decisions: whether one is in flight, and when a change last took effect.
    pub async fn decision_facts(
        &self,
    ) -> Result<std::collections::HashMap<i64, DecisionFacts>, StorageError> {
        let rows: Vec<(i64, bool, Option<DateTime<Utc>>)> = sqlx::query_as(
            // Per cluster, two index lookups (the one-in-flight and the last-change partial indexes),
            // so the read stays bounded however long the audit trail grows.
            "select c.id, \
                    exists (select 1 from decisions d where d.cluster_id = c.id \
                            and d.status in ('pending', 'running', 'committed', 'merged', 'syncing')), \
                    (select coalesce(d.finished_at, d.updated_at) from decisions d \
                     where d.cluster_id = c.id \
                       and d.status in ('synced', 'applied', 'pr_open', 'recommended') \
                     order by coalesce(d.finished_at, d.updated_at) desc limit 1) \
             from clusters c",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, in_flight, last_change_at)| {
                (
                    id,
                    DecisionFacts {
                        in_flight,
                        last_change_at,
                    },
                )
            })
            .collect())
    }
}
