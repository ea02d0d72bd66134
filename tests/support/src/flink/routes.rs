//! The HTTP surface of the Flink test server, with Flink's refusal rules and error shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Shared;
use super::cluster::{JobState, MAX_PARALLELISM, SavepointOp};
use super::errors::{RestError, is_id};

/// Where savepoints go without a `targetDirectory`: the cluster's `state.savepoints.dir`.
const DEFAULT_SAVEPOINT_DIR: &str = "file:/flink/savepoints";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/jobs/overview", get(overview))
        .route("/jobs/{jobid}", get(job_details))
        .route("/jobs/{jobid}/status", get(job_status))
        .route("/jobs/{jobid}/stop", post(stop_with_savepoint))
        .route(
            "/jobs/{jobid}/savepoints/{triggerid}",
            get(savepoint_status),
        )
        .route("/jobs/{jobid}/rescaling", patch(rescaling))
        .route(
            "/jobs/{jobid}/resource-requirements",
            get(get_requirements).put(put_requirements),
        )
        .route("/jars/{jarid}/run", post(run_jar))
        .fallback(|uri: Uri| async move {
            RestError::new(StatusCode::NOT_FOUND, format!("Not found: {}", uri.path()))
        })
        .with_state(shared)
}

fn job_id(jid: &str) -> Result<(), RestError> {
    if is_id(jid) {
        Ok(())
    } else {
        Err(RestError::bad_id("JobID", jid))
    }
}

/// Parses a body with the strict mapper: unknown fields and wrong types are 400. An empty body
/// is the type's default, as Flink reads a missing body for optional request bodies.
fn parse<T: DeserializeOwned + Default>(
    body: &[u8],
    type_name: &str,
) -> Result<(Value, T), RestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((json!({}), T::default()));
    }
    let raw: Value = serde_json::from_slice(body).map_err(|_| RestError::bad_body(type_name))?;
    let parsed = T::deserialize(&raw).map_err(|_| RestError::bad_body(type_name))?;
    Ok((raw, parsed))
}

async fn overview(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let mut state = shared.lock();
    let now = state.now();
    let jobs: Vec<Value> = state.jobs.values().map(|j| j.overview(now)).collect();
    Json(json!({ "jobs": jobs }))
}

async fn job_details(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
) -> Result<Json<Value>, RestError> {
    job_id(&jid)?;
    let mut state = shared.lock();
    let now = state.now();
    let job = state
        .jobs
        .get_mut(&jid)
        .ok_or_else(|| RestError::job_not_found(&jid))?;
    job.observe();
    Ok(Json(job.details(now)))
}

async fn job_status(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
) -> Result<Json<Value>, RestError> {
    job_id(&jid)?;
    let state = shared.lock();
    let job = state
        .jobs
        .get(&jid)
        .ok_or_else(|| RestError::job_not_found(&jid))?;
    Ok(Json(json!({ "status": job.state.as_str() })))
}

/// `StopWithSavepointRequestBody`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

async fn stop_with_savepoint(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
    body: Bytes,
) -> Result<Response, RestError> {
    job_id(&jid)?;
    let (raw, request) = parse::<StopRequest>(&body, "StopWithSavepointRequestBody")?;
    if let Some(t) = &request.trigger_id
        && !is_id(t)
    {
        return Err(RestError::bad_body("StopWithSavepointRequestBody"));
    }
    let mut state = shared.lock();
    let polls = state.polls_to_complete;
    let savepoint_name = state.new_id();
    let fresh_trigger = state.new_id();
    let job = state
        .jobs
        .get(&jid)
        .ok_or_else(|| RestError::job_not_found(&jid))?;
    // The operation cache is consulted first (FLINK-24208): the same key is the same operation,
    // even once the job has finished because of it.
    if let Some(t) = &request.trigger_id
        && job.savepoints.contains_key(t)
    {
        let t = t.clone();
        state.stop_requests.push(raw);
        return Ok(accepted(&t));
    }
    // A finished job has no JobMaster to ask any more.
    if job.state == JobState::Finished {
        return Err(RestError::job_not_found(&jid));
    }
    let trigger = request.trigger_id.unwrap_or(fresh_trigger);
    let dir = request
        .target_directory
        .unwrap_or_else(|| DEFAULT_SAVEPOINT_DIR.to_owned());
    let outcome = match state.fail_next_savepoint.take() {
        Some(cause) => Err(cause),
        None => Ok(format!(
            "{}/savepoint-{}-{}",
            dir.trim_end_matches('/'),
            &jid[..6],
            &savepoint_name[20..]
        )),
    };
    state.stop_requests.push(raw);
    if let Some(job) = state.jobs.get_mut(&jid) {
        job.savepoints.insert(
            trigger.clone(),
            SavepointOp {
                polls_left: polls,
                outcome,
                completed: false,
            },
        );
    }
    Ok(accepted(&trigger))
}

