//! The seasonal series the predictive rule learns from, and the check of what it predicted.

use chrono::{DateTime, Duration, Utc};
use sqlx::{AssertSqlSafe, types::Json};

use super::{
    Storage, StorageError,
    decisions::{COLUMNS, DecisionRecord},
};
use crate::{
    decide::PredictionCheck,
    estimate::seasonal::{BUCKET_SECONDS, HISTORY_DAYS, RatePoint, bucket_start},
};

/// The step a prediction's check is recorded as.
pub const PREDICTION_CHECK_STEP: &str = "prediction_check";

impl Storage {
    /// One cluster's input rate per `seasonal::BUCKET_SECONDS` bucket over the past
    /// `seasonal::HISTORY_DAYS` days, for the buckets that ended by `now`, in time order: at most a week
    /// of 10-minute buckets (1008 rows). The rate is the estimator's (`estimate::arrival_rates`): what was
    /// consumed plus the lag's growth since the previous sample, averaged per bucket as
    /// `seasonal::downsample` does, except that a sample after one without a lag counts no growth.
    pub async fn seasonal_rates(
        &self,
        cluster_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<RatePoint>, StorageError> {
        let until = bucket_start(now);
        let since = until - Duration::days(i64::from(HISTORY_DAYS));
        let rows: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(
            "select to_timestamp(floor(extract(epoch from sampled_at) / $4) * $4) as bucket, \
                    avg(greatest(records_in + coalesce(growth, 0), 0)) as rate \
             from (select sampled_at, records_in, \
                          (lag - lag(lag) over w) \
                          / nullif(extract(epoch from sampled_at - lag(sampled_at) over w), 0) as growth \
                   from (select sampled_at, records_in, \
                                case when lag_records < 0 then 0 else lag_records end as lag \
                         from metric_samples \
                         where cluster_id = $1 and sampled_at >= $2 and sampled_at < $3) as clamped \
                   window w as (order by sampled_at)) as rates \
             where records_in is not null \
             group by 1 order by 1",
        )
        .bind(cluster_id)
        .bind(since)
        .bind(until)
        .bind(f64::from(BUCKET_SECONDS))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, rate)| RatePoint { at, rate })
            .collect())
    }

    /// Every decision whose recorded prediction was for a time before `now` and is not checked yet.
    pub async fn due_predictions(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<DecisionRecord>, StorageError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from decisions where prediction_due <= $1 order by id"
        )))
        .bind(now)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records whether a decision's prediction held, as a step, and stops waiting for it. `updated_at`
    /// stays: it dates the change itself (the cooldown's start).
    pub async fn record_prediction_check(
        &self,
        id: i64,
        check: &PredictionCheck,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "update decisions set prediction_due = null, steps = steps || jsonb_build_array(\
                 jsonb_build_object('at', now(), 'step', $2::text, 'detail', $3::jsonb)) \
             where id = $1",
        )
        .bind(id)
        .bind(PREDICTION_CHECK_STEP)
        .bind(Json(check))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
