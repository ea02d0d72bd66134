//! The API's one error type. Each variant maps to a status code and a JSON body that says what is wrong;
//! internal errors are logged and answered without their details.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{cluster::FieldProblem, storage::StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body does not match the expected shape")]
    InvalidBody(FieldProblem),
    #[error("the request is invalid")]
    Validation(Vec<FieldProblem>),
    #[error("invalid query parameter")]
    InvalidQuery(FieldProblem),
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// A webhook delivery whose signature does not verify (or no secret to verify it with).
    #[error("{0}")]
    BadSignature(String),
    /// A webhook delivery about an event older than the accepted window.
    #[error("{0}")]
    StaleDelivery(String),
    /// A signed body seen before under another delivery id.
    #[error("{0}")]
    ReplayedDelivery(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A bounded resource (a tuning) is in use: try again later.
    #[error("{0}")]
    Busy(String),
    #[error("the database is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `validation_failed`.
    pub error: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The fields at fault, when the request's content is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadSignature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            ApiError::StaleDelivery(_) => (StatusCode::UNPROCESSABLE_ENTITY, "stale_delivery"),
            ApiError::ReplayedDelivery(_) => (StatusCode::CONFLICT, "replayed_delivery"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, "busy"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn into_body(self) -> ErrorBody {
        let (_, code) = self.status_and_code();
        let message = self.to_string();
        let fields = match self {
            ApiError::InvalidBody(problem) | ApiError::InvalidQuery(problem) => vec![problem],
            ApiError::Validation(problems) => problems,
            _ => Vec::new(),
        };
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.problem),
            [] => message,
            many => format!("{} fields are invalid", many.len()),
        };
        ErrorBody {
            error: code,
            message,
            fields,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        match &self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            ApiError::Unavailable => tracing::warn!("request failed: database unavailable"),
            _ => {}
        }
        let unauthorized = matches!(self, ApiError::Unauthorized);
        let mut response = (status, Json(self.into_body())).into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"autoscaler\""),
            );
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => ApiError::NotFound("not found".to_owned()),
            StorageError::Conflict => ApiError::Conflict("already exists".to_owned()),
            StorageError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.into()),
        }
    }
}
