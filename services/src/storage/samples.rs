use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Storage, StorageError};

pub use crate::decide::Sample;

impl Storage {
    /// Deletes samples taken before `cutoff`; returns how many.
    pub async fn prune_samples(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        let result = sqlx::query("delete from metric_samples where sampled_at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected())
    }

    /// Stores one scrape of many clusters in one statement; a repeated timestamp replaces the earlier row.
    pub async fn insert_samples(&self, batch: &[(i64, Sample)]) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let column =
            |f: fn(&Sample) -> Option<f64>| batch.iter().map(|(_, s)| f(s)).collect::<Vec<_>>();
        sqlx::query(
            "insert into metric_samples \
             (cluster_id, sampled_at, cpu_load, lag_records, lag_seconds, records_in, records_out, scale) \
             select * from unnest($1::bigint[], $2::timestamptz[], $3::float8[], $4::float8[], \
                                  $5::float8[], $6::float8[], $7::float8[], $8::float8[]) \
             on conflict (cluster_id, sampled_at) do update set \
             cpu_load = excluded.cpu_load, lag_records = excluded.lag_records, \
             lag_seconds = excluded.lag_seconds, records_in = excluded.records_in, \
             records_out = excluded.records_out, scale = excluded.scale",
        )
        .bind(batch.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(batch.iter().map(|(_, s)| s.sampled_at).collect::<Vec<_>>())
        .bind(column(|s| s.cpu_load))
        .bind(column(|s| s.lag_records))
        .bind(column(|s| s.lag_seconds))
        .bind(column(|s| s.records_in))
        .bind(column(|s| s.records_out))
        .bind(column(|s| s.scale))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every cluster's samples taken after `since`, in time order.
    pub async fn samples_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, Vec<Sample>>, StorageError> {
        let rows: Vec<ClusterSampleRow> = sqlx::query_as(
            "select cluster_id, sampled_at, cpu_load, lag_records, lag_seconds, records_in, \
             records_out, scale from metric_samples where sampled_at > $1 order by cluster_id, sampled_at",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        let mut by_cluster: HashMap<i64, Vec<Sample>> = HashMap::new();
        for row in rows {
            by_cluster
                .entry(row.cluster_id)
                .or_default()
                .push(row.sample.into());
        }
        Ok(by_cluster)
    }

    /// One cluster's samples taken after `since`, in time order, at most `limit` of them (the oldest).
    pub async fn cluster_samples_page(
        &self,
        cluster_id: i64,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Sample>, StorageError> {
        let rows: Vec<SampleRow> = sqlx::query_as(
            "select sampled_at, cpu_load, lag_records, lag_seconds, records_in, records_out, scale \
             from metric_samples where cluster_id = $1 and sampled_at > $2 order by sampled_at limit $3",
        )
        .bind(cluster_id)
        .bind(since)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Sample::from).collect())
    }

    /// One cluster's samples taken after `since`, in time order.
    pub async fn cluster_samples_since(
        &self,
        cluster_id: i64,
        since: DateTime<Utc>,
    ) -> Result<Vec<Sample>, StorageError> {
        let rows: Vec<SampleRow> = sqlx::query_as(
            "select sampled_at, cpu_load, lag_records, lag_seconds, records_in, records_out, scale \
             from metric_samples where cluster_id = $1 and sampled_at > $2 order by sampled_at",
        )
        .bind(cluster_id)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Sample::from).collect())
    }
}

/// A stored sample; the decision core's `Sample` knows nothing of rows.
#[derive(sqlx::FromRow)]
pub(super) struct SampleRow {
    sampled_at: DateTime<Utc>,
    cpu_load: Option<f64>,
    lag_records: Option<f64>,
    lag_seconds: Option<f64>,
    records_in: Option<f64>,
    records_out: Option<f64>,
    scale: Option<f64>,
}

impl From<SampleRow> for Sample {
    fn from(row: SampleRow) -> Self {
        Self {
            sampled_at: row.sampled_at,
            cpu_load: row.cpu_load,
            lag_records: row.lag_records,
            lag_seconds: row.lag_seconds,
            records_in: row.records_in,
            records_out: row.records_out,
            scale: row.scale,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ClusterSampleRow {
    cluster_id: i64,
    #[sqlx(flatten)]
    sample: SampleRow,
}
