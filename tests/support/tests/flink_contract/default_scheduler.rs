//! Checks for a session cluster with the default scheduler: errors, the savepoint operation and its
//! expiry, resubmission, refused runs, and the refused resource requirements.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::rest::{
    DEADLINE, POLL, Target, UNKNOWN_JOB, all_running, handler_text, server_text,
    trigger as trigger_id,
};

/// 404 for an unknown job (with Flink's cause), 500 from the dispatcher for its status, 400 for a
/// malformed id, and the texts of an unknown path and the disabled rescaling endpoint.
pub async fn errors_have_flinks_shapes(t: &Target) {
    let (status, body) = t.get(&format!("/jobs/{UNKNOWN_JOB}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.label);
    let text = handler_text(&body);
    assert!(
        text.starts_with(&format!(
            "org.apache.flink.runtime.rest.NotFoundException: Job {UNKNOWN_JOB} not found"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Caused by: org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find \
             Flink job ({UNKNOWN_JOB})"
        )),
        "{text}"
    );

    let (status, body) = t.get(&format!("/jobs/{UNKNOWN_JOB}/status")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{}", t.label);
    let text = server_text(&body);
    assert!(
        text.contains(
            "\norg.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job"
        ),
        "{text}"
    );

    let (status, body) = t.get("/jobs/not-a-job-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", t.label);
    assert!(
        handler_text(&body).starts_with(
            "org.apache.flink.runtime.rest.handler.RestHandlerException: Bad request, could not \
             parse parameters: Cannot resolve path parameter (jobid) from value \"not-a-job-id\"."
        ),
        "{body}"
    );

    let (status, body) = t.get("/no/such/path").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.label);
    assert_eq!(
        body,
        json!({"errors": ["Unable to load requested file /no/such/path."]})
    );

    let (status, body) = t
        .send(
            t.http
                .patch(t.at(&format!("/jobs/{UNKNOWN_JOB}/rescaling?parallelism=4"))),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", t.label);
    assert!(
        handler_text(&body).starts_with(
            "org.apache.flink.runtime.rest.handler.RestHandlerException: Rescaling is temporarily \
             disabled. See FLINK-12312."
        ),
        "{body}"
    );
}

/// What a stop-with-savepoint leaves, for the checks after it.
pub struct Stopped {
    pub jid: String,
    pub trigger: String,
    pub location: String,
}

/// The stop is asynchronous and idempotent per trigger id, also once the job has finished; the
/// finished job's checkpoint history names the savepoint; a new trigger on a finished or unknown
/// job is accepted and then fails with `FlinkJobNotFoundException`. `GET /jobs/{id}` may lag
/// `/status`, but not for long.
pub async fn savepoint_lifecycle(t: &Target) -> Stopped {
    let jid = t.start(1, json!({})).await;
    let trigger = trigger_id(1);
    let stop = json!({"drain": false, "formatType": "CANONICAL", "triggerId": trigger});
    let path = format!("/jobs/{jid}/stop");
    let (status, body) = t.post(&path, &stop).await;
    assert_eq!(
        (status, &body),
        (StatusCode::ACCEPTED, &json!({"request-id": trigger}))
    );
    let (status, body) = t.post(&path, &stop).await;
    assert_eq!(
        (status, &body),
        (StatusCode::ACCEPTED, &json!({"request-id": trigger}))
    );

    let done = t.operation(&jid, &trigger).await;
    let location = done["operation"]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: a location: {done}", t.label))
        .to_owned();
    assert!(location.starts_with("file:"), "{location}");
    assert!(
        location.contains(&format!("/savepoint-{}-", &jid[..6])),
        "{location}"
    );
    t.wait_status(&jid, "FINISHED").await;
    // The details come from a cache that may still say RUNNING, for a few seconds at most.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, details) = t.get(&format!("/jobs/{jid}")).await;
        let state = details["state"].as_str().unwrap_or_default().to_owned();
        if state == "FINISHED" {
            break;
        }
        assert_eq!(state, "RUNNING", "{}: {details}", t.label);
        assert!(
            Instant::now() < deadline,
            "{}: details never FINISHED",
            t.label
        );
        tokio::time::sleep(POLL).await;
    }

    // The same trigger, after the job finished: the same operation, the same result.
    let (status, _) = t.post(&path, &stop).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let again = t.operation(&jid, &trigger).await;
    assert_eq!(
        again["operation"]["location"],
        json!(location),
        "{}",
        t.label
    );

    let unknown = trigger_id(2);
    let (status, body) = t.get(&format!("/jobs/{jid}/savepoints/{unknown}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.label);
    assert!(
        handler_text(&body).contains(&format!(
            "There is no savepoint operation with triggerId={unknown} for job {jid}."
        )),
        "{body}"
    );

    let (status, history) = t.get(&format!("/jobs/{jid}/checkpoints")).await;
    assert_eq!(status, StatusCode::OK, "{}", t.label);
    let savepoint = &history["latest"]["savepoint"];
    assert_eq!(savepoint["checkpoint_type"], "SYNC_SAVEPOINT", "{history}");
    assert_eq!(savepoint["external_path"], json!(location), "{history}");

    for (job, n) in [(jid.as_str(), 3), (UNKNOWN_JOB, 4)] {
        let other = trigger_id(n);
        let body = json!({"drain": false, "triggerId": other, "bogusField": 1});
        let (status, answer) = t.post(&format!("/jobs/{job}/stop"), &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{}: {answer}", t.label);
        let failed = t.operation(job, &other).await;
        assert!(failed["operation"]["location"].is_null(), "{failed}");
        let trace = failed["operation"]["failure-cause"]["stack-trace"]
            .as_str()
            .unwrap_or_default();
        assert!(
            trace.starts_with(
                "java.util.concurrent.CompletionException: \
                 org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job"
            ),
            "{}: {trace}",
            t.label
        );
    }
    Stopped {
        jid,
        trigger,
        location,
    }
}

/// A run from the savepoint at a new parallelism: the job shows RUNNING before its subtasks run
/// (they deploy and restore first), says its scheduler and max parallelism, and names where it
/// was restored from. Returns the new job's id.
pub async fn resubmission(t: &Target, stopped: &Stopped) -> String {
    let (status, body) = t
        .run(
            2,
            json!({"savepointPath": stopped.location, "allowNonRestoredState": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", t.label);
    let jid = body["jobid"].as_str().expect("a job id").to_owned();
    assert_eq!(body["applicationId"], json!(jid), "{body}");
    let seen = t.wait_running(&jid, 2).await;
    assert!(
        seen.len() > 1 && !all_running(&seen[0], 2),
        "{}: the first read already showed every subtask running: {}",
        t.label,
        seen[0]
    );
    for details in &seen {
        for v in details["vertices"].as_array().into_iter().flatten() {
            let status = v["status"].as_str().unwrap_or_default();
            assert!(
                [
                    "CREATED",
                    "SCHEDULED",
                    "DEPLOYING",
                    "INITIALIZING",
                    "RUNNING"
                ]
                .contains(&status),
                "{}: {v}",
                t.label
            );
        }
    }
    let running = seen.last().expect("a read");
    assert_eq!(running["schedulerType"], "Default", "{running}");
    assert_eq!(running["maxParallelism"], 128, "{running}");
    for v in running["vertices"].as_array().into_iter().flatten() {
        assert_eq!(v["maxParallelism"], 128, "{v}");
    }
    let (_, overview) = t.get("/jobs/overview").await;
    let entry = overview["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|j| j["jid"] == json!(jid))
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["schedulerType"], "Default", "{overview}");
    let (_, history) = t.get(&format!("/jobs/{jid}/checkpoints")).await;
    assert_eq!(
        history["latest"]["restored"]["external_path"],
        json!(stopped.location),
        "{history}"
    );
    jid
}

/// Runs Flink refuses: a missing savepoint and a parallelism above the max (400, the cause deep in
/// the chain, a FAILED job left behind), an unknown jar (500), wrong types (400). Unknown fields and
/// a `programArgs` string are ignored.
pub async fn run_refusals(t: &Target, stopped: &Stopped) {
    let failed_before = failed_jobs(t).await;
    let (status, body) = t
        .run(
            1,
            json!({"savepointPath": "file:/nonexistent/savepoint-000000-000000000000"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", t.label);
    let text = handler_text(&body);
    assert!(
        text.starts_with(
            "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application."
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "Caused by: java.io.FileNotFoundException: Cannot find checkpoint or savepoint"
        ),
        "{text}"
    );

    let (status, body) = t.run(200, json!({"savepointPath": stopped.location})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", t.label);
    let text = handler_text(&body);
    assert!(text.contains("Could not execute application."), "{text}");
    assert!(
        text.contains("'s parallelism (200) is higher than the max parallelism (128)."),
        "{text}"
    );
    assert_eq!(
        failed_jobs(t).await,
        failed_before + 2,
        "{}: each refused run leaves a FAILED job",
        t.label
    );

    let jar = "00000000-0000-0000-0000-000000000000_nope.jar";
    let (status, body) = t
        .post(
            &format!("/jars/{jar}/run"),
            &json!({"parallelism": 1, "bogusField": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{}", t.label);
    let text = server_text(&body);
    assert!(text.contains("RestHandlerException: Jar file "), "{text}");
    assert!(text.contains(&format!("/{jar} does not exist")), "{text}");

    for bad in [
        json!({"parallelism": "three"}),
        json!({"claimMode": "SOMETIMES"}),
    ] {
        let (status, body) = t.post(&format!("/jars/{}/run", t.jar), &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {bad}", t.label);
        assert!(
            handler_text(&body).starts_with(
                "org.apache.flink.runtime.rest.handler.RestHandlerException: Request did not match \
                 expected format JarRunRequestBody."
            ),
            "{body}"
        );
    }

    let ignored = json!({"savepointPath": stopped.location, "programArgs": "--name ignored",
                         "claimMode": "NO_CLAIM", "bogusField": 1});
    let jid = t.start(1, ignored).await;
    let (_, details) = t.get(&format!("/jobs/{jid}")).await;
    assert_eq!(
        details["name"],
        json!(t.name),
        "{}: programArgs is ignored",
        t.label
    );
    t.cancel(&jid).await;
}

async fn failed_jobs(t: &Target) -> usize {
    t.jobs_named(&t.name)
        .await
        .iter()
        .filter(|(_, state)| state == "FAILED")
        .count()
}

/// The default scheduler refuses the resource-requirements endpoints, reads included, with a 500
/// whose cause is `UnsupportedOperationException`; a finished job's are a `FlinkJobNotFoundException`.
pub async fn requirements_are_refused(t: &Target, running: &str, finished: &str) {
    let path = format!("/jobs/{running}/resource-requirements");
    let (status, body) = t.get(&path).await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}: {body}",
        t.label
    );
    let unsupported = "\njava.lang.UnsupportedOperationException: The DefaultScheduler does not \
                       support changing the parallelism";
    assert!(server_text(&body).contains(unsupported), "{body}");
    let (_, details) = t.get(&format!("/jobs/{running}")).await;
    let bounds: serde_json::Map<String, Value> = details["vertices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            (
                v["id"].as_str().unwrap_or_default().to_owned(),
                json!({"parallelism": {"lowerBound": 1, "upperBound": 1}}),
            )
        })
        .collect();
    let (status, body) = t.put(&path, &Value::Object(bounds)).await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}: {body}",
        t.label
    );
    assert!(server_text(&body).contains(unsupported), "{body}");

    let (status, body) = t
        .get(&format!("/jobs/{finished}/resource-requirements"))
        .await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}: {body}",
        t.label
    );
    assert!(
        server_text(&body).contains("FlinkJobNotFoundException: Could not find Flink job"),
        "{body}"
    );
}

/// After `rest.async.store-duration` the operation's result is gone: 404, and the same trigger
/// starts a new operation, which fails because the job has finished. The checkpoint history still
/// names the savepoint.
pub async fn results_expire(t: &Target, stopped: &Stopped, store: Duration) {
    let path = format!("/jobs/{}/savepoints/{}", stopped.jid, stopped.trigger);
    let deadline = Instant::now() + store + DEADLINE;
    loop {
        let (status, body) = t.get(&path).await;
        if status == StatusCode::NOT_FOUND {
            assert!(
                handler_text(&body).contains("There is no savepoint operation with triggerId="),
                "{body}"
            );
            break;
        }
        assert_eq!(status, StatusCode::OK, "{}: {body}", t.label);
        assert!(
            Instant::now() < deadline,
            "{}: the result never expired",
            t.label
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stop = json!({"drain": false, "formatType": "CANONICAL", "triggerId": stopped.trigger});
    let (status, _) = t.post(&format!("/jobs/{}/stop", stopped.jid), &stop).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", t.label);
    let again = t.operation(&stopped.jid, &stopped.trigger).await;
    let trace = again["operation"]["failure-cause"]["stack-trace"]
        .as_str()
        .unwrap_or_default();
    assert!(
        trace.contains("FlinkJobNotFoundException"),
        "{}: {again}",
        t.label
    );
    let (_, history) = t.get(&format!("/jobs/{}/checkpoints", stopped.jid)).await;
    assert_eq!(
        history["latest"]["savepoint"]["external_path"],
        json!(stopped.location),
        "{history}"
    );
}
