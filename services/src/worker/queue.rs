//! Takes scaling tasks from the apalis queue on Postgres. Any number of worker processes, on any hosts,
//! share it; a task whose worker died is handed out again once its heartbeats stop, and resumes where
//! the decision's status says it stopped.

use std::{sync::Arc, time::Duration};

use apalis::prelude::{BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use apalis_postgres::PostgresStorage;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Progress, WorkError, Worker};
use crate::queue::ScalingTask;

/// How often a transient failure is retried, and how long to wait in between (doubling each time).
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Duration::from_secs(10),
        }
    }
}

impl Worker {
    /// Carries out one task: transient failures are retried with backoff, and a task that keeps failing
    /// ends with its decision failed and the reason recorded.
    pub async fn run_task(&self, decision_id: i64, retry: RetrySettings) -> Progress {
        match self.try_run_task(decision_id, retry).await {
            Ok(progress) => progress,
            Err(e) => {
                tracing::error!(decision = decision_id, error = %e, "cannot record the failure");
                Progress::Unrecorded
            }
        }
    }

    /// As `run_task`, but a failure that could not be recorded on the decision is an error: the queue
    /// must hand the task out again rather than consider it done.
    pub async fn try_run_task(
        &self,
        decision_id: i64,
        retry: RetrySettings,
    ) -> Result<Progress, WorkError> {
        let progress = self.attempt_task(decision_id, retry).await;
        self.count(match &progress {
            Ok(Progress::Reached(status)) => status.as_str(),
            Ok(Progress::Busy) => "busy",
            Ok(Progress::LostRace { .. }) => "lost_race",
            Ok(Progress::Unrecorded) | Err(_) => "unrecorded",
        });
        progress
    }

    async fn attempt_task(
        &self,
        decision_id: i64,
        retry: RetrySettings,
    ) -> Result<Progress, WorkError> {
        let attempts = retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            let error = match self.execute(decision_id, chrono::Utc::now()).await {
                Ok(progress) => return Ok(progress),
                Err(e) => e,
            };
            let reason = error.to_string();
            if error.is_transient() && attempt < attempts {
                let wait = backoff(retry.backoff, attempt);
                self.count("retry");
                tracing::warn!(decision = decision_id, attempt, %reason, ?wait, "transient failure; retrying");
                let detail = json!({"attempt": attempt, "reason": reason, "retry_in_ms": wait.as_millis() as u64});
                if let Err(e) = self.storage().add_step(decision_id, "retry", &detail).await {
                    tracing::warn!(decision = decision_id, error = %e, "cannot record the retry");
                }
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            let reason = if error.is_transient() {
                format!("gave up after {attempts} attempts: {reason}")
            } else {
                reason
            };
            // A failure that cannot be recorded (the database is gone) is returned, not swallowed.
            return self.fail(decision_id, &reason).await;
        }
    }
}

/// `base` × 2^(attempt-1), plus up to a quarter of it at random, so retries of many tasks spread out.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(10)));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    exponential + exponential.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

struct Runner {
    worker: Arc<Worker>,
    retry: RetrySettings,
}

async fn handle(task: ScalingTask, runner: Data<Arc<Runner>>) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("task", decision = task.decision_id, cluster = %task.cluster);
    async {
        // An error makes apalis keep the task (failed, with attempts left) and hand it out again.
        let progress = runner
            .worker
            .try_run_task(task.decision_id, runner.retry)
            .await?;
        tracing::info!(?progress, "task done");
        Ok(())
    }
    .instrument(span)
    .await
}

/// Serves the queue until `shutdown`, running up to `concurrency` tasks at once. When the queue's
/// connection fails (Postgres restarted, a network cut), apalis' worker stops; it is built again after a
/// backoff, so the process keeps taking tasks once the database is back instead of idling forever.
pub async fn run_queue(
    worker: Arc<Worker>,
    pool: sqlx::PgPool,
    name: String,
    concurrency: usize,
    retry: RetrySettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let runner = Arc::new(Runner { worker, retry });
    let mut failures = 0;
    loop {
        let started = std::time::Instant::now();
        let result = serve_queue(&runner, &pool, &name, concurrency, &shutdown).await;
        if shutdown.is_cancelled() {
            return result;
        }
        // A run that lasted a while was healthy: the next failure starts the backoff afresh.
        if started.elapsed() > QUEUE_HEALTHY_RUN {
            failures = 0;
        }
        failures += 1;
        let wait = backoff(retry.backoff, failures).min(QUEUE_MAX_BACKOFF);
        match result {
            Err(error) => {
                tracing::error!(%error, ?wait, "the task queue worker stopped; starting it again")
            }
            Ok(()) => tracing::warn!(?wait, "the task queue worker ended; starting it again"),
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}

const QUEUE_HEALTHY_RUN: Duration = Duration::from_secs(60);
const QUEUE_MAX_BACKOFF: Duration = Duration::from_secs(30);

async fn serve_queue(
    runner: &Arc<Runner>,
    pool: &sqlx::PgPool,
    name: &str,
    concurrency: usize,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    // LISTEN/NOTIFY wakes the worker as soon as the manager enqueues; polling alone backs off to
    // tens of seconds on an idle queue, and a decision would wait that long for a worker.
    let backend = PostgresStorage::<ScalingTask>::new(pool).with_pubsub();
    let apalis_worker = WorkerBuilder::new(name)
        .backend(backend)
        .concurrency(concurrency)
        .data(runner.clone())
        .build(handle);
    let shutdown = shutdown.clone();
    apalis_worker
        .run_until(async move {
            shutdown.cancelled().await;
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("the task queue worker stopped: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_at_most_a_quarter_of_jitter() {
        let base = Duration::from_secs(10);
        for (attempt, expected) in [(1, 10), (2, 20), (3, 40)] {
            let wait = backoff(base, attempt);
            let expected = Duration::from_secs(expected);
            assert!(
                wait >= expected && wait <= expected.mul_f64(1.25),
                "{attempt}: {wait:?}"
            );
        }
    }
}
