use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AssertSqlSafe, types::Json};
use utoipa::ToSchema;

use super::{Storage, StorageError, conflict_on_unique};
use crate::decide::DecisionInputs;
pub use crate::lifecycle::DecisionStatus;

/// One entry of the audit trail: why the autoscaler acted (or did not), and what came of it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct DecisionRecord {
    pub id: i64,
    /// `None` once the cluster was deleted; the decision stays as history.
    #[serde(skip)]
    pub cluster_id: Option<i64>,
    #[serde(rename = "cluster")]
    pub cluster_name: String,
    /// The team of the cluster, kept after it is deleted so the history stays that team's.
    #[serde(skip)]
    pub team: String,
    pub status: DecisionStatus,
    /// The rule that fired.
    pub rule: String,
    /// The metrics window the rule saw (`decide::DecisionInputs`; empty for a human change).
    #[schema(value_type = Object)]
    pub inputs: Json<serde_json::Value>,
    /// The estimate: model, coefficients, fit, or the fallback used and why.
    #[schema(value_type = Option<Object>)]
    pub estimate: Option<Json<serde_json::Value>>,
    pub from_scale: Option<i32>,
    pub to_scale: Option<i32>,
    #[schema(value_type = Option<Object>)]
    pub write_back: Option<Json<serde_json::Value>>,
    #[schema(value_type = Option<Object>)]
    pub sync: Option<Json<serde_json::Value>>,
    /// Why it ended as it did (a veto, a failure).
    pub reason: Option<String>,
    /// What the worker did, step by step.
    #[schema(value_type = Vec<Object>)]
    pub steps: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// How many identical `skipped` decisions this one stands for, itself included: a rule that keeps
    /// firing while the checked scale equals the current one collapses into its newest decision.
    pub repeats: i32,
    /// When the first of those repeats was taken (`None` for a decision that stands for itself only).
    pub first_at: Option<DateTime<Utc>>,
}

/// What the rule evaluator knows when it decides to act.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub cluster_id: i64,
    pub cluster_name: String,
    pub rule: String,
    pub inputs: DecisionInputs,
    pub from_scale: Option<i32>,
}

impl DecisionRecord {
    /// The inputs the manager recorded, typed.
    pub fn typed_inputs(&self) -> Result<DecisionInputs, serde_json::Error> {
        serde_json::from_value(self.inputs.0.clone())
    }
}

pub(super) const COLUMNS: &str = "id, cluster_id, cluster_name, team, status, rule, inputs, estimate, from_scale, to_scale, \
    write_back, sync, reason, steps, created_at, updated_at, finished_at, repeats, first_at";

impl Storage {
    /// Records a pending decision. `Conflict` when the cluster already has one in flight.
    pub async fn insert_pending_decision(
        &self,
        new: &NewDecision,
    ) -> Result<DecisionRecord, StorageError> {
        sqlx::query_as(AssertSqlSafe(format!(
            "insert into decisions (cluster_id, cluster_name, status, rule, inputs, from_scale, team, \
             prediction_due) \
             values ($1, $2, 'pending', $3, $4, $5, (select team from clusters where id = $1), $6) \
             returning {COLUMNS}"
        )))
        .bind(new.cluster_id)
        .bind(&new.cluster_name)
        .bind(&new.rule)
        .bind(Json(&new.inputs))
        .bind(new.from_scale)
        .bind(new.inputs.prediction_due())
        .fetch_one(self.pool())
        .await
        .map_err(conflict_on_unique)
    }

    /// A cluster's decisions, newest first, older than `before` (keyset pagination).
    pub async fn list_decisions(
        &self,
        cluster_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, StorageError> {
        let rows = sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from decisions \
             where cluster_id = $1 and ($2::bigint is null or id < $2) \
             order by id desc limit $3"
        )))
        .bind(cluster_id)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// Ends a decision with a final status whatever its status was: a fixture for tests of what reads
    /// decisions. The service itself moves decisions only with `transition`.
    #[doc(hidden)]
    pub async fn finish_decision(
        &self,
        id: i64,
        status: DecisionStatus,
        reason: Option<&str>,
    ) -> Result<(), StorageError> {
        let result = sqlx::query(
            "update decisions set status = $2, reason = $3, updated_at = now(), finished_at = now() \
             where id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(reason)
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }
}
