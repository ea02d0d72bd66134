//! The HTTP surface of the Flink test server: jobs, jars and the cluster. Savepoint operations are in
//! `operations.rs`, the adaptive scheduler's requirements in `requirements.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::cluster::{Job, JobState, MAX_PARALLELISM, OPERATORS};
use super::errors::{COMPLETION, HANDLER_EXCEPTION, RestError, is_id};
use super::{Shared, operations, requirements};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/overview", get(cluster_overview))
        .route("/jobmanager/config", get(config))
        .route("/jobs/overview", get(overview))
        .route("/jobs/{jobid}", get(job_details).patch(cancel))
        .route("/jobs/{jobid}/status", get(job_status))
        .route("/jobs/{jobid}/checkpoints", get(checkpoints))
        .route("/jobs/{jobid}/stop", post(operations::stop_with_savepoint))
        .route(
            "/jobs/{jobid}/savepoints/{triggerid}",
            get(operations::savepoint_status),
        )
        .route("/jobs/{jobid}/rescaling", patch(rescaling))
        .route(
            "/jobs/{jobid}/resource-requirements",
            get(requirements::get_requirements).put(requirements::put_requirements),
        )
        .route("/jars/{jarid}/run", post(run_jar))
        .fallback(|uri: Uri| async move { RestError::no_handler(uri.path()) })
        .with_state(shared)
}

pub(crate) fn check_job_id(jid: &str) -> Result<(), RestError> {
    if is_id(jid) {
        Ok(())
    } else {
        Err(RestError::bad_id("jobid", jid))
    }
}

/// Parses a body as Flink's mapper does: unknown fields are ignored, wrong types are a 400. An
/// empty body is the type's default, as Flink reads a missing optional body.
pub(crate) fn parse<T: DeserializeOwned + Default>(
    body: &[u8],
    type_name: &str,
) -> Result<(Value, T), RestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((json!({}), T::default()));
    }
    let raw: Value =
        serde_json::from_slice(body).map_err(|e| RestError::bad_body(type_name, &e.to_string()))?;
    let parsed =
        T::deserialize(&raw).map_err(|e| RestError::bad_body(type_name, &e.to_string()))?;
    Ok((raw, parsed))
}

async fn cluster_overview(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let state = shared.lock();
    let running = state.jobs.values().filter(|j| !j.state.ended()).count();
    Json(json!({
        "taskmanagers": 1,
        "slots-total": state.slots_total,
        "slots-available": state.free_slots(),
        "jobs-running": running,
        "flink-version": "2.3.0",
    }))
}

async fn config(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let state = shared.lock();
    let entries: Vec<Value> = state
        .conf
        .iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    Json(Value::Array(entries))
}

async fn overview(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let mut state = shared.lock();
    let now = state.now();
    let jobs: Vec<Value> = state.jobs.values().map(|j| j.overview(now)).collect();
    Json(json!({ "jobs": jobs }))
}

/// Reading the details moves the job along (its start, an adaptive rescale) for the next read; the
/// answer comes from the cache while it is younger than the configured age, as Flink's
/// execution-graph cache does.
async fn job_details(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
) -> Result<Json<Value>, RestError> {
    check_job_id(&jid)?;
    let mut state = shared.lock();
    let now = state.now();
    let (polls, cooldown, ttl) = (state.polls_to_complete, state.cooldown, state.details_cache);
    let free = state.free_slots();
    let job = state
        .jobs
        .get_mut(&jid)
        .ok_or_else(|| RestError::job_not_found(&jid))?;
    let answer = match &job.cached_details {
        Some((at, cached)) if at.elapsed() < ttl => cached.clone(),
        _ => {
            let fresh = job.details(now);
            job.cached_details = Some((Instant::now(), fresh.clone()));
            fresh
        }
    };
    // This read counts towards the next state, which the next read shows.
    job.observe(now, polls, cooldown, free);
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
struct CancelQuery {
    mode: Option<String>,
}

/// `PATCH /jobs/{jobid}?mode=cancel` → 202 `{}`.
async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
    Query(query): Query<CancelQuery>,
) -> Result<(StatusCode, Json<Value>), RestError> {
    check_job_id(&jid)?;
    if query.mode.as_deref().is_some_and(|m| m != "cancel") {
        return Err(RestError::bad_id(
            "mode",
            query.mode.as_deref().unwrap_or_default(),
        ));
    }
    let mut state = shared.lock();
    let now = state.now();
    let job = state
        .jobs
        .get_mut(&jid)
        .ok_or_else(|| RestError::dispatcher_job_not_found(&jid))?;
    if !job.state.ended() {
        job.end(JobState::Canceled, now);
    }
    Ok((StatusCode::ACCEPTED, Json(json!({}))))
}

/// Fresh, from the dispatcher; a job it does not know is a 500.
async fn job_status(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
) -> Result<Json<Value>, RestError> {
    check_job_id(&jid)?;
    let state = shared.lock();
    let job = state
        .jobs
        .get(&jid)
        .ok_or_else(|| RestError::dispatcher_job_not_found(&jid))?;
    Ok(Json(json!({ "status": job.state.as_str() })))
}

async fn checkpoints(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
) -> Result<Json<Value>, RestError> {
    check_job_id(&jid)?;
    let state = shared.lock();
    let job = state
        .jobs
        .get(&jid)
        .ok_or_else(|| RestError::job_not_found(&jid))?;
    Ok(Json(job.checkpoints()))
}

