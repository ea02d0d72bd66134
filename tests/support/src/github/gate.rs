//! What every request goes through before its handler: it is recorded, authenticated, possibly
//! answered by an injected rate-limit response, and its response gets the `x-ratelimit-*` headers.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::errors::{DOCS_PRIMARY_LIMIT, DOCS_ROOT, DOCS_SECONDARY_LIMIT, error, not_found};

/// GitHub's hourly core budget for a token.
const HOURLY_LIMIT: u64 = 5000;

/// An injected rate-limit answer for one upcoming request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    /// 403, no `Retry-After`, `x-ratelimit-remaining` not 0: a client cannot tell when to retry.
    SecondaryLimit,
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset: <epoch>`.
    PrimaryLimit { reset_at: i64 },
    /// 429 with `Retry-After: <secs>`.
    RetryAfter { secs: u64 },
}

#[derive(Debug)]
pub(crate) struct RateLimit {
    used: u64,
    window_reset_at: i64,
    pub(crate) faults: VecDeque<Fault>,
    request_seq: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            used: 0,
            window_reset_at: now_epoch() + 3600,
            faults: VecDeque::new(),
            request_seq: 0,
        }
    }
}

pub(crate) fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

impl RateLimit {
    /// Counts one authenticated request against the budget, rolling the hourly window over.
    fn charge(&mut self) {
        let now = now_epoch();
        if now >= self.window_reset_at {
            self.used = 0;
            self.window_reset_at = now + 3600;
        }
        self.used += 1;
    }

    fn headers(&self, remaining_override: Option<(u64, i64)>) -> Vec<(&'static str, String)> {
        let (remaining, reset) = remaining_override
            .unwrap_or((HOURLY_LIMIT.saturating_sub(self.used), self.window_reset_at));
        vec![
            ("x-ratelimit-limit", HOURLY_LIMIT.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-reset", reset.to_string()),
            ("x-ratelimit-used", self.used.to_string()),
            ("x-ratelimit-resource", "core".to_owned()),
        ]
    }
}

enum Verdict {
    MissingToken,
    BadToken,
    Injected(Fault, Vec<(&'static str, String)>),
    Pass(Vec<(&'static str, String)>),
}

/// Accepts `Authorization: Bearer <token>` and `token <token>`, as GitHub does.
fn token_of(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim())
}

pub(crate) async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let has_auth_header = req.headers().contains_key(AUTHORIZATION);
    let token_ok = token_of(req.headers()) == Some(shared.token.as_str());
    let (verdict, request_id) = {
        let mut state = shared.lock();
        state
            .requests
            .push((method.to_string(), req.uri().path().to_owned()));
        let limits = &mut state.rate_limit;
        limits.request_seq += 1;
        let request_id = format!(
            "C0DE:{:04X}:{:06X}",
            std::process::id() % 0xFFFF,
            limits.request_seq
        );
        let verdict = if !has_auth_header {
            Verdict::MissingToken
        } else if !token_ok {
            Verdict::BadToken
        } else {
            limits.charge();
            match limits.faults.pop_front() {
                Some(fault @ Fault::PrimaryLimit { reset_at }) => {
                    Verdict::Injected(fault, limits.headers(Some((0, reset_at))))
                }
                Some(fault) => Verdict::Injected(fault, limits.headers(None)),
                None => Verdict::Pass(limits.headers(None)),
            }
        };
        (verdict, request_id)
    };
    let mut response = match verdict {
        // Private repositories are invisible without credentials; writes ask for them.
        Verdict::MissingToken if method == Method::GET => not_found(DOCS_ROOT).into_response(),
        Verdict::MissingToken => error(
            StatusCode::UNAUTHORIZED,
            "Requires authentication",
            DOCS_ROOT,
        )
        .into_response(),
        Verdict::BadToken => {
            error(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS_ROOT).into_response()
        }
        Verdict::Injected(fault, headers) => with_headers(injected(fault, &request_id), &headers),
        Verdict::Pass(headers) => with_headers(next.run(req).await, &headers),
    };
    insert(&mut response, "x-github-request-id", &request_id);
    insert(
        &mut response,
        "x-github-media-type",
        "github.v3; format=json",
    );
    response
}

fn injected(fault: Fault, request_id: &str) -> Response {
    let secondary = format!(
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. \
         If you reach out to GitHub Support for help, please include the request ID {request_id}."
    );
    match fault {
        Fault::SecondaryLimit => {
            error(StatusCode::FORBIDDEN, &secondary, DOCS_SECONDARY_LIMIT).into_response()
        }
        Fault::PrimaryLimit { .. } => error(
            StatusCode::FORBIDDEN,
            &format!(
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for \
                 help, please include the request ID {request_id}."
            ),
            DOCS_PRIMARY_LIMIT,
        )
        .into_response(),
        Fault::RetryAfter { secs } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                &secondary,
                DOCS_SECONDARY_LIMIT,
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            response
        }
    }
}

fn with_headers(mut response: Response, headers: &[(&'static str, String)]) -> Response {
    for (name, value) in headers {
        insert(&mut response, name, value);
    }
    response
}

fn insert(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}
