//! The status page: server-rendered HTML under `/ui`, read-only. The clusters at a glance, one cluster's
//! charts with its decisions marked, one decision's steps. Behind the API's tokens: a login with a token
//! sets an HTTP-only session cookie (or a request may carry `Authorization: Bearer`). Everything shown
//! is escaped by the templates (maud); the only script reloads the page, and the page works without it.

mod chart;
mod cluster;
mod clusters;
mod decision;
mod format;
mod layout;
pub mod session;

use axum::{
    Form, Router,
    extract::{Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use crate::api::AppState;
use crate::storage::StorageError;
use crate::tenancy::Principal;

/// What the status page can fail with; each becomes an HTML page with the matching status.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the database is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StorageError> for UiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => UiError::NotFound("not found".to_owned()),
            StorageError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
                UiError::Unavailable
            }
            other => UiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = match &self {
            UiError::NotFound(_) => StatusCode::NOT_FOUND,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            UiError::Internal(e) => {
                tracing::error!(error = ?e, "status page failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = self.to_string();
        let body = layout::page(
            "Error",
            None,
            html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.error { (message) }
                p { a href="/ui" { "All clusters" } }
            },
        );
        (status, body).into_response()
    }
}

/// Another team's cluster or decision is answered as a missing one, as in the API.
pub(crate) fn hide_other_team(
    state: &AppState,
    principal: &Principal,
    team: &str,
    missing: impl FnOnce() -> UiError,
) -> Result<(), UiError> {
    principal.may_see(team).map_err(|denied| {
        state.metrics.refused(denied.reason());
        missing()
    })
}

/// The status page's routes; the pages need a session or a bearer token, the login does not.
pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/ui", get(clusters::page))
        .route("/ui/clusters/{name}", get(cluster::page))
        .route("/ui/decisions/{id}", get(decision::page))
        .route_layer(middleware::from_fn_with_state(state, require_session));
    Router::new()
        .merge(pages)
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/style.css", get(layout::stylesheet))
        .route("/ui/refresh.js", get(layout::refresh_script))
        .layer(middleware::from_fn(security_headers))
}

/// No framing, no outside resources, nothing cached: the pages show a team's Git and Argo CD addresses.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Who the request is from: a bearer token (not an engine's) or a session cookie.
fn session_principal(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let bearer = crate::api::bearer(headers)
        .and_then(|token| state.tokens.authenticate(token))
        .map(|(principal, _)| principal)
        .filter(|p| p.may_read().is_ok());
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(session::from_cookie_header)
            .find_map(|value| session::verify(&state.tokens, value, Utc::now()))
    })
}

async fn require_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(principal) = session_principal(&state, request.headers()) {
        request.extensions_mut().insert(principal);
        return next.run(request).await;
    }
    let wanted = request.uri().path_and_query().map_or("/ui", |p| p.as_str());
    let mut login = url::form_urlencoded::Serializer::new(String::new());
    login.append_pair("next", wanted);
    Redirect::to(&format!("/ui/login?{}", login.finish())).into_response()
}

/// Where to go after the login: a page of the status page, never another site.
fn local_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if (path == "/ui" || path.starts_with("/ui/") || path.starts_with("/ui?"))
                && !path.contains("//")
                && !path.contains('\\') =>
        {
            path.to_owned()
        }
        _ => "/ui".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_form(Query(query): Query<LoginQuery>) -> impl IntoResponse {
    layout::login(&local_next(query.next.as_deref()), None)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let next = local_next(form.next.as_deref());
    match session::issue(&state.tokens, form.token.trim(), Utc::now()) {
        Some(value) => {
            let secure = state
                .public_url
                .as_ref()
                .is_some_and(|url| url.scheme() == "https");
            let mut response = Redirect::to(&next).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(&value, secure)) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        None => {
            tracing::warn!("status page: a login with an unknown token was refused");
            (
                StatusCode::UNAUTHORIZED,
                layout::login(
                    &next,
                    Some("That token is not one of the service's API tokens."),
                ),
            )
                .into_response()
        }
    }
}

async fn logout() -> Response {
    let mut response = Redirect::to("/ui/login").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_the_login_only_status_pages_are_destinations() {
        assert_eq!(
            local_next(Some("/ui/clusters/a?window=6h")),
            "/ui/clusters/a?window=6h"
        );
        assert_eq!(local_next(Some("/ui")), "/ui");
        for elsewhere in [
            "https://evil.example/",
            "//evil.example/ui",
            "/ui//evil",
            "/uix",
            "/api/v1",
            "/ui/\\evil",
        ] {
            assert_eq!(local_next(Some(elsewhere)), "/ui", "{elsewhere}");
        }
        assert_eq!(local_next(None), "/ui");
    }
}
