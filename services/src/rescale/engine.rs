//! The pipeline engine's control API (pipeline-engine/src/control.rs): `POST /control/rescale` with a
//! bearer token drains, commits and restarts the stages at the new parallelism; `GET /status` shows
//! where the engine is. Error bodies are `{"error": "..."}`.

use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;
use url::Url;

use super::error::{Problem, RescaleError, Situation};
use super::http::{call, join, redacted};
use super::{RescaleMethod, RescaleSettings, RescaleStep, Rescaled};

/// The part of `GET /status` the driver reads.
#[derive(Debug, Deserialize)]
pub(super) struct Status {
    pub(super) state: String,
    pub(super) parallelism: u32,
    pub(super) sink_parallelism: Option<u32>,
}

/// `GET /status` of the engine at `control_url`.
pub(super) async fn status(
    http: &reqwest::Client,
    control_url: &Url,
    settings: &RescaleSettings,
) -> Result<Status, Problem> {
    call::<Status>(
        http.get(join(control_url, &["status"]))
            .timeout(settings.request_timeout),
        message_of,
    )
    .await
}

fn message_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error)
}

pub(super) async fn rescale(
    http: &reqwest::Client,
    control_url: &Url,
    token: Option<&str>,
    parallelism: u32,
    settings: &RescaleSettings,
    record: &mut (dyn FnMut(RescaleStep) + Send),
) -> Result<Rescaled, RescaleError> {
    let shown = redacted(&join(control_url, &["status"]));
    let get_status = || status(http, control_url, settings);

    let before = get_status()
        .await
        .map_err(|p| RescaleError::new("reading the engine's status", p, Situation::Untouched))?;
    // A retry after a crash finds the rescale already done; draining again would gain nothing.
    if before.state == "running" && before.parallelism == parallelism {
        record(RescaleStep::new(
            "already_at_parallelism",
            json!({"parallelism": parallelism}),
        ));
        return Ok(Rescaled::new(
            parallelism,
            RescaleMethod::AlreadyAtParallelism,
        ));
    }

    let mut request = http
        .post(join(control_url, &["control", "rescale"]))
        // Draining takes up to the engine's control.drain_deadline_ms on top of a normal call.
        .timeout(settings.request_timeout + settings.timeout)
        .json(&json!({"parallelism": parallelism}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answered = call::<Status>(request, message_of).await.map_err(|p| {
        // Refusals are decided before anything moves; other failures may come after the drain began.
        let situation = match &p {
            Problem::Unauthorized(_) | Problem::Forbidden(_) | Problem::Refused { .. } => {
                Situation::Untouched
            }
            _ => Situation::EngineMayBeRescaling {
                status_url: shown.clone(),
            },
        };
        RescaleError::new("asking the engine to rescale", p, situation)
    })?;
    record(RescaleStep::new(
        "engine_rescaled",
        json!({
            "from": before.parallelism,
            "parallelism": answered.parallelism,
            "sink_parallelism": answered.sink_parallelism,
            "state": answered.state,
        }),
    ));

    crate::fault::pause_at(crate::fault::WORKER_ENGINE_RESTART).await;
    // The answer already is the new status; reading it back confirms the stages came up and stayed.
    let requested = || Situation::EngineRescaleRequested {
        status_url: shown.clone(),
        parallelism,
    };
    let deadline = Instant::now() + settings.timeout;
    let last = loop {
        let status = get_status()
            .await
            .map_err(|p| RescaleError::new("verifying the engine's parallelism", p, requested()))?;
        if status.state == "running" || Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(settings.poll_interval).await;
    };
    if last.state != "running" {
        return Err(RescaleError::new(
            "verifying the engine's parallelism",
            Problem::TimedOut {
                waiting_for: format!("the engine to be running (it is {})", last.state),
                waited: settings.timeout,
            },
            requested(),
        ));
    }
    if last.parallelism != parallelism {
        return Err(RescaleError::new(
            "verifying the engine's parallelism",
            Problem::Mismatch {
                expected: parallelism,
                actual: last.parallelism,
                detail: "as GET /status reports it".to_owned(),
            },
            requested(),
        ));
    }
    record(RescaleStep::new(
        "parallelism_verified",
        json!({"parallelism": last.parallelism, "sink_parallelism": last.sink_parallelism}),
    ));
    Ok(Rescaled::new(parallelism, RescaleMethod::EngineControl))
}
