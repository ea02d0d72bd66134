//! One request to a control API, with its answer classified into a [`Problem`].

use serde::de::DeserializeOwned;
use url::Url;

use super::error::Problem;

/// Reads the human message out of an error body; each API has its own shape.
pub(super) type MessageOf = fn(&[u8]) -> Option<String>;

/// `base` with `segments` appended as path segments (each one escaped).
pub(super) fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// The URL without credentials, for messages.
pub(super) fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// Sends the request; a 2xx body is parsed as `T`, anything else becomes a [`Problem`] by its status
/// and the message `message_of` reads from the body.
pub(super) async fn call<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    message_of: MessageOf,
) -> Result<T, Problem> {
    call_with(request, |status, body| {
        by_status(status, message_of(body).unwrap_or_else(|| body_text(body)))
    })
    .await
}

/// Sends the request; a 2xx body is parsed as `T`, anything else becomes the [`Problem`] `classify`
/// makes of its status and body (for APIs whose status alone does not say what went wrong).
pub(super) async fn call_with<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    classify: impl Fn(u16, &[u8]) -> Problem,
) -> Result<T, Problem> {
    // `without_url`: the URL may carry credentials, and messages name the endpoint themselves.
    let response = request
        .send()
        .await
        .map_err(|e| Problem::Unavailable(e.without_url().to_string()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Problem::Unavailable(e.without_url().to_string()))?;
    if status.is_success() {
        // An empty success body (e.g. a PUT) reads as JSON `null`.
        let body: &[u8] = if body.is_empty() { b"null" } else { &body };
        return serde_json::from_slice(body)
            .map_err(|e| Problem::Malformed(format!("HTTP {}: {e}", status.as_u16())));
    }
    Err(classify(status.as_u16(), &body))
}

/// The start of a body no reader understood, for a message.
pub(super) fn body_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().to_owned()
}

/// The usual meaning of an error status.
pub(super) fn by_status(status: u16, message: String) -> Problem {
    match status {
        401 => Problem::Unauthorized(message),
        403 => Problem::Forbidden(message),
        404 => Problem::NotFound(message),
        409 => Problem::Conflict(message),
        s @ (429 | 500..=599) => Problem::Unavailable(format!("HTTP {s}: {message}")),
        s @ 400..=499 => Problem::Refused { status: s, message },
        s => Problem::Malformed(format!("unexpected HTTP {s}: {message}")),
    }
}
