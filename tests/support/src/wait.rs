//! Waiting for a condition with a deadline, instead of sleeping and hoping: `until` and
//! `until_blocking` for plain checks, `until_ok` and `until_some` for async checks that can fail on
//! the way (a server still starting).

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every `every` until it yields `Some`, or fails after `deadline` with `what`.
pub async fn until<T>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Blocking variant for synchronous tests and helper threads.
pub fn until_blocking<T>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

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
