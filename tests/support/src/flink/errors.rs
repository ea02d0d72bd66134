//! Flink's REST error responses, in the shapes a real Flink 2.3 sends (as captured from one):
//! - a 5xx: `{"errors": ["Internal server error.", "<Exception on server side:\n<class>: <message>\n\tat …
//!   \n\nEnd of exception on server side>"]}`;
//! - a 4xx from a handler: `{"errors": ["<class>: <message>\n\tat …\nCaused by: <class>: <message>…"]}`;
//! - a path no handler serves: `{"errors": ["Unable to load requested file <path>."]}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(crate) const HANDLER_EXCEPTION: &str =
    "org.apache.flink.runtime.rest.handler.RestHandlerException";
pub(crate) const JOB_NOT_FOUND: &str =
    "org.apache.flink.runtime.messages.FlinkJobNotFoundException";
pub(crate) const COMPLETION: &str = "java.util.concurrent.CompletionException";

/// A stack frame, so the text reads like Flink's (clients must not depend on frames).
const FRAME: &str = "\tat org.apache.flink.runtime.rest.handler.AbstractRestHandler.respondToRequest(AbstractRestHandler.java:83)";

#[derive(Debug, Clone)]
pub(crate) struct RestError {
    status: StatusCode,
    errors: Vec<String>,
}

/// `<class>: <message>` with a frame, then each cause as a `Caused by:` line with a frame.
pub(crate) fn java_text(class: &str, message: &str, causes: &[(&str, String)]) -> String {
    let mut text = format!("{class}: {message}\n{FRAME}\n");
    for (class, message) in causes {
        text.push_str(&format!(
            "Caused by: {class}: {message}\n{FRAME}\n\t... 1 more\n"
        ));
    }
    text
}

impl RestError {
    /// A handler's refusal: the whole exception in `errors[0]`.
    pub(crate) fn handler(status: StatusCode, message: impl Into<String>) -> Self {
        Self::chain(status, HANDLER_EXCEPTION, &message.into(), &[])
    }

    /// A handler's refusal with its `Caused by:` chain.
    pub(crate) fn chain(
        status: StatusCode,
        class: &str,
        message: &str,
        causes: &[(&str, String)],
    ) -> Self {
        Self {
            status,
            errors: vec![java_text(class, message, causes)],
        }
    }

    /// Any exception the handler did not turn into a status: 500, the cause in `errors[1]`.
    pub(crate) fn server(class: &str, message: &str) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            errors: vec![
                "Internal server error.".to_owned(),
                format!(
                    "<Exception on server side:\n{}\nEnd of exception on server side>",
                    java_text(class, message, &[])
                ),
            ],
        }
    }

    /// The same error under another status.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// A path no handler serves.
    pub(crate) fn no_handler(path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            errors: vec![format!("Unable to load requested file {path}.")],
        }
    }

    /// `GET /jobs/{jobid}` (and the other graph-cache handlers) for a job Flink does not know.
    pub(crate) fn job_not_found(jid: &str) -> Self {
        Self::chain(
            StatusCode::NOT_FOUND,
            "org.apache.flink.runtime.rest.NotFoundException",
            &format!("Job {jid} not found"),
            &[(JOB_NOT_FOUND, format!("Could not find Flink job ({jid})"))],
        )
    }

    /// The dispatcher's answer for a job it does not know (`/status`, the requirements): a 500.
    pub(crate) fn dispatcher_job_not_found(jid: &str) -> Self {
        Self::server(JOB_NOT_FOUND, &format!("Could not find Flink job ({jid})"))
    }

    /// Path parameters are parsed before the handler runs; a malformed id never reaches a lookup.
    pub(crate) fn bad_id(parameter: &str, value: &str) -> Self {
        let reason = format!("Cannot resolve path parameter ({parameter}) from value \"{value}\".");
        Self::chain(
            StatusCode::BAD_REQUEST,
            HANDLER_EXCEPTION,
            &format!("Bad request, could not parse parameters: {reason}"),
            &[(
                "org.apache.flink.runtime.rest.handler.HandlerRequestException",
                reason,
            )],
        )
    }

    /// A body of the wrong shape (a wrong type, a bad enum value; unknown fields are ignored).
    pub(crate) fn bad_body(body_type: &str, detail: &str) -> Self {
        Self::chain(
            StatusCode::BAD_REQUEST,
            HANDLER_EXCEPTION,
            &format!("Request did not match expected format {body_type}."),
            &[(
                "org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonMappingException",
                detail.to_owned(),
            )],
        )
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "errors": self.errors }))).into_response()
    }
}

/// JobIDs, trigger ids and vertex ids are 32 lowercase hex digits.
pub(crate) fn is_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
