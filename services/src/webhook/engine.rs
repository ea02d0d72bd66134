//! `POST /webhooks/engine`: pipeline engine instances register, heartbeat and unregister, so the
//! autoscaler knows when new capacity is really up and where each instance's control API answers (see
//! `pipeline-engine/src/announce.rs`). The control URL comes from outside: it is checked here for shape
//! and against the outbound policy, and again by the worker before every use.

use axum::{Json, body::Body, extract::State, http::HeaderMap};
use serde::Deserialize;
use url::Url;

use super::{Receipt, WebhookState, parse_json, read_body};
use crate::{
    api::ApiError, cluster::FieldProblem, outbound::OutboundPolicy, storage::StorageError,
    tenancy::Role,
};

/// Longer than any control URL a deployment needs; a longer one is refused rather than stored.
const MAX_CONTROL_URL_BYTES: usize = 2048;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Announcement {
    cluster: String,
    instance: String,
    event: Event,
    /// Where the instance's control API answers; engines before this field announce none.
    #[serde(default)]
    control_url: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Event {
    Register,
    Heartbeat,
    Unregister,
}

pub(super) async fn receive(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let result = accept(&state, &headers, body).await;
    super::count(&state, "engine", &result);
    result
}

async fn accept(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Receipt>, ApiError> {
    let principal = crate::api::bearer(headers)
        .and_then(|token| state.engine_tokens.authenticate(token))
        .map(|(principal, _)| principal)
        .filter(|principal| principal.role == Role::Engine);
    let Some(principal) = principal else {
        state.metrics.refused("unauthenticated");
        return Err(ApiError::Unauthorized);
    };
    let body = read_body(body, state.max_body_bytes).await?;
    let announcement: Announcement = parse_json(&body)?;
    if announcement.instance.is_empty()
        || announcement.instance.len() > 253
        || announcement.instance.contains('\0')
    {
        return Err(ApiError::MalformedJson(
            "instance: must be 1 to 253 characters, without NUL".to_owned(),
        ));
    }
    // A cluster outside the token's scope is answered as a missing one, so a token cannot tell which
    // names other teams use, and nothing is recorded.
    let unknown = || {
        ApiError::NotFound(format!(
            "no subscribed cluster is named {:?}",
            announcement.cluster
        ))
    };
    match state.storage.get_cluster(&announcement.cluster).await {
        Ok(cluster) => {
            if principal
                .may_announce(&announcement.cluster, &cluster.team)
                .is_err()
            {
                state.metrics.refused("engine_scope");
                tracing::warn!(token = %principal.name, cluster = %announcement.cluster, "an engine token announced for a cluster outside its scope");
                return Err(unknown());
            }
        }
        Err(StorageError::NotFound) => return Err(unknown()),
        Err(e) => return Err(e.into()),
    }
    let control_url = match &announcement.control_url {
        Some(url) => Some(
            checked_control_url(url, &state.outbound).map_err(|problem| {
                ApiError::InvalidBody(FieldProblem::new("control_url", problem))
            })?,
        ),
        None => None,
    };
    let result = match announcement.event {
        Event::Register | Event::Heartbeat => {
            state
                .storage
                .engine_heartbeat(
                    &announcement.cluster,
                    &announcement.instance,
                    control_url.as_ref().map(Url::as_str),
                )
                .await
        }
        Event::Unregister => {
            state
                .storage
                .engine_unregister(&announcement.cluster, &announcement.instance)
                .await
        }
    };
    match result {
        Ok(()) => Ok(Json(Receipt {
            status: "recorded",
            decision: None,
            detail: None,
        })),
        Err(StorageError::NotFound) => Err(ApiError::NotFound(format!(
            "no subscribed cluster is named {:?}",
            announcement.cluster
        ))),
        Err(e) => Err(e.into()),
    }
}

/// An announced control URL the worker may later call with the control token: `http(s)`, a host, no
/// credentials, query or fragment, and a destination the outbound policy allows.
fn checked_control_url(text: &str, policy: &OutboundPolicy) -> Result<Url, String> {
    if text.len() > MAX_CONTROL_URL_BYTES {
        return Err(format!("longer than {MAX_CONTROL_URL_BYTES} bytes"));
    }
    let url = Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", url.scheme()));
    }
    if url.host().is_none() {
        return Err("names no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or a fragment".to_owned());
    }
    policy
        .check_url(&url)
        .map_err(|refusal| format!("refused by the outbound policy: {refusal}"))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_control_urls_are_refused_unless_plain_http_to_an_allowed_host() {
        let policy = OutboundPolicy::default();
        assert!(checked_control_url("http://10.1.2.3:9465", &policy).is_ok());
        assert!(checked_control_url("https://engine-0.logs.svc:9465/", &policy).is_ok());
        for (url, says) in [
            ("not a url", "is not a URL"),
            ("ftp://10.1.2.3/", "scheme"),
            ("http://user:pw@10.1.2.3:9465", "credentials"),
            ("http://10.1.2.3:9465/?a=b", "query"),
            ("http://169.254.169.254/", "outbound policy"),
            ("http://127.0.0.1:9465", "outbound policy"),
            ("http://localhost:9465", "outbound policy"),
            ("http://0.0.0.0:9465", "outbound policy"),
        ] {
            let refused = checked_control_url(url, &policy).expect_err(url);
            assert!(refused.contains(says), "{url}: {refused}");
        }
        let long = format!("http://10.1.2.3/{}", "a".repeat(MAX_CONTROL_URL_BYTES));
        assert!(checked_control_url(&long, &policy).is_err());
    }
}
