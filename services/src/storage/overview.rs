//! Read-only queries for what operators watch: the status page's cluster list, charts and decision
//! marks, and the decision gauges of `/metrics`. Each answers from an index, so a list of thousands of
//! clusters is read a page at a time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, types::Json};

use super::{
    Storage, StorageError,
    decisions::{COLUMNS, DecisionRecord, DecisionStatus},
    samples::Sample,
};
use crate::cluster::ClusterSpec;

/// A cluster as the status page lists it: its spec, its newest sample and its newest decision.
#[derive(Debug, Clone)]
pub struct ClusterOverview {
    pub id: i64,
    pub spec: ClusterSpec,
    pub paused: bool,
    pub latest: Option<Sample>,
    pub last_decision: Option<DecisionSummary>,
}

/// The few facts of a decision a list shows.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DecisionSummary {
    pub id: i64,
    pub status: DecisionStatus,
    pub rule: String,
    pub from_scale: Option<i32>,
    pub to_scale: Option<i32>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct OverviewRow {
    id: i64,
    spec: Json<serde_json::Value>,
    paused: bool,
    sampled_at: Option<DateTime<Utc>>,
    cpu_load: Option<f64>,
    lag_records: Option<f64>,
    lag_seconds: Option<f64>,
    records_in: Option<f64>,
    records_out: Option<f64>,
    scale: Option<f64>,
    decision_id: Option<i64>,
    decision_status: Option<DecisionStatus>,
    decision_rule: Option<String>,
    decision_from: Option<i32>,
    decision_to: Option<i32>,
    decision_at: Option<DateTime<Utc>>,
}

impl TryFrom<OverviewRow> for ClusterOverview {
    type Error = StorageError;

    fn try_from(row: OverviewRow) -> Result<Self, StorageError> {
        let spec = serde_json::from_value(row.spec.0)
            .map_err(|e| StorageError::Corrupt(format!("cluster {}: spec: {e}", row.id)))?;
        let latest = row.sampled_at.map(|sampled_at| Sample {
            sampled_at,
            cpu_load: row.cpu_load,
            lag_records: row.lag_records,
            lag_seconds: row.lag_seconds,
            records_in: row.records_in,
            records_out: row.records_out,
            scale: row.scale,
        });
        let last_decision = match (
            row.decision_id,
            row.decision_status,
            row.decision_rule,
            row.decision_at,
        ) {
            (Some(id), Some(status), Some(rule), Some(created_at)) => Some(DecisionSummary {
                id,
                status,
                rule,
                from_scale: row.decision_from,
                to_scale: row.decision_to,
                created_at,
            }),
            _ => None,
        };
        Ok(Self {
            id: row.id,
            spec,
            paused: row.paused,
            latest,
            last_decision,
        })
    }
}

/// A line of a list's sparkline: the highest lag (seconds) of each bucket, in time order.
pub type Sparkline = Vec<(DateTime<Utc>, Option<f64>)>;

/// One point of a chart: the samples of one time bucket, aggregated (lag and scale at their highest,
/// rates and load on average).
pub type Bucket = Sample;

/// How many decisions are in each status, by the rule that fired them.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DecisionCount {
    pub status: DecisionStatus,
    pub rule: String,
    pub count: i64,
}