async fn rescaling(State(shared): State<Arc<Shared>>, Path(_jid): Path<String>) -> RestError {
    shared.lock().rescaling_calls += 1;
    RestError::handler(
        StatusCode::SERVICE_UNAVAILABLE,
        "Rescaling is temporarily disabled. See FLINK-12312.",
    )
}

/// `JarRunRequestBody` as of Flink 2.3: no `programArgs` (a string one is ignored, as an unknown
/// field). The fields this server does not act on are still parsed for their types.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[expect(dead_code, reason = "some fields are only validated by parsing")]
struct RunRequest {
    entry_class: Option<String>,
    program_args_list: Option<Vec<String>>,
    parallelism: Option<i64>,
    job_id: Option<String>,
    allow_non_restored_state: Option<bool>,
    savepoint_path: Option<String>,
    restore_mode: Option<ClaimMode>,
    claim_mode: Option<ClaimMode>,
    flink_configuration: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum ClaimMode {
    Legacy,
    Claim,
    NoClaim,
}

/// A submission the program's `execute()` refused: 400 with the cause deep in the chain, and a
/// FAILED job under the program's name, as Flink leaves one.
fn refused_run(
    state: &mut super::State,
    name: &str,
    jar_id: &str,
    cause: (&str, String),
) -> RestError {
    let jid = state.new_id();
    let at = state.now();
    let mut job = Job::new(jid, name.to_owned(), jar_id.to_owned(), 1, at);
    job.state = JobState::Failed;
    job.adaptive = None;
    job.end_time = Some(at);
    state.jobs.insert(job.jid.clone(), job);
    RestError::chain(
        StatusCode::BAD_REQUEST,
        HANDLER_EXCEPTION,
        "Could not execute application.",
        &[
            (
                "org.apache.flink.util.FlinkRuntimeException",
                "Could not execute application.".to_owned(),
            ),
            (
                "org.apache.flink.client.program.ProgramInvocationException",
                format!("The main method caused an error: Failed to execute job '{name}'."),
            ),
            (
                "org.apache.flink.runtime.client.JobInitializationException",
                "Could not start the JobMaster.".to_owned(),
            ),
            cause,
        ],
    )
}

async fn run_jar(
    State(shared): State<Arc<Shared>>,
    Path(jar_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, RestError> {
    let (raw, request) = parse::<RunRequest>(&body, "JarRunRequestBody")?;
    let mut state = shared.lock();
    let Some(jar) = state.jars.get(&jar_id).cloned() else {
        return Err(RestError::server(
            COMPLETION,
            &format!("{HANDLER_EXCEPTION}: Jar file /tmp/flink-web-upload/{jar_id} does not exist"),
        ));
    };
    state.submissions.push(raw);
    if let Some((status, message)) = state.fail_next_submission.take() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(if status.is_server_error() {
            RestError::server("java.lang.RuntimeException", &message).with_status(status)
        } else {
            RestError::handler(status, message)
        });
    }
    let asked = match request.parallelism {
        None => 1,
        Some(p) if p > 0 && p <= i64::from(u32::MAX) => p as u32,
        Some(p) => {
            return Err(RestError::handler(
                StatusCode::BAD_REQUEST,
                format!("The parallelism must be a positive number: {p}"),
            ));
        }
    };
    let parallelism = jar.pinned_parallelism.unwrap_or(asked);
    // Programs name their job; like the probe job, these take `--name <name>` from their arguments.
    let named = request.program_args_list.as_ref().and_then(|args| {
        args.windows(2)
            .find(|w| w[0] == "--name")
            .map(|w| w[1].clone())
    });
    let name = named
        .or(jar.program_name)
        .unwrap_or_else(|| "Flink Streaming Job".to_owned());
    if let Some(path) = &request.savepoint_path
        && !state.savepoints.contains(path)
    {
        let message = format!(
            "Cannot find checkpoint or savepoint file/directory '{path}' on file system 'file'."
        );
        return Err(refused_run(
            &mut state,
            &name,
            &jar_id,
            ("java.io.FileNotFoundException", message),
        ));
    }
    if parallelism > MAX_PARALLELISM {
        let message = format!(
            "Vertex {}'s parallelism ({parallelism}) is higher than the max parallelism \
             ({MAX_PARALLELISM}). Please lower the parallelism or increase the max parallelism.",
            OPERATORS[0]
        );
        return Err(refused_run(
            &mut state,
            &name,
            &jar_id,
            ("org.apache.flink.runtime.JobException", message),
        ));
    }
    let jid = match request.job_id {
        Some(id) if is_id(&id) => id,
        Some(id) => {
            return Err(RestError::bad_body(
                "JarRunRequestBody",
                &format!("Cannot parse JobID {id:?}"),
            ));
        }
        None => state.new_id(),
    };
    if state.jobs.contains_key(&jid) {
        return Err(RestError::handler(
            StatusCode::CONFLICT,
            format!("Job has already been submitted: {jid}"),
        ));
    }
    let at = state.now();
    let polls = state.polls_to_complete;
    let mut job = Job::new(jid.clone(), name, jar_id, parallelism, at);
    job.adaptive = Some(state.adaptive);
    job.restored_from = request.savepoint_path;
    job.start(polls);
    state.jobs.insert(jid.clone(), job);
    Ok(Json(json!({ "jobid": jid, "applicationId": jid })))
}
