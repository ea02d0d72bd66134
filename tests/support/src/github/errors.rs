//! GitHub's error bodies: `{"message", "documentation_url", "status"}`, plus `errors` for 422.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub(crate) const DOCS_ROOT: &str = "https://docs.github.com/rest";
pub(crate) const DOCS_LIST_PULLS: &str =
    "https://docs.github.com/rest/pulls/pulls#list-pull-requests";
pub(crate) const DOCS_CREATE_PULL: &str =
    "https://docs.github.com/rest/pulls/pulls#create-a-pull-request";
pub(crate) const DOCS_GET_PULL: &str =
    "https://docs.github.com/rest/pulls/pulls#get-a-pull-request";
pub(crate) const DOCS_UPDATE_PULL: &str =
    "https://docs.github.com/rest/pulls/pulls#update-a-pull-request";
pub(crate) const DOCS_CHECK_MERGED: &str =
    "https://docs.github.com/rest/pulls/pulls#check-if-a-pull-request-has-been-merged";
pub(crate) const DOCS_PULL_FILES: &str =
    "https://docs.github.com/rest/pulls/pulls#list-pull-requests-files";
pub(crate) const DOCS_LIST_COMMENTS: &str =
    "https://docs.github.com/rest/issues/comments#list-issue-comments";
pub(crate) const DOCS_CREATE_COMMENT: &str =
    "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
pub(crate) const DOCS_LABELS: &str = "https://docs.github.com/rest/issues/labels";
pub(crate) const DOCS_SECONDARY_LIMIT: &str = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";
pub(crate) const DOCS_PRIMARY_LIMIT: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit";

/// A GitHub error answer; small enough to travel in `Result`s, rendered only at the end.
#[derive(Debug, Clone)]
pub(crate) struct GhError {
    status: StatusCode,
    message: String,
    documentation_url: &'static str,
    errors: Option<Vec<Value>>,
}

impl IntoResponse for GhError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "message": self.message,
            "documentation_url": self.documentation_url,
            "status": self.status.as_u16().to_string(),
        });
        if let (Some(errors), Some(map)) = (self.errors, body.as_object_mut()) {
            map.insert("errors".into(), Value::Array(errors));
        }
        (self.status, Json(body)).into_response()
    }
}

pub(crate) fn error(status: StatusCode, message: &str, documentation_url: &'static str) -> GhError {
    GhError {
        status,
        message: message.to_owned(),
        documentation_url,
        errors: None,
    }
}

pub(crate) fn not_found(documentation_url: &'static str) -> GhError {
    error(StatusCode::NOT_FOUND, "Not Found", documentation_url)
}

/// 422 "Validation Failed" with GitHub's `errors` array.
pub(crate) fn validation_failed(errors: Vec<Value>, documentation_url: &'static str) -> GhError {
    GhError {
        errors: Some(errors),
        ..error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed",
            documentation_url,
        )
    }
}

/// `{"resource": "PullRequest", "field": <field>, "code": "invalid"}`: e.g. a head branch that does not exist.
pub(crate) fn invalid_field(resource: &str, field: &str) -> Value {
    json!({"resource": resource, "field": field, "code": "invalid"})
}

/// `{"resource": ..., "code": "custom", "message": ...}`: e.g. "A pull request already exists for o:b."
pub(crate) fn custom(resource: &str, message: &str) -> Value {
    json!({"resource": resource, "code": "custom", "message": message})
}

pub(crate) fn problems_parsing_json(documentation_url: &'static str) -> GhError {
    error(
        StatusCode::BAD_REQUEST,
        "Problems parsing JSON",
        documentation_url,
    )
}

/// A body that parses but misses a required property (JSON-schema validation).
pub(crate) fn not_supplied(field: &str, documentation_url: &'static str) -> GhError {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("Invalid request.\n\n\"{field}\" wasn't supplied."),
        documentation_url,
    )
}

/// A parameter of the wrong type or format (JSON-schema validation): `value` is not a `kind`.
pub(crate) fn not_a(
    field: &str,
    value: &Value,
    kind: &str,
    documentation_url: &'static str,
) -> GhError {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("Invalid request.\n\nFor '{field}', {value} is not a {kind}."),
        documentation_url,
    )
}