impl Storage {
    /// Clusters by name after `after`, each with its newest sample and newest decision; only `team`'s
    /// when given.
    pub async fn cluster_overviews(
        &self,
        team: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClusterOverview>, StorageError> {
        let rows: Vec<OverviewRow> = sqlx::query_as(
            "select c.id, c.spec, c.paused, \
                    s.sampled_at, s.cpu_load, s.lag_records, s.lag_seconds, s.records_in, \
                    s.records_out, s.scale, \
                    d.id as decision_id, d.status as decision_status, d.rule as decision_rule, \
                    d.from_scale as decision_from, d.to_scale as decision_to, \
                    d.created_at as decision_at \
             from clusters c \
             left join lateral (select * from metric_samples m where m.cluster_id = c.id \
                                order by m.sampled_at desc limit 1) s on true \
             left join lateral (select * from decisions x where x.cluster_id = c.id \
                                order by x.id desc limit 1) d on true \
             where ($1::text is null or c.name > $1) and ($3::text is null or c.team = $3) \
             order by c.name limit $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .bind(team)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(ClusterOverview::try_from).collect()
    }

    /// The highest lag (seconds) of each of `clusters` per bucket of `bucket_seconds` since `since`, in
    /// time order: the list's sparklines.
    pub async fn lag_sparklines(
        &self,
        clusters: &[i64],
        since: DateTime<Utc>,
        bucket_seconds: u32,
    ) -> Result<HashMap<i64, Sparkline>, StorageError> {
        let rows: Vec<(i64, DateTime<Utc>, Option<f64>)> = sqlx::query_as(
            "select cluster_id, \
                    to_timestamp(floor(extract(epoch from sampled_at) / $3) * $3) as bucket, \
                    max(lag_seconds) \
             from metric_samples where cluster_id = any($1) and sampled_at >= $2 \
             group by 1, 2 order by 1, 2",
        )
        .bind(clusters)
        .bind(since)
        .bind(f64::from(bucket_seconds.max(1)))
        .fetch_all(self.pool())
        .await?;
        let mut lines: HashMap<i64, Sparkline> = HashMap::new();
        for (cluster, at, lag) in rows {
            lines.entry(cluster).or_default().push((at, lag));
        }
        Ok(lines)
    }

    /// One cluster's samples since `since`, aggregated into buckets of `bucket_seconds`, in time order.
    pub async fn sample_buckets(
        &self,
        cluster_id: i64,
        since: DateTime<Utc>,
        bucket_seconds: u32,
    ) -> Result<Vec<Bucket>, StorageError> {
        let rows: Vec<super::samples::SampleRow> = sqlx::query_as(
            "select to_timestamp(floor(extract(epoch from sampled_at) / $3) * $3) as sampled_at, \
                    avg(cpu_load) as cpu_load, max(lag_records) as lag_records, \
                    max(lag_seconds) as lag_seconds, avg(records_in) as records_in, \
                    avg(records_out) as records_out, max(scale) as scale \
             from metric_samples where cluster_id = $1 and sampled_at >= $2 \
             group by 1 order by 1",
        )
        .bind(cluster_id)
        .bind(since)
        .bind(f64::from(bucket_seconds.max(1)))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Sample::from).collect())
    }

    /// A cluster's decisions created since `since`, oldest first, at most `limit` (the newest kept).
    pub async fn decisions_since(
        &self,
        cluster_id: i64,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, StorageError> {
        let mut rows: Vec<DecisionRecord> = sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from decisions where cluster_id = $1 and created_at >= $2 \
             order by id desc limit $3"
        )))
        .bind(cluster_id)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.reverse();
        Ok(rows)
    }

    /// Every decision counted by status and rule, for `/metrics`.
    pub async fn decision_counts(&self) -> Result<Vec<DecisionCount>, StorageError> {
        Ok(sqlx::query_as(
            "select status, rule, count(*) as count from decisions group by status, rule",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// For each status a decision can be in flight in, how long its least recently changed decision has
    /// not changed, in seconds.
    pub async fn decisions_stalled(&self) -> Result<Vec<(DecisionStatus, f64)>, StorageError> {
        Ok(sqlx::query_as(
            "select status, extract(epoch from now() - min(updated_at))::float8 \
             from decisions where finished_at is null group by status",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The median, 90th percentile and longest time from creation to `applied` of the decisions applied
    /// since `since`, in seconds; empty when none was.
    pub async fn time_to_applied(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, f64)>, StorageError> {
        let row: (Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
            "select percentile_cont(0.5) within group (order by seconds), \
                    percentile_cont(0.9) within group (order by seconds), max(seconds) \
             from (select extract(epoch from finished_at - created_at)::float8 as seconds \
                   from decisions where status = 'applied' and finished_at >= $1) applied",
        )
        .bind(since)
        .fetch_one(self.pool())
        .await?;
        Ok([("0.5", row.0), ("0.9", row.1), ("1", row.2)]
            .into_iter()
            .filter_map(|(q, v)| v.map(|v| (q, v)))
            .collect())
    }
}
