use chrono::{DateTime, Utc};

use super::{Storage, StorageError};

/// One scrape of one cluster. `None` means the metric was missing or stale, never zero.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Sample {
    pub sampled_at: DateTime<Utc>,
    pub cpu_load: Option<f64>,
    pub lag_records: Option<f64>,
    pub lag_seconds: Option<f64>,
    pub records_in: Option<f64>,
    pub records_out: Option<f64>,
    pub scale: Option<f64>,
}

impl Storage {
    /// Deletes samples taken before `cutoff`; returns how many.
    pub async fn prune_samples(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        let result = sqlx::query("delete from metric_samples where sampled_at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected())
    }

    /// Stores one scrape of one cluster; a repeated timestamp replaces the earlier row.
    pub async fn insert_sample(
        &self,
        cluster_id: i64,
        sample: &Sample,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "insert into metric_samples \
             (cluster_id, sampled_at, cpu_load, lag_records, lag_seconds, records_in, records_out, scale) \
             values ($1, $2, $3, $4, $5, $6, $7, $8) \
             on conflict (cluster_id, sampled_at) do update set \
             cpu_load = excluded.cpu_load, lag_records = excluded.lag_records, \
             lag_seconds = excluded.lag_seconds, records_in = excluded.records_in, \
             records_out = excluded.records_out, scale = excluded.scale",
        )
        .bind(cluster_id)
        .bind(sample.sampled_at)
        .bind(sample.cpu_load)
        .bind(sample.lag_records)
        .bind(sample.lag_seconds)
        .bind(sample.records_in)
        .bind(sample.records_out)
        .bind(sample.scale)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
