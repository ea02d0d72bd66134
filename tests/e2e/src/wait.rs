//! Waiting for a condition with a deadline, for checks that can fail on the way (a server still
//! starting) and conditions computed by async calls.

use std::future::Future;
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(250);

/// Retries `attempt` until it succeeds; after `deadline`, the last error says what was missing.
pub async fn until_ok<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut attempt: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() >= end => {
                return Err(
                    error.context(format!("timed out after {deadline:?} waiting for {what}"))
                );
            }
            Err(_) => tokio::time::sleep(EVERY).await,
        }
    }
}

/// Polls `check` until it yields `Some` (or fails for good with an error).
pub async fn until_some<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        anyhow::ensure!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(EVERY).await;
    }
}
