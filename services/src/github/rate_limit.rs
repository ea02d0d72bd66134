//! GitHub's rate limits: the primary limit (`x-ratelimit-remaining: 0` until `x-ratelimit-reset`),
//! `Retry-After`, and the secondary limits that arrive as a bare 403 whose message names them.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

use super::GitHubError;

#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    /// The first wait after a secondary limit without `Retry-After`; doubled on each repeat. GitHub
    /// asks for at least a minute.
    pub secondary_wait: Duration,
    /// A wait longer than this fails the attempt as transient instead: the task is retried later
    /// rather than holding a worker.
    pub max_wait: Duration,
    pub max_attempts: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            secondary_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(300),
            max_attempts: 4,
        }
    }
}

pub(super) enum Attempt {
    RetryAfter(Duration, String),
    Fail(GitHubError),
}

pub(super) fn classify(
    error: &octocrab::Error,
    repository: &str,
    attempt: u32,
    limits: &RateLimitSettings,
) -> Attempt {
    let octocrab::Error::GitHub { source, .. } = error else {
        return retry_or(
            attempt,
            limits,
            limits.secondary_wait / 60 * attempt,
            GitHubError::Unavailable(transport_reason(error)),
        );
    };
    let message = source.message.clone();
    let status = source.status_code;
    let headers = source.headers.as_ref();
    let limited = |wait: Duration| {
        let error = GitHubError::RateLimited(format!(
            "{message} (HTTP {}; wait {} s)",
            status.as_u16(),
            wait.as_secs()
        ));
        if wait > limits.max_wait {
            Attempt::Fail(error)
        } else {
            retry_or(attempt, limits, wait, error)
        }
    };
    if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(wait) = headers.and_then(retry_after) {
            return limited(wait);
        }
        if let Some(wait) = headers.and_then(until_reset) {
            return limited(wait);
        }
        if message.to_lowercase().contains("secondary rate limit")
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            return limited(limits.secondary_wait * 2u32.pow(attempt.saturating_sub(1).min(4)));
        }
    }
    let details = source
        .errors
        .as_ref()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.get("message").and_then(|m| m.as_str()))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|d| !d.is_empty())
        .map_or(message.clone(), |d| format!("{message}: {d}"));
    match status {
        StatusCode::UNAUTHORIZED => Attempt::Fail(GitHubError::Unauthenticated(message)),
        StatusCode::FORBIDDEN => Attempt::Fail(GitHubError::Forbidden(message)),
        StatusCode::NOT_FOUND => Attempt::Fail(GitHubError::NotFound(repository.to_owned())),
        StatusCode::UNPROCESSABLE_ENTITY => Attempt::Fail(GitHubError::Invalid(details)),
        s if s.is_server_error() => retry_or(
            attempt,
            limits,
            limits.secondary_wait / 60 * attempt,
            GitHubError::Unavailable(format!("HTTP {}: {message}", s.as_u16())),
        ),
        s => Attempt::Fail(GitHubError::Invalid(format!(
            "unexpected HTTP {}: {message}",
            s.as_u16()
        ))),
    }
}

fn retry_or(
    attempt: u32,
    limits: &RateLimitSettings,
    wait: Duration,
    error: GitHubError,
) -> Attempt {
    if attempt >= limits.max_attempts {
        Attempt::Fail(error)
    } else {
        Attempt::RetryAfter(wait, error.to_string())
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header(headers, "retry-after").map(Duration::from_secs)
}

fn until_reset(headers: &HeaderMap) -> Option<Duration> {
    if header(headers, "x-ratelimit-remaining")? != 0 {
        return None;
    }
    let reset = header(headers, "x-ratelimit-reset")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

/// A transport error's reason without the URL (which could carry nothing secret, but is noise).
fn transport_reason(error: &octocrab::Error) -> String {
    let text = error.to_string();
    text.lines().next().unwrap_or("transport error").to_owned()
}
