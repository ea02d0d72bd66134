//! Argo CD's error responses: grpc-gateway v1 turns a gRPC status into
//! `{"error", "code", "message", "details"}` with the HTTP status `HTTPStatusFromCode` gives
//! (external-apis.md §1.3).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The gRPC status codes this server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrpcCode {
    /// A plain Go error that is not a gRPC status (e.g. a wrapped resolver error).
    Unknown = 2,
    InvalidArgument = 3,
    NotFound = 5,
    PermissionDenied = 7,
    FailedPrecondition = 9,
    Unauthenticated = 16,
}

impl GrpcCode {
    /// grpc-gateway's `HTTPStatusFromCode`; FailedPrecondition is deliberately 400, not 412.
    fn http_status(self) -> StatusCode {
        match self {
            GrpcCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            GrpcCode::InvalidArgument | GrpcCode::FailedPrecondition => StatusCode::BAD_REQUEST,
            GrpcCode::NotFound => StatusCode::NOT_FOUND,
            GrpcCode::PermissionDenied => StatusCode::FORBIDDEN,
            GrpcCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    code: GrpcCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(code: GrpcCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// What the Kubernetes client says for a missing Application, passed through as NotFound.
    pub(crate) fn app_not_found(name: &str) -> Self {
        Self::new(
            GrpcCode::NotFound,
            format!("applications.argoproj.io \"{name}\" not found"),
        )
    }

    /// The RBAC/project guard's answer, which deliberately does not say whether the app exists.
    pub(crate) fn permission_denied() -> Self {
        Self::new(GrpcCode::PermissionDenied, "permission denied")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.message,
            "code": self.code as i32,
            "message": self.message,
            "details": [],
        });
        (self.code.http_status(), Json(body)).into_response()
    }
}
