use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Storage, StorageError};

/// One scrape of one cluster. `None` means the metric was missing or stale, never zero.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
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
        let rows: Vec<SampleRow> = sqlx::query_as(
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
                .push(row.sample);
        }
        Ok(by_cluster)
    }

    /// One cluster's samples taken after `since`, in time order.
    pub async fn cluster_samples_since(
        &self,
        cluster_id: i64,
        since: DateTime<Utc>,
    ) -> Result<Vec<Sample>, StorageError> {
        let rows = sqlx::query_as(
            "select sampled_at, cpu_load, lag_records, lag_seconds, records_in, records_out, scale \
             from metric_samples where cluster_id = $1 and sampled_at > $2 order by sampled_at",
        )
        .bind(cluster_id)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }
}

#[derive(sqlx::FromRow)]
struct SampleRow {
    cluster_id: i64,
    #[sqlx(flatten)]
    sample: Sample,
}

impl Sample {
    /// A sample with every metric missing, to be filled by a scrape.
    pub fn empty(sampled_at: DateTime<Utc>) -> Self {
        Self {
            sampled_at,
            cpu_load: None,
            lag_records: None,
            lag_seconds: None,
            records_in: None,
            records_out: None,
            scale: None,
        }
    }
}
