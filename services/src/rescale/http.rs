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

/// Sends the request; a 2xx body is parsed as `T`, anything else becomes a [`Problem`].
pub(super) async fn call<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    message_of: MessageOf,
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
    let message = message_of(&body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
        text.trim().to_owned()
    });
    Err(match status.as_u16() {
        401 => Problem::Unauthorized(message),
        403 => Problem::Forbidden(message),
        404 => Problem::NotFound(message),
        409 => Problem::Conflict(message),
        s @ (429 | 500..=599) => Problem::Unavailable(format!("HTTP {s}: {message}")),
        s @ 400..=499 => Problem::Refused { status: s, message },
        s => Problem::Malformed(format!("unexpected HTTP {s}: {message}")),
    })
}
