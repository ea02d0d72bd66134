use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, types::Json};

use super::{Storage, StorageError, conflict_on_unique};
use crate::cluster::ClusterSpec;

/// A subscribed cluster as stored.
#[derive(Debug, Clone)]
pub struct ClusterRecord {
    pub id: i64,
    pub spec: ClusterSpec,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ClusterRow {
    id: i64,
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

const COLUMNS: &str = "id, spec, paused, created_at, updated_at";

fn spec_json(spec: &ClusterSpec) -> Result<Json<serde_json::Value>, StorageError> {
    serde_json::to_value(spec)
        .map(Json)
        .map_err(|e| StorageError::Corrupt(format!("spec does not serialize: {e}")))
}

impl Storage {
    pub async fn insert_cluster(&self, spec: &ClusterSpec) -> Result<ClusterRecord, StorageError> {
        let row: ClusterRow = sqlx::query_as(AssertSqlSafe(format!(
            "insert into clusters (name, kind, spec) values ($1, $2, $3) returning {COLUMNS}"
        )))
        .bind(&spec.name)
        .bind(spec.target.kind.as_str())
        .bind(spec_json(spec)?)
        .fetch_one(self.pool())
        .await
        .map_err(conflict_on_unique)?;
        row.try_into()
    }

    pub async fn get_cluster(&self, name: &str) -> Result<ClusterRecord, StorageError> {
        let row: Option<ClusterRow> = sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from clusters where name = $1"
        )))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.ok_or(StorageError::NotFound)?.try_into()
    }

    /// Clusters ordered by name, after the given name (keyset pagination).
    pub async fn list_clusters(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClusterRecord>, StorageError> {
        let rows: Vec<ClusterRow> = sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from clusters where $1::text is null or name > $1 order by name limit $2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Replaces the spec of an existing cluster; its name cannot change.
    pub async fn replace_cluster(&self, spec: &ClusterSpec) -> Result<ClusterRecord, StorageError> {
        let row: Option<ClusterRow> = sqlx::query_as(AssertSqlSafe(format!(
            "update clusters set kind = $2, spec = $3, updated_at = now() where name = $1 returning {COLUMNS}"
        )))
        .bind(&spec.name)
        .bind(spec.target.kind.as_str())
        .bind(spec_json(spec)?)
        .fetch_optional(self.pool())
        .await?;
        row.ok_or(StorageError::NotFound)?.try_into()
    }

    pub async fn set_cluster_paused(
        &self,
        name: &str,
        paused: bool,
    ) -> Result<ClusterRecord, StorageError> {
        let row: Option<ClusterRow> = sqlx::query_as(AssertSqlSafe(format!(
            "update clusters set paused = $2, updated_at = now() where name = $1 returning {COLUMNS}"
        )))
        .bind(name)
        .bind(paused)
        .fetch_optional(self.pool())
        .await?;
        row.ok_or(StorageError::NotFound)?.try_into()
    }

    /// Deletes the cluster and its samples; its decisions stay as the audit trail.
    pub async fn delete_cluster(&self, name: &str) -> Result<(), StorageError> {
        let result = sqlx::query("delete from clusters where name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        if result.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
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
