//! Checks for a session cluster with the adaptive scheduler: the resource requirements, how a
//! change of them takes effect (after the cooldown, at what the free slots allow), and conflicts.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::rest::{DEADLINE, POLL, Target, handler_text};

/// A job started under the adaptive scheduler, and its vertex ids.
pub struct AdaptiveJob {
    pub jid: String,
    pub vertices: Vec<String>,
}

impl AdaptiveJob {
    fn path(&self) -> String {
        format!("/jobs/{}/resource-requirements", self.jid)
    }

    fn bounds(&self, lower: u32, upper: u32) -> Value {
        self.vertices
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    json!({"parallelism": {"lowerBound": lower, "upperBound": upper}}),
                )
            })
            .collect::<serde_json::Map<String, Value>>()
            .into()
    }
}

/// The job says its scheduler; its requirements are one entry per vertex; a PUT is validated per
/// vertex with Flink's texts and ignores unknown fields.
pub async fn requirements(t: &Target) -> AdaptiveJob {
    let jid = t.start(1, json!({})).await;
    let (_, overview) = t.get("/jobs/overview").await;
    let entry = overview["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|j| j["jid"] == json!(jid))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        entry["schedulerType"], "Adaptive",
        "{}: {overview}",
        t.label
    );
    let (_, details) = t.get(&format!("/jobs/{jid}")).await;
    assert_eq!(details["schedulerType"], "Adaptive", "{details}");
    let mut vertices: Vec<String> = details["vertices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    vertices.sort();
    let job = AdaptiveJob { jid, vertices };

    let (status, current) = t.get(&job.path()).await;
    assert_eq!(status, StatusCode::OK, "{}: {current}", t.label);
    assert_eq!(current, job.bounds(1, 1), "{}", t.label);

    let first = &job.vertices[0];
    let refusals = [
        (
            job.bounds(1, 500),
            format!(
                "The newly requested parallelism 500 for the job vertex {first} exceeds its maximum parallelism 128."
            ),
        ),
        (
            job.bounds(0, 2),
            format!(
                "Both, the requested lower bound [0] and upper bound [2] for job vertex [{first}] must be greater than zero."
            ),
        ),
        (
            job.bounds(3, 2),
            format!(
                "The requested lower bound [3] for job vertex [{first}] is higher than the upper bound [2]."
            ),
        ),
        (
            json!({first.clone(): {"parallelism": {"lowerBound": 1, "upperBound": 1}}}),
            format!(
                "The request is incomplete, missing job vertex [{}] resource requirements.",
                job.vertices[1]
            ),
        ),
    ];
    for (body, text) in refusals {
        let (status, answer) = t.put(&job.path(), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", t.label);
        let answered = handler_text(&answer);
        assert!(
            answered.starts_with("org.apache.flink.runtime.rest.handler.RestHandlerException: "),
            "{answered}"
        );
        assert!(
            answered.contains(&text),
            "{}: {text} not in {answered}",
            t.label
        );
    }
    let mut unknown = job.bounds(1, 1);
    unknown["0123456789abcdef0123456789abcdef"] =
        json!({"parallelism": {"lowerBound": 1, "upperBound": 1}});
    let (status, answer) = t.put(&job.path(), &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", t.label);
    assert!(
        handler_text(&answer).contains(
            "Job vertex [0123456789abcdef0123456789abcdef] was not found in the JobGraph."
        ),
        "{answer}"
    );

    let mut extra = job.bounds(1, 1);
    for v in extra
        .as_object_mut()
        .into_iter()
        .flat_map(|m| m.values_mut())
    {
        v["bogus"] = json!(1);
    }
    let (status, answer) = t.put(&job.path(), &extra).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({})), "{}", t.label);
    job
}

/// Reads the details until the job runs at `parallelism` with every subtask running; returns them.
async fn settles_at(t: &Target, job: &AdaptiveJob, parallelism: u32, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (_, details) = t.get(&format!("/jobs/{}", job.jid)).await;
        if crate::rest::all_running(&details, parallelism) {
            return details;
        }
        assert!(
            started.elapsed() < within,
            "{}: never ran at {parallelism}: {details}",
            t.label
        );
        tokio::time::sleep(POLL).await;
    }
}

/// When the job last entered RUNNING, by the server's clock (ms).
fn running_since(details: &Value) -> i64 {
    details["timestamps"]["RUNNING"]
        .as_i64()
        .unwrap_or_default()
}

/// A new upper bound takes effect in place (the same job, no other), and not before the cooldown
/// since the last rescale has passed.
pub async fn rescale_waits_out_the_cooldown(t: &Target, job: &AdaptiveJob, cooldown: Duration) {
    let (status, _) = t.put(&job.path(), &job.bounds(1, 2)).await;
    assert_eq!(status, StatusCode::OK, "{}", t.label);
    let at_two = settles_at(t, job, 2, cooldown + DEADLINE).await;

    let (status, _) = t.put(&job.path(), &job.bounds(1, 1)).await;
    assert_eq!(status, StatusCode::OK, "{}", t.label);
    let at_one = settles_at(t, job, 1, cooldown + DEADLINE).await;
    let between = running_since(&at_one) - running_since(&at_two);
    let cooldown_ms = i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX);
    assert!(
        between + 500 >= cooldown_ms,
        "{}: rescaled {between} ms after the previous rescale, within the {cooldown:?} cooldown",
        t.label
    );
    let live: Vec<_> = t
        .jobs_named(&t.name)
        .await
        .into_iter()
        .filter(|(_, state)| state == "RUNNING" || state == "CREATED")
        .collect();
    assert_eq!(
        live,
        [(job.jid.clone(), "RUNNING".to_owned())],
        "{}: in place",
        t.label
    );
}

/// Asked for more than the slots allow, the scheduler accepts and runs the job at what the slots
/// allow (every slot taken), keeping the requirements.
pub async fn settles_at_the_free_slots(
    t: &Target,
    job: &AdaptiveJob,
    slots: u32,
    within: Duration,
) {
    let (status, answer) = t.put(&job.path(), &job.bounds(1, 8)).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({})), "{}", t.label);
    settles_at(t, job, slots, within).await;
    let (_, overview) = t.get("/overview").await;
    assert_eq!(overview["slots-total"], slots, "{overview}");
    assert_eq!(overview["slots-available"], 0, "{overview}");
    let (_, requirements) = t.get(&job.path()).await;
    assert_eq!(requirements, job.bounds(1, 8), "{}", t.label);
}

/// Several PUTs at once: each is accepted or refused with 409 and Flink's text (with its literal
/// `%s`); at least one is accepted. Returns how many were refused.
pub async fn concurrent_updates(t: &Target, job: &AdaptiveJob) -> usize {
    let (path, body) = (job.path(), job.bounds(1, 8));
    let puts = (0..4).map(|_| t.put(&path, &body));
    let answers = join_all(puts).await;
    let mut conflicts = 0;
    for (status, body) in &answers {
        match *status {
            StatusCode::OK => assert_eq!(body, &json!({})),
            StatusCode::CONFLICT => {
                conflicts += 1;
                assert!(
                    handler_text(body).contains(
                        "Another update to the job [%s] resource requirements is in progress."
                    ),
                    "{body}"
                );
            }
            other => panic!("{}: {other}: {body}", t.label),
        }
    }
    assert!(conflicts < answers.len(), "{}: none accepted", t.label);
    conflicts
}