fn accepted(trigger: &str) -> Response {
    (StatusCode::ACCEPTED, Json(json!({ "request-id": trigger }))).into_response()
}

async fn savepoint_status(
    State(shared): State<Arc<Shared>>,
    Path((jid, trigger)): Path<(String, String)>,
) -> Result<Json<Value>, RestError> {
    job_id(&jid)?;
    if !is_id(&trigger) {
        return Err(RestError::bad_id("TriggerId", &trigger));
    }
    let mut state = shared.lock();
    let now = state.now();
    let job = state
        .jobs
        .get_mut(&jid)
        .ok_or_else(|| RestError::job_not_found(&jid))?;
    let Some(op) = job.savepoints.get_mut(&trigger) else {
        return Err(RestError::new(
            StatusCode::NOT_FOUND,
            format!("There is no savepoint operation with triggerId={trigger} for job {jid}."),
        ));
    };
    if op.polls_left > 0 {
        op.polls_left -= 1;
        return Ok(Json(json!({ "status": { "id": "IN_PROGRESS" } })));
    }
    let first_completion = !op.completed;
    op.completed = true;
    let outcome = op.outcome.clone();
    let operation = match &outcome {
        Ok(location) => json!({ "location": location }),
        Err(cause) => json!({ "failure-cause": {
            "class": "java.util.concurrent.CompletionException",
            "stack-trace": format!(
                "java.util.concurrent.CompletionException: {cause}\n\tat org.apache.flink.runtime.scheduler.stopwithsavepoint.StopWithSavepointTerminationHandlerImpl.handleSavepointCreationFailure"
            ),
            "serialized-throwable": "rO0ABXNyAChqYXZhLnV0aWwuY29uY3VycmVudC5Db21wbGV0aW9uRXhjZXB0aW9u",
        }}),
    };
    // A successful stop-with-savepoint finishes the job; a failed one leaves it running.
    if first_completion && outcome.is_ok() {
        job.state = JobState::Finished;
        job.end_time = Some(now);
    }
    Ok(Json(
        json!({ "status": { "id": "COMPLETED" }, "operation": operation }),
    ))
}

async fn rescaling(State(shared): State<Arc<Shared>>, Path(_jid): Path<String>) -> RestError {
    shared.lock().rescaling_calls += 1;
    RestError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Rescaling is temporarily disabled. See FLINK-12312.",
    )
}

/// `JarRunRequestBody` as of Flink 1.19. The fields this server does not act on are still parsed, so
/// a wrong type or an unknown name is refused as Flink's strict mapper does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[expect(dead_code, reason = "some fields are only validated by parsing")]
struct RunRequest {
    entry_class: Option<String>,
    program_args: Option<String>,
    program_args_list: Option<Vec<String>>,
    parallelism: Option<i64>,
    job_id: Option<String>,
    allow_non_restored_state: Option<bool>,
    savepoint_path: Option<String>,
    restore_mode: Option<String>,
    flink_configuration: Option<BTreeMap<String, String>>,
}

