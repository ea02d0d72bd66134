//! `GET|PUT /jobs/{jobid}/resource-requirements`: only the adaptive scheduler supports them; the
//! default one answers 500 `UnsupportedOperationException`, to reads as well. A PUT is validated per
//! vertex with Flink's texts, persisted (another PUT meanwhile gets 409), then applied by the
//! scheduler after its cooldown, at what the free slots allow.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::cluster::{Job, MAX_PARALLELISM};
use super::errors::RestError;
use super::routes::{check_job_id, parse};

const UNSUPPORTED: &str = "The DefaultScheduler does not support changing the parallelism without \
                           a job restart. This feature is currently only expected to work with the \
                           AdaptiveScheduler.";

/// The job, if the dispatcher runs it under the adaptive scheduler.
fn adaptive_job<'a>(
    jobs: &'a mut BTreeMap<String, Job>,
    jid: &str,
) -> Result<&'a mut Job, RestError> {
    let job = jobs
        .get_mut(jid)
        .filter(|j| !j.state.ended())
        .ok_or_else(|| RestError::dispatcher_job_not_found(jid))?;
    if job.adaptive != Some(true) {
        return Err(RestError::server(
            "java.lang.UnsupportedOperationException",
            UNSUPPORTED,
        ));
    }
    Ok(job)
}

pub(crate) async fn get_requirements(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
) -> Result<Json<Value>, RestError> {
    check_job_id(&jid)?;
    let mut state = shared.lock();
    let job = adaptive_job(&mut state.jobs, &jid)?;
    Ok(Json(job.requirements()))
}

#[derive(Debug, Deserialize)]
struct VertexRequirements {
    parallelism: Bounds,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounds {
    lower_bound: u32,
    upper_bound: u32,
}

/// Flink's checks, one line per offending vertex.
fn problems(job: &Job, requested: &BTreeMap<String, VertexRequirements>) -> Vec<String> {
    if let Some(unknown) = requested
        .keys()
        .find(|id| !job.vertices.iter().any(|v| &v.id == *id))
    {
        return vec![format!(
            "Job vertex [{unknown}] was not found in the JobGraph."
        )];
    }
    let mut problems = Vec::new();
    for v in &job.vertices {
        let id = &v.id;
        let Some(r) = requested.get(id) else {
            problems.push(format!(
                "The request is incomplete, missing job vertex [{id}] resource requirements."
            ));
            continue;
        };
        let (lower, upper) = (r.parallelism.lower_bound, r.parallelism.upper_bound);
        if lower < 1 || upper < 1 {
            problems.push(format!(
                "Both, the requested lower bound [{lower}] and upper bound [{upper}] for job \
                 vertex [{id}] must be greater than zero."
            ));
        } else if lower > upper {
            problems.push(format!(
                "The requested lower bound [{lower}] for job vertex [{id}] is higher than the \
                 upper bound [{upper}]."
            ));
        } else if upper > MAX_PARALLELISM {
            problems.push(format!(
                "The newly requested parallelism {upper} for the job vertex {id} exceeds its \
                 maximum parallelism {MAX_PARALLELISM}."
            ));
        }
    }
    problems
}

pub(crate) async fn put_requirements(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, RestError> {
    check_job_id(&jid)?;
    let (raw, requested) =
        parse::<BTreeMap<String, VertexRequirements>>(&body, "JobResourceRequirementsBody")?;
    let update_time = {
        let mut state = shared.lock();
        let update_time = state.requirements_update_time;
        let job = adaptive_job(&mut state.jobs, &jid)?;
        let problems = problems(job, &requested);
        if !problems.is_empty() {
            return Err(RestError::handler(
                StatusCode::BAD_REQUEST,
                problems.join("\n"),
            ));
        }
        if job.updating_requirements {
            // Flink's message has a literal `%s`.
            return Err(RestError::handler(
                StatusCode::CONFLICT,
                "Another update to the job [%s] resource requirements is in progress.",
            ));
        }
        job.updating_requirements = true;
        update_time
    };
    // Persisting the requirements (the job graph store) takes a while; a concurrent PUT sees it.
    if !update_time.is_zero() {
        tokio::time::sleep(update_time).await;
    }
    let mut state = shared.lock();
    let polls = state.polls_to_complete;
    let Some(job) = state.jobs.get_mut(&jid) else {
        return Err(RestError::dispatcher_job_not_found(&jid));
    };
    job.updating_requirements = false;
    for v in &mut job.vertices {
        if let Some(r) = requested.get(&v.id) {
            v.lower = r.parallelism.lower_bound;
            v.upper = r.parallelism.upper_bound;
        }
    }
    job.pending_rescale = Some(polls);
    state.requirement_updates.push(raw);
    Ok(Json(json!({})))
}
