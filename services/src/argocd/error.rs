use reqwest::StatusCode;

use super::model::GatewayError;

/// How talking to Argo CD went wrong, each with a reason an operator can act on. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgoCdError {
    #[error("Argo CD rejected the API token (HTTP 401): {0}")]
    Unauthenticated(String),
    #[error(
        "Argo CD denied the request (HTTP 403): {0}; check the account's RBAC for this application \
         (without a project in the spec, Argo CD also answers 403 for an application that does not exist)"
    )]
    PermissionDenied(String),
    #[error("Argo CD refused the sync because a sync window is closed: {0}")]
    SyncWindow(String),
    #[error("application {0:?} does not exist in Argo CD (HTTP 404)")]
    NotFound(String),
    #[error("another Argo CD operation is already in progress on the application")]
    InProgress,
    #[error("Argo CD refused the sync (HTTP 400): {0}")]
    Refused(String),
    #[error("Argo CD is unavailable: {0}")]
    Unavailable(String),
    #[error("Argo CD sent a response that could not be read: {0}")]
    Malformed(String),
    #[error("the sync operation ended {phase}: {message}")]
    OperationFailed { phase: String, message: String },
    #[error("the application did not reach revision {revision} within {waited_seconds} s")]
    Timeout {
        revision: String,
        waited_seconds: u64,
    },
}

impl ArgoCdError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::InProgress | Self::Timeout { .. }
        )
    }

    /// Classifies an error response by its status and grpc-gateway body.
    pub(super) fn from_response(application: &str, status: StatusCode, body: &[u8]) -> Self {
        let parsed: GatewayError = serde_json::from_slice(body).unwrap_or_default();
        let message = parsed
            .message
            .or(parsed.error)
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthenticated(message),
            StatusCode::FORBIDDEN if message.contains("sync window") => Self::SyncWindow(message),
            StatusCode::FORBIDDEN => Self::PermissionDenied(message),
            StatusCode::NOT_FOUND => Self::NotFound(application.to_owned()),
            StatusCode::BAD_REQUEST
                if parsed.code == Some(9)
                    && message.contains("another operation is already in progress") =>
            {
                Self::InProgress
            }
            StatusCode::BAD_REQUEST => Self::Refused(message),
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                Self::Unavailable(format!("HTTP {}: {message}", s.as_u16()))
            }
            s => Self::Malformed(format!("unexpected HTTP {}: {message}", s.as_u16())),
        }
    }
}