async fn run_jar(
    State(shared): State<Arc<Shared>>,
    Path(jar_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, RestError> {
    let (raw, request) = parse::<RunRequest>(&body, "JarRunRequestBody")?;
    let mut state = shared.lock();
    let Some(jar) = state.jars.get(&jar_id).cloned() else {
        return Err(RestError::new(
            StatusCode::BAD_REQUEST,
            format!("Jar file /tmp/flink-web-upload/{jar_id} does not exist"),
        ));
    };
    state.submissions.push(raw);
    if let Some((status, message)) = state.fail_next_submission.take() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(RestError::new(status, message));
    }
    let parallelism = match request.parallelism {
        None => 1,
        Some(p) if p > 0 && p <= i64::from(u32::MAX) => p as u32,
        Some(p) => {
            return Err(RestError::new(
                StatusCode::BAD_REQUEST,
                format!("The parallelism must be a positive number: {p}"),
            ));
        }
    };
    if let Some(path) = &request.savepoint_path {
        let known = state.jobs.values().any(|j| {
            j.savepoints
                .values()
                .any(|op| op.completed && op.outcome.as_ref().ok() == Some(path))
        });
        if !known {
            return Err(RestError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "Could not execute application: Cannot find checkpoint or savepoint file/directory '{path}' on file system."
                ),
            ));
        }
    }
    let jid = match request.job_id {
        Some(id) if is_id(&id) => id,
        Some(_) => return Err(RestError::bad_body("JarRunRequestBody")),
        None => state.new_id(),
    };
    if state.jobs.contains_key(&jid) {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            format!("Job has already been submitted: {jid}"),
        ));
    }
    let at = state.now();
    let name = jar
        .program_name
        .unwrap_or_else(|| "Flink Streaming Job".to_owned());
    let mut job = super::cluster::Job::new(
        jid.clone(),
        name,
        jar_id,
        jar.pinned_parallelism.unwrap_or(parallelism),
        at,
    );
    job.state = JobState::Initializing;
    job.initializing_gets_left = state.polls_to_complete;
    job.restored_from = request.savepoint_path;
    state.jobs.insert(jid.clone(), job);
    Ok(Json(json!({ "jobid": jid })))
}

async fn get_requirements(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
) -> Result<Json<Value>, RestError> {
    job_id(&jid)?;
    let state = shared.lock();
    let job = state
        .jobs
        .get(&jid)
        .ok_or_else(|| RestError::job_not_found(&jid))?;
    Ok(Json(job.requirements()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VertexRequirements {
    parallelism: Bounds,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Bounds {
    lower_bound: u32,
    upper_bound: u32,
}

async fn put_requirements(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, RestError> {
    job_id(&jid)?;
    let (raw, requested) =
        parse::<BTreeMap<String, VertexRequirements>>(&body, "JobResourceRequirementsBody")?;
    let mut state = shared.lock();
    let adaptive = state.adaptive;
    let polls = state.polls_to_complete;
    let job = state
        .jobs
        .get_mut(&jid)
        .filter(|j| j.state != JobState::Finished)
        .ok_or_else(|| RestError::job_not_found(&jid))?;
    if !adaptive {
        return Err(RestError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The DefaultScheduler does not support changing the parallelism without a job restart. \
             This feature is currently only expected to work with the AdaptiveScheduler.",
        ));
    }
    let mut problems = Vec::new();
    for v in &job.vertices {
        match requested.get(&v.id) {
            None => problems.push(format!(
                "Missing resource requirements for vertex {}.",
                v.id
            )),
            Some(r) if r.parallelism.lower_bound < 1 => problems.push(format!(
                "The lower bound of vertex {} must be positive.",
                v.id
            )),
            Some(r) if r.parallelism.upper_bound < r.parallelism.lower_bound => {
                problems.push(format!(
                    "The upper bound of vertex {} is below its lower bound.",
                    v.id
                ))
            }
            Some(r) if r.parallelism.upper_bound > MAX_PARALLELISM => problems.push(format!(
                "Vertex {} has an upper bound of {} above its max parallelism {MAX_PARALLELISM}.",
                v.id, r.parallelism.upper_bound
            )),
            Some(_) => {}
        }
    }
    for id in requested.keys() {
        if !job.vertices.iter().any(|v| &v.id == id) {
            problems.push(format!("Unknown vertex {id}."));
        }
    }
    if !problems.is_empty() {
        return Err(RestError::new(StatusCode::BAD_REQUEST, problems.join(" ")));
    }
    let mut targets = BTreeMap::new();
    for v in &mut job.vertices {
        if let Some(r) = requested.get(&v.id) {
            v.lower = r.parallelism.lower_bound;
            v.upper = r.parallelism.upper_bound;
            // Enough slots are assumed: the scheduler settles at the upper bound.
            targets.insert(v.id.clone(), v.upper);
        }
    }
    job.pending_rescale = Some((polls, targets));
    state.requirement_updates.push(raw);
    Ok(Json(json!({})))
}
