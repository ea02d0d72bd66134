//! A decision's way through the worker: claimed under a lock, planned, written, synced, each step
//! recorded on the row.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgConnection, types::Json};

use super::{
    Storage, StorageError,
    decisions::{COLUMNS, DecisionRecord, DecisionStatus},
};

/// A worker's lease on a decision: held while it carries the decision out, renewed by `renew_lease`,
/// let go by `release_lease`. No transaction stays open: a dead worker's lease simply expires.
#[derive(Debug)]
pub struct DecisionLease {
    pub id: i64,
    pub owner: String,
    pub ttl: std::time::Duration,
}

/// One move of a decision's status, with what it records on the way.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    pub from: DecisionStatus,
    pub to: DecisionStatus,
    /// Merged into the stored `write_back` object.
    pub write_back: Option<&'a serde_json::Value>,
    /// Replaces the stored `sync`.
    pub sync: Option<&'a serde_json::Value>,
    pub reason: Option<&'a str>,
    /// A step appended to the decision's steps in the same write.
    pub step: Option<(&'a str, &'a serde_json::Value)>,
}

impl<'a> Transition<'a> {
    pub fn new(from: DecisionStatus, to: DecisionStatus) -> Self {
        Self {
            from,
            to,
            write_back: None,
            sync: None,
            reason: None,
            step: None,
        }
    }

    pub fn write_back(mut self, write_back: &'a serde_json::Value) -> Self {
        self.write_back = Some(write_back);
        self
    }

    pub fn sync(mut self, sync: &'a serde_json::Value) -> Self {
        self.sync = Some(sync);
        self
    }

    pub fn reason(mut self, reason: &'a str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn step(mut self, name: &'a str, detail: &'a serde_json::Value) -> Self {
        self.step = Some((name, detail));
        self
    }
}

/// The last change that took effect (or is taking effect) before a decision.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PreviousDecision {
    pub id: i64,
    pub from_scale: Option<i32>,
    pub to_scale: Option<i32>,
    pub at: DateTime<Utc>,
}

/// A scale someone changed by hand in Git.
#[derive(Debug, Clone)]
pub struct HumanChange<'a> {
    pub cluster_id: i64,
    pub cluster_name: &'a str,
    pub from_scale: Option<i32>,
    pub to_scale: i32,
    pub commit: &'a str,
    pub author: &'a str,
    pub at: DateTime<Utc>,
}

