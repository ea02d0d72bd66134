//! Stop-with-savepoint and its asynchronous operation, as Flink's dispatcher runs them: the operation
//! cache is keyed by (job id, trigger id) and consulted first, so the same trigger is the same
//! operation; a stop of a job the dispatcher does not run (finished or unknown) is accepted and then
//! fails; a completed result is kept for `rest.async.store-duration`, after which the key is free.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::cluster::JobState;
use super::errors::{COMPLETION, JOB_NOT_FOUND, RestError, is_id};
use super::routes::{check_job_id, parse};

/// Where savepoints go without a `targetDirectory`: the cluster's `execution.checkpointing.savepoint-dir`.
const DEFAULT_SAVEPOINT_DIR: &str = "file:/flink/savepoints";

/// A stop-with-savepoint operation.
#[derive(Debug, Clone)]
pub(crate) struct SavepointOp {
    pub(crate) polls_left: u32,
    /// `Ok(location)` or `Err(failure stack trace)`, decided when the operation is registered.
    pub(crate) outcome: Result<String, String>,
    /// When a poll first saw it complete; the result expires `store_duration` later.
    pub(crate) completed_at: Option<Instant>,
    /// Operations registered under this key so far (a key is reused once its result expired).
    pub(crate) generation: usize,
}

/// `StopWithSavepointRequestBody`. Unknown fields are ignored, as Flink's mapper does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopRequest {
    target_directory: Option<String>,
    #[expect(
        dead_code,
        reason = "validated by parsing; no event-time timers to fire here"
    )]
    drain: Option<bool>,
    #[expect(
        dead_code,
        reason = "validated by parsing; both formats restore the same here"
    )]
    format_type: Option<FormatType>,
    trigger_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum FormatType {
    Canonical,
    Native,
}

pub(crate) async fn stop_with_savepoint(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
    body: Bytes,
) -> Result<Response, RestError> {
    check_job_id(&jid)?;
    let (raw, request) = parse::<StopRequest>(&body, "StopWithSavepointRequestBody")?;
    if let Some(t) = &request.trigger_id
        && !is_id(t)
    {
        return Err(RestError::bad_body(
            "StopWithSavepointRequestBody",
            &format!(
                "For input string: \"{}\" under radix 16",
                t.get(..2).unwrap_or(t)
            ),
        ));
    }
    let mut state = shared.lock();
    let store = state.store_duration;
    let name = state.new_id();
    let trigger = request.trigger_id.unwrap_or_else(|| state.new_id());
    state.stop_requests.push(raw);
    let key = (jid.clone(), trigger.clone());
    let generation = match state.operations.get(&key) {
        Some(op) if op.completed_at.is_none_or(|t| t.elapsed() < store) => {
            return Ok(accepted(&trigger));
        }
        Some(op) => op.generation + 1,
        None => 1,
    };
    if std::mem::take(&mut state.cancel_before_next_stop) {
        let now = state.now();
        if let Some(job) = state.jobs.get_mut(&jid) {
            job.end(JobState::Canceled, now);
        }
    }
    let live = state.jobs.get(&jid).is_some_and(|j| !j.state.ended());
    let outcome = if !live {
        // The dispatcher accepts the trigger, then finds no JobMaster to ask.
        Err(format!(
            "{COMPLETION}: {JOB_NOT_FOUND}: Could not find Flink job ({jid})"
        ))
    } else if let Some(cause) = state.fail_next_savepoint.take() {
        Err(format!("{COMPLETION}: {cause}"))
    } else {
        let dir = request
            .target_directory
            .unwrap_or_else(|| DEFAULT_SAVEPOINT_DIR.to_owned());
        Ok(format!(
            "{}/savepoint-{}-{}",
            dir.trim_end_matches('/'),
            &jid[..6],
            &name[20..]
        ))
    };
    let polls_left = state.polls_to_complete;
    state.operations.insert(
        key,
        SavepointOp {
            polls_left,
            outcome,
            completed_at: None,
            generation,
        },
    );
    Ok(accepted(&trigger))
}

fn accepted(trigger: &str) -> Response {
    (StatusCode::ACCEPTED, Json(json!({ "request-id": trigger }))).into_response()
}

pub(crate) async fn savepoint_status(
    State(shared): State<Arc<Shared>>,
    Path((jid, trigger)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    check_job_id(&jid)?;
    if !is_id(&trigger) {
        return Err(RestError::bad_id("triggerid", &trigger));
    }
    let mut state = shared.lock();
    let now = state.now();
    let store = state.store_duration;
    let key = (jid.clone(), trigger.clone());
    let op = state
        .operations
        .get_mut(&key)
        .filter(|op| op.completed_at.is_none_or(|t| t.elapsed() < store))
        .ok_or_else(|| {
            RestError::handler(
                StatusCode::NOT_FOUND,
                format!("There is no savepoint operation with triggerId={trigger} for job {jid}."),
            )
        })?;
    if op.polls_left > 0 {
        op.polls_left -= 1;
        return Ok(Json(
            json!({ "status": { "id": "IN_PROGRESS" }, "operation": null }),
        ));
    }
    let first_completion = op.completed_at.is_none();
    op.completed_at.get_or_insert_with(Instant::now);
    let outcome = op.outcome.clone();
    let operation = match &outcome {
        Ok(location) => json!({ "location": location }),
        Err(trace) => json!({ "failure-cause": {
            "class": COMPLETION,
            "stack-trace": format!(
                "{trace}\n\tat org.apache.flink.runtime.dispatcher.Dispatcher.stopWithSavepointAndGetLocation(Dispatcher.java:1956)"
            ),
            "serialized-throwable": "rO0ABXNyAChqYXZhLnV0aWwuY29uY3VycmVudC5Db21wbGV0aW9uRXhjZXB0aW9u",
        }}),
    };
    // A successful stop-with-savepoint finishes the job; a failed one leaves it running.
    if first_completion && let Ok(location) = &outcome {
        state.savepoints.insert(location.clone());
        if let Some(job) = state.jobs.get_mut(&jid) {
            job.end(JobState::Finished, now);
            job.stop_savepoint = Some(location.clone());
        }
    }
    Ok(Json(
        json!({ "status": { "id": "COMPLETED" }, "operation": operation }),
    ))
}
