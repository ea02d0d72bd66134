//! Each cluster's capacity memory: the points the estimator learned across decisions
//! (`estimate::CapacityMemory`), read before a decision and replaced after one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Storage, StorageError};
use crate::estimate::{CapacityMemory, CapacityPoint};

impl Storage {
    /// One cluster's memory; empty when it has learned nothing yet.
    pub async fn capacity_memory(&self, cluster_id: i64) -> Result<CapacityMemory, StorageError> {
        Ok(self
            .capacity_memories(&[cluster_id])
            .await?
            .remove(&cluster_id)
            .unwrap_or_default())
    }

    /// Many clusters' memories in one query; a cluster that learned nothing is absent.
    pub async fn capacity_memories(
        &self,
        cluster_ids: &[i64],
    ) -> Result<HashMap<i64, CapacityMemory>, StorageError> {
        let rows: Vec<PointRow> = sqlx::query_as(
            "select cluster_id, scale, capacity, spread, samples, observed_at from capacity_memory \
             where cluster_id = any($1) order by cluster_id, scale",
        )
        .bind(cluster_ids)
        .fetch_all(self.pool())
        .await?;
        let mut memories: HashMap<i64, CapacityMemory> = HashMap::new();
        for row in rows {
            let point = CapacityPoint {
                scale: u32::try_from(row.scale).map_err(|_| {
                    StorageError::Corrupt(format!("capacity at scale {}", row.scale))
                })?,
                capacity: row.capacity,
                spread: row.spread,
                samples: u32::try_from(row.samples).unwrap_or(0),
                observed_at: row.observed_at,
            };
            memories
                .entry(row.cluster_id)
                .or_default()
                .points
                .push(point);
        }
        Ok(memories)
    }

    /// Replaces a cluster's memory with `memory`, in one transaction: a reader sees the old points or the
    /// new ones, never a mix.
    pub async fn save_capacity_memory(
        &self,
        cluster_id: i64,
        memory: &CapacityMemory,
    ) -> Result<(), StorageError> {
        let points = &memory.points;
        let mut tx = self.pool().begin().await?;
        sqlx::query("delete from capacity_memory where cluster_id = $1")
            .bind(cluster_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "insert into capacity_memory (cluster_id, scale, capacity, spread, samples, observed_at) \
             select $1, * from unnest($2::integer[], $3::float8[], $4::float8[], $5::integer[], \
                                      $6::timestamptz[])",
        )
        .bind(cluster_id)
        .bind(points.iter().map(|p| i32::try_from(p.scale).unwrap_or(i32::MAX)).collect::<Vec<_>>())
        .bind(points.iter().map(|p| p.capacity).collect::<Vec<_>>())
        .bind(points.iter().map(|p| p.spread).collect::<Vec<_>>())
        .bind(points.iter().map(|p| i32::try_from(p.samples).unwrap_or(i32::MAX)).collect::<Vec<_>>())
        .bind(points.iter().map(|p| p.observed_at).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct PointRow {
    cluster_id: i64,
    scale: i32,
    capacity: f64,
    spread: f64,
    samples: i32,
    observed_at: DateTime<Utc>,
}
