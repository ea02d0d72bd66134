//! Flink's REST error responses: any status with `{"errors": ["..."]}` (external-apis.md §5).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone)]
pub(crate) struct RestError {
    status: StatusCode,
    message: String,
}

impl RestError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn job_not_found(jid: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("Job {jid} not found"))
    }

    /// Path parameters are parsed before the handler runs; a malformed id never reaches a lookup.
    pub(crate) fn bad_id(what: &str, value: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Bad request, could not parse parameters: Cannot parse {what} {value:?}."),
        )
    }

    /// The strict object mapper rejects unknown fields and wrong types with this message.
    pub(crate) fn bad_body(body_type: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Request did not match expected format {body_type}."),
        )
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "errors": [self.message] }))).into_response()
    }
}

/// JobIDs, trigger ids and vertex ids are 32 lowercase hex digits.
pub(crate) fn is_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