impl Storage {
    /// Takes the decision's lease for `ttl`; `None` while another owner's lease is unexpired.
    pub async fn lease_decision(
        &self,
        id: i64,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<DecisionLease>, StorageError> {
        let taken = sqlx::query(
            "update decisions set lease_owner = $2, \
                 lease_expires_at = now() + make_interval(secs => $3) \
             where id = $1 and (lease_owner is null or lease_owner = $2 or lease_expires_at < now())",
        )
        .bind(id)
        .bind(owner)
        .bind(ttl.as_secs_f64())
        .execute(self.pool())
        .await?;
        Ok((taken.rows_affected() == 1).then(|| DecisionLease {
            id,
            owner: owner.to_owned(),
            ttl,
        }))
    }

    /// Extends the lease; `false` when it is no longer ours (it expired and another worker took it).
    pub async fn renew_lease(&self, lease: &DecisionLease) -> Result<bool, StorageError> {
        let renewed = sqlx::query(
            "update decisions set lease_expires_at = now() + make_interval(secs => $3) \
             where id = $1 and lease_owner = $2",
        )
        .bind(lease.id)
        .bind(&lease.owner)
        .bind(lease.ttl.as_secs_f64())
        .execute(self.pool())
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    pub async fn release_lease(&self, lease: &DecisionLease) -> Result<(), StorageError> {
        sqlx::query(
            "update decisions set lease_owner = null, lease_expires_at = null \
             where id = $1 and lease_owner = $2",
        )
        .bind(lease.id)
        .bind(&lease.owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_decision(&self, id: i64) -> Result<DecisionRecord, StorageError> {
        sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from decisions where id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StorageError::NotFound)
    }

    /// Moves a decision from `change.from` to `change.to`, a compare-and-set: `LostRace` (naming the
    /// status found) when the decision is no longer in `from`, `IllegalTransition` for a move the
    /// lifecycle does not have. The step, when given, is appended in the same statement.
    pub async fn transition(&self, id: i64, change: &Transition<'_>) -> Result<(), StorageError> {
        let mut transaction = self.pool().begin().await?;
        transition_in(&mut transaction, id, change).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Stores the estimate and the checked scale.
    pub async fn record_plan(
        &self,
        id: i64,
        estimate: &serde_json::Value,
        from_scale: Option<i32>,
        to_scale: Option<i32>,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "update decisions set estimate = $2, from_scale = coalesce($3, from_scale), \
             to_scale = $4, updated_at = now() where id = $1 and status = 'running'",
        )
        .bind(id)
        .bind(Json(estimate))
        .bind(from_scale)
        .bind(to_scale)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Appends one step to the decision's record of what was done.
    pub async fn add_step(
        &self,
        id: i64,
        step: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StorageError> {
        let mut connection = self.pool().acquire().await?;
        add_step_in(&mut connection, id, step, detail).await
    }

    /// The newest change of the cluster, other than `except`, that was written to Git.
    pub async fn previous_change(
        &self,
        cluster_id: i64,
        except: i64,
    ) -> Result<Option<PreviousDecision>, StorageError> {
        Ok(sqlx::query_as(
            "select id, from_scale, to_scale, coalesce(finished_at, updated_at) as at \
             from decisions \
             where cluster_id = $1 and id <> $2 \
               and status in ('committed', 'merged', 'syncing', 'synced', 'applied') \
             order by coalesce(finished_at, updated_at) desc limit 1",
        )
        .bind(cluster_id)
        .bind(except)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Whether a commit without our trailer is still ours: a decision of the cluster wrote it, was merged
    /// as it, or waited in the pull request or on the branch it names (a squash or merge that lost the
    /// trailer).
    pub async fn commit_is_ours(
        &self,
        cluster_id: i64,
        sha: &str,
        pull_request: Option<u64>,
        branch: Option<&str>,
    ) -> Result<bool, StorageError> {
        let (ours,): (bool,) = sqlx::query_as(
            "select exists (select 1 from decisions where cluster_id = $1 and rule <> 'human_change' \
               and (write_back->>'commit' = $2 or write_back->>'merge_commit' = $2 \
                    or ($3::text is not null and write_back->>'pull_request' = $3) \
                    or ($4::text is not null and write_back->>'branch' = $4)))",
        )
        .bind(cluster_id)
        .bind(sha)
        .bind(pull_request.map(|n| n.to_string()))
        .bind(branch)
        .fetch_one(self.pool())
        .await?;
        Ok(ours)
    }

    /// Records a scale a person set in Git, once per commit. Its time is the commit's, so the cooldown
    /// runs from when the person acted.
    pub async fn record_human_change(&self, change: &HumanChange<'_>) -> Result<(), StorageError> {
        sqlx::query(
            "insert into decisions (cluster_id, cluster_name, status, rule, from_scale, to_scale, \
                                    write_back, reason, created_at, updated_at, finished_at, team) \
             select $1, $2, 'applied', 'human_change', $3, $4, $5, $6, $7, $7, $7, \
                    (select team from clusters where id = $1) \
             where not exists (select 1 from decisions where cluster_id = $1 \
                               and rule = 'human_change' and write_back->>'commit' = $8)",
        )
        .bind(change.cluster_id)
        .bind(change.cluster_name)
        .bind(change.from_scale)
        .bind(change.to_scale)
        .bind(Json(serde_json::json!({
            "mode": "human",
            "commit": change.commit,
            "author": change.author,
        })))
        .bind(format!(
            "{} set the scale to {} by hand in commit {}",
            change.author, change.to_scale, change.commit
        ))
        .bind(change.at)
        .bind(change.commit)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The cluster's decision waiting in an open pull request, if any.
    pub async fn open_pull_request_decision(
        &self,
        cluster_id: i64,
    ) -> Result<Option<DecisionRecord>, StorageError> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from decisions where cluster_id = $1 and status = 'pr_open' \
             order by id desc limit 1"
        )))
        .bind(cluster_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Marks every older decision waiting in the cluster's pull request as replaced by `by`.
    pub async fn supersede_pull_request_decisions(
        &self,
        cluster_id: i64,
        by: i64,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "update decisions set status = 'superseded', reason = 'replaced by decision ' || $2, \
             updated_at = now(), finished_at = now() \
             where cluster_id = $1 and status = 'pr_open' and id <> $2",
        )
        .bind(cluster_id)
        .bind(by)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// `Storage::transition` on a connection the caller holds (inside its transaction).
pub(super) async fn transition_in(
    connection: &mut PgConnection,
    id: i64,
    change: &Transition<'_>,
) -> Result<(), StorageError> {
    crate::lifecycle::check(change.from, change.to)?;
    let step = change.step.map(|(name, _)| name);
    let detail = change.step.map(|(_, detail)| Json(detail));
    // Both subqueries see the statement's snapshot: `moved` is the write, `found` what was there.
    let (moved, found): (Option<DecisionStatus>, Option<DecisionStatus>) = sqlx::query_as(
        "with moved as ( \
             update decisions set status = $3, \
                 write_back = case when $4::jsonb is null then write_back \
                     else coalesce(write_back, '{}'::jsonb) || $4 end, \
                 sync = case when $5::jsonb is null then sync else $5 end, \
                 reason = coalesce($6, reason), updated_at = now(), \
                 finished_at = case when $7 then now() else finished_at end, \
                 steps = case when $8::text is null then steps else steps || jsonb_build_array( \
                     jsonb_build_object('at', now(), 'step', $8::text, 'detail', $9::jsonb)) end \
             where id = $1 and status = $2 returning status) \
         select (select status from moved), (select status from decisions where id = $1)",
    )
    .bind(id)
    .bind(change.from)
    .bind(change.to)
    .bind(change.write_back.map(Json))
    .bind(change.sync.map(Json))
    .bind(change.reason)
    .bind(change.to.is_final())
    .bind(step)
    .bind(detail)
    .fetch_one(&mut *connection)
    .await?;
    match (moved, found) {
        (Some(DecisionStatus::Skipped), _) => collapse_repeated_skip(connection, id).await,
        (Some(_), _) => Ok(()),
        (None, Some(found)) => Err(StorageError::LostRace {
            id,
            expected: change.from,
            found,
        }),
        (None, None) => Err(StorageError::NotFound),
    }
}

/// Folds the cluster's previous decision into `id` when both were skipped for the same rule, reason and
/// scales: the newest row stays (the one a caller just finished and may be following) and counts the run.
/// Runs in the caller's transaction, with the move to `skipped`, so a crash leaves both rows or one.
async fn collapse_repeated_skip(
    connection: &mut PgConnection,
    id: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "with skipped as (select * from decisions where id = $1), \
         previous as ( \
             select d.* from decisions d, skipped \
             where d.cluster_id = skipped.cluster_id and d.id < skipped.id \
             order by d.id desc limit 1), \
         folded as ( \
             delete from decisions d using previous, skipped \
             where d.id = previous.id and previous.status = 'skipped' \
               and previous.rule = skipped.rule \
               and previous.reason is not distinct from skipped.reason \
               and previous.from_scale is not distinct from skipped.from_scale \
               and previous.to_scale is not distinct from skipped.to_scale \
             returning d.repeats as runs, coalesce(d.first_at, d.created_at) as since) \
         update decisions set repeats = decisions.repeats + folded.runs, first_at = folded.since \
         from folded where decisions.id = $1",
    )
    .bind(id)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// `Storage::add_step` on a connection the caller holds.
pub(super) async fn add_step_in(
    connection: &mut PgConnection,
    id: i64,
    step: &str,
    detail: &serde_json::Value,
) -> Result<(), StorageError> {
    sqlx::query(
        "update decisions set steps = steps || jsonb_build_array(\
             jsonb_build_object('at', now(), 'step', $2::text, 'detail', $3::jsonb)), \
         updated_at = now() where id = $1",
    )
    .bind(id)
    .bind(step)
    .bind(Json(detail))
    .execute(&mut *connection)
    .await?;
    Ok(())
}
